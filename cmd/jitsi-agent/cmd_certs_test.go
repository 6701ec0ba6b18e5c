package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specpkg "github.com/jitsi-agent/jitsi-agent/internal/spec"

	"github.com/jitsi-agent/jitsi-agent/internal/certs"
)

func TestCertsCommand(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	src, err := os.ReadFile("../../examples/meet.hcl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := strings.Replace(string(src), "tls {\n", "tls {\n  acme {\n    email = \"ops@example.com\"\n    staging = true\n  }\n", 1)
	if spec == string(src) {
		t.Fatal("could not add an acme block to the example")
	}
	tmpl, err := filepath.Abs("../../examples/templates")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tmpl, filepath.Join(dir, "templates")); err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(dir, "meet.hcl")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")

	// Nothing deployed yet: exit 2, "not deployed".
	code, out, errs := runCLI(t, "certs", specPath, "--root", root)
	if code != exitChanges || !strings.Contains(out, "not deployed yet") || !strings.Contains(out, "acme-staging") {
		t.Fatalf("code %d\n%s\n%s", code, out, errs)
	}

	// Placeholder deployed and a recorded failure.
	res := specpkg.Load(specPath, specpkg.Options{})
	d, ok := res.Deployment, !res.HasErrors()
	if !ok {
		t.Fatal("spec")
	}
	mat, err := certs.Load(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range certs.Files(d, mat) {
		p := filepath.Join(root, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Content, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
	state := certs.State{DirectoryURL: certs.DirectoryURL(d), Certificates: []certs.CertStatus{{
		Name: d.Domain, KeyType: certs.ECDSA, LastError: "ACME server unreachable: connection refused",
		LastErrorAt: time.Now().Add(-time.Minute), NextAttempt: time.Now().Add(time.Minute)}}}
	b, _ := json.Marshal(state)
	if err := os.MkdirAll(filepath.Dir(certs.StatePath(d, root)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certs.StatePath(d, root), b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, "certs", specPath, "--root", root)
	if code != exitChanges || !strings.Contains(out, "self-signed placeholder") ||
		!strings.Contains(out, "connection refused") || !strings.Contains(out, "next attempt") {
		t.Fatalf("code %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "certs", specPath, "--root", root, "--json")
	var rep certs.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitChanges {
		t.Fatalf("json: %v (code %d)\n%s", err, code, out)
	}
	if len(rep.Certificates) != 1 || !rep.Certificates[0].Placeholder || rep.Certificates[0].LastError == "" {
		t.Errorf("report %+v", rep)
	}
	if strings.Contains(out, "PRIVATE KEY") {
		t.Error("key material in output")
	}
}
