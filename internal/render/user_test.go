package render

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/templates"
)

func userDeployment(src string, mods ...func(*spec.Template)) (*spec.Deployment, map[string][]byte) {
	tpl := spec.Template{
		Name: "app", Source: "/specs/app.tmpl", Destination: "/srv/app/app.conf",
		Mode: 0o640, Owner: "app", Group: "app", Notify: []string{"app.service", "app-worker.service"},
		Check: "app --check {{.Path}}", Drift: spec.DriftReport,
	}
	for _, m := range mods {
		m(&tpl)
	}
	d := newDeployment(func(d *spec.Deployment) { d.Templates = []spec.Template{tpl} })
	return d, map[string][]byte{"app": []byte(src)}
}

func TestUserTemplate(t *testing.T) {
	src := `server={{ .ServerURL }} id={{ .AppID }} life={{ .JWTLifetimeSeconds }} turn={{ .TURNHost }}:{{ .TURNPort }}/{{ .TURNTLSPort }} ` +
		`tenants={{ .Tenants }} name={{ .Name }} guests={{ .GuestDomain }} muc={{ .MUCDomain }} udp={{ .VideobridgeUDPPort }}`
	d, srcs := userDeployment(src)
	set, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: srcs})
	if err != nil {
		t.Fatal(err)
	}
	f, ok := set.Lookup("/srv/app/app.conf")
	if !ok {
		t.Fatal("user template not rendered")
	}
	want := "server=https://meet.example.com id=jitsi-app life=7200 turn=meet.example.com:3478/5349 tenants=false name=app guests= muc=conference.meet.example.com udp=10000"
	if string(f.Content) != want {
		t.Errorf("content:\n got %s\nwant %s", f.Content, want)
	}
	if f.Component != "template:app" || f.Mode != 0o640 || f.Owner != "app" || f.Group != "app" ||
		strings.Join(f.Units, ",") != "app.service,app-worker.service" || f.Check != "app --check {{.Path}}" ||
		f.Drift != spec.DriftReport || f.Kind != KindFile || f.Sensitive {
		t.Errorf("metadata: %s", manifest(&Set{Files: []File{f}}))
	}
}

func TestUserTemplateWithSecretIsSensitive(t *testing.T) {
	d, srcs := userDeployment(`JITSI_APP_SECRET={{ shell .AppSecret }}`)
	set, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: srcs})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := set.Lookup("/srv/app/app.conf")
	if !f.Sensitive || string(f.Content) != "JITSI_APP_SECRET='"+testAppSecret+"'" {
		t.Errorf("sensitive=%v", f.Sensitive)
	}
}

func TestUserTemplateErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		mod  func(*spec.Template)
		want []string
	}{
		{"parse error", "line1\n{{ .Domain ", nil, []string{`template "app"`, "/specs/app.tmpl", ":2:"}},
		{"unknown field", "a\nb\n{{ .Domian }}", nil, []string{`template "app"`, ":3:", "Domian"}},
		{"unknown function", "{{ frobnicate .Domain }}", nil, []string{`template "app"`, "frobnicate"}},
		{"unsafe value", "x\n{{ nginx \"$host\" }}", nil, []string{`template "app"`, ":2:"}},
		{"relative destination", "x", func(t *spec.Template) { t.Destination = "srv/app.conf" }, []string{`template "app"`, "not absolute"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var mods []func(*spec.Template)
			if c.mod != nil {
				mods = append(mods, c.mod)
			}
			d, srcs := userDeployment(c.src, mods...)
			_, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: srcs})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	d, _ := userDeployment("x")
	if _, err := Render(Input{Deployment: d, Templates: templates.Builtin}); err == nil || !strings.Contains(err.Error(), "source not loaded") {
		t.Errorf("missing source: %v", err)
	}
	// A secret never appears in an execution error.
	d, srcs := userDeployment(`{{ nginx .AppSecret }}`)
	d.Auth.JWT.AppSecret = spec.NewSecret(testAppSecret + "$x")
	_, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: srcs})
	if err == nil || strings.Contains(err.Error(), testAppSecret) {
		t.Errorf("error leaks the secret or is missing: %v", err)
	}
}

func TestUserTemplateCollision(t *testing.T) {
	d, srcs := userDeployment("x", func(t *spec.Template) { t.Destination = "/etc/turnserver.conf" })
	_, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: srcs})
	if err == nil || !strings.Contains(err.Error(), "/etc/turnserver.conf") {
		t.Errorf("collision not reported: %v", err)
	}
}

