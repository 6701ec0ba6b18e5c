// Package watch tells the daemon when the files it depends on or manages
// changed: it watches the parent directories of a set of interesting paths
// with inotify (fsnotify), filters events by name, survives editor
// rename-saves, Kubernetes ..data symlink swaps, queue overflow and watched
// directories being removed and recreated, and folds bursts into one Trigger
// with a quiet period and a hard maximum.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"
)

// TempMarker is part of the temporary file names the apply step writes
// (".<name>.jitsi-agent-tmp-*"); events for them are ignored.
const TempMarker = ".jitsi-agent-tmp-"

// Paths is the set of things the daemon cares about.
type Paths struct {
	// Files are exact paths: the spec file(s), every file the spec reads,
	// every managed output. Their parent directories are watched; a
	// symlinked file's target is watched too.
	Files []string
	// Dirs are directories whose every entry is interesting (the template
	// override directory).
	Dirs []string
}

// Config tunes a Watcher. Zero values take the defaults.
type Config struct {
	Quiet  time.Duration // default 200ms
	Max    time.Duration // default 2s
	Rescan time.Duration // default 5m; negative disables the periodic rescan
	// RetryMin/RetryMax bound the backoff for re-adding a missing directory
	// (default 100ms / 5s).
	RetryMin, RetryMax time.Duration
	Clock              Clock
	Log                logrus.FieldLogger
}

// Watcher watches directories and hands out debounced Triggers.
type Watcher struct {
	cfg Config
	fw  *fsnotify.Watcher
	log logrus.FieldLogger

	mu        sync.Mutex
	paths     Paths
	files     map[string]bool // interesting exact paths (+ symlink targets)
	dirs      map[string]bool // directories whose entries are all interesting
	watchDirs map[string]bool // directories we want watched
	helpers   map[string]bool // ancestors watched while a wanted dir is missing
	missing   map[string]bool // wanted dirs that could not be watched
	snap      map[string]fileID
	// seen is the status of paths when last marked (Mark); Unseen compares
	// with it before snap. fsFulls counts the re-read-everything events
	// the file system caused (a ..data swap, a directory removed or back),
	// markedFulls its value at the last Mark or Take.
	seen        map[string]fileID
	fsFulls     int
	markedFulls int
	deb         *Debouncer
	ready       Trigger
	retry       Timer
	retryNext   time.Duration
	rescan      Timer

	readyCh    chan struct{}
	activityCh chan struct{}
	running    bool
}

// New creates a watcher (one inotify instance). Call SetPaths, then Run.
func New(cfg Config) (*Watcher, error) {
	if cfg.Clock == nil {
		cfg.Clock = Real()
	}
	if cfg.Rescan == 0 {
		cfg.Rescan = DefaultRescan
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 100 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = 5 * time.Second
		if cfg.RetryMax < cfg.RetryMin {
			cfg.RetryMax = cfg.RetryMin
		}
	}
	log := cfg.Log
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: creating inotify watcher: %w", err)
	}
	w := &Watcher{
		cfg:       cfg,
		fw:        fw,
		log:       log,
		files:     map[string]bool{},
		dirs:      map[string]bool{},
		watchDirs: map[string]bool{},
		helpers:   map[string]bool{},
		missing:   map[string]bool{},
		snap:      map[string]fileID{},
		seen:      map[string]fileID{},
		deb:       NewDebouncer(cfg.Clock, cfg.Quiet, cfg.Max),
		retry:     cfg.Clock.NewTimer(time.Hour),
		retryNext: cfg.RetryMin,
		rescan:    cfg.Clock.NewTimer(time.Hour),
		readyCh:   make(chan struct{}, 1),

		activityCh: make(chan struct{}, 1),
	}
	w.retry.Stop()
	w.rescan.Stop()
	return w, nil
}

// SetPaths replaces the set of interesting paths (after a re-parse the spec
// may read other files or manage other outputs). Directories that no longer
// matter stop being watched. It does not trigger by itself, except that a
// wanted directory that is missing triggers a full re-read when it appears.
func (w *Watcher) SetPaths(p Paths) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	np := Paths{Files: absAll(p.Files), Dirs: absAll(p.Dirs)}
	w.paths = np
	w.computeLocked()
	for f := range w.files {
		if _, ok := w.snap[f]; !ok {
			w.snap[f] = statID(f)
		}
	}
	for f := range w.snap {
		if !w.files[f] && !w.dirs[filepath.Dir(f)] {
			delete(w.snap, f)
		}
	}
	return w.reconcileLocked()
}

