package watch

import (
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func due(d *Debouncer) bool {
	select {
	case <-d.C():
		return true
	default:
		return false
	}
}

func TestDebounceQuietPeriod(t *testing.T) {
	c := NewFake(t0)
	d := NewDebouncer(c, 200*time.Millisecond, 2*time.Second)
	d.Add("/etc/site.hcl")
	c.Advance(199 * time.Millisecond)
	if due(d) {
		t.Fatal("fired before the quiet period")
	}
	c.Advance(time.Millisecond)
	if !due(d) {
		t.Fatal("did not fire after the quiet period")
	}
	tr, ok := d.Fire()
	if !ok {
		t.Fatal("Fire returned nothing at the deadline")
	}
	if tr.Full || !reflect.DeepEqual(tr.Paths, []string{"/etc/site.hcl"}) || tr.Events != 1 || !tr.First.Equal(t0) {
		t.Fatalf("trigger = %+v", tr)
	}
	if d.Pending() {
		t.Fatal("batch still pending after Fire")
	}
	c.Advance(time.Hour)
	if due(d) {
		t.Fatal("fired again without events")
	}
}

func TestDebounceSnooze(t *testing.T) {
	c := NewFake(t0)
	d := NewDebouncer(c, 200*time.Millisecond, 2*time.Second)
	d.Add("/a")
	c.Advance(150 * time.Millisecond)
	d.Add("/b")
	c.Advance(150 * time.Millisecond) // 300ms after the first, 150 after the last
	if due(d) {
		t.Fatal("the second event did not snooze the timer")
	}
	d.Add("/a")
	c.Advance(199 * time.Millisecond)
	if due(d) {
		t.Fatal("fired early")
	}
	c.Advance(time.Millisecond)
	if !due(d) {
		t.Fatal("not fired at last+quiet")
	}
	tr, ok := d.Fire()
	if !ok || tr.Events != 3 || !reflect.DeepEqual(tr.Paths, []string{"/a", "/b"}) {
		t.Fatalf("trigger = %+v ok=%v", tr, ok)
	}
	if want := t0.Add(300 * time.Millisecond); !tr.Last.Equal(want) {
		t.Fatalf("Last = %v, want %v", tr.Last, want)
	}
}

func TestDebounceHardMax(t *testing.T) {
	c := NewFake(t0)
	d := NewDebouncer(c, 200*time.Millisecond, 2*time.Second)
	fires := 0
	var firedAt []time.Duration
	// An event every 100ms for 5s: never quiet for 200ms.
	for i := 0; i < 50; i++ {
		d.Add("/storm")
		c.Advance(100 * time.Millisecond)
		if due(d) {
			if _, ok := d.Fire(); ok {
				fires++
				firedAt = append(firedAt, c.Now().Sub(t0))
			}
		}
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second}
	if !reflect.DeepEqual(firedAt, want) {
		t.Fatalf("fired at %v, want %v (hard max from each batch's first event)", firedAt, want)
	}
	// The storm stops: the rest fires after the quiet period.
	c.Advance(200 * time.Millisecond)
	if !due(d) {
		t.Fatal("tail of the storm not fired")
	}
	if _, ok := d.Fire(); !ok {
		t.Fatal("tail batch missing")
	}
	if fires != 2 {
		t.Fatalf("fires = %d", fires)
	}
}

func TestDebounceFullAndReasons(t *testing.T) {
	c := NewFake(t0)
	d := NewDebouncer(c, 0, 0) // defaults
	d.Add("/x")
	d.AddFull(ReasonOverflow)
	d.AddFull(ReasonSymlinkSwap)
	d.AddFull(ReasonOverflow)
	c.Advance(DefaultQuiet)
	if !due(d) {
		t.Fatal("not fired with default quiet period")
	}
	tr, ok := d.Fire()
	if !ok || !tr.Full || tr.Events != 4 {
		t.Fatalf("trigger = %+v", tr)
	}
	if !reflect.DeepEqual(tr.Reasons, []string{ReasonSymlinkSwap, ReasonChange, ReasonOverflow}) {
		t.Fatalf("reasons = %v", tr.Reasons)
	}
}

func TestDebounceStaleFire(t *testing.T) {
	c := NewFake(t0)
	d := NewDebouncer(c, 200*time.Millisecond, time.Second)
	if _, ok := d.Fire(); ok {
		t.Fatal("Fire with nothing pending returned a batch")
	}
	d.Add("/x")
	c.Advance(100 * time.Millisecond)
	if _, ok := d.Fire(); ok {
		t.Fatal("Fire before the deadline returned a batch")
	}
	c.Advance(100 * time.Millisecond)
	if !due(d) {
		t.Fatal("timer not re-armed by the early Fire")
	}
	if _, ok := d.Fire(); !ok {
		t.Fatal("no batch at the deadline")
	}
}

func TestDebounceMaxBelowQuiet(t *testing.T) {
	c := NewFake(t0)
	d := NewDebouncer(c, time.Second, 10*time.Millisecond) // max raised to quiet
	d.Add("/x")
	c.Advance(999 * time.Millisecond)
	if due(d) {
		t.Fatal("fired before quiet although max < quiet")
	}
	c.Advance(time.Millisecond)
	if !due(d) {
		t.Fatal("not fired")
	}
}

func TestFakeClockTimer(t *testing.T) {
	c := NewFake(t0)
	tm := c.NewTimer(time.Second)
	if c.Pending() != 1 {
		t.Fatalf("pending = %d", c.Pending())
	}
	c.Advance(time.Second)
	select {
	case got := <-tm.C():
		if !got.Equal(t0.Add(time.Second)) {
			t.Fatalf("fired with %v", got)
		}
	default:
		t.Fatal("timer did not fire")
	}
	if tm.Stop() {
		t.Fatal("Stop on a fired timer reported active")
	}
	tm.Reset(time.Second)
	c.Advance(500 * time.Millisecond)
	if !tm.Stop() {
		t.Fatal("Stop on an armed timer reported inactive")
	}
	c.Advance(time.Hour)
	select {
	case <-tm.C():
		t.Fatal("stopped timer fired")
	default:
	}
	if tm := c.NewTimer(0); len(tm.C()) != 1 {
		t.Fatal("zero-duration timer did not fire at once")
	}
}

func TestTriggerMerge(t *testing.T) {
	a := Trigger{Paths: []string{"/b"}, Reasons: []string{ReasonChange}, Events: 2, First: t0.Add(time.Second), Last: t0.Add(2 * time.Second)}
	b := Trigger{Full: true, Paths: []string{"/a", "/b"}, Reasons: []string{ReasonRescan}, Events: 1, First: t0, Last: t0}
	a.merge(b)
	if !a.Full || a.Events != 3 || !reflect.DeepEqual(a.Paths, []string{"/a", "/b"}) ||
		!reflect.DeepEqual(a.Reasons, []string{ReasonChange, ReasonRescan}) || !a.First.Equal(t0) || !a.Last.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("merged = %+v", a)
	}
	var empty Trigger
	empty.merge(Trigger{})
	if empty.Events != 0 {
		t.Fatal("merging nothing changed the trigger")
	}
}
