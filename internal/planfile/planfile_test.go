package planfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteReadIs(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.plan")
	in := &Plan{Recipe: Recipe{Spec: "/s.hcl", Root: "/", Vars: map[string]string{"a": "b"}},
		Fingerprint: Fingerprint{AgentVersion: "v1", Inputs: map[string]string{"/s.hcl": "file:1"}}}
	if err := Write(p, in); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %o", st.Mode().Perm())
	}
	if !Is(p) {
		t.Fatal("a saved plan is not recognised")
	}
	out, err := Read(p)
	if err != nil || out.Vars["a"] != "b" || out.AgentVersion != "v1" {
		t.Fatalf("%+v %v", out, err)
	}
	// Specs (HCL and JSON) are not plans.
	hclSpec := filepath.Join(dir, "s.hcl")
	os.WriteFile(hclSpec, []byte("domain = \"x\"\n"), 0o644)
	jsonSpec := filepath.Join(dir, "s.hcl.json")
	os.WriteFile(jsonSpec, []byte(`{"domain": "x"}`), 0o644)
	if Is(hclSpec) || Is(jsonSpec) || Is(filepath.Join(dir, "missing")) {
		t.Error("a spec taken for a plan")
	}
	os.WriteFile(p, []byte(`{"jitsi_agent_saved_plan": 99, "spec": "/s", "root": "/"}`), 0o600)
	if _, err := Read(p); err == nil || !strings.Contains(err.Error(), "format 99") {
		t.Errorf("future format: %v", err)
	}
	os.WriteFile(p, []byte(`{"jitsi_agent_saved_plan": 1, "spec": "/s", "root": "/", "surprise": 1}`), 0o600)
	if _, err := Read(p); err == nil {
		t.Error("unknown field accepted")
	}
}

func TestStale(t *testing.T) {
	was := Fingerprint{AgentVersion: "v1",
		Inputs:    map[string]string{"/s.hcl": "a", "/t.tmpl": "b"},
		Env:       map[string]string{"SECRET": "d1", "JITSI_AGENT_VAR_x": "unset"},
		HostFiles: map[string]string{"/etc/a": "absent", "/etc/b": "file:x"}}
	p := &Plan{Fingerprint: was}
	if why := p.Stale(was); why != nil {
		t.Fatalf("identical: %v", why)
	}
	now := Fingerprint{AgentVersion: "v2",
		Inputs:    map[string]string{"/s.hcl": "a2", "/u.tmpl": "c"},
		Env:       map[string]string{"SECRET": "d2", "JITSI_AGENT_VAR_x": "dx"},
		HostFiles: map[string]string{"/etc/a": "file:y", "/etc/b": "absent"}}
	got := strings.Join(p.Stale(now), "\n")
	for _, want := range []string{
		"made by jitsi-agent v1, this is v2",
		"spec input /s.hcl changed",
		"spec input /t.tmpl is no longer used",
		"spec input /u.tmpl is new since the plan",
		"environment variable SECRET has a different value",
		"environment variable JITSI_AGENT_VAR_x appeared",
		"host file /etc/a appeared",
		"host file /etc/b disappeared",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestEnvRecorderKeepsDigestsOnly(t *testing.T) {
	r := &EnvRecorder{Env: func(k string) (string, bool) { return "s3cret-value", k == "SET" }}
	r.Lookup("SET")
	r.Lookup("UNSET")
	d := r.Digests()
	if d["UNSET"] != "unset" || len(d["SET"]) != 64 || strings.Contains(d["SET"], "s3cret") {
		t.Errorf("%v", d)
	}
}

func TestFingerprints(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/a"), []byte("x"), 0o640)
	os.Symlink("a", filepath.Join(root, "etc/l"))
	os.MkdirAll(filepath.Join(root, "var/lib/ja/backups/1"), 0o700)
	os.WriteFile(filepath.Join(root, "var/lib/ja/manifest.json"), []byte("{}"), 0o600)
	os.WriteFile(filepath.Join(root, "var/lib/ja/backups/1/index.json"), []byte("{}"), 0o600)
	h, err := HostFiles(root, []string{"/etc/a", "/etc/l", "/etc/none"}, "/var/lib/ja")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h["/etc/a"], "file:640:") || h["/etc/l"] != "link:a" || h["/etc/none"] != "absent" ||
		!strings.HasPrefix(h["/var/lib/ja/manifest.json"], "file:600:") || len(h) != 4 {
		t.Errorf("%v", h)
	}
	h, err = HostFiles(root, nil, "/var/lib/other")
	if err != nil || h["/var/lib/other"] != "absent" {
		t.Errorf("no state dir: %v %v", h, err)
	}
	in, err := Inputs([]string{filepath.Join(root, "etc"), filepath.Join(root, "etc/a")})
	if err != nil || !strings.HasPrefix(in[filepath.Join(root, "etc")], "dir:") {
		t.Errorf("%v %v", in, err)
	}
}
