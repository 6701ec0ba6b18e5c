package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Generous bounds: these only limit how long a broken test hangs.
const (
	waitFor   = 10 * time.Second
	quietTest = 50 * time.Millisecond
)

func startWatcher(t *testing.T, cfg Config, p Paths) *Watcher {
	t.Helper()
	if cfg.Quiet == 0 {
		cfg.Quiet = quietTest
	}
	if cfg.Max == 0 {
		cfg.Max = 5 * time.Second
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetPaths(p); err != nil {
		t.Fatalf("SetPaths: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w
}

// next waits for the next non-empty trigger.
func next(t *testing.T, w *Watcher) Trigger {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case <-w.Ready():
			if tr, ok := w.Take(); ok {
				return tr
			}
		case <-deadline:
			t.Fatalf("no trigger within %v (watching %v)", waitFor, w.Watching())
		}
	}
}

// none asserts that no trigger arrives for d (a negative check: it can only
// pass wrongly on a slow machine, never fail wrongly).
func none(t *testing.T, w *Watcher, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case <-w.Ready():
			if tr, ok := w.Take(); ok {
				t.Fatalf("unexpected trigger %+v", tr)
			}
		case <-deadline:
			return
		}
	}
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestVimStyleSave(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "site.hcl")
	write(t, spec, "domain = \"a\"\n")
	write(t, filepath.Join(dir, "notes.txt"), "x")
	w := startWatcher(t, Config{}, Paths{Files: []string{spec}})

	// What vim does with backupcopy=no: probe file, rename the original to
	// a backup, write a new file, chmod, delete the backup.
	probe := filepath.Join(dir, "4913")
	write(t, probe, "")
	must(t, os.Remove(probe))
	must(t, os.Rename(spec, spec+"~"))
	write(t, spec, "domain = \"b\"\n")
	must(t, os.Chmod(spec, 0o640))
	must(t, os.Remove(spec+"~"))
	tr := next(t, w)
	if tr.Full || !slices.Equal(tr.Paths, []string{spec}) {
		t.Fatalf("trigger = %+v, want one change of %s", tr, spec)
	}
	// An unrelated file in the same directory is ignored.
	write(t, filepath.Join(dir, "notes.txt"), "y")
	write(t, filepath.Join(dir, "notes.txt~"), "y")
	none(t, w, 4*quietTest)
	// The watch survived the rename-save.
	write(t, spec, "domain = \"c\"\n")
	if tr := next(t, w); !slices.Equal(tr.Paths, []string{spec}) {
		t.Fatalf("second save: %+v", tr)
	}
}

func TestSedInPlace(t *testing.T) {
	sed := "sed"
	if _, err := exec.LookPath(sed); err != nil {
		t.Skip("sed not installed (it is Essential on Debian)")
	}
	dir := t.TempDir()
	spec := filepath.Join(dir, "site.hcl")
	write(t, spec, "domain = \"a\"\n")
	w := startWatcher(t, Config{}, Paths{Files: []string{spec}})
	out, err := exec.Command(sed, "-i", "s/a/b/", spec).CombinedOutput()
	if err != nil {
		t.Fatalf("sed -i: %v: %s", err, out)
	}
	if tr := next(t, w); !slices.Equal(tr.Paths, []string{spec}) {
		t.Fatalf("trigger = %+v", tr)
	}
}

