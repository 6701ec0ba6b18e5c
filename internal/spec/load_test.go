package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testSecret = "c750d07b4ed825ac6f7143f45cfc50f80b90ebd8"

// testAPIKey is the example's JOIN_API_KEY.
const testAPIKey = "b7e1f04c9a2d6835e0c4a9f1d7b3e52c"

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func loadExample(t testing.TB, extraEnv map[string]string) *Result {
	t.Helper()
	e := map[string]string{"JITSI_APP_SECRET": testSecret, "JOIN_API_KEY": testAPIKey}
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
	opts := Options{LookupEnv: env(map[string]string{"JITSI_APP_SECRET": testSecret, "JOIN_API_KEY": testAPIKey})}
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

// TestVarFilePrecedence: env < var files (in order) < -var, like Terraform;
// values keep their HCL type; an undeclared name warns at its line.
func TestVarFilePrecedence(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "s.hcl")
	os.WriteFile(spec, []byte(`variable "domain" { default = "meet.example.com" }
variable "ips" { default = ["192.0.2.1"] }
domain = var.domain
host "a" {
  public_ips = var.ips
}
auth "jwt" {
  app_id     = "a"
  app_secret = env("JITSI_APP_SECRET")
}
`), 0o644)
	one := filepath.Join(dir, "one.hcl")
	two := filepath.Join(dir, "two.hcl")
	os.WriteFile(one, []byte("domain = \"one.example.org\"\nips = [\"192.0.2.7\", \"192.0.2.8\"]\n"), 0o644)
	os.WriteFile(two, []byte("domain = \"two.example.org\"\nstray  = 1\n"), 0o644)
	e := env(map[string]string{"JITSI_APP_SECRET": testSecret, "JOIN_API_KEY": testAPIKey, VarEnvPrefix + "domain": "env.example.org"})
	load := func(vars map[string]string, files ...string) *Result {
		return Load(spec, Options{LookupEnv: e, VarFiles: files, Vars: vars})
	}
	for _, tc := range []struct {
		vars  map[string]string
		files []string
		want  string
	}{
		{nil, nil, "env.example.org"},
		{nil, []string{one}, "one.example.org"},
		{nil, []string{one, two}, "two.example.org"},
		{nil, []string{two, one}, "one.example.org"},
		{map[string]string{"domain": "flag.example.org"}, []string{one, two}, "flag.example.org"},
	} {
		res := load(tc.vars, tc.files...)
		if res.HasErrors() {
			t.Fatalf("%v: %s", tc.files, res.Summary())
		}
		if res.Deployment.Domain != tc.want {
			t.Errorf("vars %v files %v: domain %q, want %q", tc.vars, tc.files, res.Deployment.Domain, tc.want)
		}
	}
	res := load(nil, one, two)
	if ips := res.Deployment.Host.PublicIPs; len(ips) != 2 || ips[1] != "192.0.2.8" {
		t.Errorf("list from var file: %v", ips)
	}
	var warn bool
	for _, d := range res.Diags {
		if d.Summary == "Value for undeclared variable" && d.Subject != nil && d.Subject.Filename == two && d.Subject.Start.Line == 2 {
			warn = true
		}
	}
	if !warn || res.HasErrors() {
		t.Errorf("no warning at two.hcl:2 for the stray variable: %v", res.Diags)
	}
	found := false
	for _, in := range res.Inputs {
		found = found || in == two
	}
	if !found {
		t.Errorf("var file not among the inputs: %v", res.Inputs)
	}
	// Errors carry the file and line.
	bad := filepath.Join(dir, "bad.hcl")
	os.WriteFile(bad, []byte("domain = \"x\"\nips = \"not a list\"\n"), 0o644)
	res = load(nil, bad)
	if !res.HasErrors() || !strings.Contains(res.Summary(), "bad.hcl:2") {
		t.Errorf("type error: %s", res.Summary())
	}
	os.WriteFile(bad, []byte("domain = var.other\n"), 0o644)
	if res = load(nil, bad); !res.HasErrors() || !strings.Contains(res.Summary(), "bad.hcl:1") {
		t.Errorf("non-constant: %s", res.Summary())
	}
	if res = load(nil, filepath.Join(dir, "missing.hcl")); !res.HasErrors() || !strings.Contains(res.Summary(), "missing.hcl") {
		t.Errorf("missing file: %s", res.Summary())
	}
}

func TestExampleTokenProfiles(t *testing.T) {
	res := loadExample(t, nil)
	if res.HasErrors() {
		t.Fatal(res.Summary())
	}
	api := res.Deployment.TokenAPI
	if api == nil || len(api.Keys) != 1 || !api.Keys[0].GrantHosts || api.Keys[0].Key.Reveal() != testAPIKey {
		t.Fatalf("token_api %+v", api)
	}
	want := []TokenProfile{
		{Name: "webinar", Lifetime: 4 * time.Hour, Moderator: ProfileModeratorRequest, Features: map[string]bool{"screen-sharing": true, "recording": false}},
		{Name: "drop-in", Lifetime: 30 * time.Minute, Moderator: ProfileModeratorNever},
	}
	if !reflect.DeepEqual(api.Profiles, want) {
		t.Errorf("profiles %+v, want %+v", api.Profiles, want)
	}
}

// A service enabled by hand while the feature that renders its files is
// off draws a warning at the attribute; the default does not.
func TestServiceEnabledWithoutItsConfigurationWarns(t *testing.T) {
	for _, c := range []struct {
		body string
		want bool
	}{
		{"turn {\n  enabled = false\n}\nservice \"coturn\" {\n  enabled = true\n}\n", true},
		{"turn {\n  enabled = false\n}\n", false},
		{"service \"coturn\" {\n  enabled = true\n}\n", false},
	} {
		p := filepath.Join(t.TempDir(), "s.hcl")
		if err := os.WriteFile(p, []byte("domain = \"meet.example.com\"\nauth \"anonymous\" {}\n"+c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		res := Load(p, Options{})
		if res.HasErrors() {
			t.Fatal(res.Summary())
		}
		var b bytes.Buffer
		res.WriteDiagnostics(&b)
		got := strings.Contains(b.String(), "Service enabled without its configuration")
		if got != c.want || got && !strings.Contains(b.String(), "s.hcl:7") {
			t.Errorf("%q: warning %v, want %v:\n%s", c.body, got, c.want, b.String())
		}
		// The explicit setting wins; by default coturn follows turn.enabled.
		if en, want := res.Deployment.Services["coturn"].Enabled, strings.Contains(c.body, "service"); en != want {
			t.Errorf("%q: coturn enabled %v, want %v", c.body, en, want)
		}
	}
}
