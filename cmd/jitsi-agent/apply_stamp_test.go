package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/stamp"
)

// TestNoopStampNeverHidesAChange: a file-only apply that changed nothing
// leaves a stamp, and the next identical apply is answered from it (same
// output, exit 0); but a hand edit, a new environment value or a removed
// secret each take the full path and are applied.
func TestNoopStampNeverHidesAChange(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	root := t.TempDir()
	spec := "../../examples/meet.hcl"
	stampPath := filepath.Join(root, "var/lib/jitsi-agent", stamp.Name)
	conf := filepath.Join(root, "etc/prosody/conf.avail/meet.example.com.cfg.lua")
	apply := func(what string) (string, string) {
		t.Helper()
		code, out, errs := runCLI(t, "apply", spec, "--root", root)
		if code != exitOK {
			t.Fatalf("%s: apply: %d\n%s%s", what, code, out, errs)
		}
		return out, errs
	}
	apply("first")
	if _, err := os.Stat(stampPath); err == nil {
		t.Fatal("an apply that wrote files left a no-op stamp")
	}
	out, errs := apply("no-op")
	if _, err := os.Stat(stampPath); err != nil {
		t.Fatalf("no stamp after a no-op apply: %v", err)
	}
	// Answered from the stamp: what it replays is what it holds (marked
	// here to tell it from a full run).
	b, err := os.ReadFile(stampPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(cliSecret)) {
		t.Fatal("the stamp holds the app secret")
	}
	s, err := stamp.Load(root, "/var/lib/jitsi-agent")
	if err != nil {
		t.Fatal(err)
	}
	if s.Stdout != out || s.Stderr != errs {
		t.Fatalf("stamp output %q %q, the apply printed %q %q", s.Stdout, s.Stderr, out, errs)
	}
	if err := stamp.Write(root, "/var/lib/jitsi-agent", s, out+"(from the stamp)\n", errs); err != nil {
		t.Fatal(err)
	}
	if out2, errs2 := apply("stamped no-op"); out2 != out+"(from the stamp)\n" || errs2 != errs {
		t.Fatalf("not answered from the stamp:\n%s%s", out2, errs2)
	}

	// A hand edit of a managed file is put back.
	want, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, append(want, "-- edited\n"...), 0o640); err != nil {
		t.Fatal(err)
	}
	if out, _ := apply("after a hand edit"); strings.Contains(out, "(from the stamp)") {
		t.Fatal("a hand edit was answered from the stamp")
	}
	if got, _ := os.ReadFile(conf); !bytes.Equal(got, want) {
		t.Fatal("the hand edit was not put back")
	}

	// A new value of an environment variable the spec reads is rendered.
	apply("no-op again") // records a fresh stamp
	const other = "0f7d2a6c4e8b1d3f5a7c9e1b3d5f7a9c2e4b6d8f"
	t.Setenv("JITSI_APP_SECRET", other)
	apply("new app secret")
	if got, _ := os.ReadFile(conf); !bytes.Contains(got, []byte(other)) {
		t.Fatal("the new app secret was not applied")
	}

	// A run that writes anything, even only the record (the manifest, here
	// rebuilt because it was lost), leaves no stamp: the next one would
	// not print the same.
	manifestPath := filepath.Join(root, "var/lib/jitsi-agent/manifest.json")
	for _, p := range []string{stampPath, manifestPath} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	apply("manifest lost")
	if _, err := os.Stat(manifestPath); err != nil {
		t.Fatalf("the manifest was not written again: %v", err)
	}
	if _, err := os.Stat(stampPath); err == nil {
		t.Fatal("a run that rewrote the manifest left a stamp")
	}
	apply("no-op after the manifest")
	if _, err := os.Stat(stampPath); err != nil {
		t.Fatalf("no stamp after a no-op apply: %v", err)
	}

	// A removed generated secret is generated again.
	apply("no-op again")
	secret := filepath.Join(root, "var/lib/jitsi-agent/secrets/jvb_password")
	if err := os.Remove(secret); err != nil {
		t.Fatal(err)
	}
	apply("secret removed")
	if _, err := os.Stat(secret); err != nil {
		t.Fatalf("the removed secret was not generated again: %v", err)
	}
}
