package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const cliSecret = "62c7c197b09d805440924d1152a2b30dc95ee607"

// cliAPIKey is the example spec's JOIN_API_KEY (TestMain exports it).
const cliAPIKey = "ca42b19594f381266354d35f958c81355fea73cd"

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateExample(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	code, out, errs := runCLI(t, "validate", "../../examples/meet.hcl")
	if code != exitOK || !strings.Contains(out, "Success!") {
		t.Fatalf("code %d\nstdout %s\nstderr %s", code, out, errs)
	}
	if strings.Contains(out+errs, cliSecret) {
		t.Fatal("secret printed")
	}
}

func TestRenderWritesTreeAndIsStable(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	dir := t.TempDir()
	code, _, errs := runCLI(t, "render", "../../examples/meet.hcl", "--out", dir, "-q")
	if code != exitOK {
		t.Fatalf("render failed: %s", errs)
	}
	conf := filepath.Join(dir, "etc/prosody/conf.avail/meet.example.com.cfg.lua")
	first, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(first, []byte(cliSecret)) {
		t.Error("prosody config lacks the app secret")
	}
	if l, err := os.Readlink(filepath.Join(dir, "etc/prosody/conf.d/meet.example.com.cfg.lua")); err != nil || l != "../conf.avail/meet.example.com.cfg.lua" {
		t.Errorf("conf.d link: %q %v", l, err)
	}
	st, _ := os.Stat(conf)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("prosody config mode %o", st.Mode().Perm())
	}
	env, err := os.ReadFile(filepath.Join(dir, "srv/app/.env"))
	if err != nil || !strings.Contains(string(env), "JITSI_JWT_EXPIRATION=7200") || !strings.Contains(string(env), "JITSI_SERVER_URL=https://meet.example.com") {
		t.Errorf(".env: %s %v", env, err)
	}
	// Generated internal secrets are reused: a second render is identical.
	if code, _, errs := runCLI(t, "render", "../../examples/meet.hcl", "--out", dir, "-q"); code != exitOK {
		t.Fatal(errs)
	}
	second, _ := os.ReadFile(conf)
	if !bytes.Equal(first, second) {
		t.Error("second render differs: internal secrets were regenerated")
	}
}

func TestBadSpecWritesNothing(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	spec := filepath.Join(dir, "bad.hcl")
	os.WriteFile(spec, []byte("domain = \"meet.example.com\"\nauth \"jwt\" {\n  app_id = \"a\"\n  app_secret = env(\"JITSI_AGENT_CLI_UNSET\")\n}\n"), 0o644)
	code, _, errs := runCLI(t, "render", spec, "--out", out)
	if code != exitError {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errs, "bad.hcl:4:") || !strings.Contains(errs, "JITSI_AGENT_CLI_UNSET is not set") || !strings.Contains(errs, "nothing was written") {
		t.Errorf("stderr:\n%s", errs)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("output directory was created for a bad spec")
	}
}

func TestTemplateErrorWritesNothing(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.tmpl"), []byte("{{ .NoSuchField }}\n"), 0o644)
	spec := filepath.Join(dir, "s.hcl")
	os.WriteFile(spec, []byte(`domain = "meet.example.com"
auth "jwt" {
  app_id = "a"
  app_secret = env("JITSI_APP_SECRET")
}
template "x" {
  source = "x.tmpl"
  destination = "/srv/x"
}
`), 0o644)
	out := filepath.Join(dir, "out")
	code, _, errs := runCLI(t, "render", spec, "--out", out)
	if code != exitError || !strings.Contains(errs, "NoSuchField") {
		t.Fatalf("exit %d stderr %s", code, errs)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("output written despite a template error")
	}
}

