package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// The crash test re-executes this test binary as a child that runs Apply;
// these variables configure the child.
const (
	childEnv      = "JITSI_AGENT_APPLY_CRASH_CHILD" // path of the child's JSON config
	childStepKill = "JITSI_AGENT_APPLY_KILL_AT_STEP"
)

type childConfig struct {
	Root    string
	SetFile string
	DelayUS int
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(crashChild(cfg))
	}
	os.Exit(m.Run())
}

func crashChild(cfgPath string) int {
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	var cfg childConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	sb, err := os.ReadFile(cfg.SetFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	var set render.Set
	if err := json.Unmarshal(sb, &set); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	killAt := -1
	if s := os.Getenv(childStepKill); s != "" {
		killAt, _ = strconv.Atoi(s)
	}
	step := 0
	delay := time.Duration(cfg.DelayUS) * time.Microsecond
	opts := Options{Root: cfg.Root, StateDir: stateDir, NoTools: true, Keep: 3, StepHook: func(string, string) {
		if step == killAt {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		step++
		time.Sleep(delay) // test-only: widens the windows between steps
	}}
	if _, err := Apply(context.Background(), &set, opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	return 0
}

// crashSet is sampleSet plus more files, so an apply has many steps.
func crashSet(v string) *render.Set {
	s := sampleSet(v)
	for i := 0; i < 4; i++ {
		s.Files = append(s.Files, render.File{
			Path: fmt.Sprintf("/srv/extra/f%d.conf", i), Kind: render.KindFile, Mode: 0o644,
			Content: []byte(fmt.Sprintf("extra %d version %s\n%s", i, v, string(make([]byte, 0)))), Component: "template:extra", Units: []string{"extra.service"},
		})
	}
	s.Sort()
	return s
}

// hostState maps each path of the union of sets to "file:<bytes>",
// "link:<target>" or "absent".
func (e *env) hostState(sets ...*render.Set) map[string]string {
	out := map[string]string{}
	for _, s := range sets {
		for _, f := range s.Files {
			p := e.real(f.Path)
			fi, err := os.Lstat(p)
			switch {
			case err != nil:
				out[f.Path] = "absent"
			case fi.Mode()&os.ModeSymlink != 0:
				t, _ := os.Readlink(p)
				out[f.Path] = "link:" + t
			default:
				b, _ := os.ReadFile(p)
				out[f.Path] = "file:" + string(b)
			}
		}
	}
	return out
}

func wantState(s *render.Set) map[string]string {
	out := map[string]string{}
	for _, f := range s.Files {
		if f.Kind == render.KindSymlink {
			out[f.Path] = "link:" + f.Target
		} else {
			out[f.Path] = "file:" + string(f.Content)
		}
	}
	return out
}

// TestCrashSafety SIGKILLs an applying child process 300 times — half at
// each deterministic step boundary (the child kills itself after step K),
// half at random times from the parent — alternating between two sets that
// differ in every file; after every tenth convergence it rolls back and
// re-applies. It counts, and requires to be 0:
//
//   - torn files: a managed path holding neither its old nor its new
//     version after a kill;
//   - mixed sets: after the next apply, a file that differs from what the
//     services last ran on whose units that apply does not reload (the
//     journal must carry an interrupted run's reloads), or a file not at
//     its target;
//   - lost undos: a rollback that does not bring back exactly the set
//     before the last convergence;
//   - leftovers: temporary files, validator scratch directories or an
//     unsettled journal after a settled apply.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	// Kills do not depend on durability: use tmpfs when there is one, so
	// the 600+ applies are not bound by fsync latency.
	if d, err := os.MkdirTemp("/dev/shm", "jitsi-agent-crash-*"); err == nil {
		t.Cleanup(func() { os.RemoveAll(d) })
		e.root, e.opts.Root = d, d
	}
	sets := [2]*render.Set{crashSet("a"), crashSet("b")}
	e.apply(sets[0])
	dir := t.TempDir()
	var cfgs [2]string
	for i, s := range sets {
		sb, _ := json.Marshal(s)
		sf := filepath.Join(dir, fmt.Sprintf("set%d.json", i))
		os.WriteFile(sf, sb, 0o600)
		cb, _ := json.Marshal(childConfig{Root: e.root, SetFile: sf, DelayUS: 200})
		cfgs[i] = filepath.Join(dir, fmt.Sprintf("child%d.json", i))
		os.WriteFile(cfgs[i], cb, 0o600)
	}
	// Count the steps of a full a->b apply (in-process, on a copy of the
	// state) to spread the deterministic kills over all of them.
	steps := 0
	{
		c := newEnv(t)
		c.apply(sets[0])
		c.opts.StepHook = func(string, string) { steps++ }
		c.apply(sets[1])
	}
	if steps < 20 {
		t.Fatalf("only %d steps in an apply", steps)
	}
	runChild := func(target int, killAt int) (time.Duration, error) {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+cfgs[target])
		if killAt >= 0 {
			cmd.Env = append(cmd.Env, childStepKill+"="+strconv.Itoa(killAt))
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		err := cmd.Wait()
		return time.Since(start), err
	}
	// Calibrate the random kills with one uninterrupted child run (a->b),
	// then go back to a. The child never settles (as if it died before
	// reloading): the next apply must still report b's units.
	full, err := runChild(1, -1)
	if err != nil {
		t.Fatalf("child apply: %v", err)
	}
	e.assertConverged(sets[1])
	if res := e.apply(sets[1]); !slices.Contains(res.Units, "extra.service") {
		t.Fatalf("a completed but unsettled apply was not reloaded by the next one: units %v", res.Units)
	}
	e.apply(sets[0])

	unitsOf := map[string][]string{}
	for _, s := range sets {
		for _, f := range s.Files {
			unitsOf[f.Path] = f.Units
		}
	}
	rng := rand.New(rand.NewSource(20261125))
	const iterations = 300
	deadline := time.Now().Add(8 * time.Minute)
	cur := 0
	ran, torn, mixed, lostUndos, leftovers, rollbacks := 0, 0, 0, 0, 0, 0
	untouched, between, complete := 0, 0, 0
	ctx := context.Background()
	for i := 0; i < iterations; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("crash test exceeded its time budget after %d iterations", i)
		}
		ran++
		target := 1 - cur
		before := e.hostState(sets[0], sets[1])
		want := wantState(sets[target])
		if i%2 == 0 {
			// Deterministic: the child kills itself after step i/2 % steps.
			// (b->a has fewer steps than a->b: a late step may not be reached.)
			runChild(target, (i/2)%steps)
		} else {
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+cfgs[target])
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(rng.Int63n(int64(full) * 12 / 10)))
			syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
		after := e.hostState(sets[0], sets[1])
		changed, done := 0, true
		for p, w := range want {
			done = done && after[p] == w
		}
		for p, got := range after {
			w, managed := want[p]
			switch {
			case got == before[p]:
			case managed && got == w:
				changed++
			default:
				torn++
				t.Errorf("iteration %d: %s is neither its old nor its new version:\n got %q\n old %q\n new %q", i, p, got, before[p], w)
			}
		}
		switch {
		case changed == 0:
			untouched++
		case done:
			complete++
		default:
			between++
		}
		// The next apply converges, and reloads every file that differs
		// from what the services last ran on (before[]: settled state).
		res, err := Apply(ctx, sets[target], e.opts)
		if err != nil {
			t.Fatalf("iteration %d: apply after the kill: %v", i, err)
		}
		now := e.hostState(sets[0], sets[1])
		for p, w := range want {
			if now[p] != w {
				mixed++
				t.Errorf("iteration %d: %s not at its target after the next apply", i, p)
			}
			if before[p] != w {
				for _, u := range unitsOf[p] {
					if !slices.Contains(res.Units, u) {
						mixed++
						t.Errorf("iteration %d: %s changed since the last reload but the next apply does not reload %s (units %v)", i, p, u, res.Units)
					}
				}
			}
		}
		if err := Settle(e.opts, res.Serial); err != nil {
			t.Fatal(err)
		}
		leftovers += e.leftovers(t)
		cur = target
		if (i+1)%10 == 0 {
			// Roll back: exactly the set before this convergence returns,
			// with its units to reload; then converge again.
			rollbacks++
			prev := wantState(sets[1-cur])
			rb, err := Rollback(ctx, Previous, e.opts)
			if err != nil {
				t.Fatalf("iteration %d: rollback: %v", i, err)
			}
			got := e.hostState(sets[0], sets[1])
			for p, w := range prev {
				if got[p] != w {
					lostUndos++
					t.Errorf("iteration %d: rollback left %s at %q, want %q", i, p, got[p], w)
				}
			}
			if len(rb.Units) == 0 {
				lostUndos++
				t.Errorf("iteration %d: rollback reports no units to reload", i)
			}
			Settle(e.opts, rb.Serial)
			e.apply(sets[cur])
			e.assertConverged(sets[cur])
			leftovers += e.leftovers(t)
		}
	}
	t.Logf("crash test: %d kills over %d steps (%d before any swap, %d between swaps, %d after all swaps), %d rollbacks; torn files %d, mixed sets %d, lost undos %d, leftovers %d",
		ran, steps, untouched, between, complete, rollbacks, torn, mixed, lostUndos, leftovers)
	if between == 0 {
		t.Fatal("no kill landed between two swaps: the test did not exercise the interesting window")
	}
	if torn+mixed+lostUndos+leftovers != 0 {
		t.Fatalf("torn files %d, mixed sets %d, lost undos %d, leftovers %d: all must be 0", torn, mixed, lostUndos, leftovers)
	}
}

