package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
)

// countingApplier records the reason of every pass the daemon runs and
// counts the pre-checks it asks for.
type countingApplier struct {
	inner     *Daemon
	mu        sync.Mutex
	runs      []string
	prechecks int
}

func (c *countingApplier) Precheck(ctx context.Context) {
	c.mu.Lock()
	c.prechecks++
	c.mu.Unlock()
	c.inner.Precheck(ctx)
}

func (c *countingApplier) precheckCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.prechecks
}

func (c *countingApplier) Apply(ctx context.Context, req daemon.Request) (daemon.Outcome, error) {
	out, err := c.inner.Apply(ctx, req)
	c.mu.Lock()
	c.runs = append(c.runs, req.Reason)
	c.mu.Unlock()
	return out, err
}

func (c *countingApplier) reasons() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.runs)
}

type quietNotifier struct{}

func (quietNotifier) Ready(string) error     { return nil }
func (quietNotifier) Reloading(string) error { return nil }
func (quietNotifier) Stopping(string) error  { return nil }
func (quietNotifier) Status(string) error    { return nil }
func (quietNotifier) Watchdog() error        { return nil }

// TestDaemonOwnFirstApplyTriggersNothing: the first pass on an empty root
// creates the managed directories and files (and the state directory, the
// internal CA); the watcher must not take any of that for a change, so the
// daemon runs exactly one pass until someone else edits a file. A second
// pass used to follow ("watched directory is back" for every directory the
// first pass created), overwriting the status of the first.
func TestDaemonOwnFirstApplyTriggersNothing(t *testing.T) {
	f := newFixture(t)
	a := NewDaemon(DaemonConfig{Spec: f.spec, Root: f.root, Env: f.env, NoJoinAPI: true})
	defer a.Close()
	c := &countingApplier{inner: a}
	const quiet, maxWait = 20 * time.Millisecond, 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Config{SpecPaths: []string{f.spec}, Quiet: quiet, Max: maxWait, Rescan: -1},
			daemon.Deps{Applier: c, Notifier: quietNotifier{}, Signals: make(chan os.Signal), WatchdogInterval: -1, Triggers: a.Triggers()})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, "the first pass", func() bool { return len(c.reasons()) >= 1 })
	// Events of the first pass arrive within the debounce maximum after
	// it; give them ample time (a pass they caused would show up here).
	time.Sleep(20 * maxWait)
	if r := c.reasons(); !slices.Equal(r, []string{daemon.ReasonStartup}) {
		t.Fatalf("passes after start-up on an empty root: %q, want only %q", r, daemon.ReasonStartup)
	}
	if n := c.precheckCount(); n != 0 {
		t.Fatalf("%d pre-check(s) for the first pass's own writes, want 0", n)
	}
	// The watches are in place: a hand edit of a managed file is a change.
	conf := filepath.Join(f.root, prosodyConf)
	fh, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString("-- hand edit\n"); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	waitFor(t, "a pass for the hand edit", func() bool { return len(c.reasons()) >= 2 })
	if r := c.reasons(); r[1] != "change" {
		t.Fatalf("passes: %q, want the second for the change", r)
	}
	// One pre-check for the edit (its events after the first were seen by
	// it); the pass that restored the file caused none.
	if n := c.precheckCount(); n != 1 {
		t.Fatalf("%d pre-checks for one hand edit, want 1", n)
	}
}

// waitFor polls cond (bounded: 30 s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never happened", what)
		}
	}
}