func TestDataSymlinkSwap(t *testing.T) {
	// The Kubernetes ConfigMap layout: site.hcl -> ..data/site.hcl,
	// ..data -> ..v1; an update writes ..v2 and renames a new link over ..data.
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "..v1"))
	write(t, filepath.Join(dir, "..v1", "site.hcl"), "v1")
	must(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
	must(t, os.Symlink("..data/site.hcl", filepath.Join(dir, "site.hcl")))
	spec := filepath.Join(dir, "site.hcl")
	w := startWatcher(t, Config{}, Paths{Files: []string{spec}})

	mkdir(t, filepath.Join(dir, "..v2"))
	write(t, filepath.Join(dir, "..v2", "site.hcl"), "v2")
	must(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	must(t, os.RemoveAll(filepath.Join(dir, "..v1")))
	tr := next(t, w)
	if !tr.Full || !slices.Contains(tr.Reasons, ReasonSymlinkSwap) {
		t.Fatalf("trigger = %+v, want a full re-read for ..data", tr)
	}
	// The next swap is seen too, and an in-place edit of the current target.
	write(t, filepath.Join(dir, "..v2", "site.hcl"), "v2b")
	tr = next(t, w)
	if !slices.Contains(tr.Paths, filepath.Join(dir, "..v2", "site.hcl")) {
		t.Fatalf("edit of the link target: %+v", tr)
	}
	if slices.Contains(w.Watching(), filepath.Join(dir, "..v1")) {
		t.Fatalf("still watching the removed ..v1: %v", w.Watching())
	}
}

func TestDirectoryRemovedAndRecreated(t *testing.T) {
	root := t.TempDir()
	conf := filepath.Join(root, "etc", "jitsi", "meet")
	mkdir(t, conf)
	out := filepath.Join(conf, "config.js")
	write(t, out, "v1")
	w := startWatcher(t, Config{RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond}, Paths{Files: []string{out}})

	must(t, os.RemoveAll(filepath.Join(root, "etc", "jitsi")))
	tr := next(t, w)
	if !tr.Full || !slices.Contains(tr.Reasons, ReasonDirRemoved) {
		t.Fatalf("removal: %+v", tr)
	}
	mkdir(t, conf)
	write(t, out, "v2")
	tr = next(t, w)
	if !tr.Full && !slices.Contains(tr.Paths, out) {
		t.Fatalf("recreation: %+v", tr)
	}
	// Drain a possible second batch (dir-restored and the write can land
	// in two batches), then prove the watch on the new directory works.
	none(t, w, 4*quietTest)
	write(t, out, "v3")
	if tr := next(t, w); !slices.Equal(tr.Paths, []string{out}) {
		t.Fatalf("edit after recreation: %+v", tr)
	}
	if !slices.Contains(w.Watching(), conf) {
		t.Fatalf("not watching %s: %v", conf, w.Watching())
	}
	if slices.Contains(w.Watching(), root) {
		t.Fatalf("helper watch on %s kept after recovery: %v", root, w.Watching())
	}
}

func TestMissingDirectoryAppears(t *testing.T) {
	root := t.TempDir()
	tmpl := filepath.Join(root, "templates")
	w := startWatcher(t, Config{RetryMin: 10 * time.Millisecond}, Paths{Dirs: []string{tmpl}})
	mkdir(t, tmpl)
	tr := next(t, w)
	if !tr.Full {
		t.Fatalf("override dir created: %+v", tr)
	}
	none(t, w, 4*quietTest)
	write(t, filepath.Join(tmpl, "x.cfg.lua.tmpl"), "x")
	if tr := next(t, w); !slices.Equal(tr.Paths, []string{filepath.Join(tmpl, "x.cfg.lua.tmpl")}) {
		t.Fatalf("template added: %+v", tr)
	}
	// Editor swap files in the override dir are not changes.
	write(t, filepath.Join(tmpl, ".x.cfg.lua.tmpl.swp"), "junk")
	write(t, filepath.Join(tmpl, "4913"), "")
	none(t, w, 4*quietTest)
}

func TestOwnWritesAreSettled(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "jicofo.conf")
	write(t, out, "v1")
	w := startWatcher(t, Config{}, Paths{Files: []string{out}})

	// The apply step: temp file in the same directory, rename over, Settle.
	tmp := filepath.Join(dir, ".jicofo.conf"+TempMarker+"123")
	write(t, tmp, "v2")
	must(t, os.Rename(tmp, out))
	w.Settle(out)
	none(t, w, 6*quietTest)

	// A hand edit of the managed file does trigger.
	f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteString("hand edit\n")
	must(t, err)
	must(t, f.Close())
	if tr := next(t, w); !slices.Equal(tr.Paths, []string{out}) {
		t.Fatalf("hand edit: %+v", tr)
	}
	// chmod alone is a change too (drift in permissions).
	must(t, os.Chmod(out, 0o600))
	if tr := next(t, w); !slices.Equal(tr.Paths, []string{out}) {
		t.Fatalf("chmod: %+v", tr)
	}
}

func TestSetPathsReplacesTheSet(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	mkdir(t, a)
	mkdir(t, b)
	fa, fb := filepath.Join(a, "x.hcl"), filepath.Join(b, "y.hcl")
	write(t, fa, "1")
	write(t, fb, "1")
	w := startWatcher(t, Config{}, Paths{Files: []string{fa}})
	if !slices.Equal(w.Watching(), []string{a}) {
		t.Fatalf("watching %v", w.Watching())
	}
	must(t, w.SetPaths(Paths{Files: []string{fb}}))
	if !slices.Equal(w.Watching(), []string{b}) {
		t.Fatalf("after SetPaths watching %v", w.Watching())
	}
	write(t, fa, "2")
	none(t, w, 4*quietTest)
	write(t, fb, "2")
	if tr := next(t, w); !slices.Equal(tr.Paths, []string{fb}) {
		t.Fatalf("trigger = %+v", tr)
	}
}

