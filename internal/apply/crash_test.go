package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

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

// TestCrashSafety SIGKILLs an applying child process ≥200 times — half at
// each deterministic step boundary (the child kills itself after step K),
// half at random times from the parent — alternating between two sets that
// differ in every file. After each kill every managed path holds exactly
// its old or its new version, and the next apply converges and leaves no
// temporary files.
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
	// the 400+ applies are not bound by fsync latency.
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
	// then go back to a.
	full, err := runChild(1, -1)
	if err != nil {
		t.Fatalf("child apply: %v", err)
	}
	e.assertConverged(sets[1])
	e.apply(sets[0])

	rng := rand.New(rand.NewSource(20261125))
	const iterations = 200
	deadline := time.Now().Add(4 * time.Minute)
	cur := 0
	mixed, untouched, complete := 0, 0, 0
	for i := 0; i < iterations; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("crash test exceeded its time budget after %d iterations", i)
		}
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
		changed, same, done := 0, 0, true
		for p, w := range want {
			done = done && after[p] == w
		}
		for p, got := range after {
			w, managed := want[p]
			switch {
			case got == before[p]:
				same++
			case managed && got == w:
				changed++
			default:
				t.Fatalf("iteration %d: %s is neither its old nor its new version:\n got %q\n old %q\n new %q", i, p, got, before[p], w)
			}
		}
		switch {
		case changed == 0:
			untouched++
		case done:
			complete++
		default:
			mixed++
		}
		// The next apply converges and cleans up.
		e.apply(sets[target])
		e.assertConverged(sets[target])
		cur = target
	}
	t.Logf("%d kills over %d steps: %d before any swap, %d between swaps, %d after all swaps", iterations, steps, untouched, mixed, complete)
	if mixed == 0 {
		t.Fatal("no kill landed between two swaps: the test did not exercise the interesting window")
	}
}
