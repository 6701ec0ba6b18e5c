package execpath

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(Env, dir)
	if _, err := Find("jitsi-agent-x"); err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), Env) {
		t.Fatalf("missing program: %v", err)
	}
	// Not executable: not taken.
	p := filepath.Join(dir, "jitsi-agent-x")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Find("jitsi-agent-x"); err == nil {
		t.Fatal("took a file that is not executable")
	}
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	// Found through a symlinked directory: the real path comes back (what
	// the program's os.Executable reports once it runs).
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	t.Setenv(Env, link)
	got, err := Find("jitsi-agent-x")
	real, _ := filepath.EvalSymlinks(p)
	if err != nil || got != real {
		t.Fatalf("Find = %q, %v; want %q", got, err, real)
	}
}

// Without the variable: next to the test binary, then ../libexec/jitsi-agent.
func TestFindPlaces(t *testing.T) {
	t.Setenv(Env, "")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Find("jitsi-agent-no-such-program")
	dir := filepath.Dir(exe)
	if real, e := filepath.EvalSymlinks(exe); e == nil {
		dir = filepath.Dir(real)
	}
	if err == nil || !strings.Contains(err.Error(), dir+", "+filepath.Join(dir, "..", "libexec", "jitsi-agent")) {
		t.Fatalf("places: %v", err)
	}
}
