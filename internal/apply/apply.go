// Package apply makes the host match a render.Set as one transaction:
//
//  1. plan (internal/plan) against the host and the manifest,
//  2. stage every changed file next to its destination
//     (".<base>.jitsi-agent-tmp-*", mode and owner set before the rename),
//  3. validate all staged files (built-in checks, luac -p, nginx -t on a
//     staged tree, each File.Check) — any failure removes the staged files
//     and returns a *CheckError; the host is unchanged,
//  4. back up the previous versions (<state>/backups/<serial>/, last N kept),
//  5. journal the intent (<state>/journal.json, see journal.go): a later
//     run reverts an operation that died before step 7, and reloads the
//     units of one whose reloads were never confirmed (Settle),
//  6. swap: fsync, rename, fsync directory, per file,
//  7. record the new state in the manifest (atomically); if that fails,
//     the swapped files are put back.
//
// A second Apply with the same set writes nothing. Leftover temporary files
// from a crash are removed by the next Apply. Rollback restores an earlier
// applied set through the same staged swap. An flock on <state>/lock keeps
// a CLI apply and the daemon from interleaving.
//
// Wiring (daemon, with internal/systemd):
//
//	opts := apply.Options{Root: "/", StateDir: d.StateDir, Keep: d.Backups, Progress: logWriter}
//	res, err := apply.Apply(ctx, set, opts)
//	// *apply.CheckError: validation failed, nothing changed.
//	if err == nil && res.Changed() {
//		restorer := systemd.RestorerFunc(func(ctx context.Context) ([]string, error) {
//			u, err := apply.Undo(ctx, res.Serial, opts) // exactly this apply
//			if err != nil {
//				return nil, err
//			}
//			return u.Paths(), nil
//		})
//		_, err = systemd.ReloadOrRollback(ctx, reloader, systemd.ChangesFromPlan(res.Changes), restorer)
//	}
package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// DefaultKeep is how many applies' backups are kept by default.
const DefaultKeep = 5

