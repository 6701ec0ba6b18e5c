package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/watch"
)

// prechecking is a fakeApplier with a pre-check that reads the spec, then
// holds on until cancelled when told to (a slow validator).
type prechecking struct {
	*fakeApplier
	hang     atomic.Bool
	running  atomic.Int32
	overlaps atomic.Int32 // applies that started while a pre-check ran
	seen     chan string
}

func (p *prechecking) Precheck(ctx context.Context) {
	p.running.Add(1)
	defer p.running.Add(-1)
	b, _ := os.ReadFile(p.spec)
	p.seen <- string(b)
	if p.hang.Load() {
		<-ctx.Done()
	}
}

func (p *prechecking) Apply(ctx context.Context, req Request) (Outcome, error) {
	if p.running.Load() != 0 {
		p.overlaps.Add(1)
	}
	return p.fakeApplier.Apply(ctx, req)
}

// A change starts the applier's pre-check before the apply of its burst;
// the apply never runs beside a pre-check, also when the pre-check does not
// finish by itself (it is cancelled).
func TestPrecheckStartsWithTheBurstAndNeverOverlapsTheApply(t *testing.T) {
	f := newFake(t, t.TempDir(), DriftRestore)
	p := &prechecking{fakeApplier: f, seen: make(chan string, 100)}
	start(t, Config{SpecPaths: []string{f.spec}}, Deps{Applier: p})
	f.next(t) // startup apply: no burst, no pre-check

	for _, hang := range []bool{false, true} {
		p.hang.Store(hang)
		content := "domain = \"meet.example.org\" # hang " + map[bool]string{false: "no", true: "yes"}[hang] + "\n"
		writeFile(t, f.spec, content)
		// The first event of the burst starts a pre-check (another one
		// follows only if the spec changed again meanwhile); one of them
		// sees the change.
		deadline := time.After(bound)
		for got := ""; got != content; {
			select {
			case got = <-p.seen:
			case <-deadline:
				t.Fatal("no pre-check saw the spec change")
			}
		}
		f.next(t)
		if n := p.overlaps.Load(); n != 0 {
			t.Fatalf("hang=%v: %d apply(s) ran beside a pre-check", hang, n)
		}
	}
}

// gated is a fakeApplier whose pre-checks read the spec and then wait for
// the test to let them end.
type gated struct {
	*fakeApplier
	started chan string
	release chan struct{}
}

func (g *gated) Precheck(ctx context.Context) {
	b, _ := os.ReadFile(g.spec)
	g.started <- string(b)
	select {
	case <-g.release:
	case <-ctx.Done():
	}
}

// The count of pre-checks comes from the daemon's decisions alone: the
// fake clock holds the burst open (no quiet period can end it), and each
// pre-check runs until the test lets it end. A burst of n edits made while
// the first pre-check runs costs one more pre-check, not n; the events of
// the daemon's own writes cost none.
func TestPrecheckCountForABurst(t *testing.T) {
	const n = 10
	f := newFake(t, t.TempDir(), DriftRestore)
	g := &gated{fakeApplier: f, started: make(chan string, 100), release: make(chan struct{})}
	clock := watch.NewFake(time.Now())
	r := start(t, Config{SpecPaths: []string{f.spec}, Quiet: 30 * time.Millisecond, Max: time.Hour, Rescan: -1},
		Deps{Applier: g, Clock: clock, WatchdogInterval: -1})
	f.next(t) // startup: writes the managed file (its own write)

	edit := func(i int) string {
		s := fmt.Sprintf("domain = \"meet.example.org\" # edit %d %s\n", i, strings.Repeat("x", i))
		writeFile(t, f.spec, s)
		return s
	}
	prechecks := func() int {
		t.Helper()
		_, body := r.get(t, "/status")
		var st Status
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		return st.Prechecks
	}
	startedWith := func() string {
		t.Helper()
		select {
		case s := <-g.started:
			return s
		case <-time.After(bound):
			t.Fatal("no pre-check started")
			return ""
		}
	}
	// applyBurst ends the burst on the fake clock (events that arrive
	// late re-arm the debounce, so it advances until the apply runs).
	applyBurst := func() Request {
		t.Helper()
		for deadline := time.Now().Add(bound); time.Now().Before(deadline); {
			clock.Advance(time.Second)
			select {
			case req := <-f.calledCh:
				return req
			case <-time.After(20 * time.Millisecond):
			}
		}
		t.Fatal("the burst never applied")
		return Request{}
	}

	edit(1)
	startedWith() // the first pre-check runs (and waits)
	var last string
	for i := 2; i <= n; i++ {
		last = edit(i)
	}
	g.release <- struct{}{} // the first ends: the spec changed since it began
	if got := startedWith(); got != last {
		t.Fatalf("the second pre-check read %q, want the last edit %q", got, last)
	}
	g.release <- struct{}{} // nothing changed since the second began
	req := applyBurst()
	if !strings.Contains(req.Reason, "change") {
		t.Fatalf("apply reason %q", req.Reason)
	}
	if got := prechecks(); got != 2 {
		t.Fatalf("%d pre-checks for a burst of %d edits, want 2", got, n)
	}
	// That apply rewrote the managed file: its events start no pre-check.
	// The next edit starts exactly one, whenever those events arrive.
	edit(n + 1)
	startedWith()
	g.release <- struct{}{}
	applyBurst()
	if got := prechecks(); got != 3 {
		t.Fatalf("%d pre-checks after the daemon's own write and one edit, want 3", got)
	}
	select {
	case s := <-g.started:
		t.Fatalf("an extra pre-check started (read %q)", s)
	default:
	}
}
