package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/xmpptest"
)

// DaemonUnit is the unit the harness installs (the shipped, hardened one).
const DaemonUnit = "jitsi-agent.service"

// StartDaemon installs the unit `jitsi-agent unit` prints (the shipped,
// hardened unit, ExecStart=/usr/local/bin/jitsi-agent run SpecPath) and
// starts it; systemctl start returns once the daemon sent READY=1.
func (e *Env) StartDaemon() {
	e.T.Helper()
	unit, code := e.Agent("unit")
	if code != 0 {
		e.T.Fatalf("jitsi-agent unit: exit %d: %s", code, unit)
	}
	e.WriteFile("/etc/systemd/system/"+DaemonUnit, []byte(unit), 0o644)
	e.MustRun("systemctl", "daemon-reload")
	e.MustRun("systemctl", "start", DaemonUnit)
}

// Status is the part of `jitsi-agent status --json` the tests read.
type Status struct {
	State          string `json:"state"`
	Ready          bool   `json:"ready"`
	Degraded       bool   `json:"degraded"`
	DegradedReason string `json:"degraded_reason"`
	Applies        int    `json:"applies"`
	Held           string `json:"held"`
	LastApply      *struct {
		Time     time.Time `json:"time"` // when it ended
		Duration float64   `json:"duration_seconds"`
		Reason   string    `json:"reason"`
		Result   string    `json:"result"`
		Error    string    `json:"error"`
		Written  []string  `json:"written"`
		Reloaded []string  `json:"reloaded"`
	} `json:"last_apply"`
}

// DaemonStatus asks the running daemon for its state.
func (e *Env) DaemonStatus() (Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := e.Exec(ctx, AgentPath, "status", "--json")
	var st Status
	if i := strings.Index(out, "{"); i >= 0 && json.Unmarshal([]byte(out[i:]), &st) == nil {
		return st, nil
	}
	return st, fmt.Errorf("jitsi-agent status: %v: %s", err, out)
}

// WaitApplyAfter waits until the daemon has finished a pass that started
// after since (so it read what the test wrote before since; the box shares
// the test's clock) and returns the status. Counting passes instead could
// take a pass that was already running at the write and read the old files.
func (e *Env) WaitApplyAfter(since time.Time, timeout time.Duration) Status {
	e.T.Helper()
	return e.waitPass(timeout, "a pass started after "+since.Format(time.RFC3339Nano), func(st Status) bool {
		la := st.LastApply
		return la != nil && !la.Time.Add(-time.Duration(la.Duration*float64(time.Second))).Before(since)
	})
}

// WaitApply waits until the daemon has finished an apply after the
// `after`-th one and returns the status.
func (e *Env) WaitApply(after int, timeout time.Duration) Status {
	e.T.Helper()
	return e.waitPass(timeout, "an apply", func(st Status) bool { return st.Applies > after })
}

// waitPass polls the daemon's status until it is between passes and done
// holds, failing the test after timeout.
func (e *Env) waitPass(timeout time.Duration, what string, done func(Status) bool) Status {
	e.T.Helper()
	deadline := time.Now().Add(timeout)
	var last Status
	var lastErr error
	for time.Now().Before(deadline) {
		st, err := e.DaemonStatus()
		last, lastErr = st, err
		if err == nil && st.State != "applying" && st.State != "reloading" && done(st) {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.T.Fatalf("the daemon did not finish %s within %s (last status %+v, %v)", what, timeout, last, lastErr)
	return last
}

// Sessions keeps XMPP sessions open across changes and counts, per change,
// how many of them the change dropped (a ping that fails).
type Sessions struct {
	mu      sync.Mutex
	clients map[string]*xmpptest.Client
	dropped []DropCount
}

// DropCount is one change's result.
type DropCount struct {
	Change  string
	Open    int
	Dropped int
	Names   []string
}

// NewSessions starts an empty tracker.
func NewSessions() *Sessions { return &Sessions{clients: map[string]*xmpptest.Client{}} }

// Add tracks a session under name.
func (s *Sessions) Add(name string, c *xmpptest.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[name] = c
}

// Check pings every tracked session after change, records how many were
// dropped, and stops tracking those.
func (s *Sessions) Check(change string) DropCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	dc := DropCount{Change: change, Open: len(s.clients)}
	names := make([]string, 0, len(s.clients))
	for n := range s.clients {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.clients[n].Ping(ctx)
		cancel()
		if err != nil {
			dc.Dropped++
			dc.Names = append(dc.Names, n+": "+err.Error())
			delete(s.clients, n)
		}
	}
	s.dropped = append(s.dropped, dc)
	return dc
}

// Report is a table of sessions dropped per change.
func (s *Sessions) Report() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%-48s %5s %8s\n", "change", "open", "dropped")
	for _, d := range s.dropped {
		fmt.Fprintf(&b, "%-48s %5d %8d\n", d.Change, d.Open, d.Dropped)
	}
	return b.String()
}

// Close ends every tracked session.
func (s *Sessions) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		_ = c.Close()
	}
}

// DoctorCheck is one result of `jitsi-agent doctor --json`.
type DoctorCheck struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Seen   string `json:"seen"`
	Fix    string `json:"fix"`
}

// Doctor runs `jitsi-agent doctor SPEC --json` in the box and returns the
// checks by id.
func (e *Env) Doctor() map[string]DoctorCheck {
	e.T.Helper()
	out, _ := e.Agent("doctor", SpecPath, "--json")
	var rep struct {
		Checks []DoctorCheck `json:"checks"`
	}
	i := strings.Index(out, "{")
	if i < 0 || json.Unmarshal([]byte(out[i:]), &rep) != nil {
		e.T.Fatalf("doctor --json: %s", out)
	}
	m := map[string]DoctorCheck{}
	for _, c := range rep.Checks {
		m[c.ID] = c
	}
	return m
}