// Options configure Apply and Rollback.
type Options struct {
	// Root is the directory treated as "/" (default "/").
	Root string
	// StateDir is the state directory as under "/" (spec StateDir, e.g.
	// /var/lib/jitsi-agent). Required.
	StateDir string
	// Keep is the number of backups kept (default DefaultKeep).
	Keep int
	// Progress receives one line per change ("jitsi-agent: update /etc/x
	// (spec-changed)"); nil is quiet.
	Progress io.Writer
	// CheckTimeout bounds each check command (default 30s).
	CheckTimeout time.Duration
	// NoTools skips the external validators (nginx -t, luac -p); built-in
	// checks and File.Check commands still run.
	NoTools bool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Skip, when set, leaves the changes of a path out of this apply (e.g.
	// the daemon skips host-changed files whose drift policy is "report").
	// Skipped paths keep their manifest record, so they stay reported.
	Skip func(c plan.Change) bool
	// Verdicts, when set, remembers the files prosodyctl accepted: a later
	// apply of byte-identical content (same tool, same path) skips that
	// run. Every other check still runs. See Verdicts.
	Verdicts *Verdicts
	// StepHook, when set, runs between the per-file steps (tests use it to
	// widen crash windows).
	StepHook func(step, path string)
}

func (o Options) withDefaults() (Options, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.StateDir == "" || !filepath.IsAbs(o.StateDir) {
		return o, fmt.Errorf("apply: state directory %q must be an absolute path", o.StateDir)
	}
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Result describes what an Apply or Rollback did.
type Result struct {
	// Serial is the manifest serial after the operation (unchanged when
	// nothing changed).
	Serial int
	// Changes are the changes made, in the order applied.
	Changes []plan.Change
	// Units to reload or restart, in dependency order (prosody, jicofo,
	// jvb, nginx, coturn, then template units).
	Units []string
	// Notices are things the operator should know (ownership skipped
	// without root, leftover temporary files removed...).
	Notices []string
	// Skipped are the changes left out by Options.Skip.
	Skipped []plan.Change
	// BackupDir is the real path holding the previous versions ("" when
	// nothing changed).
	BackupDir string
}

// Changed reports whether the host changed.
func (r *Result) Changed() bool { return len(r.Changes) > 0 }

// Paths lists the changed paths.
func (r *Result) Paths() []string {
	out := make([]string, 0, len(r.Changes))
	for _, c := range r.Changes {
		out = append(out, c.Path)
	}
	return out
}

type runner struct {
	o     Options
	host  *fsys.OS
	state string // real state dir
	red   *strings.Replacer
	// secrets are the values red hides (also hidden in encoded form in
	// checker output).
	secrets []string
	res     *Result
	// mu serializes notices and step hooks: validators run concurrently.
	mu sync.Mutex
	// pre marks a pre-check's runner: it takes no lock and keeps its
	// validators' scratch copies apart from an apply's (see Precheck).
	pre bool
}

func newRunner(opts Options, redact []string) (*runner, func(), error) {
	return startRunner(opts, redact, false)
}

// startRunner is newRunner; pre starts a pre-check's runner, which takes
// no lock: it writes nothing an apply reads and uses scratch directories
// of its own, so a CLI apply never waits for it.
func startRunner(opts Options, redact []string, pre bool) (*runner, func(), error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	h, err := fsys.New(o.Root)
	if err != nil {
		return nil, nil, fmt.Errorf("apply: %w", err)
	}
	r := &runner{o: o, host: h, state: h.Real(o.StateDir), red: plan.NewRedactor(redact), secrets: redact, res: &Result{Changes: []plan.Change{}, Units: []string{}}, pre: pre}
	if err := r.ensureStateDir(); err != nil {
		return nil, nil, err
	}
	unlock := func() {}
	if !pre {
		if unlock, err = lock(r.state); err != nil {
			return nil, nil, err
		}
	}
	// Validators' scratch directories hold copies of secret-bearing files:
	// they live under the 0700 state directory, and whatever a killed run
	// left there is removed before anything else (and again on exit).
	if err := r.removeCheckDirs(); err != nil {
		unlock()
		return nil, nil, fmt.Errorf("apply: remove leftover validator files: %w", err)
	}
	return r, func() { r.removeCheckDirs(); unlock() }, nil
}

// removeCheckDirs removes the validators' scratch directories of this
// state directory: <state>/check and, for prosodyctl, its directories in
// the temporary directory (named after this state directory, so a run for
// another root is never touched; the lock serialises runs for this one).
// The temporary directory is searched only when <state>/check holds the
// marker prosodyTemp leaves before it creates one there: listing a busy
// /tmp cost each apply about 1 ms, twice.
func (r *runner) removeCheckDirs() error {
	if _, err := os.Lstat(filepath.Join(r.checkRoot(), inTempMarker)); !errors.Is(err, fs.ErrNotExist) {
		left, _ := filepath.Glob(filepath.Join(os.TempDir(), r.prosodyPrefix()+"*"))
		var err error
		for _, d := range left {
			err = errors.Join(err, os.RemoveAll(d))
		}
		if err != nil {
			return err // the marker stays: the next run tries again
		}
	}
	return os.RemoveAll(r.checkRoot())
}

// inTempMarker, in the check root, says that prosodyctl scratch
// directories may exist in the temporary directory.
const inTempMarker = "prosody-in-tmp"

// prosodyPrefix names prosodyctl's scratch directories for this state dir.
func (r *runner) prosodyPrefix() string {
	kind := "check-"
	if r.pre {
		kind = "precheck-"
	}
	return "jitsi-agent-prosody-" + kind + fsys.SHA256([]byte(r.state))[:12] + "-"
}

// prosodyTemp is prosodyctl's scratch directory. prosodyctl reads its
// configuration as root and then switches to the prosody user, which must
// reach the directory: under root with a prosody user it lives in the
// temporary directory (private to the unit: PrivateTmp=yes), chowned to
// prosody, 0700; otherwise under the state directory.
func (r *runner) prosodyTemp() (string, error) {
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("prosody"); err == nil {
			// The marker first: a run killed after MkdirTemp leaves it for
			// the next run's removeCheckDirs.
			if err := fsys.MkdirPrivate(r.checkRoot()); err != nil {
				return "", err
			}
			if err := os.WriteFile(filepath.Join(r.checkRoot(), inTempMarker), nil, 0o600); err != nil {
				return "", err
			}
			return os.MkdirTemp("", r.prosodyPrefix()+"*")
		}
	}
	return r.checkTemp("prosody-*")
}

// CheckDir is the directory, inside the state directory, that holds the
// validators' scratch copies while an apply runs; PrecheckDir holds a
// pre-check's (it runs without the lock, beside a CLI apply).
const (
	CheckDir    = "check"
	PrecheckDir = "precheck"
)

func (r *runner) checkRoot() string {
	if r.pre {
		return filepath.Join(r.state, PrecheckDir)
	}
	return filepath.Join(r.state, CheckDir)
}

// checkTemp creates a scratch directory for one validator run.
func (r *runner) checkTemp(pattern string) (string, error) {
	if err := fsys.MkdirPrivate(r.checkRoot()); err != nil {
		return "", err
	}
	return os.MkdirTemp(r.checkRoot(), pattern)
}

func (r *runner) ensureStateDir() error {
	if fi, err := os.Stat(r.state); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("apply: state directory %s is not a directory", r.state)
		}
		return nil
	}
	if _, err := fsys.MkdirAll(filepath.Dir(r.state), 0o755); err != nil {
		return fmt.Errorf("apply: state directory: %w", err)
	}
	if err := os.Mkdir(r.state, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("apply: state directory: %w", err)
	}
	return nil
}

