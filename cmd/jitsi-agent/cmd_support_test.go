package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSupportBundle runs support-bundle on the example against a rendered
// tree and greps the archive for every form of every secret.
func TestSupportBundle(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	root := t.TempDir()
	if code, _, errs := runCLI(t, "apply", "../../examples/meet.hcl", "-root", root, "-no-reload", "-q"); code != exitOK {
		t.Fatalf("apply: %d %s", code, errs)
	}
	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	code, o, errs := runCLI(t, "support-bundle", "../../examples/meet.hcl", "-root", root, "-out", out)
	if code != exitOK || !strings.Contains(o, "Wrote "+out) {
		t.Fatalf("support-bundle: %d %s %s", code, o, errs)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("archive: %v %v", st, err)
	}
	f, _ := os.Open(out)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var all strings.Builder
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		_, name, _ := strings.Cut(h.Name, "/")
		names[name] = true
		b, _ := io.ReadAll(tr)
		all.Write(b)
	}
	// The generated internal secrets of the tree's state directory too.
	secrets := []string{cliSecret, cliAPIKey}
	sd, _ := filepath.Glob(filepath.Join(root, "var/lib/jitsi-agent/secrets/*"))
	for _, p := range sd {
		if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) >= 8 {
			secrets = append(secrets, strings.TrimSpace(string(b)))
		}
	}
	if len(secrets) < 4 {
		t.Fatalf("expected generated secrets under %s, found %d", root, len(secrets)-2)
	}
	for _, s := range secrets {
		for _, form := range []string{s, base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)), hex.EncodeToString([]byte(s))} {
			if strings.Contains(all.String(), form) {
				t.Errorf("the bundle holds a secret (%.6s...)", form)
			}
		}
	}
	for _, n := range []string{"spec/meet.hcl", "rendered/etc/prosody/conf.avail/meet.example.com.cfg.lua", "rendered/srv/app/.env",
		"versions.txt", "doctor.json", "plan.txt", "journal/prosody.service.log", "journal/jitsi-agent.service.log"} {
		if !names[n] {
			t.Errorf("no %s in the bundle", n)
		}
	}
	if !strings.Contains(all.String(), `"checks"`) || !strings.Contains(all.String(), "jitsi-agent ") {
		t.Error("doctor report or versions missing")
	}
}
