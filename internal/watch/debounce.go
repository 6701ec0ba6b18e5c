package watch

import (
	"sort"
	"time"
)

// Defaults for the debounce and the safety-net rescan.
const (
	DefaultQuiet  = 200 * time.Millisecond
	DefaultMax    = 2 * time.Second
	DefaultRescan = 5 * time.Minute
)

// Reasons a Trigger carries.
const (
	ReasonChange      = "change"       // an interesting path changed
	ReasonOverflow    = "overflow"     // the inotify queue overflowed: events were lost
	ReasonSymlinkSwap = "..data"       // a Kubernetes-style ..data symlink swap
	ReasonRescan      = "rescan"       // the periodic safety-net rescan
	ReasonDirRemoved  = "dir-removed"  // a watched directory disappeared
	ReasonDirRestored = "dir-restored" // a watched directory (re)appeared
	ReasonPathsSet    = "paths-set"    // the watched path set changed (new files may exist)
	ReasonWatchError  = "watch-error"  // the watcher reported an error
)

// Trigger is one debounced batch of changes: what the daemon re-applies for.
type Trigger struct {
	// Full asks for everything to be re-read (events may have been missed,
	// or a change cannot be attributed to a path).
	Full bool
	// Paths are the interesting paths that changed, sorted, without
	// duplicates. They are informational when Full is set.
	Paths []string
	// Reasons, sorted, without duplicates.
	Reasons []string
	// Events is how many raw events the batch folded together.
	Events int
	// First and Last are the times of the first and last event.
	First, Last time.Time
}

func (t *Trigger) add(path, reason string, full bool, now time.Time) {
	if t.Events == 0 || now.Before(t.First) {
		t.First = now
	}
	if now.After(t.Last) {
		t.Last = now
	}
	t.Events++
	t.Full = t.Full || full
	if path != "" {
		t.Paths = insertSorted(t.Paths, path)
	}
	if reason != "" {
		t.Reasons = insertSorted(t.Reasons, reason)
	}
}

// merge folds o into t.
func (t *Trigger) merge(o Trigger) {
	if o.Events == 0 {
		return
	}
	if t.Events == 0 || o.First.Before(t.First) {
		t.First = o.First
	}
	if o.Last.After(t.Last) {
		t.Last = o.Last
	}
	t.Events += o.Events
	t.Full = t.Full || o.Full
	for _, p := range o.Paths {
		t.Paths = insertSorted(t.Paths, p)
	}
	for _, r := range o.Reasons {
		t.Reasons = insertSorted(t.Reasons, r)
	}
}

func insertSorted(s []string, v string) []string {
	i := sort.SearchStrings(s, v)
	if i < len(s) && s[i] == v {
		return s
	}
	s = append(s, "")
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

// Debouncer folds a burst of events into one Trigger. It fires when no event
// arrived for the quiet period, or when the first event of the batch is max
// old, whichever comes first (trailing edge with a hard maximum, so a
// never-ending storm still applies every max).
//
// It is not safe for concurrent use; the watcher drives it from one goroutine.
type Debouncer struct {
	clock    Clock
	quiet    time.Duration
	max      time.Duration
	timer    Timer
	batch    Trigger
	deadline time.Time
	// fulls counts the re-read-everything events recorded (never reset).
	fulls int
}

// NewDebouncer returns a debouncer; quiet/max <= 0 take the defaults, and max
// is raised to quiet when smaller.
func NewDebouncer(c Clock, quiet, max time.Duration) *Debouncer {
	if c == nil {
		c = Real()
	}
	if quiet <= 0 {
		quiet = DefaultQuiet
	}
	if max <= 0 {
		max = DefaultMax
	}
	if max < quiet {
		max = quiet
	}
	t := c.NewTimer(time.Hour)
	t.Stop()
	return &Debouncer{clock: c, quiet: quiet, max: max, timer: t}
}

// C fires when the batch may be due; then call Fire.
func (d *Debouncer) C() <-chan time.Time { return d.timer.C() }

// Pending reports whether a batch is waiting.
func (d *Debouncer) Pending() bool { return d.batch.Events > 0 }

// Deadline is when the pending batch fires.
func (d *Debouncer) Deadline() (time.Time, bool) { return d.deadline, d.Pending() }

// Add records a change to an interesting path.
func (d *Debouncer) Add(path string) { d.record(path, ReasonChange, false) }

// AddFull records a change that asks for everything to be re-read.
func (d *Debouncer) AddFull(reason string) { d.record("", reason, true) }

func (d *Debouncer) record(path, reason string, full bool) {
	now := d.clock.Now()
	if full {
		d.fulls++
	}
	d.batch.add(path, reason, full, now)
	dl := now.Add(d.quiet)
	if hard := d.batch.First.Add(d.max); hard.Before(dl) {
		dl = hard
	}
	d.deadline = dl
	d.timer.Reset(dl.Sub(now))
}

// Fire returns the batch when it is due and starts a new one. A call before
// the deadline (a stale timer value) re-arms the timer and returns false.
func (d *Debouncer) Fire() (Trigger, bool) {
	if !d.Pending() {
		return Trigger{}, false
	}
	now := d.clock.Now()
	if now.Before(d.deadline) {
		d.timer.Reset(d.deadline.Sub(now))
		return Trigger{}, false
	}
	out := d.batch
	d.batch = Trigger{}
	d.deadline = time.Time{}
	d.timer.Stop()
	return out, true
}

// Stop drops the pending batch and stops the timer.
func (d *Debouncer) Stop() {
	d.batch = Trigger{}
	d.deadline = time.Time{}
	d.timer.Stop()
}