// lock takes an exclusive flock on <state>/lock so a CLI apply and the
// daemon never interleave. It waits (bounded) for a running apply.
func lock(state string) (func(), error) {
	p := filepath.Join(state, "lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("apply: lock: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("apply: another jitsi-agent apply holds %s: %w", p, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func (r *runner) progress(format string, args ...any) {
	if r.o.Progress != nil {
		fmt.Fprintf(r.o.Progress, "jitsi-agent: "+format+"\n", args...)
	}
}

func (r *runner) notice(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Notices = append(r.res.Notices, msg)
	r.progress("notice: %s", msg)
}

func (r *runner) hook(step, path string) {
	if r.o.StepHook != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.o.StepHook(step, path)
	}
}

// cleanTemps removes temporary files a crashed run left next to the given
// destinations and in the state directory.
func (r *runner) cleanTemps(paths []string) error {
	dirs := map[string]bool{r.state: true}
	for _, p := range paths {
		dirs[filepath.Dir(r.host.Real(p))] = true
	}
	// Backup directories (a crash while copying a pre-image).
	if ents, err := os.ReadDir(filepath.Join(r.state, "backups")); err == nil {
		for _, e := range ents {
			if e.IsDir() {
				root := filepath.Join(r.state, "backups", e.Name())
				filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
					if err == nil && d.IsDir() {
						dirs[p] = true
					}
					return nil
				})
			}
		}
	}
	list := make([]string, 0, len(dirs))
	for d := range dirs {
		list = append(list, d)
	}
	sort.Strings(list)
	for _, d := range list {
		removed, err := fsys.CleanTemps(d)
		if err != nil {
			return err
		}
		for _, p := range removed {
			r.notice("removed leftover temporary file %s", p)
		}
	}
	return nil
}