// Watching returns the directories currently watched, sorted.
func (w *Watcher) Watching() []string {
	l := w.fw.WatchList()
	sort.Strings(l)
	return l
}

// Activity receives a value when a file-system event joined the pending
// burst (coalesced: one value may stand for many events). The burst fires
// on Ready once it has been quiet; a consumer may start work that only
// reads (the daemon pre-validates) in between.
func (w *Watcher) Activity() <-chan struct{} { return w.activityCh }

// Ready receives a value when Take has something.
func (w *Watcher) Ready() <-chan struct{} { return w.readyCh }

// Take returns the batch of changes collected so far (merged if the consumer
// was busy). Paths whose status (inode, size, times, mode, owner) did not
// change since they were last taken or Settled are dropped, so the daemon's
// own writes (see Settle) and no-op events do not cause an apply. It returns
// false when nothing is left.
func (w *Watcher) Take() (Trigger, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.ready
	w.ready = Trigger{}
	if t.Events == 0 {
		return Trigger{}, false
	}
	w.markedFulls = w.fsFulls
	if t.Full {
		for f := range w.files {
			w.snap[f] = statID(f)
		}
		for _, p := range t.Paths {
			w.snap[p] = statID(p)
		}
		clear(w.seen)
		return t, true
	}
	kept := t.Paths[:0:0]
	for _, p := range t.Paths {
		id := statID(p)
		delete(w.seen, p)
		if old, ok := w.snap[p]; ok && old == id {
			continue
		}
		w.snap[p] = id
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		return Trigger{}, false
	}
	t.Paths = kept
	return t, true
}

// Settle records the current status of paths the daemon itself just wrote,
// so that the events of those writes do not trigger another apply. A later
// change by anyone else changes the status and triggers as usual.
func (w *Watcher) Settle(paths ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range paths {
		p = absClean(p)
		w.snap[p] = statID(p)
		delete(w.seen, p)
	}
}

// Mark records the status of every interesting file and of the paths of
// the pending burst: from now on Unseen reports only what changes after
// this call. The daemon marks when it starts a pre-check, which reads the
// inputs as they are now.
func (w *Watcher) Mark() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.markedFulls = w.fsFulls
	for f := range w.files {
		w.seen[f] = statID(f)
	}
	for _, p := range w.pendingPathsLocked() {
		w.seen[p] = statID(p)
	}
}

// Unseen reports whether the pending burst holds a change that neither
// the daemon's own writes (Settle), the last Take nor the last Mark
// account for: a pending path whose status differs from the one recorded
// then, or a re-read-everything event caused by the file system since.
// Events of the daemon's own writes and repeated events of a change
// already marked are not unseen. Periodic rescans and Inject are not
// file-system events and never count.
func (w *Watcher) Unseen() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fsFulls != w.markedFulls {
		return true
	}
	for _, p := range w.pendingPathsLocked() {
		ref, ok := w.seen[p]
		if !ok {
			ref, ok = w.snap[p]
		}
		if !ok || statID(p) != ref {
			return true
		}
	}
	return false
}

// pendingPathsLocked are the paths of the burst being debounced and of
// the batch waiting for Take.
func (w *Watcher) pendingPathsLocked() []string {
	return append(slices.Clone(w.deb.batch.Paths), w.ready.Paths...)
}

// Inject adds a full re-read to the current batch (debounced like an event).
func (w *Watcher) Inject(reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deb.AddFull(reason)
}

