package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSavedPlan: plan -out then apply FILE applies exactly that plan; a
// change to the spec, an input, the environment or the host since the plan
// makes apply refuse, name the change and write nothing.
func TestSavedPlan(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	ex := t.TempDir()
	if err := os.CopyFS(ex, os.DirFS("../../examples")); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(ex, "meet.hcl")
	root := t.TempDir()
	planFile := filepath.Join(t.TempDir(), "site.plan")

	code, out, errs := runCLI(t, "plan", spec, "-root", root, "-var", "domain=video.example.org", "-out", planFile)
	if code != exitChanges || !strings.Contains(errs, "saved the plan") {
		t.Fatalf("plan -out: %d\n%s\n%s", code, out, errs)
	}
	st, err := os.Stat(planFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("plan file: %v %v", st, err)
	}
	b, _ := os.ReadFile(planFile)
	if strings.Contains(string(b), cliSecret) || !strings.Contains(string(b), "video.example.org") {
		t.Fatalf("plan file content:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(root, "etc")); !os.IsNotExist(err) {
		t.Fatal("plan -out wrote to the root")
	}
	// Variables come from the plan; giving them again is refused.
	if code, _, errs := runCLI(t, "apply", planFile, "-var", "domain=x.example.org"); code != exitError || !strings.Contains(errs, "-var cannot be combined") {
		t.Errorf("apply PLAN -var: %d %s", code, errs)
	}
	code, out, errs = runCLI(t, "apply", planFile, "-q")
	if code != exitOK {
		t.Fatalf("apply PLAN: %d\n%s\n%s", code, out, errs)
	}
	conf := filepath.Join(root, "etc/prosody/conf.avail/video.example.org.cfg.lua")
	if _, err := os.Stat(conf); err != nil {
		t.Fatalf("the plan's -var was not applied: %v", err)
	}

	stale := func(t *testing.T, change func(), want string) {
		t.Helper()
		if code, out, errs := runCLI(t, "plan", spec, "-root", root, "-var", "domain=video.example.org", "-out", planFile); code == exitError {
			t.Fatalf("plan -out on the applied host: %d %s %s", code, out, errs)
		}
		before, _ := os.ReadFile(conf)
		change()
		code, _, errs := runCLI(t, "apply", planFile, "-q")
		if code != exitError || !strings.Contains(errs, "is stale; nothing was changed") || !strings.Contains(errs, want) {
			t.Errorf("stale plan (%s): exit %d\n%s", want, code, errs)
		}
		if after, _ := os.ReadFile(conf); string(after) != string(before) {
			t.Error("a stale plan changed a file")
		}
	}
	// An up-to-date plan applies cleanly.
	if code, _, _ := runCLI(t, "plan", spec, "-root", root, "-var", "domain=video.example.org", "-out", planFile); code != exitOK {
		t.Fatal("plan after apply is not clean")
	}
	if code, _, errs := runCLI(t, "apply", planFile, "-q"); code != exitOK {
		t.Fatalf("apply of a clean plan: %s", errs)
	}
	stale(t, func() {
		s, _ := os.ReadFile(spec)
		os.WriteFile(spec, append(s, []byte("\n# edited\n")...), 0o644)
	}, "spec input "+spec+" changed")
	stale(t, func() {
		tmpl := filepath.Join(ex, "templates", "backend.env.tmpl")
		s, _ := os.ReadFile(tmpl)
		os.WriteFile(tmpl, append(s, '\n'), 0o644)
	}, "backend.env.tmpl changed")
	stale(t, func() { t.Setenv("JITSI_APP_SECRET", cliSecret+"-rotated") }, "environment variable JITSI_APP_SECRET has a different value")
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	stale(t, func() {
		os.WriteFile(filepath.Join(root, "etc/jitsi/jicofo/jicofo.conf"), []byte("edited by hand\n"), 0o640)
	}, "host file /etc/jitsi/jicofo/jicofo.conf changed on the host")
	if b, _ := os.ReadFile(planFile); strings.Contains(string(b), cliSecret) {
		t.Error("secret in the plan file")
	}
}
