package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testSecret = "0123456789abcdef0123456789abcdef-test"

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func loadExample(t *testing.T, extraEnv map[string]string) *Result {
	t.Helper()
	e := map[string]string{"JITSI_APP_SECRET": testSecret}
	for k, v := range extraEnv {
		e[k] = v
	}
	return Load("../../examples/meet.hcl", Options{LookupEnv: env(e)})
}

func TestLoadExample(t *testing.T) {
	res := loadExample(t, nil)
	if res.HasErrors() {
		var b bytes.Buffer
		res.WriteDiagnostics(&b)
		t.Fatalf("example does not load:\n%s", b.String())
	}
	d := res.Deployment
	if d.Domain != "meet.example.com" || d.Host.Name != "meet1" {
		t.Errorf("domain/host: %q %q", d.Domain, d.Host.Name)
	}
	j := d.Auth.JWT
	if j == nil || j.AppID != "my-app-id" || j.AppSecret.Reveal() != testSecret || j.AppSecretInline {
		t.Fatalf("jwt: %+v", j)
	}
	if j.Lifetime != 2*time.Hour || j.Algorithm != "HS256" || !j.DomainVerification {
		t.Errorf("jwt defaults: %+v", j)
	}
	if got := d.Videobridge.StunServers; len(got) != 1 || got[0] != "meet.example.com:3478" {
		t.Errorf("stun default: %v", got)
	}
	if d.Services[Jicofo].Restart != RestartDefer || d.Services[Nginx].Restart != RestartImmediate {
		t.Errorf("service restart policies: %+v", d.Services)
	}
	if len(d.Templates) != 2 || d.Templates[0].Destination != "/srv/app/.env" || d.Templates[0].Mode != 0o640 {
		t.Errorf("templates: %+v", d.Templates)
	}
	if !filepath.IsAbs(d.Templates[0].Source) {
		t.Errorf("template source not resolved: %s", d.Templates[0].Source)
	}
	if d.JVBBreweryJID() != "JvbBrewery@internal.auth.meet.example.com" || d.FocusJID() != "focus@auth.meet.example.com" {
		t.Errorf("derived names: %s %s", d.JVBBreweryJID(), d.FocusJID())
	}
	if len(res.Inputs) < 3 {
		t.Errorf("inputs: %v", res.Inputs)
	}
}

func TestVariableOverrideByEnv(t *testing.T) {
	res := loadExample(t, map[string]string{VarEnvPrefix + "domain": "video.example.org"})
	if res.HasErrors() {
		t.Fatal(res.Summary())
	}
	if res.Deployment.Domain != "video.example.org" || res.Deployment.TLS.Certificate != "/etc/jitsi/meet/video.example.org.crt" {
		t.Errorf("override not applied: %s %s", res.Deployment.Domain, res.Deployment.TLS.Certificate)
	}
}

