package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/deferred"
	"github.com/jitsi-agent/jitsi-agent/internal/logging"
	"github.com/jitsi-agent/jitsi-agent/internal/metrics"
	"github.com/jitsi-agent/jitsi-agent/internal/watch"
)

const bound = 15 * time.Second // only limits how long a broken test hangs

// fakeApplier "renders" the spec file into one managed file: the managed
// content is a header plus the spec. A spec starting with "bad" is invalid;
// one starting with "fail" fails to apply. Drift (the managed file differs
// from what was last written) is restored or reported per policy.
type fakeApplier struct {
	spec, managed string
	policy        string
	secret        string

	mu          sync.Mutex
	calls       []Request
	lastWritten string
	calledCh    chan Request
}

func newFake(t *testing.T, dir, policy string) *fakeApplier {
	t.Helper()
	f := &fakeApplier{
		spec:     filepath.Join(dir, "spec", "site.hcl"),
		managed:  filepath.Join(dir, "etc", "jitsi", "jicofo", "jicofo.conf"),
		policy:   policy,
		secret:   "focus-password-0123456789",
		calledCh: make(chan Request, 1000),
	}
	for _, p := range []string{f.spec, f.managed} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, f.spec, "domain = \"meet.example.org\"\n")
	return f
}

func (f *fakeApplier) Apply(ctx context.Context, req Request) (out Outcome, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, req)
	defer func() { f.calledCh <- req }()
	out.Watch = watch.Paths{Files: []string{f.spec, f.managed}}
	out.Redact = []string{f.secret}
	b, err := os.ReadFile(f.spec)
	if err != nil {
		return out, InvalidSpec(fmt.Errorf("%s: %w", f.spec, err))
	}
	spec := string(b)
	switch {
	case strings.HasPrefix(spec, "bad"):
		return out, InvalidSpec(fmt.Errorf(`%s:1,1-4: Unsupported argument; An argument named "bad" is not expected here.`, f.spec))
	case strings.HasPrefix(spec, "fail"):
		return out, fmt.Errorf("validating staged jicofo.conf: HOCON parse error (password %s)", f.secret)
	}
	want := "# managed by jitsi-agent\n" + spec
	cur, rerr := os.ReadFile(f.managed)
	if rerr == nil && string(cur) == want {
		return out, nil
	}
	drifted := rerr == nil && f.lastWritten != "" && string(cur) != f.lastWritten
	if drifted {
		if f.policy == DriftReport {
			out.Drift = append(out.Drift, Drift{Path: f.managed, Policy: DriftReport})
			if f.lastWritten == want {
				return out, nil // only drift: write nothing
			}
		} else {
			out.Drift = append(out.Drift, Drift{Path: f.managed, Policy: DriftRestore, Restored: true})
		}
	}
	tmp := filepath.Join(filepath.Dir(f.managed), "."+filepath.Base(f.managed)+watch.TempMarker+"1")
	if err := os.WriteFile(tmp, []byte(want), 0o644); err != nil {
		return out, err
	}
	if err := os.Rename(tmp, f.managed); err != nil {
		return out, err
	}
	f.lastWritten = want
	out.Written = []string{f.managed}
	out.Reloaded = []string{"jicofo.service"}
	return out, nil
}

func (f *fakeApplier) next(t *testing.T) Request {
	t.Helper()
	select {
	case r := <-f.calledCh:
		return r
	case <-time.After(bound):
		t.Fatalf("applier not called within %v", bound)
		return Request{}
	}
}

