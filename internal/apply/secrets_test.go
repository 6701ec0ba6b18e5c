package apply

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// secretForms are the raw, base64 and hex forms of v a leak would show.
func secretForms(v string) []string {
	forms := []string{v, hex.EncodeToString([]byte(v)), strings.ToUpper(hex.EncodeToString([]byte(v)))}
	for shift := 0; shift < 3; shift++ {
		b := append([]byte(strings.Repeat("x", shift)), v...)
		e := base64.StdEncoding.EncodeToString(b)
		// The part of the encoding that depends only on v.
		forms = append(forms, e[4:len(e)-4])
	}
	return forms
}

// TestCheckOutputHidesEncodedSecrets: a failing check command that prints
// the staged file raw, as base64 and as hex never shows the secret in any
// of those forms.
func TestCheckOutputHidesEncodedSecrets(t *testing.T) {
	e := newEnv(t)
	e.opts.NoTools = false
	secret := "canary-SECRET-7f3a9c0e51d24b6a8e9f"
	content := "APP_ID=meet\nJITSI_APP_SECRET='" + secret + "'\nOTHER=1\n"
	set := &render.Set{Files: []render.File{{Path: "/srv/app/.env", Kind: render.KindFile, Mode: 0o640, Sensitive: true,
		Content: []byte(content), Component: "template:env",
		Check: "cat {{.Path}}; base64 {{.Path}}; base64 -w0 {{.Path}}; echo; xxd -p {{.Path}}; od -An -tx1 {{.Path}} | tr -d ' \\n'; echo; printf %s '" + secret + "' | base64; echo 'line 2: bad value'; exit 1"}},
		Redact: []string{secret}}
	_, err := Apply(context.Background(), set, e.opts)
	var ce *CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("want a CheckError, got %v", err)
	}
	msg := err.Error()
	for _, f := range secretForms(secret) {
		if strings.Contains(msg, f) {
			t.Errorf("check output leaks %q:\n%s", f, msg)
		}
	}
	if !strings.Contains(msg, "line 2: bad value") || !strings.Contains(msg, "APP_ID=meet") {
		t.Errorf("check output lost its useful lines:\n%s", msg)
	}
}

// TestValidatorScratchUnderState: the validators' scratch directories are
// under the 0700 state directory and removed at the start and end of a run
// (a killed run's leftovers held secret-bearing copies).
func TestValidatorScratchUnderState(t *testing.T) {
	e := newEnv(t)
	state := e.real(stateDir)
	os.MkdirAll(filepath.Join(state, CheckDir, "nginx-left"), 0o700)
	os.WriteFile(filepath.Join(state, CheckDir, "nginx-left", "site.conf"), []byte("secret"), 0o600)
	r := &runner{state: state}
	// A run killed during prosodyctl's check left its directory in the
	// temporary directory, and the marker that announces it.
	left := filepath.Join(os.TempDir(), r.prosodyPrefix()+"killed")
	os.MkdirAll(left, 0o700)
	os.WriteFile(filepath.Join(state, CheckDir, inTempMarker), nil, 0o600)
	other := filepath.Join(os.TempDir(), "jitsi-agent-prosody-check-0123456789ab-other-root")
	os.MkdirAll(other, 0o700)
	t.Cleanup(func() { os.RemoveAll(left); os.RemoveAll(other) })

	seen := ""
	e.opts.StepHook = func(step, _ string) {
		if step == "check" && seen == "" {
			if _, err := os.Stat(filepath.Join(state, CheckDir, "nginx-left")); err == nil {
				seen = "leftover still there during the run"
			} else {
				seen = "ok"
			}
		}
	}
	e.apply(sampleSet("a"))
	if seen != "ok" {
		t.Fatalf("during the run: %q", seen)
	}
	for _, p := range []string{filepath.Join(state, CheckDir), left} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived the run", p)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another state directory's scratch dir was removed: %v", err)
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v %v", fi.Mode().Perm(), err)
	}
}

// TestProsodyTempLeavesMarkerFirst: under root with a prosody user,
// prosodyctl's scratch directory goes to the temporary directory, and the
// marker that makes the next run look for it there exists before it does.
func TestProsodyTempLeavesMarkerFirst(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("prosodyctl's scratch directory is in the temporary directory only under root")
	}
	if _, err := user.Lookup("prosody"); err != nil {
		testenv.Unavailable(t, "no prosody user", "apt-get install prosody")
	}
	state := t.TempDir()
	r := &runner{state: state}
	dir, err := r.prosodyTemp()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if filepath.Dir(dir) != filepath.Clean(os.TempDir()) {
		t.Fatalf("scratch directory %s is not in the temporary directory", dir)
	}
	if _, err := os.Stat(filepath.Join(state, CheckDir, inTempMarker)); err != nil {
		t.Fatalf("no marker: %v", err)
	}
	if err := r.removeCheckDirs(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(state, CheckDir)} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived removeCheckDirs: %v", p, err)
		}
	}
}

func TestMaskEncodedKeepsOrdinaryText(t *testing.T) {
	src := []byte("JITSI_APP_SECRET=abcdefghijklmnopqrstuvwxyz012345\n")
	out := "nginx: [emerg] unknown directive \"muc_max_occupants\" in /etc/nginx/sites-enabled/meet.conf:12\n"
	if got := maskEncoded(out, [][]byte{src}); got != out {
		t.Fatalf("ordinary output changed:\n%s", got)
	}
}

// TestSwappedParentCannotRedirect: a parent directory swapped for a symlink
// after staging (a local attacker racing the apply) does not redirect the
// rename, nor leave temporary files, into the symlink's target.
func TestSwappedParentCannotRedirect(t *testing.T) {
	e := newEnv(t)
	victim := t.TempDir()
	set := &render.Set{Files: []render.File{
		{Path: "/etc/app/a.conf", Kind: render.KindFile, Mode: 0o644, Content: []byte("a\n"), Component: "template:a"},
		{Path: "/srv/app/frontend/jitsi_config.dart", Kind: render.KindFile, Mode: 0o644,
			Content: []byte("const server = 'meet';\n"), Component: "template:flutter"}}}
	os.MkdirAll(e.real("/srv/app/frontend"), 0o755)
	swapped := false
	e.opts.StepHook = func(step, p string) {
		// After the directory was opened (and the plan checked the
		// parents), before the file is staged in it and renamed.
		if step == "dir" && strings.HasPrefix(p, "/srv/") && !swapped {
			swapped = true
			front := e.real("/srv/app/frontend")
			if err := os.Rename(front, front+".moved"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, front); err != nil {
				t.Fatal(err)
			}
		}
	}
	Apply(context.Background(), set, e.opts) // may succeed (into the moved directory) or fail; never into victim
	if !swapped {
		t.Fatal("the hook never ran")
	}
	ents, _ := os.ReadDir(victim)
	if len(ents) != 0 {
		var names []string
		for _, en := range ents {
			names = append(names, en.Name())
		}
		t.Fatalf("the apply wrote into the symlink's target: %v", names)
	}
	// Planted before the apply: refused outright.
	e2 := newEnv(t)
	os.MkdirAll(e2.real("/srv/app"), 0o755)
	os.Symlink(victim, e2.real("/srv/app/frontend"))
	if _, err := Apply(context.Background(), set, e2.opts); err == nil {
		t.Fatal("apply wrote under a symlinked parent")
	}
	if ents, _ := os.ReadDir(victim); len(ents) != 0 {
		t.Fatal("the refused apply left files in the symlink's target")
	}
}
