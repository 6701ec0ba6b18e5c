package templates

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func TestBuiltinNames(t *testing.T) {
	want := []string{
		"config.js.tmpl", "firewall.nft.tmpl", "haproxy.cfg.tmpl", "jibri.conf.tmpl", "jicofo.conf.tmpl", "jvb-sip-communicator.properties.tmpl", "jvb.conf.tmpl",
		"nginx-site.conf.tmpl", "prosody.cfg.lua.tmpl", "turnserver.conf.tmpl",
	}
	got, err := fs.Glob(Builtin, "*.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("built-ins %v, want %v", got, want)
	}
}

func TestOverlay(t *testing.T) {
	if Overlay("") != fs.FS(Builtin) {
		t.Error(`Overlay("") is not the built-ins`)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jvb.conf.tmpl"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := Overlay(dir)
	b, err := fs.ReadFile(o, "jvb.conf.tmpl")
	if err != nil || string(b) != "mine" {
		t.Errorf("override not used: %q %v", b, err)
	}
	b, err = fs.ReadFile(o, "jicofo.conf.tmpl")
	orig, _ := Builtin.ReadFile("jicofo.conf.tmpl")
	if err != nil || string(b) != string(orig) {
		t.Errorf("fallthrough to built-in failed: %v", err)
	}
	if _, err := fs.ReadFile(o, "nope.tmpl"); err == nil {
		t.Error("missing template found")
	}
	// A directory in the way is an error, not a silent fallback.
	if err := os.Mkdir(filepath.Join(dir, "nginx-site.conf.tmpl"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.ReadFile(o, "nginx-site.conf.tmpl"); err == nil {
		t.Error("a directory shadowing a template was not reported")
	}
}

func TestReadUserSources(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "env.tmpl")
	if err := os.WriteFile(src, []byte("JITSI_SERVER_URL={{ .ServerURL }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &spec.Deployment{Templates: []spec.Template{{Name: "env", Source: src}}}
	got, err := ReadUserSources(d)
	if err != nil || string(got["env"]) != "JITSI_SERVER_URL={{ .ServerURL }}\n" {
		t.Fatalf("ReadUserSources = %q, %v", got, err)
	}
	missing := filepath.Join(dir, "missing.tmpl")
	d.Templates = append(d.Templates, spec.Template{Name: "dart", Source: missing})
	_, err = ReadUserSources(d)
	if err == nil || !strings.Contains(err.Error(), `template "dart"`) || !strings.Contains(err.Error(), missing) {
		t.Errorf("error does not name template and path: %v", err)
	}
	d.Templates = []spec.Template{{Name: "nosrc"}}
	if _, err := ReadUserSources(d); err == nil || !strings.Contains(err.Error(), `"nosrc"`) {
		t.Errorf("empty source: %v", err)
	}
}