func TestBuiltinTemplateErrors(t *testing.T) {
	d := newDeployment()
	base := fstest.MapFS{}
	for _, n := range []string{TmplProsody, TmplJicofo, TmplJVB, TmplJVBLegacy, TmplConfigJS, TmplNginx, TmplTURN} {
		b, err := templates.Builtin.ReadFile(n)
		if err != nil {
			t.Fatalf("built-in %s missing: %v", n, err)
		}
		base[n] = &fstest.MapFile{Data: b}
	}
	broken := fstest.MapFS{}
	for k, v := range base {
		broken[k] = v
	}
	broken[TmplJicofo] = &fstest.MapFile{Data: []byte("jicofo {\n  x = {{ .NoSuchField }}\n}\n")}
	_, err := Render(Input{Deployment: d, Templates: broken})
	if err == nil || !strings.Contains(err.Error(), "jicofo.conf.tmpl:2:") || !strings.Contains(err.Error(), "/etc/jitsi/jicofo/jicofo.conf") {
		t.Errorf("error does not name template and line: %v", err)
	}
	delete(broken, TmplJicofo)
	if _, err := Render(Input{Deployment: d, Templates: broken}); err == nil || !strings.Contains(err.Error(), TmplJicofo) {
		t.Errorf("missing template: %v", err)
	}
}

func TestMissingSecretsRefused(t *testing.T) {
	d := newDeployment(func(d *spec.Deployment) { d.Secrets.SetPassword("focus", spec.Secret{}) })
	if _, err := Render(Input{Deployment: d, Templates: templates.Builtin}); err == nil || !strings.Contains(err.Error(), "focus password") {
		t.Errorf("empty focus password: %v", err)
	}
	d = newDeployment(func(d *spec.Deployment) { d.Secrets.TURNSecret = spec.Secret{} })
	if _, err := Render(Input{Deployment: d, Templates: templates.Builtin}); err == nil || !strings.Contains(err.Error(), "TURN secret") {
		t.Errorf("empty TURN secret: %v", err)
	}
	d = newDeployment(noTURN)
	if _, err := Render(Input{Deployment: d, Templates: templates.Builtin}); err != nil {
		t.Errorf("TURN off needs no TURN secret: %v", err)
	}
}

func TestBadDeploymentValues(t *testing.T) {
	for name, mod := range map[string]func(*spec.Deployment){
		"domain with slash":  func(d *spec.Deployment) { d.Domain = "../etc" },
		"domain empty":       func(d *spec.Deployment) { d.Domain = "" },
		"unpaired NAT":       func(d *spec.Deployment) { d.Host.PrivateIPs = []string{"10.0.0.1"} },
		"bad health url":     func(d *spec.Deployment) { d.Videobridge.HealthURL = "http://127.0.0.1:99999/" },
		"unknown moderators": func(d *spec.Deployment) { d.Auth.Moderators = "everyone" },
		"newline in realm":   func(d *spec.Deployment) { d.TURN.Realm = "x\nno-auth" },
		"dollar in cert":     func(d *spec.Deployment) { d.TLS.Certificate = "/etc/$host.crt" },
	} {
		if _, err := Render(Input{Deployment: newDeployment(mod), Templates: templates.Builtin}); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
}

func TestOverrideDirectory(t *testing.T) {
	dir := t.TempDir()
	custom := "-- my own prosody file for {{ .Domain }}\nVirtualHost {{ lua .Domain }}\n"
	if err := os.WriteFile(filepath.Join(dir, TmplProsody), []byte(custom), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDeployment()
	set, err := Render(Input{Deployment: d, Templates: templates.Overlay(dir)})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := set.Lookup("/etc/prosody/conf.avail/meet.example.com.cfg.lua")
	if string(f.Content) != "-- my own prosody file for meet.example.com\nVirtualHost \"meet.example.com\"\n" {
		t.Errorf("override not used: %s", f.Content)
	}
	// Other files still come from the built-ins.
	_, builtin := renderCombo(t, combo{name: "default"})
	j1, _ := set.Lookup("/etc/jitsi/jicofo/jicofo.conf")
	j2, _ := builtin.Lookup("/etc/jitsi/jicofo/jicofo.conf")
	if !bytes.Equal(j1.Content, j2.Content) {
		t.Error("non-overridden template differs from the built-in")
	}
	// A broken override is reported with its name and line.
	if err := os.WriteFile(filepath.Join(dir, TmplNginx), []byte("ok\n{{ end }}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Render(Input{Deployment: d, Templates: templates.Overlay(dir)}); err == nil || !strings.Contains(err.Error(), TmplNginx+":2") {
		t.Errorf("broken override: %v", err)
	}
}

func TestRenderIsPure(t *testing.T) {
	// The package's non-test sources import nothing that does I/O.
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range []string{`"os"`, `"os/exec"`, `"net/http"`, `"time"`, `"syscall"`, `"io/ioutil"`} {
			if bytes.Contains(b, []byte("\t"+imp+"\n")) {
				t.Errorf("%s imports %s; render must stay pure", n, imp)
			}
		}
	}
}

func TestRenderConcurrent(t *testing.T) {
	_, want := renderCombo(t, combo{name: "everything", mods: matrix[len(matrix)-1].mods})
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			d := newDeployment(everything)
			set, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: userSources})
			if err == nil && !bytes.Equal(manifest(set), manifest(want)) {
				err = errf("concurrent render differs")
			}
			errs <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestUnknownFieldSuggestsTheRightOne(t *testing.T) {
	d, srcs := userDeployment("{{ .AppId }}\n")
	_, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: srcs})
	if err == nil || !strings.Contains(err.Error(), "Did you mean .AppID?") || !strings.Contains(err.Error(), ".ServerURL") {
		t.Fatalf("err = %v", err)
	}
}