func TestJSONSyntaxEquivalent(t *testing.T) {
	dir := t.TempDir()
	js := `{
  "variable": {"d": {"default": "meet.example.com"}},
  "domain": "${var.d}",
  "auth": {"jwt": {"app_id": "app", "app_secret": "${env(\"S\")}", "guests": true}},
  "meeting": {"lobby": false, "max_participants": 10, "recording": {"enabled": true}},
  "service": {"jvb": {"restart": "defer"}}
}`
	p := filepath.Join(dir, "spec.hcl.json")
	if err := os.WriteFile(p, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	res := Load(p, Options{LookupEnv: env(map[string]string{"S": testSecret}), Hostname: func() (string, error) { return "h1", nil }})
	if res.HasErrors() {
		t.Fatal(res.Summary())
	}
	d := res.Deployment
	if d.Domain != "meet.example.com" || !d.Auth.Guests || d.Meeting.Lobby || d.Meeting.MaxParticipants != 10 || !d.Meeting.Recording.Enabled || d.Services[JVB].Restart != RestartDefer {
		t.Errorf("json decode: %+v", d)
	}
	if d.Host.Name != "h1" {
		t.Errorf("implicit host: %q", d.Host.Name)
	}
}

func TestLocalsInAnyOrderAndCycle(t *testing.T) {
	dir := t.TempDir()
	src := `
locals {
  admin = "ops@${local.base}"
  base  = "example.com"
}
domain = "meet.${local.base}"
auth "anonymous" {}
tls {
  acme {
    email = local.admin
  }
}
`
	p := filepath.Join(dir, "s.hcl")
	os.WriteFile(p, []byte(src), 0o644)
	res := Load(p, Options{})
	if res.HasErrors() {
		t.Fatal(res.Summary())
	}
	if res.Deployment.TLS.ACME.Email != "ops@example.com" {
		t.Errorf("email %q", res.Deployment.TLS.ACME.Email)
	}
	cyc := "locals {\n a = local.b\n b = local.a\n}\ndomain = \"meet.example.com\"\nauth \"anonymous\" {}\n"
	os.WriteFile(p, []byte(cyc), 0o644)
	res = Load(p, Options{})
	if !res.HasErrors() || !strings.Contains(res.Summary(), "Cycle") {
		t.Fatalf("cycle not reported: %s", res.Summary())
	}
}

func TestFileFunctionRelativeToSpec(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte(testSecret+"\n"), 0o600)
	sub := filepath.Join(dir, "conf")
	os.Mkdir(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "s.hcl"), []byte(`domain = "meet.example.com"
auth "jwt" {
  app_id = "a"
  app_secret = trimspace(file("../secret.txt"))
}
`), 0o644)
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	os.Chdir(t.TempDir()) // the CWD must not matter
	res := Load(filepath.Join(sub, "s.hcl"), Options{})
	if res.HasErrors() {
		t.Fatal(res.Summary())
	}
	if res.Deployment.Auth.JWT.AppSecret.Reveal() != testSecret {
		t.Error("file() secret not read")
	}
	found := false
	for _, in := range res.Inputs {
		if in == filepath.Join(dir, "secret.txt") {
			found = true
		}
	}
	if !found {
		t.Errorf("file() target not in Inputs: %v", res.Inputs)
	}
}

func TestInlineSecretWarnsAndIsRedacted(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.hcl")
	os.WriteFile(p, []byte(`domain = "meet.example.com"
auth "jwt" {
  app_id = "a"
  app_secret = "`+testSecret+`"
}
`), 0o644)
	res := Load(p, Options{})
	if res.HasErrors() {
		t.Fatal(res.Summary())
	}
	if !res.Deployment.Auth.JWT.AppSecretInline {
		t.Error("inline secret not detected")
	}
	var b bytes.Buffer
	res.WriteDiagnostics(&b)
	out := b.String()
	if !strings.Contains(out, "Secret written inline") {
		t.Errorf("no warning:\n%s", out)
	}
	if strings.Contains(out, testSecret) {
		t.Errorf("secret leaked into diagnostics:\n%s", out)
	}
	if !strings.Contains(out, "(sensitive)") {
		t.Errorf("snippet not redacted:\n%s", out)
	}
}

func TestFormat(t *testing.T) {
	out, diags := Format("x.hcl", []byte("domain=\"a.b\"\nauth \"jwt\" {\napp_id=\"x\"\n  app_secret = env(\"S\")\n}\n"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := "domain = \"a.b\"\nauth \"jwt\" {\n  app_id     = \"x\"\n  app_secret = env(\"S\")\n}\n"
	if string(out) != want {
		t.Errorf("format:\n%q\nwant\n%q", out, want)
	}
	if _, diags := Format("x.hcl", []byte("domain = \n")); !diags.HasErrors() {
		t.Error("broken file formatted")
	}
	if _, diags := Format("x.hcl.json", []byte("{}")); !diags.HasErrors() {
		t.Error("json formatted")
	}
}

func BenchmarkLoadExample(b *testing.B) {
	opts := Options{LookupEnv: env(map[string]string{"JITSI_APP_SECRET": testSecret})}
	for i := 0; i < b.N; i++ {
		if res := Load("../../examples/meet.hcl", opts); res.HasErrors() {
			b.Fatal(res.Summary())
		}
	}
}

func TestCheckCommandPlaceholder(t *testing.T) {
	for _, c := range []string{"nginx -t -c {{.Path}}", "nginx -t -c {{ .Path }}", "nginx -t -c {{.Path }}"} {
		if got := CheckCommand(c, "'/tmp/x y'"); got != "nginx -t -c '/tmp/x y'" {
			t.Errorf("%q -> %q", c, got)
		}
	}
}
