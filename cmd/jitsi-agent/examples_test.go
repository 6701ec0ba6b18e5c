package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

const userData = "../../examples/cloud-init/user-data.yaml"

// userDataBlock returns the literal block that follows the first line
// containing after (then a "content: |" line when after names a file), with
// its indentation removed.
func userDataBlock(t *testing.T, after, indent string) string {
	t.Helper()
	b, err := os.ReadFile(userData)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	start := -1
	for i, l := range lines {
		if strings.Contains(l, after) {
			start = i + 1
			if strings.HasPrefix(after, "path: ") {
				for start < len(lines) && !strings.Contains(lines[start], "content: |") {
					start++
				}
				start++
			}
			break
		}
	}
	if start < 0 || start >= len(lines) {
		t.Fatalf("%q not found in %s", after, userData)
	}
	var block []string
	for _, l := range lines[start:] {
		if l != "" && !strings.HasPrefix(l, indent) {
			break
		}
		block = append(block, strings.TrimPrefix(l, indent))
	}
	return strings.Join(block, "\n")
}

// TestCloudInitSpecIsValid extracts the spec embedded in the cloud-init
// example and validates it, so the example cannot rot.
func TestCloudInitSpecIsValid(t *testing.T) {
	p := filepath.Join(t.TempDir(), "meet.hcl")
	os.WriteFile(p, []byte(userDataBlock(t, "path: /etc/jitsi-agent/meet.hcl", "      ")), 0o644)
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	code, out, errs := runCLI(t, "validate", p)
	if code != exitOK {
		t.Fatalf("cloud-init spec invalid:\n%s%s", out, errs)
	}
}

// TestCloudInitUserData: the example passes cloud-init's own schema check,
// its runcmd script parses and does what the README says in that order
// (the .deb only after its sum is checked, then bootstrap with the secret
// from the env file), and its spec pins Jitsi's key and bootstraps (dry run).
func TestCloudInitUserData(t *testing.T) {
	ci := testenv.LookPath(t, "cloud-init", "apt-get install cloud-init")
	if out, err := exec.Command(ci, "schema", "--config-file", userData).CombinedOutput(); err != nil {
		t.Fatalf("cloud-init schema: %v\n%s", err, out)
	}
	script := userDataBlock(t, "  - |", "    ") // runcmd's one entry
	if out, err := exec.Command("sh", "-n", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("runcmd script does not parse: %v\n%s", err, out)
	}
	order := []string{"set -eu", `curl -fsSLo /run/jitsi-agent.deb "$AGENT_DEB_URL"`, `sha256sum -c -`,
		"apt-get install -y -q /run/jitsi-agent.deb", "set -a; . /etc/jitsi-agent/env; set +a",
		"jitsi-agent bootstrap /etc/jitsi-agent/meet.hcl"}
	last := -1
	for _, want := range order {
		i := strings.Index(script, want)
		if i <= last {
			t.Errorf("runcmd lacks %q or has it out of order (want %q)", want, order)
		}
		last = i
	}
	for _, gone := range []string{"jitsi-agent apply", "debconf-set-selections", "sources.list"} {
		if strings.Contains(script, gone) {
			t.Errorf("runcmd still does %q itself; bootstrap does it", gone)
		}
	}
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	p := filepath.Join(t.TempDir(), "meet.hcl")
	os.WriteFile(p, []byte(userDataBlock(t, "path: /etc/jitsi-agent/meet.hcl", "      ")), 0o644)
	res := spec.Load(p, spec.Options{})
	if res.HasErrors() {
		t.Fatal("cloud-init spec invalid")
	}
	if got := res.Deployment.Bootstrap.JitsiRepo.KeyFingerprint; got != spec.DefaultJitsiKeyFingerprint {
		t.Errorf("the example pins %s, the documented default is %s", got, spec.DefaultJitsiKeyFingerprint)
	}
	code, out, errs := runCLI(t, "bootstrap", "-dry-run", p)
	if code != exitOK || !strings.Contains(out, "deb [signed-by=/etc/apt/keyrings/jitsi.gpg] https://download.jitsi.org stable/") {
		t.Errorf("bootstrap -dry-run of the example's spec: %d\n%s%s", code, out, errs)
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