func TestFmt(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.hcl")
	os.WriteFile(p, []byte("domain=\"meet.example.com\"\n"), 0o600)
	if code, out, _ := runCLI(t, "fmt", "-check", p); code != exitError || !strings.Contains(out, "s.hcl") {
		t.Fatalf("-check on unformatted file: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, "fmt", p); code != exitOK {
		t.Fatal(errs)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "domain = \"meet.example.com\"\n" {
		t.Errorf("formatted: %q", b)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode not kept: %o", st.Mode().Perm())
	}
	if code, _, _ := runCLI(t, "fmt", "-check", p); code != exitOK {
		t.Error("formatted file reported")
	}
	os.WriteFile(p, []byte("domain = \n"), 0o600)
	if code, _, errs := runCLI(t, "fmt", p); code != exitError || !strings.Contains(errs, "not changed") {
		t.Errorf("broken file: %d %s", code, errs)
	}
	if b, _ := os.ReadFile(p); string(b) != "domain = \n" {
		t.Error("broken file was rewritten")
	}
}

func TestUnknownCommandSuggests(t *testing.T) {
	code, _, errs := runCLI(t, "rendr")
	if code != exitError || !strings.Contains(errs, `Did you mean "render"`) {
		t.Errorf("%d %s", code, errs)
	}
}

// TestPlanApplyRoundTrip: plan on an empty root reports changes (exit 2),
// apply writes them, plan is then clean (exit 0); a deferred restart on
// record makes plan report a pending change again.
func TestPlanApplyRoundTrip(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	root := t.TempDir()
	spec := "../../examples/meet.hcl"
	if code, out, errs := runCLI(t, "plan", spec, "--root", root); code != exitChanges || !strings.Contains(out, "Plan:") {
		t.Fatalf("plan on empty root: %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/jitsi-agent")); !os.IsNotExist(err) {
		t.Fatal("plan wrote the state directory")
	}
	code, out, errs := runCLI(t, "apply", spec, "--root", root)
	if code != exitOK {
		t.Fatalf("apply: %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out+errs, cliSecret) {
		t.Fatal("apply printed the secret")
	}
	if !strings.Contains(errs, "not reloading (--root is not /)") {
		t.Errorf("no reload notice under --root:\n%s", errs)
	}
	if code, out, errs := runCLI(t, "plan", spec, "--root", root); code != exitOK || !strings.Contains(out, "No changes") {
		t.Fatalf("plan after apply: %d\n%s%s", code, out, errs)
	}
	if code, out, _ := runCLI(t, "apply", spec, "--root", root); code != exitOK || strings.Contains(out, "update ") || strings.Contains(out, "create ") {
		t.Fatalf("second apply was not a no-op: %d\n%s", code, out)
	}
	deferred := `{"version":1,"units":[{"unit":"jicofo.service","component":"jicofo","since":"2026-11-25T10:00:00Z","reason":"jicofo.conf changed"}]}`
	os.WriteFile(filepath.Join(root, "var/lib/jitsi-agent/deferred-restarts.json"), []byte(deferred), 0o600)
	code, out, _ = runCLI(t, "plan", spec, "--root", root)
	if code != exitChanges || !strings.Contains(out, "Deferred restart pending: jicofo.service") {
		t.Fatalf("deferred restart not shown: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "plan", spec, "--root", root, "--json")
	if code != exitChanges || !strings.Contains(out, `"pending_restarts"`) || !strings.Contains(out, `"unit": "jicofo.service"`) {
		t.Fatalf("deferred restart not in JSON: %d\n%s", code, out)
	}
}

// TestRootMustBeExplicit: an empty --root (an unset $ROOT in a script) is
// refused rather than meaning "/", and render never writes over /.
func TestRootMustBeExplicit(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	for _, args := range [][]string{
		{"apply", "../../examples/meet.hcl", "--root", ""},
		{"plan", "../../examples/meet.hcl", "--root", ""},
		{"rollback", "../../examples/meet.hcl", "--root", ""},
		{"render", "../../examples/meet.hcl", "--out", "/"},
	} {
		code, _, errs := runCLI(t, args...)
		if code != exitError || !strings.Contains(errs, "Error: --") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	if code, _, errs := runCLI(t, "plan", "../../examples/meet.hcl", "--root", file); code != exitError || !strings.Contains(errs, "not a directory") {
		t.Errorf("--root FILE: %d %q", code, errs)
	}
	// A link to a test directory is followed: the writes land in the target.
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(dir, link)
	if code, _, errs := runCLI(t, "apply", "../../examples/meet.hcl", "--root", link, "-q"); code != exitOK {
		t.Fatalf("apply via a root link: %s", errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/jitsi/jicofo/jicofo.conf")); err != nil {
		t.Error("files did not land in the link's target")
	}
}
