package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/deferred"
)

// States.
const (
	StateStarting = "starting" // no successful apply yet
	StateOK       = "ok"
	StateDegraded = "degraded" // running on the last good files
	StateStopping = "stopping"
)

// Status is what /status serves and `jitsi-agent status` prints.
type Status struct {
	State          string    `json:"state"`
	Ready          bool      `json:"ready"`
	Degraded       bool      `json:"degraded"`
	DegradedReason string    `json:"degraded_reason,omitempty"`
	PID            int       `json:"pid"`
	Version        string    `json:"version,omitempty"`
	StartedAt      time.Time `json:"started_at"`
	// Applies counts apply runs since start.
	Applies int `json:"applies"`
	// Prechecks counts the pre-checks started since start (Prechecker):
	// at most one per change its predecessor had not seen.
	Prechecks   int          `json:"prechecks,omitempty"`
	LastApply   *ApplyRecord `json:"last_apply,omitempty"`
	LastSuccess *time.Time   `json:"last_success,omitempty"`
	// Drift is what the last completed apply found.
	Drift           []Drift            `json:"drift,omitempty"`
	PendingRestarts []deferred.Restart `json:"pending_restarts,omitempty"`
	Certificates    []CertStatus       `json:"certificates,omitempty"`
	// Services are the live services (state and probes) as last checked.
	Services []ServiceStatus `json:"services,omitempty"`
	// Watching lists the watched directories.
	Watching []string `json:"watching,omitempty"`
	// Held says a rolled-back generation is held until the spec changes.
	Held string `json:"held,omitempty"`
}

// ApplyRecord describes one apply run.
type ApplyRecord struct {
	Time            time.Time     `json:"time"`
	DurationSeconds float64       `json:"duration_seconds"`
	Reason          string        `json:"reason"`
	Result          string        `json:"result"` // metrics.Result*
	Error           string        `json:"error,omitempty"`
	Written         []string      `json:"written,omitempty"`
	Reloaded        []string      `json:"reloaded,omitempty"`
	ReloadFailures  []UnitFailure `json:"reload_failures,omitempty"`
}

// CertStatus is one certificate's expiry.
type CertStatus struct {
	Name             string    `json:"name"`
	NotAfter         time.Time `json:"not_after"`
	ExpiresInSeconds float64   `json:"expires_in_seconds"`
}

// Healthy reports whether the status is ok, and if not, why.
func (s *Status) Healthy() (bool, string) {
	switch {
	case s.State == StateStopping:
		return false, "stopping"
	case !s.Ready && s.Degraded:
		return false, "starting: " + s.DegradedReason
	case !s.Ready:
		return false, "starting: no successful apply yet"
	case s.Degraded:
		return false, "degraded: " + s.DegradedReason
	}
	var bad []string
	for _, sv := range s.Services {
		if !sv.OK {
			bad = append(bad, sv.Unit+": "+sv.Problem)
		}
	}
	if len(bad) > 0 {
		return false, "degraded: " + strings.Join(bad, "; ")
	}
	return true, ""
}

// DefaultSocketPath is where the daemon's status socket lives: under
// $RUNTIME_DIRECTORY (systemd RuntimeDirectory=) when set, else
// /run/jitsi-agent (prefixed with root for --root test trees).
func DefaultSocketPath(root string) string {
	if d := os.Getenv("RUNTIME_DIRECTORY"); d != "" && (root == "" || root == "/") {
		return filepath.Join(filepath.SplitList(d)[0], "status.sock")
	}
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, "run", "jitsi-agent", "status.sock")
}

// FetchStatus asks a running daemon for its status, over the unix socket
// when socketPath is set, else over HTTP at httpAddr ("127.0.0.1:9101").
func FetchStatus(ctx context.Context, socketPath, httpAddr string) (*Status, error) {
	var (
		client = &http.Client{Timeout: 10 * time.Second}
		url    string
		where  string
	)
	switch {
	case socketPath != "":
		where = socketPath
		client.Transport = &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socketPath)
			},
		}
		url = "http://jitsi-agent/status"
	case httpAddr != "":
		where = httpAddr
		url = "http://" + httpAddr + "/status"
	default:
		return nil, errors.New("status: no socket path or address")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("status: asking the daemon at %s: %w", where, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("status: reading the answer from %s: %w", where, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status: %s answered %s", where, resp.Status)
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("status: decoding the answer from %s: %w", where, err)
	}
	return &st, nil
}

// listenUnix listens on a unix socket, replacing a stale socket file but
// refusing to steal one a live daemon answers on.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("status socket: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("status socket: %s: another jitsi-agent is running", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("status socket: removing stale %s: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("status socket: %w", err)
	}
	return l, nil
}

// ErrNoDaemon is returned by RequestRollback when no daemon listens on the
// socket (nothing would undo a rollback made by hand).
var ErrNoDaemon = errors.New("no daemon is running")

// RequestRollback asks the daemon listening on socketPath to roll back to
// serial to (-1: the one before the last) and hold that generation until
// the spec changes. A refusal comes back as an answer with OK false and
// the reason; ErrNoDaemon means nobody listens.
func RequestRollback(ctx context.Context, socketPath string, to int) (*RollbackAnswer, error) {
	if _, err := os.Stat(socketPath); err != nil {
		return nil, ErrNoDaemon
	}
	conn, err := net.DialTimeout("unix", socketPath, 2*time.Second)
	if err != nil {
		return nil, ErrNoDaemon // a stale socket: the daemon is gone
	}
	conn.Close()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
	}}
	body := fmt.Sprintf(`{"to": %d}`, to)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://jitsi-agent/rollback", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("rollback: asking the daemon at %s: %w", socketPath, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("rollback: reading the daemon's answer: %w", err)
	}
	var ans RollbackAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		return nil, fmt.Errorf("rollback: the daemon at %s answered %s: %s", socketPath, resp.Status, strings.TrimSpace(string(b)))
	}
	return &ans, nil
}