// Run processes events until ctx is done, then closes the inotify instance.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errors.New("watch: Run called twice")
	}
	w.running = true
	if w.cfg.Rescan > 0 {
		w.rescan.Reset(w.cfg.Rescan)
	}
	w.mu.Unlock()
	defer w.fw.Close()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.fw.Events:
			if !ok {
				return errors.New("watch: inotify event channel closed")
			}
			w.mu.Lock()
			before, fulls := w.deb.batch.Events, w.deb.fulls
			w.handleLocked(ev)
			grew := w.deb.batch.Events > before
			w.fsFulls += w.deb.fulls - fulls
			w.mu.Unlock()
			if grew {
				select {
				case w.activityCh <- struct{}{}:
				default:
				}
			}
		case err, ok := <-w.fw.Errors:
			if !ok {
				return errors.New("watch: inotify error channel closed")
			}
			w.mu.Lock()
			fulls := w.deb.fulls
			w.handleErrorLocked(err)
			w.fsFulls += w.deb.fulls - fulls
			w.mu.Unlock()
		case <-w.deb.C():
			w.mu.Lock()
			if t, ok := w.deb.Fire(); ok {
				w.ready.merge(t)
				select {
				case w.readyCh <- struct{}{}:
				default:
				}
			}
			w.mu.Unlock()
		case <-w.retry.C():
			w.mu.Lock()
			if err := w.reconcileLocked(); err != nil {
				w.log.WithError(err).Debug("re-adding watches")
			}
			w.mu.Unlock()
		case <-w.rescan.C():
			w.mu.Lock()
			w.computeLocked() // symlink targets may have moved
			if err := w.reconcileLocked(); err != nil {
				w.log.WithError(err).Debug("re-adding watches")
			}
			w.deb.AddFull(ReasonRescan)
			w.rescan.Reset(w.cfg.Rescan)
			w.mu.Unlock()
		}
	}
}

// handleErrorLocked: an overflow means events were lost, so everything is
// re-read (and watches re-checked); any other error is logged and treated the
// same way.
func (w *Watcher) handleErrorLocked(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		w.log.Warn("inotify queue overflow: events were lost; re-reading everything")
		w.deb.AddFull(ReasonOverflow)
	} else {
		w.log.WithError(err).Warn("watch error; re-reading everything")
		w.deb.AddFull(ReasonWatchError)
	}
	_ = w.reconcileLocked()
}

func (w *Watcher) handleLocked(ev fsnotify.Event) {
	name := filepath.Clean(ev.Name)
	base := filepath.Base(name)
	if IsOwnTemp(base) {
		return
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		if wasWanted := w.watchDirs[name]; wasWanted || w.helpers[name] {
			// fsnotify drops the watch itself; make sure. Symlink targets
			// are re-resolved: a directory wanted only as the target of a
			// swapped link (..2024_01_01 under ..data) is no longer wanted.
			_ = w.fw.Remove(name)
			w.computeLocked()
			if w.watchDirs[name] {
				w.log.WithField("dir", name).Warn("watched directory removed; waiting for it to come back")
				w.missing[name] = true
			}
			if wasWanted {
				w.deb.AddFull(ReasonDirRemoved)
			}
			// Re-add, or fall back to the nearest existing ancestor.
			_ = w.reconcileLocked()
			// IN_IGNORED for the old inode may still be on its way: check again.
			w.retry.Reset(w.cfg.RetryMin)
			return
		}
	}
	if len(w.missing) > 0 && (ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename)) && w.onMissingPathLocked(name) {
		_ = w.reconcileLocked()
	}
	switch {
	case base == "..data" && w.watchDirs[filepath.Dir(name)]:
		w.deb.AddFull(ReasonSymlinkSwap)
		w.computeLocked() // the files now resolve into another directory
		_ = w.reconcileLocked()
	case w.files[name]:
		w.deb.Add(name)
	case w.dirs[filepath.Dir(name)] && !editorJunk(base):
		w.deb.Add(name)
	case w.dirs[name]:
		// The override directory itself was created or changed.
		w.deb.AddFull(ReasonChange)
	}
}

