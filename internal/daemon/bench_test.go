package daemon

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/watch"
)

// BenchmarkSpecEditToApply measures a spec edit (an in-place write) to the
// end of the apply it causes, with an instant fake applier and the default
// 200ms quiet period. overhead-ms/op is what the watcher and the daemon add
// beyond the quiet period (target: < 30ms).
func BenchmarkSpecEditToApply(b *testing.B) {
	dir := b.TempDir()
	spec := filepath.Join(dir, "site.hcl")
	if err := os.WriteFile(spec, []byte("v0\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	applied := make(chan time.Time, 16)
	a := ApplierFunc(func(ctx context.Context, req Request) (Outcome, error) {
		defer func() { applied <- time.Now() }()
		return Outcome{Watch: watch.Paths{Files: []string{spec}}}, nil
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{SpecPaths: []string{spec}, Quiet: watch.DefaultQuiet, Max: watch.DefaultMax},
			Deps{Applier: a, Listener: l, Signals: make(chan os.Signal), Notifier: nopNotifier{}})
	}()
	defer func() { cancel(); <-done }()
	<-applied // startup

	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := os.WriteFile(spec, []byte("v"+strconv.Itoa(i+1)+"\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		select {
		case end := <-applied:
			total += end.Sub(start)
		case <-time.After(30 * time.Second):
			b.Fatal("no apply")
		}
	}
	b.StopTimer()
	mean := total / time.Duration(b.N)
	b.ReportMetric(float64(mean)/1e6, "edit-to-apply-ms/op")
	b.ReportMetric(float64(mean-watch.DefaultQuiet)/1e6, "overhead-ms/op")
}

type nopNotifier struct{}

func (nopNotifier) Ready(string) error     { return nil }
func (nopNotifier) Reloading(string) error { return nil }
func (nopNotifier) Stopping(string) error  { return nil }
func (nopNotifier) Status(string) error    { return nil }
func (nopNotifier) Watchdog() error        { return nil }

// TestIdleFootprint is a measurement, not an assertion: with
// JITSI_AGENT_IDLE_SECONDS=N it runs the daemon (watcher on a spec and 20
// managed files in 6 directories, loopback listener, unix socket, a 10s
// watchdog) idle for N seconds and logs the CPU time used and the RSS.
// Run alone: go test -run TestIdleFootprint -v ./internal/daemon/
func TestIdleFootprint(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("JITSI_AGENT_IDLE_SECONDS"))
	if secs <= 0 {
		t.Skip("a measurement; set JITSI_AGENT_IDLE_SECONDS=60 to run it")
	}
	dir := t.TempDir()
	spec := filepath.Join(dir, "site.hcl")
	if err := os.WriteFile(spec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var files []string
	for i := 0; i < 20; i++ {
		p := filepath.Join(dir, "etc", "d"+strconv.Itoa(i%6), "f"+strconv.Itoa(i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	a := ApplierFunc(func(ctx context.Context, req Request) (Outcome, error) {
		return Outcome{Watch: watch.Paths{Files: append([]string{spec}, files...)}}, nil
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{SpecPaths: []string{spec}, SocketPath: filepath.Join(dir, "s.sock")},
			Deps{Applier: a, Listener: l, Signals: make(chan os.Signal), Notifier: nopNotifier{}, WatchdogInterval: 10 * time.Second})
	}()
	time.Sleep(time.Second) // startup settles
	cpu0, wall0 := cpuTime(t), time.Now()
	time.Sleep(time.Duration(secs) * time.Second)
	cpu1, wall1 := cpuTime(t), time.Now()
	cancel()
	<-done
	used := cpu1 - cpu0
	wall := wall1.Sub(wall0)
	t.Logf("idle %v: CPU %v (%.4f%% of one core), VmRSS %s, VmHWM %s",
		wall.Round(time.Millisecond), used, 100*used.Seconds()/wall.Seconds(), procStatus(t, "VmRSS"), procStatus(t, "VmHWM"))
}

// cpuTime is utime+stime of this process from /proc/self/stat.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// After the comm field: state is f[0], utime f[11], stime f[12].
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

func procStatus(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key+":") {
			return strings.TrimSpace(strings.TrimPrefix(line, key+":"))
		}
	}
	return "?"
}
