package apply

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

func vhostSet(content string) *render.Set {
	return &render.Set{Files: []render.File{{Path: "/etc/prosody/conf.avail/x.cfg.lua", Kind: render.KindFile,
		Content: []byte(content), Component: "prosody"}}}
}

// With a verdict cache, real prosodyctl still refuses a bad file (also one
// that differs from an accepted one only in its last line), and an accepted
// file staged again is not re-checked.
func TestVerdictCacheRealProsodyctl(t *testing.T) {
	testenv.LookPath(t, "prosodyctl", "apt-get install prosody")
	e := newEnv(t)
	e.opts.NoTools = false
	e.opts.Verdicts = NewVerdicts()
	a := "VirtualHost \"x.example.com\"\n    muc_max_occupants = 51\n"
	b := "VirtualHost \"x.example.com\"\n    muc_max_occupants = 52\n"
	bad := "VirtualHost \"x.example.com\"\n    no_such_function_in_prosody_config()\n"

	e.apply(vhostSet(a))
	e.apply(vhostSet(b))
	if h := e.opts.Verdicts.Hits(); h != 0 {
		t.Fatalf("hits %d after two distinct files", h)
	}
	for i := 0; i < 2; i++ { // a refusal is never remembered
		_, err := Apply(context.Background(), vhostSet(bad), e.opts)
		if err == nil || !strings.Contains(err.Error(), "prosodyctl check config") {
			t.Fatalf("bad file not refused with a cache holding good ones: %v", err)
		}
		e.assertNoTemps()
		if got := e.read("/etc/prosody/conf.avail/x.cfg.lua"); got != b {
			t.Fatalf("refused apply changed the host: %q", got)
		}
	}
	e.apply(vhostSet(a)) // accepted before: answered from the cache
	if h := e.opts.Verdicts.Hits(); h != 1 {
		t.Fatalf("hits %d, want 1", h)
	}
	if got := e.read("/etc/prosody/conf.avail/x.cfg.lua"); got != a {
		t.Fatalf("host %q", got)
	}
}

// fakeProsodyctl puts a prosodyctl first on PATH that records each run in
// log and exits with the status in status (a file, so a test can change
// the tool's verdict without changing the tool).
func fakeProsodyctl(t *testing.T) (dir, log, status string) {
	t.Helper()
	dir = t.TempDir()
	log, status = filepath.Join(dir, "runs"), filepath.Join(dir, "status")
	writeFakeProsodyctl(t, dir, log, status, "")
	if err := os.WriteFile(status, []byte("0"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return dir, log, status
}

func writeFakeProsodyctl(t *testing.T, dir, log, status, extra string) {
	t.Helper()
	script := "#!/bin/sh\n# " + extra + "\necho run >> '" + log + "'\nexit $(cat '" + status + "')\n"
	tmp := filepath.Join(dir, ".prosodyctl.new")
	if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "prosodyctl")); err != nil {
		t.Fatal(err)
	}
}

func fakeRuns(t *testing.T, log string) int {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "run\n")
}

