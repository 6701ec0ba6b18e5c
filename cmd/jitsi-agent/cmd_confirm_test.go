package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestApplyConfirmRefusedBeforeAnyChange(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	dir := t.TempDir()
	off := filepath.Join(dir, "off.hcl")
	if err := os.WriteFile(off, []byte("domain = \"meet.example.com\"\nauth \"anonymous\" {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"apply", off, "-confirm", "2m", "-root", root}, "firewall is off"},
		{[]string{"apply", "../../examples/meet.hcl", "-confirm", "2m", "-root", root}, "--root is not /"},
		{[]string{"apply", "../../examples/meet.hcl", "-confirm", "5s", "-root", root}, "10s to 1h"},
	} {
		code, _, errs := runCLI(t, c.args...)
		if code != exitError || !strings.Contains(errs, c.want) || !strings.Contains(errs, "Nothing was changed") {
			t.Errorf("%v: code %d, stderr %s", c.args, code, errs)
		}
		if _, err := os.Stat(root); err == nil {
			t.Fatalf("%v wrote under the root", c.args)
		}
	}
}

func TestConfirmWithNothingPending(t *testing.T) {
	dir := t.TempDir()
	sp := filepath.Join(dir, "meet.hcl")
	src := "domain = \"meet.example.com\"\nauth \"anonymous\" {}\nstate_dir = \"" + filepath.Join(dir, "state") + "\"\nfirewall {}\n"
	if err := os.WriteFile(sp, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, "confirm", sp)
	if code != exitError || !strings.Contains(errs, "no firewall change is waiting for confirmation") {
		t.Fatalf("code %d stderr %s", code, errs)
	}
	// A revert that already happened is reported as such.
	if err := os.MkdirAll(filepath.Join(dir, "state/firewall"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state/firewall/reverted.json"), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "confirm", sp)
	if code != exitError || !strings.Contains(errs, "reverted") || !strings.Contains(errs, "-confirm 2m") {
		t.Fatalf("code %d stderr %s", code, errs)
	}
}
