package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/commands"
	"github.com/jitsi-agent/jitsi-agent/internal/execpath"
)

const (
	testSecret = "4f0c7d2e9a8b1c3d5e7f9a0b2c4d6e8f1a3b5c7d"
	testAPIKey = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d"
	ldflags    = "-X main.version=v0.0.0-test -X main.commit=0123456789abcdef -X main.date=2026-01-02T03:04:05Z"
)

var testBuild = commands.Build{Version: "v0.0.0-test", Commit: "0123456789abcdef", Date: "2026-01-02T03:04:05Z"}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// programs builds jitsi-agent (this launcher) and jitsi-agent-full with the
// same version stamp into one directory, as `make build` lays them out.
func programs(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds both programs")
	}
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "jitsi-agent-launcher-"); buildErr != nil {
			return
		}
		for out, pkg := range map[string]string{"jitsi-agent": ".", fullProgram: "../jitsi-agent"} {
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", filepath.Join(binDir, out), pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if o, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", pkg, err, o)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// fakeExec records what the launcher would run instead of replacing the
// test process.
type fakeExec struct {
	path string
	argv []string
	err  error
}

func (f *fakeExec) exec(path string, argv, env []string) error {
	if f.path != "" {
		return errors.New("exec called twice")
	}
	f.path, f.argv = path, argv
	if f.err != nil {
		return f.err
	}
	return errExecuted
}

var errExecuted = errors.New("(executed)")

func runLauncher(t *testing.T, f *fakeExec, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	l := launcher{build: testBuild, argv0: "/usr/bin/jitsi-agent", exec: f.exec}
	code = l.run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// fakeFull puts an executable named jitsi-agent-full in a directory and
// points JITSI_AGENT_EXEC_PATH at it.
func fakeFull(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, fullProgram)
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(execpath.Env, dir)
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return real
}

// Every command but the launcher's own runs jitsi-agent-full with the
// command line from the command on (argv[0] kept), in the directory -chdir
// named.
func TestOtherCommandsRunTheFullProgram(t *testing.T) {
	full := fakeFull(t)
	t.Chdir(t.TempDir()) // restored after the test
	dir := t.TempDir()
	for _, args := range [][]string{
		{"render", "s.hcl", "-out", "o"},
		{"token", "mint", "s.hcl", "-room", "*"},
		{"apply", "plan.json"}, // no stamp: the full program applies
		{"apply", "s.hcl", "-restart-deferred"},
		{"fleet", "status", "--etcd", "https://127.0.0.1:1"},
		{"run"},
	} {
		f := &fakeExec{}
		code, _, errs := runLauncher(t, f, append([]string{"-chdir", dir}, args...)...)
		if code != 1 || f.path != full || !slices.Equal(f.argv, append([]string{"/usr/bin/jitsi-agent"}, args...)) || !strings.Contains(errs, "(executed)") {
			t.Errorf("%q: exit %d, ran %q %q\n%s", args, code, f.path, f.argv, errs)
		}
		if wd, _ := os.Getwd(); !sameDir(wd, dir) {
			t.Errorf("%q: in %s, want %s", args, wd, dir)
		}
	}
}

func sameDir(a, b string) bool {
	ra, _ := filepath.EvalSymlinks(a)
	rb, _ := filepath.EvalSymlinks(b)
	return ra == rb
}

// What needs only the table is answered here: help, usage errors, version,
// completion, man.
func TestTableCommandsRunHere(t *testing.T) {
	fakeFull(t)
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, 0, "jitsi-agent v0.0.0-test\ncommit:  0123456789abcdef\n"},
		{[]string{"completion", "bash"}, 0, "complete -F"},
		{[]string{"man"}, 0, ".TH JITSI-AGENT 1"},
		{[]string{"apply", "-h"}, 0, "Usage: jitsi-agent [global options] apply"},
		{[]string{"help", "token", "mint"}, 0, "token mint"},
		{[]string{}, 1, "Commands:"},
		{[]string{"apply"}, 1, ""},
		{[]string{"aply", "s.hcl"}, 1, ""},
		{[]string{"render", "-nope", "s.hcl"}, 1, ""},
		{[]string{"completion", "tcsh"}, 1, ""},
	} {
		f := &fakeExec{}
		code, out, errs := runLauncher(t, f, tc.args...)
		if code != tc.code || f.path != "" || !strings.Contains(out, tc.out) {
			t.Errorf("%q: exit %d (want %d), ran %q, stdout:\n%.200s\nstderr:\n%s", tc.args, code, tc.code, f.path, out, errs)
		}
	}
}

