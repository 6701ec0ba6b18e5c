package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

const runBound = 60 * time.Second // only limits how long a broken test hangs

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	copyTreeTB(t, src, dst)
}

// waitStatus polls the daemon's socket until cond holds.
func waitStatus(t *testing.T, sock string, what string, cond func(*daemon.Status) bool) *daemon.Status {
	t.Helper()
	deadline := time.Now().Add(runBound)
	var last *daemon.Status
	var lastErr error
	for time.Now().Before(deadline) {
		st, err := daemon.FetchStatus(context.Background(), sock, "")
		if err == nil && cond(st) {
			return st
		}
		last, lastErr = st, err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("daemon never reached %q; last status %+v, err %v", what, last, lastErr)
	return nil
}

// TestRunDaemonEndToEnd runs the real binary on the example spec under a
// temporary root (no reloads): initial apply, a hand edit restored, a broken
// spec served as degraded, recovery on the fix, `status`, SIGTERM.
func TestRunDaemonEndToEnd(t *testing.T) {
	bin := agentBinary(t)
	dir := t.TempDir()
	copyTree(t, "../../examples", filepath.Join(dir, "examples"))
	specPath := filepath.Join(dir, "examples", "meet.hcl")
	good, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	sock := filepath.Join(dir, "status.sock")
	notAfter := writeSelfSigned(t, filepath.Join(root, "etc/jitsi/meet/meet.example.com.crt"), filepath.Join(root, "etc/jitsi/meet/meet.example.com.key"))
	cmd := exec.Command(bin, "run", specPath, "--root", root, "--socket", sock, "--metrics", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = append(os.Environ(), "JITSI_APP_SECRET="+cliSecret, "NOTIFY_SOCKET=", "WATCHDOG_USEC=")
	var logs lockedBuffer
	cmd.Stderr = &logs
	cmd.Stdout = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})

	st := waitStatus(t, sock, "ready", func(s *daemon.Status) bool { return s.Ready })
	if st.State != daemon.StateOK || st.LastApply == nil || len(st.LastApply.Written) == 0 {
		t.Fatalf("after the initial apply: %+v", st)
	}
	if len(st.Certificates) != 1 || !st.Certificates[0].NotAfter.Equal(notAfter) || st.Certificates[0].ExpiresInSeconds < 24*3600 {
		t.Fatalf("certificates = %+v", st.Certificates)
	}
	var managed string
	for _, p := range st.LastApply.Written {
		if strings.HasSuffix(p, "jicofo.conf") {
			managed = p
		}
	}
	if managed == "" || !strings.HasPrefix(managed, root) {
		t.Fatalf("jicofo.conf not among the written files %v", st.LastApply.Written)
	}

	// A hand edit of a managed file is restored (the default drift policy).
	applies := st.Applies
	f, err := os.OpenFile(managed, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n# hand edit\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st = waitStatus(t, sock, "drift restored", func(s *daemon.Status) bool { return s.Applies > applies && len(s.Drift) > 0 })
	if b, _ := os.ReadFile(managed); strings.Contains(string(b), "hand edit") {
		t.Fatalf("hand edit not restored; status %+v", st)
	}
	if st.Drift[0].Path != managed || !st.Drift[0].Restored {
		t.Fatalf("drift = %+v", st.Drift)
	}

	// A broken spec: degraded with the located error, files untouched.
	before, _ := os.ReadFile(managed)
	if err := os.WriteFile(specPath, append(append([]byte{}, good...), []byte("\nno_such_attribute = 1\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, sock, "degraded", func(s *daemon.Status) bool { return s.Degraded })
	if !strings.Contains(st.DegradedReason, "invalid spec") || !strings.Contains(st.DegradedReason, "meet.hcl:") {
		t.Fatalf("degraded reason %q", st.DegradedReason)
	}
	if after, _ := os.ReadFile(managed); !bytes.Equal(before, after) {
		t.Fatal("a broken spec changed a managed file")
	}
	code, out, _ := runCLI(t, "status", "--socket", sock)
	if code != exitChanges || !strings.Contains(out, "degraded") {
		t.Fatalf("status while degraded: %d\n%s", code, out)
	}

	// The fix recovers by itself.
	if err := os.WriteFile(specPath, good, 0o644); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sock, "recovered", func(s *daemon.Status) bool { return !s.Degraded && s.State == daemon.StateOK })
	code, out, errs := runCLI(t, "status", "--socket", sock)
	if code != exitOK || !strings.Contains(out, "jitsi-agent daemon: ok") {
		t.Fatalf("status: %d\n%s%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "status", "--socket", sock, "--json")
	if code != exitOK || !strings.Contains(out, `"state": "ok"`) {
		t.Fatalf("status --json: %d\n%s", code, out)
	}
	if strings.Contains(logs.String(), cliSecret) {
		t.Fatal("the JWT secret reached the daemon's log")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(runBound):
		t.Fatal("daemon did not stop on SIGTERM")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

// writeSelfSigned writes a matching ECDSA certificate and key valid for 30
// days and returns its NotAfter.
func writeSelfSigned(t *testing.T, certPath, keyPath string) time.Time {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notAfter := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second).UTC()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "meet.example.com"},
		DNSNames: []string{"meet.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return notAfter
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestStatusWithoutDaemon(t *testing.T) {
	code, _, errs := runCLI(t, "status", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	if code != exitError || !strings.Contains(errs, "Is the daemon running?") {
		t.Fatalf("code %d: %s", code, errs)
	}
}

// TestRunDaemonReportDrift: with drift = "report" a hand edit is reported and
// left alone, and other pending changes are held back (the daemon never
// overwrites the edit) until the edit is undone.
func TestRunDaemonReportDrift(t *testing.T) {
	bin := agentBinary(t)
	dir := t.TempDir()
	copyTree(t, "../../examples", filepath.Join(dir, "examples"))
	specPath := filepath.Join(dir, "examples", "meet.hcl")
	orig, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	good := append(append([]byte{}, orig...), "\ndrift = \"report\"\n"...)
	if err := os.WriteFile(specPath, good, 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	sock := filepath.Join(dir, "status.sock")
	cmd := exec.Command(bin, "run", specPath, "--root", root, "--socket", sock, "--metrics", "off", "--log-format", "json")
	cmd.Env = append(os.Environ(), "JITSI_APP_SECRET="+cliSecret, "NOTIFY_SOCKET=", "WATCHDOG_USEC=")
	var logs lockedBuffer
	cmd.Stderr, cmd.Stdout = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(runBound):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	st := waitStatus(t, sock, "ready", func(s *daemon.Status) bool { return s.Ready })
	managed := filepath.Join(root, "etc/jitsi/jicofo/jicofo.conf")
	pristine, err := os.ReadFile(managed)
	if err != nil {
		t.Fatal(err)
	}
	edited := append(append([]byte{}, pristine...), "\n# hand edit\n"...)
	if err := os.WriteFile(managed, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	applies := st.Applies
	st = waitStatus(t, sock, "drift reported", func(s *daemon.Status) bool { return s.Applies > applies && len(s.Drift) > 0 })
	if st.Drift[0].Path != managed || st.Drift[0].Restored || st.Drift[0].Policy != "report" || st.Degraded {
		t.Fatalf("status = %+v", st)
	}
	if b, _ := os.ReadFile(managed); !bytes.Equal(b, edited) {
		t.Fatal("report mode rewrote the file")
	}

	// Another change is pending: it goes through, the edited file is held
	// back and still reported.
	changed := bytes.Replace(good, []byte("max_participants     = 50"), []byte("max_participants     = 40"), 1)
	if bytes.Equal(changed, good) {
		t.Fatal("example spec changed: max_participants not found")
	}
	if err := os.WriteFile(specPath, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	prosodyConf := filepath.Join(root, "etc/prosody/conf.avail/meet.example.com.cfg.lua")
	st = waitStatus(t, sock, "other change applied", func(s *daemon.Status) bool {
		b, _ := os.ReadFile(prosodyConf)
		return s.State == daemon.StateOK && bytes.Contains(b, []byte("muc_max_occupants = 40"))
	})
	if len(st.Drift) != 1 || st.Drift[0].Path != managed || st.Drift[0].Restored {
		t.Fatalf("drift not reported as held: %+v", st.Drift)
	}
	if b, _ := os.ReadFile(managed); !bytes.Equal(b, edited) {
		t.Fatal("a pending change overwrote the reported file")
	}
}

// BenchmarkRunSpecEditToApplyReal: the real binary (spec -> render ->
// plan/apply with its validators, no systemd under --root) from a spec edit
// to the end of the apply it causes, using the daemon's own record of when
// the apply finished. overhead-ms/op is the time beyond the quiet period.
// Every edit is new content (no verdict from an earlier round can be
// reused): what is measured is the pre-check at the start of the burst.
// daemon-cpu-ms/op is the daemon's CPU time per edit, its validators
// (prosodyctl) included; prechecks/op the pre-checks it started per edit.
func BenchmarkRunSpecEditToApplyReal(b *testing.B) {
	bin := agentBinary(b)
	dir := b.TempDir()
	copyTreeTB(b, "../../examples", filepath.Join(dir, "examples"))
	specPath := filepath.Join(dir, "examples", "meet.hcl")
	good, err := os.ReadFile(specPath)
	if err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(dir, "status.sock")
	cmd := exec.Command(bin, "run", specPath, "--root", filepath.Join(dir, "root"), "--socket", sock, "--metrics", "off", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "JITSI_APP_SECRET="+cliSecret, "NOTIFY_SOCKET=", "WATCHDOG_USEC=")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	st := pollStatus(b, sock, func(s *daemon.Status) bool { return s.Ready })
	const quiet = 200 * time.Millisecond // the spec's watch default
	var total time.Duration
	cpu0, pre0 := procCPUAll(b, cmd.Process.Pid), st.Prechecks
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := st.Applies
		edit := bytes.Replace(good, []byte("max_participants     = 50"), []byte(fmt.Sprintf("max_participants     = %d", 51+i)), 1)
		start := time.Now()
		if err := os.WriteFile(specPath, edit, 0o644); err != nil {
			b.Fatal(err)
		}
		st = pollStatus(b, sock, func(s *daemon.Status) bool { return s.Applies > n })
		if st.LastApply.Result != "success" || len(st.LastApply.Written) == 0 {
			b.Fatalf("apply: %+v", st.LastApply)
		}
		total += st.LastApply.Time.Sub(start)
	}
	b.StopTimer()
	mean := total / time.Duration(b.N)
	b.ReportMetric(float64(mean)/1e6, "edit-to-apply-ms/op")
	b.ReportMetric(float64(mean-quiet)/1e6, "overhead-ms/op")
	b.ReportMetric(float64(procCPUAll(b, cmd.Process.Pid)-cpu0)/float64(b.N), "daemon-cpu-ms/op")
	b.ReportMetric(float64(st.Prechecks-pre0)/float64(b.N), "prechecks/op")
}

// procCPUAll is a process's user+system CPU time in milliseconds, with
// that of its waited-for children (the validators it runs).
func procCPUAll(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	var sum int64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		v, _ := strconv.ParseInt(f[i], 10, 64)
		sum += v
	}
	return sum * 10 // USER_HZ = 100
}

func pollStatus(tb testing.TB, sock string, cond func(*daemon.Status) bool) *daemon.Status {
	tb.Helper()
	deadline := time.Now().Add(runBound)
	for time.Now().Before(deadline) {
		if st, err := daemon.FetchStatus(context.Background(), sock, ""); err == nil && cond(st) {
			return st
		}
		// The time measured is the daemon's own record; polling faster
		// would only steal CPU from the daemon on a small machine.
		time.Sleep(25 * time.Millisecond)
	}
	tb.Fatal("daemon status condition not reached")
	return nil
}

// freeLoopbackAddr is a loopback address nothing listens on right now
// (testenv.FreePort).
func freeLoopbackAddr(tb testing.TB) string {
	tb.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(tb, testenv.TCP)))
}

// joinListen is the join endpoint address in a copied example spec.
func joinListen(tb testing.TB, specPath string) string {
	tb.Helper()
	b, err := os.ReadFile(specPath)
	if err != nil {
		tb.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*listen\s*=\s*"(127\.0\.0\.1:\d+)"\s*# loopback: the backend`).FindSubmatch(b)
	if m == nil {
		tb.Fatalf("%s has no token_api listen line", specPath)
	}
	return string(m[1])
}

func copyTreeTB(tb testing.TB, src, dst string) {
	tb.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if fi.Name() == "meet.hcl" {
			// The example's join endpoint listens on 127.0.0.1:9138; tests
			// running daemons side by side each get a free port.
			b = bytes.Replace(b, []byte(`"127.0.0.1:9138"`), []byte(strconv.Quote(freeLoopbackAddr(tb))), 1)
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// TestRunServesJoinEndpoint: with a token_api block, the daemon serves the
// app's join endpoint; the token it hands out verifies as Prosody would judge
// it for the returned room.
func TestRunServesJoinEndpoint(t *testing.T) {
	bin := agentBinary(t)
	dir := t.TempDir()
	copyTree(t, "../../examples", filepath.Join(dir, "examples"))
	specPath := filepath.Join(dir, "examples", "meet.hcl")
	addr := joinListen(t, specPath)
	apiKey := cliAPIKey
	root := filepath.Join(dir, "root")
	sock := filepath.Join(dir, "status.sock")
	cmd := exec.Command(bin, "run", specPath, "--root", root, "--socket", sock, "--metrics", "off", "--log-format", "json")
	cmd.Env = append(os.Environ(), "JITSI_APP_SECRET="+cliSecret, "JOIN_API_KEY="+apiKey, "NOTIFY_SOCKET=", "WATCHDOG_USEC=")
	var logs lockedBuffer
	cmd.Stderr, cmd.Stdout = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), apiKey) || strings.Contains(logs.String(), cliSecret) {
			t.Error("a secret reached the daemon log")
		}
	})
	waitStatus(t, sock, "ready", func(s *daemon.Status) bool { return s.Ready })

	body := `{"identity":"u1","name":"Ada","email":"ada@example.com","is_host":true}`
	var resp *http.Response
	var err error
	// The listener comes up right after the first load (bounded wait).
	for deadline := time.Now().Add(runBound); time.Now().Before(deadline); {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/live/streams/Weekly-Sync/join", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err = http.DefaultClient.Do(req)
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("join endpoint never answered: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Token      string `json:"token"`
		URL        string `json:"url"`
		RoomName   string `json:"room_name"`
		MeetingURL string `json:"meeting_url"`
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("join: %d %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.RoomName == "" || out.URL != "https://meet.example.com" || out.MeetingURL != out.URL+"/"+out.RoomName {
		t.Fatalf("join answer: %+v", out)
	}
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	t.Setenv("JOIN_API_KEY", apiKey)
	if code, o, e := runCLI(t, "token", "verify", specPath, out.Token, "--room", out.RoomName); code != exitOK {
		t.Fatalf("the endpoint's token does not verify: %d\n%s%s", code, o, e)
	}
}