// onMissingPathLocked reports whether name is a missing wanted directory or
// one of its ancestors.
func (w *Watcher) onMissingPathLocked(name string) bool {
	for d := range w.missing {
		if d == name || strings.HasPrefix(d, name+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// computeLocked derives files/dirs/watchDirs from w.paths.
func (w *Watcher) computeLocked() {
	files := map[string]bool{}
	dirs := map[string]bool{}
	want := map[string]bool{}
	for _, f := range w.paths.Files {
		files[f] = true
		want[filepath.Dir(f)] = true
		if real, err := filepath.EvalSymlinks(f); err == nil && real != f {
			files[real] = true
			want[filepath.Dir(real)] = true
		}
	}
	for _, d := range w.paths.Dirs {
		dirs[d] = true
		want[d] = true
		want[filepath.Dir(d)] = true // see the directory itself come and go
	}
	w.files, w.dirs, w.watchDirs = files, dirs, want
	for d := range w.missing {
		if !want[d] {
			delete(w.missing, d)
		}
	}
}

// reconcileLocked makes the inotify watch list match watchDirs, watching the
// nearest existing ancestor of a missing directory and scheduling a retry
// with bounded backoff.
func (w *Watcher) reconcileLocked() error {
	have := map[string]bool{}
	for _, p := range w.fw.WatchList() {
		have[p] = true
	}
	helpers := map[string]bool{}
	restored := false
	var errs []error
	wanted := make([]string, 0, len(w.watchDirs))
	for d := range w.watchDirs {
		wanted = append(wanted, d)
	}
	sort.Strings(wanted)
	for _, d := range wanted {
		if have[d] {
			if _, err := os.Stat(d); err == nil {
				continue
			}
			// A stale watch on a removed directory.
			_ = w.fw.Remove(d)
			delete(have, d)
		}
		err := w.fw.Add(d)
		if err == nil {
			have[d] = true
			if w.missing[d] {
				delete(w.missing, d)
				restored = true
				w.log.WithField("dir", d).Info("watched directory is back")
			}
			continue
		}
		if !w.missing[d] {
			w.missing[d] = true
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("watch %s: %w", d, err))
			}
		}
		if a := nearestAncestor(d); a != "" && !w.watchDirs[a] {
			helpers[a] = true
			if !have[a] {
				if err := w.fw.Add(a); err == nil {
					have[a] = true
				}
			}
		}
		// d may have appeared between the failed Add and the ancestor watch.
		if err := w.fw.Add(d); err == nil {
			have[d] = true
			delete(w.missing, d)
			restored = true
		}
	}
	for p := range have {
		if !w.watchDirs[p] && !helpers[p] {
			_ = w.fw.Remove(p)
		}
	}
	w.helpers = helpers
	if restored {
		w.deb.AddFull(ReasonDirRestored)
	}
	if len(w.missing) > 0 {
		w.retry.Reset(w.retryNext)
		w.retryNext *= 2
		if w.retryNext > w.cfg.RetryMax {
			w.retryNext = w.cfg.RetryMax
		}
	} else {
		w.retryNext = w.cfg.RetryMin
	}
	return errors.Join(errs...)
}

// nearestAncestor returns the closest existing directory above d.
func nearestAncestor(d string) string {
	for p := filepath.Dir(d); ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
		if p == filepath.Dir(p) {
			return ""
		}
	}
}

// IsOwnTemp reports whether a base name is one of the apply step's temporary
// files (".<name>.jitsi-agent-tmp-*").
func IsOwnTemp(base string) bool {
	return strings.HasPrefix(base, ".") && strings.Contains(base, TempMarker)
}

// editorJunk: vim's swap and backup files and its 4913 write probe, Emacs
// lock files.
func editorJunk(base string) bool {
	return base == "4913" || strings.HasSuffix(base, "~") || strings.HasPrefix(base, ".#") ||
		strings.HasSuffix(base, ".swp") || strings.HasSuffix(base, ".swx") || strings.HasSuffix(base, ".swo")
}

func absClean(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

func absAll(in []string) []string {
	out := make([]string, 0, len(in))
	for _, p := range in {
		if p != "" {
			out = append(out, absClean(p))
		}
	}
	return out
}

// fileID is what Take compares to tell a real change from a no-op event.
type fileID struct {
	exists       bool
	dev, ino     uint64
	size         int64
	mtime, ctime int64
	mode         uint32
	uid, gid     uint32
}

func statID(p string) fileID {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return fileID{}
	}
	return fileID{
		exists: true,
		dev:    uint64(st.Dev),
		ino:    st.Ino,
		size:   st.Size,
		mtime:  st.Mtim.Nano(),
		ctime:  st.Ctim.Nano(),
		mode:   st.Mode,
		uid:    st.Uid,
		gid:    st.Gid,
	}
}
