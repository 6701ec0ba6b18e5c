package daemon

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"
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
		// Each event of the burst (the write may be seen as several, and
		// the last apply's own write as more) starts a pre-check; one of
		// them sees the change.
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
