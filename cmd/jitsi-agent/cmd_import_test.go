package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/adopt/adopttest"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// TestImportThenPlan: render the example into a root, import it back, and
// plan the imported spec against the same root: every file plan would touch
// is named in the import report, and a second import refuses to overwrite.
func TestImportThenPlan(t *testing.T) {
	useImportProgram(t)
	t.Setenv("JITSI_APP_SECRET", "340b3f077c121830a38d8bd60a05072714f6e50e")
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	var out, errb bytes.Buffer
	if code := run([]string{"render", "../../examples/meet.hcl", "-out", root}, nil, &out, &errb); code != exitOK {
		t.Fatalf("render: %d %s", code, errb.String())
	}
	specPath := filepath.Join(dir, "jitsi.hcl")
	out.Reset()
	errb.Reset()
	if code := run([]string{"import", "-root", root, "-out", specPath}, nil, &out, &errb); code != exitOK {
		t.Fatalf("import: %d %s", code, errb.String())
	}
	report := out.String()
	if !strings.Contains(report, "Wrote "+specPath) {
		t.Fatalf("report: %s", report)
	}
	if b, _ := os.ReadFile(specPath); bytes.Contains(b, []byte("340b3f077c121830a38d8bd60a05072714f6e50e")) {
		t.Fatal("app secret inline in the spec")
	}
	out.Reset()
	errb.Reset()
	code := run([]string{"plan", specPath, "-root", root, "--json"}, nil, &out, &errb)
	if code != exitOK && code != exitChanges {
		t.Fatalf("plan: %d %s", code, errb.String())
	}
	var plan struct {
		Changes []struct {
			Path string `json:"path"`
		} `json:"changes"`
	}
	if err := json.Unmarshal(out.Bytes(), &plan); err != nil {
		t.Fatalf("plan json: %v\n%s", err, out.String())
	}
	for _, c := range plan.Changes {
		if strings.Contains(c.Path, "/certs/") {
			continue // TLS material is not configuration; render wrote placeholders
		}
		if !strings.Contains(report, c.Path) {
			t.Errorf("plan changes %s, which the import report does not name\nreport:\n%s", c.Path, report)
		}
	}
	// A second import does not overwrite the spec.
	errb.Reset()
	if code := run([]string{"import", "-root", root, "-out", specPath}, nil, &out, &errb); code != exitError || !strings.Contains(errb.String(), "exists") {
		t.Errorf("second import: %d %s", code, errb.String())
	}
	// Bad input: an unparsable Prosody file is named with its line.
	cfg := filepath.Join(root, "etc/prosody/conf.avail/meet.example.com.cfg.lua")
	if err := os.WriteFile(cfg, []byte("VirtualHost \"meet.example.com\"\n  authentication = = 1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run([]string{"import", "-root", root, "-out", filepath.Join(dir, "x.hcl")}, nil, &out, &errb); code != exitError || !strings.Contains(errb.String(), "meet.example.com.cfg.lua") || !strings.Contains(errb.String(), "line:2") && !strings.Contains(errb.String(), ":2") {
		t.Errorf("bad prosody file: %d %s", code, errb.String())
	}
}

// TestImportQuickInstallThenPlan: the hand-edited quick install (with its
// certificates), imported: every file plan would touch is in the report.
func TestImportQuickInstallThenPlan(t *testing.T) {
	useImportProgram(t)
	openssl := testenv.LookPath(t, "openssl", "apt-get install openssl")
	root := adopttest.HandEdited(t)
	adopttest.Certificates(t, root, openssl)
	dir := t.TempDir()
	specPath := filepath.Join(dir, "jitsi.hcl")
	var out, errb bytes.Buffer
	if code := run([]string{"import", "-root", root, "-out", specPath}, nil, &out, &errb); code != exitOK {
		t.Fatalf("import: %d %s", code, errb.String())
	}
	report := out.String()
	out.Reset()
	errb.Reset()
	code := run([]string{"plan", specPath, "-root", root, "-host", adopttest.Nickname, "--json"}, nil, &out, &errb)
	if code != exitChanges {
		t.Fatalf("plan: %d %s", code, errb.String())
	}
	var plan struct {
		Changes []struct {
			Path string `json:"path"`
			Kind string `json:"kind"`
		} `json:"changes"`
	}
	if err := json.Unmarshal(out.Bytes(), &plan); err != nil {
		t.Fatalf("plan json: %v\n%s", err, out.String())
	}
	if len(plan.Changes) == 0 {
		t.Fatal("plan shows no change on a quick install; the report says otherwise")
	}
	for _, c := range plan.Changes {
		if !strings.Contains(report, "\n"+c.Path+"\n") {
			t.Errorf("plan changes %s (%s), which the import report does not name", c.Path, c.Kind)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", report)
	}
}

// useImportProgram points JITSI_AGENT_EXEC_PATH at the directory
// agentBinary built jitsi-agent-import into, for this test (the test
// binary has no jitsi-agent-import next to it).
func useImportProgram(t *testing.T) {
	t.Helper()
	t.Setenv("JITSI_AGENT_EXEC_PATH", filepath.Dir(agentBinary(t)))
}

// TestImportWithoutProgram: without jitsi-agent-import the command says
// where it looked and how to get it, writes nothing and exits 1; -out is
// still checked first (a usage error).
func TestImportWithoutProgram(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("JITSI_AGENT_EXEC_PATH", dir)
	specPath := filepath.Join(dir, "jitsi.hcl")
	var out, errb bytes.Buffer
	code := run([]string{"import", "-root", dir, "-out", specPath}, nil, &out, &errb)
	if code != exitError || !strings.Contains(errb.String(), "jitsi-agent-import") || !strings.Contains(errb.String(), dir) || !strings.Contains(errb.String(), "Nothing was written") {
		t.Fatalf("import without the program: %d\n%s", code, errb.String())
	}
	if _, err := os.Stat(specPath); err == nil {
		t.Fatal("import wrote the spec")
	}
	errb.Reset()
	if code := run([]string{"import", "-root", dir}, nil, &out, &errb); code != exitError || !strings.Contains(errb.String(), "-out SPEC") {
		t.Fatalf("import without -out: %d\n%s", code, errb.String())
	}
}