func TestStormGivesOneTrigger(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "site.hcl")
	write(t, spec, "")
	// Quiet generous enough that scheduling hiccups on a loaded machine do
	// not split the storm; the hard max is far away.
	w := startWatcher(t, Config{Quiet: 2 * time.Second, Max: time.Minute}, Paths{Files: []string{spec}})
	f, err := os.OpenFile(spec, os.O_WRONLY|os.O_TRUNC, 0)
	must(t, err)
	for i := 0; i < 10000; i++ {
		if _, err := fmt.Fprintf(f, "# %d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	must(t, f.Close())
	tr := next(t, w)
	if !slices.Equal(tr.Paths, []string{spec}) {
		t.Fatalf("trigger = %+v", tr)
	}
	none(t, w, 2*time.Second)
}

func TestOverflowAsksForFullReread(t *testing.T) {
	w, err := New(Config{Clock: NewFake(t0)})
	must(t, err)
	defer w.fw.Close()
	w.mu.Lock()
	w.handleErrorLocked(fmt.Errorf("read: %w", fsnotify.ErrEventOverflow))
	tr := w.deb.batch
	w.mu.Unlock()
	if !tr.Full || !slices.Equal(tr.Reasons, []string{ReasonOverflow}) {
		t.Fatalf("batch = %+v", tr)
	}
	w.mu.Lock()
	w.handleErrorLocked(errors.New("something else"))
	tr = w.deb.batch
	w.mu.Unlock()
	if !slices.Contains(tr.Reasons, ReasonWatchError) {
		t.Fatalf("batch = %+v", tr)
	}
}

func TestPeriodicRescanWithFakeClock(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "site.hcl")
	write(t, spec, "")
	c := NewFake(t0)
	w := startWatcher(t, Config{Clock: c, Rescan: time.Minute, Quiet: time.Second}, Paths{Files: []string{spec}})
	// Run arms the rescan timer asynchronously: advance in steps until the
	// trigger shows up (bounded by the real-time deadline).
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		c.Advance(time.Minute)
		c.Advance(time.Second)
		select {
		case <-w.Ready():
			if tr, ok := w.Take(); ok {
				if !tr.Full || !slices.Equal(tr.Reasons, []string{ReasonRescan}) {
					t.Fatalf("trigger = %+v", tr)
				}
				return
			}
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("no rescan trigger")
}

func TestIsOwnTemp(t *testing.T) {
	for name, want := range map[string]bool{
		".jvb.conf.jitsi-agent-tmp-123": true,
		"jvb.conf.jitsi-agent-tmp-123":  false,
		".jvb.conf.tmp-1":               false,
		"jvb.conf":                      false,
	} {
		if IsOwnTemp(name) != want {
			t.Errorf("IsOwnTemp(%q) = %v", name, !want)
		}
	}
}

// activity waits for the next Activity signal.
func activity(t *testing.T, w *Watcher) {
	t.Helper()
	select {
	case <-w.Activity():
	case <-time.After(waitFor):
		t.Fatal("no activity")
	}
}

// Unseen tells a change not yet marked from the daemon's own writes and
// from repeated events of a change already marked; the fake clock keeps
// the burst pending throughout, so what Unseen reports comes from the
// statuses alone.
func TestMarkUnseen(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "site.hcl")
	if err := os.WriteFile(f, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "d")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	clock := NewFake(time.Unix(1e9, 0))
	w := startWatcher(t, Config{Clock: clock, Rescan: -1}, Paths{Files: []string{f}, Dirs: []string{sub}})
	if w.Unseen() {
		t.Fatal("unseen before any event")
	}
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bb")
	activity(t, w)
	if !w.Unseen() {
		t.Fatal("an edit is not unseen")
	}
	w.Mark()
	if w.Unseen() {
		t.Fatal("unseen right after Mark")
	}
	// The same edit's later events (e.g. CLOSE_WRITE after MODIFY) stay
	// seen; a further edit is unseen again.
	write("ccc")
	activity(t, w)
	if !w.Unseen() {
		t.Fatal("an edit after Mark is not unseen")
	}
	w.Mark()
	// The daemon's own write, settled before or after its events arrive,
	// is never unseen.
	write("dddd")
	w.Settle(f)
	activity(t, w)
	if w.Unseen() {
		t.Fatal("the daemon's own write is unseen")
	}
	// Take settles the burst it returns.
	write("eeeee")
	activity(t, w)
	clock.Advance(time.Hour)
	if tr := next(t, w); !slices.Equal(tr.Paths, []string{f}) {
		t.Fatalf("trigger %+v", tr)
	}
	if w.Unseen() {
		t.Fatal("unseen after Take")
	}
	// A directory removed is a change the next Mark accounts for.
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(waitFor); !w.Unseen(); {
		activity(t, w)
		if time.Now().After(deadline) {
			t.Fatal("a removed directory is not unseen")
		}
	}
	w.Mark()
	if w.Unseen() {
		t.Fatal("unseen after Mark")
	}
}