// noCall asserts no apply happens for d (a negative check).
func (f *fakeApplier) noCall(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-f.calledCh:
		t.Fatalf("unexpected apply %+v", r)
	case <-time.After(d):
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	// Editor-style: temp file and rename.
	tmp := p + ".edit~"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// notifySocket captures sd_notify datagrams.
type notifySocket struct {
	path string
	ch   chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", p)
	ns := &notifySocket{path: p, ch: make(chan string, 1000)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			ns.ch <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return ns
}

// mark sends a marker datagram to the socket and discards everything
// received before it: afterwards the channel holds only what was sent after
// the marker.
func (n *notifySocket) mark(t *testing.T) {
	t.Helper()
	const marker = "TEST-MARKER=1\n"
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(marker)); err != nil {
		t.Fatal(err)
	}
	n.until(t, "^"+regexp.QuoteMeta(marker)+"$")
}

// until returns the next message matching re, failing on a timeout; skipped
// messages are returned too.
func (n *notifySocket) until(t *testing.T, re string) (string, []string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	var skipped []string
	deadline := time.After(bound)
	for {
		select {
		case m := <-n.ch:
			if rx.MatchString(m) {
				return m, skipped
			}
			skipped = append(skipped, m)
		case <-deadline:
			t.Fatalf("no sd_notify message matching %q; got %q", re, skipped)
		}
	}
}

type running struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, cfg Config, deps Deps) *running {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deps.Listener = l
	logs := &syncBuffer{}
	if deps.Log == nil {
		lg, red, err := logging.New(logging.Options{Out: logs, Format: logging.FormatJSON, Level: "debug"})
		if err != nil {
			t.Fatal(err)
		}
		deps.Log = lg
		deps.Redact = red.Redact
		deps.AddSecrets = red.Add
	}
	if deps.Signals == nil {
		deps.Signals = make(chan os.Signal) // never fires unless a test sends
	}
	if cfg.Quiet == 0 {
		cfg.Quiet = 30 * time.Millisecond
	}
	if cfg.Max == 0 {
		cfg.Max = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{addr: l.Addr().String(), cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { r.done <- Run(ctx, cfg, deps) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(bound):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + r.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitHealth polls /healthz until the code matches (and the body contains
// each of want).
func (r *running) waitHealth(t *testing.T, code int, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(bound)
	var last string
	for time.Now().Before(deadline) {
		c, b := r.get(t, "/healthz")
		if c == code && !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(b, w) }) {
			return b
		}
		last = fmt.Sprintf("%d %s", c, b)
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("/healthz never answered %d; last %s", code, last)
	return ""
}

// waitLogs waits until the daemon's log holds each of want and returns it:
// the daemon logs an apply's outcome after it has published the status, so
// a test that saw the status may read the log a moment too early.
func (r *running) waitLogs(t *testing.T, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		logs := r.logs.String()
		if !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(logs, w) }) {
			return logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log never held %q:\n%s", want, logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitApplies polls /status until n applies are recorded.
func (r *running) waitApplies(t *testing.T, n int) *Status {
	t.Helper()
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		if st := r.status(t); st.Applies >= n {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%d applies never recorded", n)
	return nil
}

func (r *running) status(t *testing.T) *Status {
	t.Helper()
	st, err := FetchStatus(context.Background(), "", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestBadSpecWhileRunningDegradesAndRecovers(t *testing.T) {
	ns := listenNotify(t)
	dir := t.TempDir()
	f := newFake(t, dir, DriftRestore)
	r := start(t, Config{SpecPaths: []string{f.spec}}, Deps{Applier: f})

	if req := f.next(t); req.Reason != ReasonStartup || !req.Initial {
		t.Fatalf("first apply: %+v", req)
	}
	if m, skipped := ns.until(t, `^READY=1\n`); !strings.Contains(m, "STATUS=ok") || slices.ContainsFunc(skipped, func(s string) bool { return strings.Contains(s, "READY") }) {
		t.Fatalf("ready: %q (before: %q)", m, skipped)
	}
	r.waitHealth(t, 200)

	writeFile(t, f.spec, "bad = true\n")
	if req := f.next(t); req.Reason != watch.ReasonChange || !slices.Contains(req.Paths, f.spec) {
		t.Fatalf("apply after the bad edit: %+v", req)
	}
	if m, _ := ns.until(t, `^RELOADING=1\n`); !regexp.MustCompile(`\nMONOTONIC_USEC=[0-9]+\n`).MatchString(m) {
		t.Fatalf("RELOADING without MONOTONIC_USEC: %q", m)
	}
	if m, _ := ns.until(t, `^READY=1\n`); !strings.Contains(m, "STATUS=degraded: invalid spec: ") || !strings.Contains(m, "site.hcl:1,1-4") {
		t.Fatalf("ready after a failed reload: %q", m)
	}
	body := r.waitHealth(t, 503, "invalid spec")
	if !strings.Contains(body, "degraded: invalid spec:") || !strings.Contains(body, "site.hcl:1,1-4: Unsupported argument") {
		t.Fatalf("/healthz body %q", body)
	}
	st := r.waitApplies(t, 2)
	if st.State != StateDegraded || !st.Ready || st.LastApply.Result != metrics.ResultInvalidSpec || st.LastSuccess == nil {
		t.Fatalf("status = %+v", st)
	}
	if _, m := r.get(t, "/metrics"); !strings.Contains(m, "jitsi_agent_degraded 1") || !strings.Contains(m, `jitsi_agent_applies_total{result="invalid_spec"} 1`) {
		t.Fatalf("metrics:\n%s", m)
	}
	// The managed file still holds the last good content.
	if b, _ := os.ReadFile(f.managed); !strings.Contains(string(b), "meet.example.org") {
		t.Fatalf("managed file changed: %q", b)
	}
	// An invalid spec is not retried without a change.
	f.noCall(t, 300*time.Millisecond)

	writeFile(t, f.spec, "domain = \"meet2.example.org\"\n")
	f.next(t)
	r.waitHealth(t, 200)
	st = r.waitApplies(t, 3)
	if st.State != StateOK || st.Degraded || st.LastApply.Result != metrics.ResultSuccess || !slices.Equal(st.LastApply.Written, []string{f.managed}) {
		t.Fatalf("after the fix: %+v", st)
	}
	if b, _ := os.ReadFile(f.managed); !strings.Contains(string(b), "meet2.example.org") {
		t.Fatalf("fix not applied: %q", b)
	}
	if _, m := r.get(t, "/metrics"); !strings.Contains(m, "jitsi_agent_degraded 0") || !strings.Contains(m, `jitsi_agent_applies_total{result="success"} 2`) {
		t.Fatalf("metrics after the fix:\n%s", m)
	}
	r.waitLogs(t, "recovered", "spec is invalid")
	// Our own write of the managed file did not cause another apply.
	f.noCall(t, 300*time.Millisecond)
}

// A spec that is broken when the daemon starts: READY=1 anyway (with the
// degraded STATUS), so the unit does not hang in "activating" until
// systemd's start timeout; /healthz says why until the spec is fixed.
func TestReadyWithDegradedStatusWhenTheSpecIsBrokenAtStart(t *testing.T) {
	ns := listenNotify(t)
	dir := t.TempDir()
	f := newFake(t, dir, DriftRestore)
	writeFile(t, f.spec, "bad\n")
	r := start(t, Config{SpecPaths: []string{f.spec}}, Deps{Applier: f})
	f.next(t)
	m, before := ns.until(t, `^READY=1\n`)
	if !strings.Contains(m, "STATUS=degraded: invalid spec") {
		t.Fatalf("READY without the degraded status: %q", m)
	}
	for _, b := range before {
		if strings.Contains(b, "RELOADING") {
			t.Fatalf("RELOADING before the first READY: %q", before)
		}
	}
	body := r.waitHealth(t, 503, "invalid spec")
	if !strings.HasPrefix(body, "starting: invalid spec:") {
		t.Fatalf("/healthz: %q", body)
	}
	if st := r.status(t); st.Ready || st.State != StateStarting {
		t.Fatalf("status %+v", st)
	}
	writeFile(t, f.spec, "domain = \"x\"\n")
	f.next(t)
	m, before = ns.until(t, `^READY=1\n`)
	if !strings.Contains(m, "STATUS=ok") || !slices.ContainsFunc(before, func(s string) bool { return strings.Contains(s, "RELOADING=1") }) {
		t.Fatalf("the fix is a reload ending in READY with STATUS=ok: %q then %q", before, m)
	}
	r.waitHealth(t, 200)
}

func TestSIGHUPRereadsAndSIGTERMStops(t *testing.T) {
	ns := listenNotify(t)
	dir := t.TempDir()
	f := newFake(t, dir, DriftRestore)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Real signals: Run subscribes itself (Deps.Signals nil).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{SpecPaths: []string{f.spec}, Quiet: 20 * time.Millisecond}, Deps{Applier: f, Listener: l})
	}()
	f.next(t)
	ns.until(t, `^READY=1\n`) // signal.Notify is in place before the first apply
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if req := f.next(t); req.Reason != ReasonSIGHUP || !req.Full {
		t.Fatalf("after SIGHUP: %+v", req)
	}
	ns.until(t, `^RELOADING=1\nMONOTONIC_USEC=[0-9]+\n`)
	ns.until(t, `^READY=1\n`)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ns.until(t, `^STOPPING=1\n`)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(bound):
		t.Fatal("Run did not return on SIGTERM")
	}
	// The listener is closed.
	if c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("HTTP listener still open after stop")
	}
}

func TestStopOnContextSendsStopping(t *testing.T) {
	ns := listenNotify(t)
	f := newFake(t, t.TempDir(), DriftRestore)
	r := start(t, Config{SpecPaths: []string{f.spec}}, Deps{Applier: f})
	f.next(t)
	ns.until(t, `^READY=1\n`)
	r.cancel()
	ns.until(t, `^STOPPING=1\n`)
}

func TestWatchdogPings(t *testing.T) {
	ns := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "100000") // 100ms: pings every 50ms
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	f := newFake(t, t.TempDir(), DriftRestore)
	start(t, Config{SpecPaths: []string{f.spec}}, Deps{Applier: f})
	for i := 0; i < 3; i++ {
		ns.until(t, `^WATCHDOG=1\n$`)
	}
}

func TestNoWatchdogWithoutEnv(t *testing.T) {
	ns := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "")
	f := newFake(t, t.TempDir(), DriftRestore)
	r := start(t, Config{SpecPaths: []string{f.spec}}, Deps{Applier: f, WatchdogInterval: 0})
	f.next(t)
	ns.until(t, `^READY=1\n`)
	r.cancel()
	_, before := ns.until(t, `^STOPPING=1\n`)
	for _, m := range before {
		if strings.Contains(m, "WATCHDOG") {
			t.Fatalf("watchdog ping without WATCHDOG_USEC: %q", before)
		}
	}
}

func handEdit(t *testing.T, p string) {
	t.Helper()
	fh, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString("hand edit\n"); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestHandEditRestored(t *testing.T) {
	f := newFake(t, t.TempDir(), DriftRestore)
	r := start(t, Config{SpecPaths: []string{f.spec}}, Deps{Applier: f})
	f.next(t)
	r.waitHealth(t, 200)
	handEdit(t, f.managed)
	if req := f.next(t); !slices.Contains(req.Paths, f.managed) {
		t.Fatalf("hand edit: %+v", req)
	}
	st := r.waitApplies(t, 2)
	if b, _ := os.ReadFile(f.managed); strings.Contains(string(b), "hand edit") {
		t.Fatal("not restored")
	}
	if len(st.Drift) != 1 || !st.Drift[0].Restored || st.Drift[0].Path != f.managed {
		t.Fatalf("drift = %+v", st.Drift)
	}
	// The restore is our own write: no apply loop.
	f.noCall(t, 300*time.Millisecond)
	r.waitLogs(t, "restored")
}

func TestHandEditReported(t *testing.T) {
	f := newFake(t, t.TempDir(), DriftReport)
	r := start(t, Config{SpecPaths: []string{f.spec}}, Deps{Applier: f})
	f.next(t)
	r.waitHealth(t, 200)
	handEdit(t, f.managed)
	f.next(t)
	r.waitApplies(t, 2)
	if b, _ := os.ReadFile(f.managed); !strings.Contains(string(b), "hand edit") {
		t.Fatal("report mode touched the file")
	}
	if _, m := r.get(t, "/metrics"); !strings.Contains(m, "jitsi_agent_drift_files 1") {
		t.Fatalf("metrics:\n%s", m)
	}
	if st := r.status(t); len(st.Drift) != 1 || st.Drift[0].Restored || st.Drift[0].Policy != DriftReport {
		t.Fatalf("drift = %+v", st.Drift)
	}
	f.noCall(t, 300*time.Millisecond)
}

func TestFailedApplyRetriesWithBackoffAndRedacts(t *testing.T) {
	f := newFake(t, t.TempDir(), DriftRestore)
	r := start(t, Config{SpecPaths: []string{f.spec}, RetryMin: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond}, Deps{Applier: f})
	f.next(t)
	r.waitHealth(t, 200)
	writeFile(t, f.spec, "fail please\n")
	f.next(t)
	body := r.waitHealth(t, 503, "apply failed")
	if !strings.Contains(body, "apply failed: validating staged jicofo.conf") {
		t.Fatalf("/healthz %q", body)
	}
	// Retries come without any file change.
	if req := f.next(t); req.Reason != ReasonRetry {
		t.Fatalf("retry: %+v", req)
	}
	f.next(t)
	writeFile(t, f.spec, "domain = \"ok\"\n")
	r.waitHealth(t, 200)
	// The secret in the applier's error never reached logs or status.
	logs := r.waitLogs(t, "(sensitive)") // the redaction placeholder
	_, sbody := r.get(t, "/status")
	for what, s := range map[string]string{"logs": logs, "healthz": body, "status": sbody} {
		if strings.Contains(s, f.secret) {
			t.Fatalf("secret in %s:\n%s", what, s)
		}
	}
}

func TestStormGivesOneApply(t *testing.T) {
	f := newFake(t, t.TempDir(), DriftRestore)
	// A quiet period long enough that a stall of the loaded test machine
	// does not split the storm; the hard max is far away.
	r := start(t, Config{SpecPaths: []string{f.spec}, Quiet: 2 * time.Second, Max: time.Minute}, Deps{Applier: f})
	f.next(t)
	r.waitHealth(t, 200)
	fh, err := os.OpenFile(f.spec, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10000; i++ {
		if _, err := fmt.Fprintf(fh, "# %d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	f.next(t)
	f.noCall(t, 2*time.Second)
	f.mu.Lock()
	n := len(f.calls)
	f.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d applies, want 2 (startup + one for the storm)", n)
	}
}

func TestUnixSocketStatusAndStaleSocket(t *testing.T) {
	dir := t.TempDir()
	f := newFake(t, dir, DriftRestore)
	sock := filepath.Join(dir, "run", "status.sock")
	// A stale socket file from a crashed daemon is replaced.
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	certs := certList{{Name: "meet.example.org", NotAfter: time.Now().Add(30 * 24 * time.Hour)}}
	deferred := deferredList{{Unit: "jitsi-videobridge2.service", Reason: "jvb.conf changed", Since: time.Now()}}
	r := start(t, Config{SpecPaths: []string{f.spec}, SocketPath: sock, Version: "test"}, Deps{Applier: f, Certs: certs, Deferred: deferred})
	f.next(t)
	r.waitHealth(t, 200)
	r.waitApplies(t, 1)
	st, err := FetchStatus(context.Background(), sock, "")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateOK || st.PID != os.Getpid() || st.Version != "test" || len(st.Certificates) != 1 ||
		st.Certificates[0].ExpiresInSeconds < 29*24*3600 || len(st.PendingRestarts) != 1 || len(st.Watching) == 0 {
		t.Fatalf("status = %+v", st)
	}
	if _, m := r.get(t, "/metrics"); !strings.Contains(m, "jitsi_agent_deferred_restarts_pending 1") ||
		!strings.Contains(m, `jitsi_agent_cert_expiry_seconds{name="meet.example.org"}`) {
		t.Fatalf("metrics:\n%s", m)
	}
	// A second daemon on the same socket is refused.
	err = Run(context.Background(), Config{SocketPath: sock}, Deps{Applier: f, Signals: make(chan os.Signal)})
	if err == nil || !strings.Contains(err.Error(), "another jitsi-agent is running") {
		t.Fatalf("second daemon: %v", err)
	}
	r.cancel()
	<-r.done
	r.done <- nil // for the cleanup
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
}

type certList []metrics.CertInfo

func (c certList) Certificates() []metrics.CertInfo { return c }

type deferredList []deferred.Restart

func (d deferredList) PendingRestarts() []deferred.Restart { return d }

func TestPublicMetricsAddressRefused(t *testing.T) {
	f := newFake(t, t.TempDir(), DriftRestore)
	err := Run(context.Background(), Config{MetricsAddr: "0.0.0.0:0"}, Deps{Applier: f, Signals: make(chan os.Signal)})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("err = %v", err)
	}
}

func TestHealthy(t *testing.T) {
	for _, tc := range []struct {
		st   Status
		ok   bool
		want string
	}{
		{Status{Ready: true, State: StateOK}, true, ""},
		{Status{}, false, "starting: no successful apply yet"},
		{Status{Degraded: true, DegradedReason: "invalid spec: x"}, false, "starting: invalid spec: x"},
		{Status{Ready: true, Degraded: true, DegradedReason: "reload failed: nginx"}, false, "degraded: reload failed: nginx"},
		{Status{Ready: true, State: StateStopping}, false, "stopping"},
	} {
		ok, why := tc.st.Healthy()
		if ok != tc.ok || why != tc.want {
			t.Errorf("%+v: %v %q", tc.st, ok, why)
		}
	}
}

func TestReloadFailureDegradesAndRetries(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	called := make(chan struct{}, 100)
	// The retry waits until the test has seen the degraded state: with a
	// 20 ms retry the degraded window is too short to poll for on a
	// loaded machine.
	seen := make(chan struct{})
	a := ApplierFunc(func(ctx context.Context, req Request) (Outcome, error) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		called <- struct{}{}
		switch n {
		case 2:
			return Outcome{Reloaded: []string{"nginx.service"}, ReloadFailures: []UnitFailure{{Unit: "prosody.service", Error: "job failed"}}}, nil
		case 3:
			<-seen
		}
		return Outcome{}, nil
	})
	spec := filepath.Join(t.TempDir(), "site.hcl")
	writeFile(t, spec, "x")
	hup := make(chan os.Signal, 1)
	r := start(t, Config{SpecPaths: []string{spec}, RetryMin: 20 * time.Millisecond}, Deps{Applier: a, Signals: hup})
	t.Cleanup(func() { // before the daemon's cleanup: a failed test does not leave the retry stuck
		select {
		case <-seen:
		default:
			close(seen)
		}
	})
	<-called
	r.waitHealth(t, 200)
	hup <- syscall.SIGHUP
	<-called
	body := r.waitHealth(t, 503, "reload failed")
	if !strings.Contains(body, "reload failed: prosody.service: job failed") {
		t.Fatalf("/healthz %q", body)
	}
	if _, m := r.get(t, "/metrics"); !strings.Contains(m, "jitsi_agent_reload_failures_total 1") {
		t.Fatalf("metrics:\n%s", m)
	}
	select {
	case <-called: // the retry
	case <-time.After(bound):
		t.Fatal("no retry after a reload failure")
	}
	close(seen)
	r.waitHealth(t, 200)
}

func TestNoRetryWaitsForAChange(t *testing.T) {
	calls := make(chan Request, 100)
	a := ApplierFunc(func(ctx context.Context, req Request) (Outcome, error) {
		calls <- req
		if req.Initial {
			return Outcome{}, nil
		}
		return Outcome{}, NoRetry(errors.New("prosody.service failed; rolled back"))
	})
	spec := filepath.Join(t.TempDir(), "site.hcl")
	writeFile(t, spec, "x")
	hup := make(chan os.Signal, 1)
	r := start(t, Config{SpecPaths: []string{spec}, RetryMin: 10 * time.Millisecond}, Deps{Applier: a, Signals: hup})
	<-calls
	hup <- syscall.SIGHUP
	<-calls
	r.waitHealth(t, 503, "rolled back")
	select {
	case req := <-calls:
		t.Fatalf("retried a NoRetry failure: %+v", req)
	case <-time.After(300 * time.Millisecond):
	}
	if !retryable(errors.New("x")) || retryable(nil) || retryable(InvalidSpec(errors.New("x"))) || retryable(fmt.Errorf("w: %w", NoRetry(errors.New("x")))) {
		t.Fatal("retryable classification")
	}
}

func TestManagedFilesStayWatchedWhileDegraded(t *testing.T) {
	f := newFake(t, t.TempDir(), DriftRestore)
	r := start(t, Config{SpecPaths: []string{f.spec}}, Deps{Applier: ApplierFunc(func(ctx context.Context, req Request) (Outcome, error) {
		out, err := f.Apply(ctx, req)
		if err != nil {
			out.Watch = watch.Paths{Files: []string{f.spec}} // a broken spec names no outputs
		}
		return out, err
	})})
	f.next(t)
	r.waitHealth(t, 200)
	writeFile(t, f.spec, "bad\n")
	f.next(t)
	r.waitHealth(t, 503, "invalid spec")
	if st := r.status(t); !slices.Contains(st.Watching, filepath.Dir(f.managed)) {
		t.Fatalf("managed directory no longer watched while degraded: %v", st.Watching)
	}
	handEdit(t, f.managed)
	if req := f.next(t); !slices.Contains(req.Paths, f.managed) {
		t.Fatalf("hand edit while degraded: %+v", req)
	}
}

func TestWatchdogPingsDuringLongApplyUntilTimeout(t *testing.T) {
	ns := listenNotify(t)
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	a := ApplierFunc(func(ctx context.Context, req Request) (Outcome, error) {
		started <- struct{}{}
		if req.Initial {
			return Outcome{}, nil
		}
		<-release // a "hung" apply that ignores ctx
		return Outcome{}, nil
	})
	spec := filepath.Join(t.TempDir(), "site.hcl")
	writeFile(t, spec, "x")
	hup := make(chan os.Signal, 1)
	// The watchdog timer and the apply's age run on a fake clock: the test
	// decides when a tick comes and how old the apply is, so a stalled
	// machine cannot use up the timeout before the first tick.
	clock := watch.NewFake(time.Now())
	const iv, timeout = 40 * time.Millisecond, time.Hour
	r := start(t, Config{SpecPaths: []string{spec}, ApplyTimeout: timeout}, Deps{Applier: a, Signals: hup, WatchdogInterval: iv, Clock: clock})
	t.Cleanup(func() { close(release) })
	<-started
	ns.until(t, `^READY=1\n`)
	hup <- syscall.SIGHUP
	<-started
	ns.until(t, `^RELOADING=1\n`)
	// tick advances the fake time by one ping interval until the daemon
	// has (re-)armed its timer and taken the tick, and returns what it sent
	// within a moment (nothing when it did not ping).
	tick := func() []string {
		t.Helper()
		ns.mark(t)
		clock.Advance(iv / 2)
		var got []string
		for {
			select {
			case m := <-ns.ch:
				got = append(got, m)
			case <-time.After(20 * time.Millisecond):
				return got
			}
		}
	}
	// Pings continue while the apply runs (within its timeout)...
	pings := 0
	for deadline := time.Now().Add(bound); pings < 2; {
		for _, m := range tick() {
			if m != "WATCHDOG=1\n" {
				t.Fatalf("unexpected message during the apply: %q", m)
			}
			pings++
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d watchdog pings during the apply in %v", pings, bound)
		}
	}
	// ...and stop once it is stuck past the timeout: the next tick after
	// that says so in the log, and no tick after it pings.
	clock.Advance(timeout)
	for deadline := time.Now().Add(bound); !strings.Contains(r.logs.String(), "apply is stuck past its timeout"); {
		if m := tick(); len(m) > 0 {
			t.Fatalf("message after the apply's timeout: %q", m)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon never gave up on the stuck apply:\n%s", r.logs.String())
		}
	}
	for range 10 {
		if m := tick(); len(m) > 0 {
			t.Fatalf("message while the apply is stuck past its timeout: %q", m)
		}
	}
}

// TestHandEditDuringFirstApplyNoticed: the applier starts the watch before
// writing and marks its writes right after the swap, so a hand edit made
// while the first apply is still reloading units triggers a new apply
// instead of waiting for the rescan.
func TestHandEditDuringFirstApplyNoticed(t *testing.T) {
	f := newFake(t, t.TempDir(), DriftRestore)
	edited := false
	applier := ApplierFunc(func(ctx context.Context, req Request) (Outcome, error) {
		if req.WatchNow != nil {
			req.WatchNow(watch.Paths{Files: []string{f.spec, f.managed}})
		}
		out, err := f.Apply(ctx, req)
		if req.Initial && !edited {
			edited = true
			if req.Wrote == nil {
				t.Error("no Wrote callback in the request")
			} else {
				req.Wrote(out.Written...)
			}
			time.Sleep(50 * time.Millisecond) // "reloading units"
			handEdit(t, f.managed)
		}
		return out, err
	})
	start(t, Config{SpecPaths: []string{f.spec}, Rescan: -1}, Deps{Applier: applier})
	if req := f.next(t); !req.Initial {
		t.Fatalf("first apply: %+v", req)
	}
	if req := f.next(t); !slices.Contains(req.Paths, f.managed) {
		t.Fatalf("the hand edit made during the first apply did not trigger an apply: %+v", req)
	}
	if b, _ := os.ReadFile(f.managed); strings.Contains(string(b), "hand edit") {
		t.Fatal("not restored")
	}
}
