package watch

import (
	"sort"
	"sync"
	"time"
)

// Clock is the time source of the debounce state machine and the watcher's
// timers. Real() is the wall clock; NewFake gives tests full control.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the watcher uses.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was active.
	Stop() bool
	// Reset re-arms the timer to fire after d.
	Reset(d time.Duration) bool
}

// Real returns the wall clock.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) } // Go >= 1.23: no drain needed

// Fake is a manual clock for tests: time moves only in Advance, which fires
// (synchronously, into a 1-slot channel) every timer that became due.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

// NewFake returns a fake clock set to start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires when the fake time reaches now+d.
func (f *Fake) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{clock: f, ch: make(chan time.Time, 1)}
	t.when = f.now.Add(d)
	t.active = true
	f.timers = append(f.timers, t)
	f.fireLocked()
	return t
}

// Advance moves the fake time forward by d, firing due timers in deadline
// order.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.fireLocked()
}

// Pending returns how many timers are armed.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.timers {
		if t.active {
			n++
		}
	}
	return n
}

func (f *Fake) fireLocked() {
	due := []*fakeTimer{}
	for _, t := range f.timers {
		if t.active && !t.when.After(f.now) {
			due = append(due, t)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].when.Before(due[j].when) })
	for _, t := range due {
		t.active = false
		select {
		case t.ch <- t.when:
		default: // like time.Timer: an unread value is not duplicated
		}
	}
}

type fakeTimer struct {
	clock  *Fake
	ch     chan time.Time
	when   time.Time
	active bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.active
	t.active = false
	t.drainLocked()
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.active
	t.drainLocked()
	t.when = t.clock.now.Add(d)
	t.active = true
	t.clock.fireLocked()
	return was
}

// drainLocked mirrors Go 1.23 timer semantics: after Stop/Reset no stale
// value is received.
func (t *fakeTimer) drainLocked() {
	select {
	case <-t.ch:
	default:
	}
}
