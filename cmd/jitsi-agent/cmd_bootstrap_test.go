package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The dry run prints every step, in order, changes nothing and never
// prints the app secret; an invalid spec changes nothing either.
func TestBootstrapDryRun(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	code, out, errs := runCLI(t, "bootstrap", "-dry-run", "../../examples/meet.hcl")
	if code != exitOK {
		t.Fatalf("code %d\n%s\n%s", code, out, errs)
	}
	last := -1
	for _, step := range []string{"1. preflight", "jitsi key", "jitsi repository", "package lists", "debconf answers", "packages", "lua modules", "apply", "daemon", "verify"} {
		i := strings.Index(out, step)
		if i <= last {
			t.Errorf("step %q missing or out of order:\n%s", step, out)
		}
		last = i
	}
	if strings.Contains(out+errs, cliSecret) {
		t.Error("the dry run printed the app secret")
	}

	// The daemon's unit passes no -host or -var; bootstrap takes none
	// either, so it applies what the daemon will keep.
	if code, out, errs := runCLI(t, "bootstrap", "-dry-run", "-host", "meet1", "../../examples/meet.hcl"); code == exitOK {
		t.Errorf("bootstrap -host must be refused:\n%s%s", out, errs)
	}

	bad := filepath.Join(t.TempDir(), "meet.hcl")
	if err := os.WriteFile(bad, []byte("domain = \"meet.example.com\"\nauth \"anonymous\" {}\nbootstrap {\n  jitsi_repo { key_fingerprint = \"2DC1389C\" }\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "bootstrap", bad)
	if code != exitError || !strings.Contains(errs, "meet.hcl:4") || !strings.Contains(errs, "nothing was changed") {
		t.Errorf("short fingerprint: code %d\n%s", code, errs)
	}
}