// Without jitsi-agent-full the launcher says where it looked.
func TestMissingFullProgram(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(execpath.Env, dir)
	f := &fakeExec{}
	code, _, errs := runLauncher(t, f, "validate", "s.hcl")
	if code != 1 || f.path != "" || !strings.Contains(errs, "jitsi-agent validate needs another program") || !strings.Contains(errs, dir) || !strings.Contains(errs, "Nothing was done") {
		t.Fatalf("exit %d\n%s", code, errs)
	}
}

// The real pair: the launcher passes every other command on with its exit
// status, and prints exactly what jitsi-agent-full prints for help,
// completion, man, version and usage errors.
func TestLauncherAndFullProgramAgree(t *testing.T) {
	dir := programs(t)
	t.Setenv(execpath.Env, "")
	launch, full := filepath.Join(dir, "jitsi-agent"), filepath.Join(dir, fullProgram)
	spec, err := filepath.Abs("../../examples/meet.hcl")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "JITSI_APP_SECRET="+testSecret, "JOIN_API_KEY="+testAPIKey)
	runBoth := func(args ...string) {
		t.Helper()
		var res [2]string
		var codes [2]int
		for i, bin := range []string{launch, full} {
			cmd := exec.Command(bin, args...)
			cmd.Env = env
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatalf("%s %q: %v", bin, args, err)
			}
			codes[i], res[i] = cmd.ProcessState.ExitCode(), out.String()+"\x00"+errb.String()
		}
		if codes[0] != codes[1] || res[0] != res[1] {
			t.Errorf("%q: launcher exit %d, jitsi-agent-full %d\n--- launcher:\n%s\n--- jitsi-agent-full:\n%s", args, codes[0], codes[1], res[0], res[1])
		}
	}
	for _, args := range [][]string{
		{"version"}, {"man"}, {"completion", "zsh"}, {"help"}, {}, {"help", "fleet"}, {"apply", "--help"}, {"token", "mint", "-h"},
		{"nope"}, {"apply"}, {"plan", "-rot", "x", spec},
		{"validate", spec},                    // 0
		{"validate", "/nonexistent/spec.hcl"}, // 1
		{"-chdir", "../../examples", "validate", "meet.hcl"},
		{"token", "verify", spec, "not-a-token"}, // 1
	} {
		runBoth(args...)
	}
	// A plan with a change pending exits 2.
	root := t.TempDir()
	cmd := exec.Command(full, "apply", spec, "-root", root, "-q")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/jitsi/videobridge/jvb.conf"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runBoth("plan", spec, "-root", root)
}

// A file-only apply that the stamp jitsi-agent-full recorded shows to
// change nothing is answered by the launcher alone, with the same output;
// after a change it runs jitsi-agent-full again.
func TestNoopApplyAnsweredHere(t *testing.T) {
	dir := programs(t)
	t.Setenv(execpath.Env, dir)
	t.Setenv("JITSI_APP_SECRET", testSecret)
	t.Setenv("JOIN_API_KEY", testAPIKey)
	spec, err := filepath.Abs("../../examples/meet.hcl")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	var outputs []string
	for range 2 { // the second apply changes nothing and records the stamp
		var out, errb bytes.Buffer
		cmd := exec.Command(filepath.Join(dir, "jitsi-agent"), "apply", spec, "-root", root)
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("apply: %v\n%s", err, errb.String())
		}
		outputs = append(outputs, out.String()+"\x00"+errb.String())
	}
	if _, err := os.Stat(filepath.Join(root, commands.StateDir, "noop-stamp.json")); err != nil {
		t.Fatalf("no stamp after a no-op apply: %v", err)
	}
	f := &fakeExec{}
	code, out, errs := runLauncher(t, f, "apply", spec, "-root", root)
	if code != 0 || f.path != "" || out+"\x00"+errs != outputs[1] {
		t.Fatalf("no-op apply: exit %d, ran %q\n%s\n%s\nwant\n%s", code, f.path, out, errs, outputs[1])
	}
	// Another command line, another build, a changed file: the full program.
	for _, name := range []string{"-q", "other version", "edited file"} {
		args := []string{"apply", spec, "-root", root}
		l := launcher{build: testBuild, argv0: "jitsi-agent"}
		switch name {
		case "-q":
			args = append(args, "-q")
		case "other version":
			l.build.Commit = "fedcba9876543210"
		case "edited file":
			if err := os.WriteFile(filepath.Join(root, "etc/jitsi/videobridge/jvb.conf"), []byte("edited\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		f := &fakeExec{}
		l.exec = f.exec
		var o, e bytes.Buffer
		if code := l.run(args, nil, &o, &e); code != 1 || f.path != filepath.Join(dir, fullProgram) || o.Len() != 0 {
			t.Errorf("%s: exit %d, ran %q, printed %q", name, code, f.path, o.String())
		}
	}
}