// The cache key covers the content, the path it is checked as and the
// tool: each change runs the validator again; only an identical file
// checked by the identical tool is answered from the cache.
func TestVerdictCacheKey(t *testing.T) {
	dir, log, status := fakeProsodyctl(t)
	e := newEnv(t)
	e.opts.NoTools = false
	e.opts.Verdicts = NewVerdicts()
	a := "VirtualHost \"x.example.com\"\n    muc_max_occupants = 51\n"
	b := "VirtualHost \"x.example.com\"\n    muc_max_occupants = 52\n"
	e.apply(vhostSet(a))
	e.apply(vhostSet(b))
	if n := fakeRuns(t, log); n != 2 {
		t.Fatalf("prosodyctl ran %d times, want 2", n)
	}
	e.apply(vhostSet(a))
	if n := fakeRuns(t, log); n != 2 {
		t.Fatalf("identical file re-checked (%d runs)", n)
	}
	// Same content at another path: checked.
	other := vhostSet(b)
	other.Files[0].Path = "/etc/prosody/conf.avail/y.cfg.lua"
	e.apply(other)
	if n := fakeRuns(t, log); n != 3 {
		t.Fatalf("same content at another path: %d runs, want 3", n)
	}
	// A new tool (package upgrade) judges again, and its refusal holds
	// for content the old tool accepted.
	writeFakeProsodyctl(t, dir, log, status, "upgraded")
	if err := os.WriteFile(status, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Apply(context.Background(), vhostSet(b), e.opts)
	if err == nil || !strings.Contains(err.Error(), "prosodyctl check config") {
		t.Fatalf("new tool's refusal ignored: %v", err)
	}
	if n := fakeRuns(t, log); n != 4 {
		t.Fatalf("new tool not run: %d runs, want 4", n)
	}
	// Without a cache every apply runs the tool.
	e.opts.Verdicts = nil
	if err := os.WriteFile(status, []byte("0"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.apply(vhostSet(b))
	e.apply(vhostSet(a))
	if n := fakeRuns(t, log); n != 6 {
		t.Fatalf("no cache: %d runs, want 6", n)
	}
}

// Precheck validates what the next apply would write, changes nothing on
// the host, and the apply then takes its acceptance; a refusal is not
// remembered, so the apply checks (and refuses) the file itself.
func TestPrecheck(t *testing.T) {
	_, log, status := fakeProsodyctl(t)
	e := newEnv(t)
	e.opts.NoTools = false
	e.opts.Verdicts = NewVerdicts()
	a := vhostSet("VirtualHost \"x.example.com\"\n    muc_max_occupants = 51\n")
	if err := Precheck(context.Background(), a, e.opts); err != nil {
		t.Fatal(err)
	}
	if n := fakeRuns(t, log); n != 1 {
		t.Fatalf("precheck ran prosodyctl %d times, want 1", n)
	}
	if _, err := os.Lstat(e.real("/etc/prosody/conf.avail/x.cfg.lua")); !os.IsNotExist(err) {
		t.Fatalf("precheck wrote the file: %v", err)
	}
	for _, p := range []string{"manifest.json", "journal.json", "backups", CheckDir} {
		if _, err := os.Lstat(filepath.Join(e.real(stateDir), p)); !os.IsNotExist(err) {
			t.Fatalf("precheck left %s in the state dir (%v)", p, err)
		}
	}
	e.assertNoTemps()
	// Prechecking again, or applying, does not run it again.
	if err := Precheck(context.Background(), a, e.opts); err != nil {
		t.Fatal(err)
	}
	e.apply(a)
	if n := fakeRuns(t, log); n != 1 {
		t.Fatalf("prosodyctl ran %d times, want 1", n)
	}
	// Nothing to write: nothing to precheck.
	if err := Precheck(context.Background(), a, e.opts); err != nil {
		t.Fatal(err)
	}
	if n := fakeRuns(t, log); n != 1 {
		t.Fatalf("precheck of the applied set ran prosodyctl (%d runs)", n)
	}
	// A refused precheck leaves the verdict to the apply.
	if err := os.WriteFile(status, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := vhostSet("VirtualHost \"x.example.com\"\n    muc_max_occupants = 52\n")
	if err := Precheck(context.Background(), b, e.opts); err != nil {
		t.Fatal(err)
	}
	_, err := Apply(context.Background(), b, e.opts)
	if err == nil || !strings.Contains(err.Error(), "prosodyctl check config") {
		t.Fatalf("apply after a refused precheck: %v", err)
	}
	if n := fakeRuns(t, log); n != 3 {
		t.Fatalf("prosodyctl ran %d times, want 3", n)
	}
	// A cancelled precheck accepts nothing.
	if err := os.WriteFile(status, []byte("0"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = Precheck(ctx, b, e.opts)
	e.apply(b)
	if n := fakeRuns(t, log); n != 4 {
		t.Fatalf("prosodyctl ran %d times, want 4 (apply after a cancelled precheck)", n)
	}
}

// With real prosodyctl: a precheck of a bad file leaves the apply to refuse
// it.
func TestPrecheckRealProsodyctl(t *testing.T) {
	testenv.LookPath(t, "prosodyctl", "apt-get install prosody")
	e := newEnv(t)
	e.opts.NoTools = false
	e.opts.Verdicts = NewVerdicts()
	bad := vhostSet("VirtualHost \"x.example.com\"\n    no_such_function_in_prosody_config()\n")
	if err := Precheck(context.Background(), bad, e.opts); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(context.Background(), bad, e.opts); err == nil || !strings.Contains(err.Error(), "prosodyctl check config") {
		t.Fatalf("bad file not refused after a precheck: %v", err)
	}
	good := vhostSet("VirtualHost \"x.example.com\"\n    muc_max_occupants = 51\n")
	if err := Precheck(context.Background(), good, e.opts); err != nil {
		t.Fatal(err)
	}
	e.apply(good)
	if h := e.opts.Verdicts.Hits(); h != 1 {
		t.Fatalf("apply after a good precheck: %d hits, want 1", h)
	}
}

// A pre-check takes no lock and keeps its scratch copies apart: an Apply
// (a CLI apply) started while the pre-check's prosodyctl runs completes
// without waiting for it, and does not remove the files that prosodyctl
// is still reading (it fails when its main config is gone, which would
// leave no acceptance).
func TestPrecheckDoesNotBlockAnApply(t *testing.T) {
	dir := t.TempDir()
	log, fifo := filepath.Join(dir, "runs"), filepath.Join(dir, "release")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho run >> '" + log + "'\nread x < '" + fifo + "'\ntest -e \"$2\" || exit 1\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "prosodyctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	e := newEnv(t)
	e.opts.NoTools = false
	e.opts.Verdicts = NewVerdicts()
	a := vhostSet("VirtualHost \"x.example.com\"\n    muc_max_occupants = 51\n")
	done := make(chan error, 1)
	go func() { done <- Precheck(context.Background(), a, e.opts) }()
	for deadline := time.Now().Add(30 * time.Second); fakeRuns(t, log) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the pre-check never ran prosodyctl")
		}
	}
	// The pre-check's prosodyctl waits on the fifo; an apply (without
	// tools, so it does not wait on it too) goes through.
	cli := e.opts
	cli.NoTools, cli.Verdicts = true, nil
	other := &render.Set{Files: []render.File{{Path: "/etc/nginx/x.conf", Kind: render.KindFile, Content: []byte("x\n"), Component: "nginx"}}}
	if _, err := Apply(context.Background(), other, cli); err != nil {
		t.Fatalf("apply beside a pre-check: %v", err)
	}
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("go\n")
	f.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.assertNoTemps()
	// The pre-check's acceptance stands: the apply of a takes it.
	e.apply(a)
	if h := e.opts.Verdicts.Hits(); h != 1 {
		t.Fatalf("apply after a pre-check that ran beside an apply: %d hits, want 1 (its scratch files were removed under it?)", h)
	}
	if n := fakeRuns(t, log); n != 1 {
		t.Fatalf("prosodyctl ran %d times, want 1", n)
	}
}
