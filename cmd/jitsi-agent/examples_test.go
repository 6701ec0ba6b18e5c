package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// TestCloudInitSpecIsValid extracts the spec embedded in the cloud-init
// example and validates it, so the example cannot rot.
func TestCloudInitSpecIsValid(t *testing.T) {
	b, err := os.ReadFile("../../examples/cloud-init/user-data.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var spec []string
	in := false
	for i, l := range lines {
		if strings.Contains(l, "path: /etc/jitsi-agent/meet.hcl") {
			for j := i + 1; j < len(lines); j++ {
				if strings.Contains(lines[j], "content: |") {
					in = true
					lines = lines[j+1:]
					break
				}
			}
			break
		}
	}
	if !in {
		t.Fatal("spec not found in user-data")
	}
	for _, l := range lines {
		if l != "" && !strings.HasPrefix(l, "      ") {
			break
		}
		spec = append(spec, strings.TrimPrefix(l, "      "))
	}
	p := filepath.Join(t.TempDir(), "meet.hcl")
	os.WriteFile(p, []byte(strings.Join(spec, "\n")), 0o644)
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	code, out, errs := runCLI(t, "validate", p)
	if code != exitOK {
		t.Fatalf("cloud-init spec invalid:\n%s%s", out, errs)
	}
}

// TestCertificatePathsAgree: the files the certificate manager deploys are
// the ones the rendered nginx, Prosody and coturn configurations read.
func TestCertificatePathsAgree(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	res := spec.Load("../../examples/meet.hcl", spec.Options{})
	d, ok := res.Deployment, !res.HasErrors()
	if !ok {
		t.Fatal("example invalid")
	}
	d.TLS.ACME = &spec.ACME{RSA: true, Listen: spec.DefaultACMEListen, DirectoryURL: spec.LetsEncryptStaging}
	set, err := agent.DesiredStateReadOnly(d, t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	content := func(p string) string {
		f, ok := set.Lookup(p)
		if !ok {
			t.Fatalf("%s not rendered", p)
		}
		return string(f.Content)
	}
	ec := certs.PathsFor(d, certs.Slot{Name: d.Domain, Key: certs.ECDSA})
	rsa := certs.PathsFor(d, certs.Slot{Name: d.Domain, Key: certs.RSA})
	turn := content("/etc/coturn/turnserver.conf")
	nginx := content("/etc/nginx/sites-available/" + d.Domain + ".conf")
	prosody := content("/etc/prosody/conf.avail/" + d.Domain + ".cfg.lua")
	for _, c := range []struct{ conf, path string }{
		{turn, "cert=" + ec.CoturnCert}, {turn, "pkey=" + ec.CoturnKey},
		{nginx, `ssl_certificate "` + ec.NginxCert + `";`}, {nginx, `ssl_certificate_key "` + ec.NginxKey + `";`},
		{nginx, `ssl_certificate "` + rsa.NginxCert + `";`}, {nginx, `ssl_certificate_key "` + rsa.NginxKey + `";`},
		{prosody, ec.ProsodyCert}, {prosody, ec.ProsodyKey},
	} {
		if !strings.Contains(c.conf, c.path) {
			t.Errorf("rendered configuration does not read %q", c.path)
		}
	}
	// Every deployed certificate/key file is one the spec refuses as a
	// template destination.
	d.TLS.ACME.ExtraNames = []string{"www.meet.example.com"}
	mat, err := certs.Load(d, t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	guarded := map[string]bool{}
	for _, p := range spec.TLSPaths(d) {
		guarded[p] = true
	}
	for _, f := range certs.Files(d, mat) {
		if !guarded[f.Path] {
			t.Errorf("certs deploys %s but spec.TLSPaths does not guard it", f.Path)
		}
	}
	for _, p := range []string{ec.CoturnCert, ec.CoturnKey, ec.NginxCert, ec.NginxKey, rsa.NginxCert, ec.ProsodyCert} {
		if _, ok := set.Lookup(p); !ok {
			t.Errorf("certificate file %s is read by a service but not deployed", p)
		}
	}
}
