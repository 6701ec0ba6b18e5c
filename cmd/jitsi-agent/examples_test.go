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
// its runcmd script parses, its debconf seed is accepted by
// debconf-set-selections and answers for the spec's domain, and it
// installs the .deb only after checking the sum and pins Jitsi's key.
func TestCloudInitUserData(t *testing.T) {
	ci := testenv.LookPath(t, "cloud-init", "apt-get install cloud-init")
	if out, err := exec.Command(ci, "schema", "--config-file", userData).CombinedOutput(); err != nil {
		t.Fatalf("cloud-init schema: %v\n%s", err, out)
	}
	script := userDataBlock(t, "  - |", "    ") // runcmd's one entry
	if out, err := exec.Command("sh", "-n", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("runcmd script does not parse: %v\n%s", err, out)
	}
	for _, want := range []string{"set -eu", `sha256sum -c -`, "signed-by=/usr/share/keyrings/jitsi-keyring.gpg",
		`grep -qx "fpr:::::::::$JITSI_KEY_FPR:"`, "debconf-set-selections /etc/jitsi-agent/debconf.seed",
		"apt-get install -y -q /run/jitsi-agent.deb", "jitsi-agent apply /etc/jitsi-agent/meet.hcl",
		"systemctl enable --now jitsi-agent.service"} {
		if !strings.Contains(script, want) {
			t.Errorf("runcmd lacks %q", want)
		}
	}
	// The sum check comes before the install, the key check before the repository.
	if strings.Index(script, "sha256sum -c") > strings.Index(script, "apt-get install -y -q /run/jitsi-agent.deb") ||
		strings.Index(script, "JITSI_KEY_FPR:") > strings.Index(script, "jitsi-stable.list") {
		t.Error("runcmd must check the .deb's sum and the key's fingerprint before using them")
	}
	seed := userDataBlock(t, "path: /etc/jitsi-agent/debconf.seed", "      ")
	dss := testenv.LookPath(t, "debconf-set-selections", "apt-get install debconf")
	cmd := exec.Command(dss, "--checkonly")
	cmd.Stdin = strings.NewReader(seed)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debconf seed rejected: %v\n%s", err, out)
	}
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	p := filepath.Join(t.TempDir(), "meet.hcl")
	os.WriteFile(p, []byte(userDataBlock(t, "path: /etc/jitsi-agent/meet.hcl", "      ")), 0o644)
	res := spec.Load(p, spec.Options{})
	if res.HasErrors() {
		t.Fatal("cloud-init spec invalid")
	}
	for _, q := range []string{"jitsi-videobridge/jvb-hostname", "jitsi-meet-prosody/jvb-hostname", "jitsi-meet/jvb-hostname"} {
		if !strings.Contains(seed, q+" string "+res.Deployment.Domain+"\n") {
			t.Errorf("debconf seed does not answer %s with the spec's domain %s", q, res.Deployment.Domain)
		}
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

// TestCloudInitSeedMatchesUpstreamTemplates: every answer in the example's
// debconf seed names a question the Jitsi packages really ask (their
// debian/*.templates, test material), with its type, and a select answer is
// one of the question's choices; otherwise debconf would ignore it and the
// package would ask or pick its own value.
func TestCloudInitSeedMatchesUpstreamTemplates(t *testing.T) {
	dir := testenv.Upstream(t, "jitsi-meet/debian/jitsi-meet-prosody.templates")
	files, _ := filepath.Glob(filepath.Join(dir, "*", "debian", "*templates"))
	type question struct{ typ, choices string }
	known := map[string]question{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, para := range strings.Split(string(b), "\n\n") {
			var name string
			var q question
			for _, l := range strings.Split(para, "\n") {
				k, v, _ := strings.Cut(l, ": ")
				switch k {
				case "Template":
					name = v
				case "Type":
					q.typ = v
				case "Choices", "__Choices", "_Choices":
					q.choices = v
				}
			}
			if name != "" {
				known[name] = q
			}
		}
	}
	seed := userDataBlock(t, "path: /etc/jitsi-agent/debconf.seed", "      ")
	for _, l := range strings.Split(strings.TrimSpace(seed), "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) < 4 {
			t.Errorf("seed line %q: want PACKAGE QUESTION TYPE VALUE", l)
			continue
		}
		q, ok := known[f[1]]
		switch {
		case !ok:
			t.Errorf("seed answers %s, which no upstream package asks", f[1])
		case q.typ != f[2]:
			t.Errorf("seed gives %s type %s; upstream's template says %s", f[1], f[2], q.typ)
		case q.typ == "select" && !strings.Contains(", "+q.choices+", ", ", "+f[3]+", "):
			t.Errorf("seed answers %s with %q, not one of %q", f[1], f[3], q.choices)
		}
	}
}