// Apply brings the host to set. It returns a *CheckError when validation
// fails (the host is then unchanged).
func Apply(ctx context.Context, set *render.Set, opts Options) (*Result, error) {
	r, unlock, err := newRunner(opts, set.Redact)
	if err != nil {
		return nil, err
	}
	defer unlock()
	paths := make([]string, 0, 2*len(set.Files))
	for _, f := range set.Files {
		paths = append(paths, f.Path)
	}
	m, err := manifest.Load(manifest.Path(r.state))
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	pending, err := r.recover(m)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	for _, e := range m.Files {
		if e.WritePath != "" {
			paths = append(paths, e.WritePath)
		}
	}
	if err := r.cleanTemps(paths); err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	p, err := plan.Compute(set, plan.Options{Host: r.host, Manifest: m, Redact: set.Redact})
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	var through []string // Debian-link targets not yet in the manifest
	for _, c := range p.Changes {
		if c.WritePath != "" {
			through = append(through, c.WritePath)
		}
	}
	if len(through) > 0 {
		if err := r.cleanTemps(through); err != nil {
			return nil, fmt.Errorf("apply: %w", err)
		}
	}
	for _, n := range p.Notices {
		r.notice("%s", n)
	}
	r.res.Serial = m.Serial
	skip := map[string]bool{}
	if r.o.Skip != nil {
		for _, c := range p.Changes {
			if r.o.Skip(c) {
				skip[c.Path] = true
			}
		}
		kept := p.Changes[:0:0]
		for _, c := range p.Changes {
			if skip[c.Path] {
				r.res.Skipped = append(r.res.Skipped, c)
				r.progress("skipped %s", c.Line())
			} else {
				kept = append(kept, c)
			}
		}
		p.Changes = kept
	}
	if !p.HasChanges() {
		if p.ManifestStale && len(skip) == 0 {
			nm := r.nextManifest(m, p, m.Serial, skip)
			nm.Operation, nm.AppliedAt, nm.RolledBackTo = m.Operation, m.AppliedAt, m.RolledBackTo
			if err := nm.Save(manifest.Path(r.state)); err != nil {
				return nil, fmt.Errorf("apply: %w", err)
			}
			r.progress("manifest updated: the host already matched the spec")
		}
		if len(pending) > 0 {
			r.res.Changes = pending
			r.res.Units = plan.Units(pending)
			r.progress("no changes; %d file(s) of operation %d still to reload%s", len(pending), m.Serial, unitsNote(r.res.Units))
			return r.res, nil
		}
		r.progress("no changes")
		return r.res, nil
	}
	serial := m.Serial + 1
	t := &txn{r: r, serial: serial, set: set, prev: m, op: "apply", pending: pending}
	for _, c := range p.Changes {
		t.ops = append(t.ops, opFromChange(c))
	}
	nm := r.nextManifest(m, p, serial, skip)
	nm.Operation = "apply"
	if err := t.run(ctx, nm, true); err != nil {
		return nil, err
	}
	for _, o := range t.ops {
		r.res.Changes = append(r.res.Changes, o.change)
	}
	r.res.Changes = mergeChanges(r.res.Changes, pending)
	r.res.Units = plan.Units(r.res.Changes)
	r.res.Serial = serial
	r.progress("applied %d change(s), serial %d%s", len(r.res.Changes), serial, unitsNote(r.res.Units))
	return r.res, nil
}

func unitsNote(units []string) string {
	if len(units) == 0 {
		return ""
	}
	return "; units to reload: " + strings.Join(units, " ")
}

// nextManifest builds the manifest after applying p: entries that did not
// change keep their serial and time.
func (r *runner) nextManifest(old *manifest.Manifest, p *plan.Plan, serial int, skip map[string]bool) *manifest.Manifest {
	now := r.o.Now().UTC()
	nm := manifest.New()
	nm.Serial, nm.AppliedAt = serial, now
	entries := make([]manifest.Entry, 0, len(p.Desired))
	for _, e := range p.Desired {
		if skip[e.Path] {
			if oe, ok := old.Lookup(e.Path); ok {
				entries = append(entries, oe)
			}
			continue
		}
		if oe, ok := old.Lookup(e.Path); ok && oe.SameState(e) {
			e.Serial, e.AppliedAt = oe.Serial, oe.AppliedAt
		} else {
			e.Serial, e.AppliedAt = serial, now
		}
		entries = append(entries, e)
	}
	for _, oe := range old.Files { // skipped unmanage: still recorded
		if skip[oe.Path] {
			if _, desired := old.Lookup(oe.Path); desired && !containsPath(p.Desired, oe.Path) {
				entries = append(entries, oe)
			}
		}
	}
	nm.SetFiles(entries)
	return nm
}

func containsPath(es []manifest.Entry, p string) bool {
	for _, e := range es {
		if e.Path == p {
			return true
		}
	}
	return false
}