// leftovers counts temporary files under the root, validator scratch
// directories and a journal left after a settled operation.
func (e *env) leftovers(t *testing.T) int {
	n := 0
	filepath.WalkDir(e.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && fsys.IsTemp(d.Name()) {
			t.Errorf("leftover temporary file %s", p)
			n++
		}
		return nil
	})
	for _, p := range []string{filepath.Join(e.real(stateDir), CheckDir), filepath.Join(e.real(stateDir), JournalFile)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("leftover %s", p)
			n++
		}
	}
	return n
}

// TestManifestSaveFailureRestoresFiles: when recording fails after the swap
// (state file system full), the swapped files are put back, so the next
// apply changes (and reloads) all of them and rollback stays true.
func TestManifestSaveFailureRestoresFiles(t *testing.T) {
	e := newEnv(t)
	a, b := crashSet("a"), crashSet("b")
	e.apply(a)
	mp := filepath.Join(e.real(stateDir), "manifest.json")
	orig, err := os.ReadFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	e.opts.StepHook = func(step, _ string) {
		if step == "swap" {
			// Make the manifest unwritable: a directory where it is renamed.
			os.Remove(mp)
			os.Mkdir(mp, 0o700)
		}
	}
	if _, err := Apply(context.Background(), b, e.opts); err == nil || !strings.Contains(err.Error(), "previous files were restored") {
		t.Fatalf("want a recording failure with the files restored, got %v", err)
	}
	e.opts.StepHook = nil
	os.Remove(mp)
	os.WriteFile(mp, orig, 0o600)
	if got, want := e.hostState(a, b), wantState(a); !subset(want, got) {
		t.Fatalf("files not restored after the failed record:\n got %v\nwant %v", got, want)
	}
	res := e.apply(b)
	if len(res.Changes) != len(b.Files) {
		t.Fatalf("the next apply changed %d of %d files", len(res.Changes), len(b.Files))
	}
	if _, err := Rollback(context.Background(), Previous, e.opts); err != nil {
		t.Fatal(err)
	}
	if got, want := e.hostState(a, b), wantState(a); !subset(want, got) {
		t.Fatalf("rollback did not restore the previous set")
	}
}

// TestInterruptedBeforeRecordIsReverted: a journal left by a run that died
// between swap and record is reverted by the next run, whatever it is
// (here a rollback, which then has the true previous set).
func TestInterruptedBeforeRecordIsReverted(t *testing.T) {
	e := newEnv(t)
	a, b, c := crashSet("a"), crashSet("b"), crashSet("c")
	e.apply(a)
	e.apply(b)
	swaps := 0
	e.opts.StepHook = func(step, _ string) {
		if step == "swap" {
			if swaps++; swaps == 3 {
				panic("crash")
			}
		}
	}
	func() {
		defer func() { recover() }()
		Apply(context.Background(), c, e.opts)
	}()
	e.opts.StepHook = nil
	// The lock died with the "process": take a fresh runner.
	rb, err := Rollback(context.Background(), Previous, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.hostState(a, b, c), wantState(a); !subset(want, got) {
		t.Fatalf("rollback after an interrupted apply did not restore serial 1:\n got %v", got)
	}
	if !strings.Contains(strings.Join(rb.Notices, "\n"), "interrupted before it was recorded") {
		t.Errorf("no notice of the reverted operation: %v", rb.Notices)
	}
}

// subset reports whether every entry of want is in got.
func subset(want, got map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
