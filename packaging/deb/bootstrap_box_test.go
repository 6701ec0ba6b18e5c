package deb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemtest"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
	"github.com/jitsi-agent/jitsi-agent/internal/xmpptest"
)

// Where the test's apt repository and the agent's .deb sit inside the box.
const (
	repoDir  = "/srv/jitsi-repo"
	agentDeb = "/srv/jitsi-agent_amd64.deb"
)

// standIn is a Jitsi package rebuilt for the test: the real maintainer
// scripts, debconf templates and (for jitsi-meet-prosody) files from the
// upstream test material, and a systemd unit that sleeps instead of running
// Java.
type standIn struct {
	name, depends string
	// control maps DEBIAN/ file names to upstream paths (relative to the
	// upstream directory).
	control map[string]string
	// copies maps package paths to upstream files or directories.
	copies map[string]string
	// files maps package paths to contents.
	files map[string]string
	// conffiles are listed in DEBIAN/conffiles (debhelper marks /etc files
	// so).
	conffiles []string
}

// unit is a stand-in service: instead of Java, a loopback HTTP server that
// answers the health URL the real service serves (/about/health).
func unit(desc, user string, port int, dir string) string {
	return fmt.Sprintf("[Unit]\nDescription=%s (test stand-in: answers its health URL instead of running Java)\n\n[Service]\nUser=%s\nExecStart=/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory %s %d\n\n[Install]\nWantedBy=multi-user.target\n",
		desc, user, dir, port)
}

func standIns() []standIn {
	return []standIn{
		{name: "jicofo", depends: "ruby-hocon, jq, python3",
			control: map[string]string{"postinst": "jicofo/debian/postinst", "templates": "jicofo/debian/templates"},
			files: map[string]string{"lib/systemd/system/jicofo.service": unit("Jitsi Conference Focus", "jicofo", 8888, "/usr/share/jicofo/stand-in"),
				"usr/share/jicofo/stand-in/about/health": "OK\n",
				"etc/jitsi/jicofo/logging.properties":    "handlers = java.util.logging.ConsoleHandler\n"},
			conffiles: []string{"/etc/jitsi/jicofo/logging.properties"}},
		{name: "jitsi-videobridge2", depends: "procps, uuid-runtime, ruby-hocon, python3",
			control: map[string]string{"postinst": "jitsi-videobridge/debian/postinst", "templates": "jitsi-videobridge/debian/templates",
				"config": "jitsi-videobridge/debian/config"},
			files: map[string]string{"lib/systemd/system/jitsi-videobridge2.service": unit("Jitsi Videobridge", "jvb", 8080, "/usr/share/jitsi-videobridge/stand-in"),
				"usr/share/jitsi-videobridge/stand-in/about/health": "OK\n",
				"etc/jitsi/videobridge/logging.properties":          "handlers = java.util.logging.ConsoleHandler\n"},
			conffiles: []string{"/etc/jitsi/videobridge/logging.properties"}},
		{name: "jitsi-meet-web",
			files: map[string]string{"usr/share/jitsi-meet/index.html": "<!DOCTYPE html><title>Jitsi Meet (test stand-in)</title>\n"}},
		{name: "jitsi-meet-prosody", depends: "openssl, prosody (>= 0.12.0), ca-certificates-java, lua-sec, lua-basexx, lua-luaossl, lua-cjson, lua-inspect",
			control: map[string]string{"postinst": "jitsi-meet/debian/jitsi-meet-prosody.postinst", "templates": "jitsi-meet/debian/jitsi-meet-prosody.templates",
				"triggers": "jitsi-meet/debian/jitsi-meet-prosody.triggers"},
			copies: map[string]string{
				"usr/share/jitsi-meet-prosody/prosody.cfg.lua-jvb.example": "jitsi-meet/doc/debian/jitsi-meet-prosody/prosody.cfg.lua-jvb.example",
				"usr/share/jitsi-meet-prosody/jaas.cfg.lua":                "jitsi-meet/doc/debian/jitsi-meet-prosody/jaas.cfg.lua",
				"usr/share/jitsi-meet/prosody-plugins":                     "jitsi-meet/resources/prosody-plugins",
			}},
		{name: "jitsi-meet-tokens", depends: "prosody (>= 0.12.0), jitsi-meet-prosody",
			control: map[string]string{"postinst": "jitsi-meet/debian/jitsi-meet-tokens.postinst", "config": "jitsi-meet/debian/jitsi-meet-tokens.config",
				"templates": "jitsi-meet/debian/jitsi-meet-tokens.templates"}},
	}
}

// templateField is a translatable field marker of a source templates file
// ("_Description:", "__Choices:"), which po2debconf removes when the real
// package is built.
var templateField = regexp.MustCompile(`(?m)^_+([A-Za-z-]+:)`)

func buildStandIn(t *testing.T, upstream, out string, p standIn) {
	t.Helper()
	root := filepath.Join(t.TempDir(), p.name)
	write := func(rel string, data []byte, mode os.FileMode) {
		full := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	control := fmt.Sprintf("Package: %s\nVersion: 2.0.9999-1~test\nArchitecture: all\nMaintainer: jitsi-agent tests <tests@invalid>\n", p.name)
	if p.depends != "" {
		control += "Depends: " + p.depends + "\n"
	}
	control += "Description: " + p.name + " stand-in for jitsi-agent's bootstrap test\n Real maintainer scripts and debconf templates, no Java.\n"
	write("DEBIAN/control", []byte(control), 0o644)
	for name, rel := range p.control {
		b, err := os.ReadFile(filepath.Join(upstream, rel))
		if err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o755)
		switch name {
		case "templates":
			b, mode = templateField.ReplaceAll(b, []byte("$1")), 0o644
		case "triggers":
			mode = 0o644
		}
		write("DEBIAN/"+name, b, mode)
	}
	if len(p.conffiles) > 0 {
		write("DEBIAN/conffiles", []byte(strings.Join(p.conffiles, "\n")+"\n"), 0o644)
	}
	for rel, data := range p.files {
		write(rel, []byte(data), 0o644)
	}
	for rel, src := range p.copies {
		dst := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, "", "cp", "-r", filepath.Join(upstream, src), dst)
	}
	run(t, "", "chmod", "-R", "u=rwX,go=rX", root)
	run(t, "", "dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, filepath.Join(out, p.name+"_2.0.9999-1~test_all.deb"))
}

// signedRepo builds a flat apt repository (Packages, Release, InRelease,
// Release.gpg) of the stand-ins, signed with a throwaway key, and returns
// the key (armored) and its fingerprint.
func signedRepo(t *testing.T, upstream, dir string) (string, string) {
	t.Helper()
	gpg := testenv.LookPath(t, "gpg", "apt-get install gnupg")
	home, err := os.MkdirTemp("", "jt-gpg-") // short: gpg-agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	g := func(args ...string) string {
		return run(t, dir, gpg, append([]string{"--batch", "--homedir", home, "--no-options"}, args...)...)
	}
	g("--passphrase", "", "--quick-gen-key", "jitsi-agent test repository <repo@test.invalid>", "ed25519", "sign", "never")
	var fpr string
	for _, l := range strings.Split(g("--with-colons", "--list-keys"), "\n") {
		if f := strings.Split(l, ":"); f[0] == "fpr" && fpr == "" {
			fpr = f[9]
		}
	}
	if len(fpr) != 40 {
		t.Fatalf("no fingerprint for the test key")
	}
	for _, p := range standIns() {
		buildStandIn(t, upstream, dir, p)
	}
	ftp := testenv.LookPath(t, "apt-ftparchive", "apt-get install apt-utils")
	if err := os.WriteFile(filepath.Join(dir, "Packages"), []byte(run(t, dir, ftp, "packages", ".")), 0o644); err != nil {
		t.Fatal(err)
	}
	rel := run(t, dir, ftp, "-o", "APT::FTPArchive::Release::Origin=jitsi-agent-test", "-o", "APT::FTPArchive::Release::Suite=stable", "release", ".")
	if err := os.WriteFile(filepath.Join(dir, "Release"), []byte(rel), 0o644); err != nil {
		t.Fatal(err)
	}
	g("--local-user", fpr, "--clearsign", "-o", "InRelease", "Release")
	g("--local-user", fpr, "-abs", "-o", "Release.gpg", "Release")
	key := g("--armor", "--export", fpr)
	return key, fpr
}

// runcmd is the cloud-init example's runcmd script with AGENT_DEB_URL and
// AGENT_DEB_SHA256 set (nothing else changed).
func runcmd(t *testing.T, url, sum string) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/cloud-init/user-data.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\nruncmd:\n  - |\n")
	if !ok {
		t.Fatal("user-data.yaml: no runcmd script")
	}
	var lines []string
	for _, l := range strings.Split(rest, "\n") {
		if l != "" && !strings.HasPrefix(l, "    ") {
			break
		}
		l = strings.TrimPrefix(l, "    ")
		switch {
		case strings.HasPrefix(l, "AGENT_DEB_URL="):
			l = "AGENT_DEB_URL=" + url
		case strings.HasPrefix(l, "AGENT_DEB_SHA256="):
			l = "AGENT_DEB_SHA256=" + sum
		}
		lines = append(lines, l)
	}
	script := strings.Join(lines, "\n")
	if !strings.Contains(script, "jitsi-agent bootstrap /etc/jitsi-agent/meet.hcl") || !strings.Contains(script, "AGENT_DEB_SHA256="+sum) {
		t.Fatalf("user-data.yaml's runcmd is not the expected script:\n%s", script)
	}
	return script + "\n"
}

func bootstrapSpec(fpr string) string { return bootstrapSpecAt(repoDir, fpr) }

// bootstrapSpecAt points the repository at dir (the key stays in repoDir).
func bootstrapSpecAt(dir, fpr string) string {
	return systemtest.DefaultSpec("meet.test") + fmt.Sprintf(`
bootstrap {
  jitsi_repo {
    url             = "file://%s"
    suite           = "./"
    key_url         = "file://%s/key.asc"
    key_fingerprint = %q
  }
}
`, dir, repoDir, fpr)
}

// TestBootstrapFromSignedRepoInBox is issue 15's end-to-end test, in a
// systemd box (overlays: the host is never written): a local apt repository
// signed with a throwaway key holds stand-in jicofo, jitsi-videobridge2,
// jitsi-meet-web, jitsi-meet-prosody and jitsi-meet-tokens packages whose
// maintainer scripts and debconf templates are the real upstream ones. The
// agent's .deb is installed as the README says; a spec pinning another key
// is refused with nothing changed; bootstrap then brings the box to a token
// login through nginx and Prosody; a second bootstrap changes nothing; the
// packages' postinsts run again (dpkg-reconfigure, as an upgrade runs them)
// leave every managed file as rendered and plan clean; purge removes the
// agent's state.
func TestBootstrapFromSignedRepoInBox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package and boots systemd with real maintainer scripts")
	}
	systemtest.Require(t)
	for tool, pkg := range map[string]string{"hocon": "ruby-hocon", "uuidgen": "uuid-runtime", "jq": "jq", "dpkg-deb": "dpkg", "debconf-communicate": "debconf", "curl": "curl", "/usr/bin/python3": "python3"} {
		testenv.LookPath(t, tool, "apt-get install "+pkg)
	}
	upstream := testenv.Upstream(t, "jicofo/debian/postinst")
	dist := t.TempDir()
	if out, err := exec.Command("make", "--no-print-directory", "-C", "../..", "deb", "DEB_ARCHES=amd64", "DIST="+dist).CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "jitsi-agent_*_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb wrote %v", debs)
	}
	deb, err := os.ReadFile(debs[0])
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	key, fpr := signedRepo(t, upstream, repo)
	files := map[string]string{agentDeb: string(deb), repoDir + "/key.asc": key}
	ents, _ := os.ReadDir(repo)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(repo, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[repoDir+"/"+e.Name()] = string(b)
	}
	// The videobridge's postinst runs `sysctl --system`: read-only
	// /proc/sys in the box keeps it from changing the host's kernel.
	e := systemtest.Boot(t, systemtest.Options{Spec: bootstrapSpec(spec.DefaultJitsiKeyFingerprint), Files: files, NoStart: true,
		Setup: "mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys\n"})
	sh := func(limit time.Duration, script string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		return e.Exec(ctx, "sh", "-c", script)
	}
	must := func(limit time.Duration, script string) string {
		t.Helper()
		out, err := sh(limit, script)
		if err != nil {
			t.Fatalf("in the box: %s: %v\n%s", script, err, out)
		}
		return out
	}
	const bootstrap = "/usr/bin/jitsi-agent bootstrap " + systemtest.SpecPath

	// The cloud-init example's runcmd script, as it is, with the .deb's
	// URL and sum filled in. A wrong sum stops it before the install.
	sum := sha256.Sum256(deb)
	if out, err := sh(time.Minute, runcmd(t, "file://"+agentDeb, strings.Repeat("0", 64))); err == nil || !strings.Contains(out, "FAILED") {
		t.Fatalf("runcmd with a wrong sum must fail at sha256sum -c: %v\n%s", err, out)
	}
	if _, err := sh(time.Minute, "test ! -e /usr/bin/jitsi-agent"); err != nil {
		t.Fatal("runcmd installed a .deb whose sum did not match")
	}
	// The right sum: the .deb is installed, then bootstrap runs, with a
	// spec pinning Jitsi's real key: the repository's key is refused, and
	// nothing is changed.
	out, err := sh(5*time.Minute, runcmd(t, "file://"+agentDeb, hex.EncodeToString(sum[:])))
	if err == nil || !strings.Contains(out, "/run/jitsi-agent.deb: OK") || !strings.Contains(out, "is "+fpr+", not the pinned "+spec.DefaultJitsiKeyFingerprint) || !strings.Contains(out, "jitsi key: FAILED") {
		t.Fatalf("runcmd: the .deb installed, then bootstrap with another key pinned must refuse the key: %v\n%s", err, out)
	}
	if _, err := sh(time.Minute, "test -x /usr/bin/jitsi-agent"); err != nil {
		t.Fatal("runcmd did not install the .deb")
	}
	if _, err := sh(time.Minute, "test ! -e /etc/apt/keyrings/jitsi.gpg && test ! -e /etc/apt/sources.list.d/jitsi.list"); err != nil {
		t.Error("a refused key left a keyring or a sources file")
	}
	if got, _ := sh(time.Minute, "dpkg-query -W -f '${db:Status-Abbrev}' jicofo"); strings.HasPrefix(got, "ii") {
		t.Error("a refused key still installed jicofo")
	}
	if got := must(time.Minute, "echo GET jitsi-videobridge/jvb-hostname | debconf-communicate || true"); strings.HasPrefix(got, "0 ") {
		t.Errorf("a refused key still set debconf answers: %q", got)
	}

	// dpkg locked by another process (a real fcntl lock, as apt takes it):
	// stopped before anything is written.
	e.SetSpec(bootstrapSpec(fpr))
	pid := strings.TrimSpace(must(time.Minute, `python3 -c 'import fcntl,time; f=open("/var/lib/dpkg/lock-frontend","a"); fcntl.lockf(f, fcntl.LOCK_EX); open("/run/locked","w").close(); time.sleep(600)' >/dev/null 2>&1 & echo $!`))
	must(time.Minute, "for i in $(seq 300); do test -e /run/locked && exit 0; sleep 0.1; done; exit 1")
	out, err = sh(2*time.Minute, bootstrap)
	if err == nil || !strings.Contains(out, "dpkg is locked (/var/lib/dpkg/lock-frontend") || !strings.Contains(out, "preflight: FAILED") {
		t.Errorf("bootstrap with dpkg locked must stop at preflight: %v\n%s", err, out)
	}
	must(time.Minute, "kill "+pid)
	if _, err := sh(time.Minute, "test ! -e /etc/apt/keyrings/jitsi.gpg"); err != nil {
		t.Error("bootstrap wrote the keyring although dpkg was locked")
	}

	// The repository unreachable: apt-get update of it fails, bootstrap
	// stops there, no answer is set and no package installed.
	e.SetSpec(bootstrapSpecAt("/srv/no-such-repo", fpr))
	out, err = sh(2*time.Minute, bootstrap)
	if err == nil || !strings.Contains(out, "package lists: FAILED") || !strings.Contains(out, "apt-get update of /etc/apt/sources.list.d/jitsi.list (file:///srv/no-such-repo)") {
		t.Errorf("bootstrap with an unreachable repository must stop at the package lists: %v\n%s", err, out)
	}
	if got := must(time.Minute, "echo GET jitsi-videobridge/jvb-hostname | debconf-communicate || true"); strings.HasPrefix(got, "0 ") {
		t.Errorf("an unreachable repository still set debconf answers: %q", got)
	}

	// The right pin: the whole way to a running deployment.
	e.SetSpec(bootstrapSpec(fpr))
	out = must(10*time.Minute, bootstrap)
	t.Logf("first bootstrap:\n%s", out)
	// The key was written by the run against the unreachable repository
	// (the step before the one that failed); the sources file is rewritten.
	for _, step := range []string{"jitsi key: unchanged", "jitsi repository: wrote /etc/apt/sources.list.d/jitsi.list", "package lists: updated jitsi", "debconf answers: set", "packages: installed", "apply: ", "daemon: enabled and started jitsi-agent.service", "verify: unchanged"} {
		if !strings.Contains(out, step) {
			t.Errorf("first bootstrap lacks %q", step)
		}
	}
	if strings.Contains(out, systemtest.AppSecret) {
		t.Error("bootstrap printed the app secret")
	}
	for _, u := range []string{"prosody", "jicofo", "jitsi-videobridge2", "nginx", "coturn", "jitsi-agent"} {
		if st := strings.TrimSpace(must(time.Minute, "systemctl is-active "+u+" || true")); st != "active" {
			t.Errorf("%s is %s after bootstrap", u, st)
		}
	}
	if got := must(time.Minute, "cat /etc/apt/sources.list.d/jitsi.list"); !strings.Contains(got, "deb [signed-by=/etc/apt/keyrings/jitsi.gpg] file://"+repoDir+" ./") {
		t.Errorf("sources:\n%s", got)
	}
	if got := must(time.Minute, "echo GET jitsi-meet/cert-path-crt | debconf-communicate; echo GET jitsi-videobridge/jvb-hostname | debconf-communicate"); got != "0 /etc/jitsi/meet/meet.test.crt\n0 meet.test\n" {
		t.Errorf("debconf answers:\n%s", got)
	}
	// The packages created focus@ and jvb@auth.DOMAIN with the agent's
	// passwords (preseeded), so the apply right after them changed no
	// account: no window with a password the agent then replaces.
	for q, file := range map[string]string{"jicofo/jicofo-authpassword": "focus_password", "jitsi-videobridge/jvbsecret": "jvb_password"} {
		want := strings.TrimSpace(must(time.Minute, "cat "+systemtest.StateDir+"/secrets/"+file))
		if got := must(time.Minute, "echo GET "+q+" | debconf-communicate"); want == "" || got != "0 "+want+"\n" {
			t.Errorf("debconf %s is not the agent's %s", q, file)
		}
		if strings.Contains(out, want) {
			t.Errorf("bootstrap printed the %s", file)
		}
	}
	for _, acct := range []string{"account focus@auth.meet.test", "account jvb@auth.meet.test"} {
		if strings.Contains(out, acct) {
			t.Errorf("the first bootstrap's apply changed %s: the package created it with another password", strings.TrimPrefix(acct, "account "))
		}
	}
	login := func(when string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// What jicofo does (the stand-in runs no Java): focus logs in on
		// auth.DOMAIN with the agent's password, over STARTTLS verified
		// against the agent's CA, and creates the room (only focus may).
		// The postinsts restart Prosody (invoke-rc.d prosody restart), and
		// nothing probes it afterwards: wait until it serves auth.DOMAIN.
		// It listens before its hosts are active (they load their modules
		// first), so a login may meet a closed port, host-unknown or no
		// stream features for a while; a refused password is an answer.
		// The same holds for the conference component the room is on.
		var focus *xmpptest.Client
		for {
			var err error
			focus, err = e.Component(ctx, "focus")
			var auth *xmpptest.AuthError
			if errors.As(err, &auth) || err != nil && ctx.Err() != nil {
				t.Fatalf("%s: focus login with the agent's password: %v", when, err)
			}
			if err == nil {
				if err = focus.JoinMUC(ctx, e.MUC("bootstraproom"), "focus"); err == nil {
					break
				}
				focus.Close()
				if ctx.Err() != nil {
					t.Fatalf("%s: focus creates the room: %v", when, err)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		defer focus.Close()
		tok := e.Token("bootstraproom")
		c, err := e.BOSH(ctx, e.Domain, tok)
		if err != nil {
			t.Fatalf("%s: token login over BOSH through nginx: %v", when, err)
		}
		defer c.Close()
		if err := c.JoinMUC(ctx, e.MUC("bootstraproom"), "tester"); err != nil {
			t.Errorf("%s: joining the token's room: %v", when, err)
		}
		if _, err := e.BOSH(ctx, e.Domain, tok[:len(tok)-4]+"AAAA"); err == nil {
			t.Errorf("%s: a token with a forged signature logged in", when)
		}
	}
	login("after bootstrap")

	// A second run changes nothing.
	out = must(5*time.Minute, bootstrap)
	if !strings.Contains(out, "bootstrap: no changes") || strings.Count(out, ": unchanged\n") < 10 {
		t.Errorf("second bootstrap must change nothing:\n%s", out)
	}

	// The packages' own postinsts again, as an upgrade runs them, with the
	// daemon stopped (it would repair a rewritten file before we look).
	must(time.Minute, "systemctl stop jitsi-agent.service")
	const managed = "/etc/prosody/conf.avail/meet.test.cfg.lua /etc/jitsi/jicofo/jicofo.conf /etc/jitsi/videobridge/jvb.conf /etc/jitsi/videobridge/sip-communicator.properties /etc/jitsi/meet/meet.test-config.js /etc/nginx/sites-available/meet.test.conf /etc/coturn/turnserver.conf /etc/prosody/certs/meet.test.crt /etc/prosody/certs/meet.test.key"
	before := must(time.Minute, "stat -c '%n %U:%G %a %F' "+managed+" && sha256sum "+managed)
	// Files the postinsts write when missing (not managed by the agent):
	// removed first, their return proves each script really ran.
	const evidence = "/etc/jitsi/jicofo/config /etc/jitsi/videobridge/config /etc/prosody/conf.avail/jaas.cfg.lua"
	must(time.Minute, "rm "+evidence+" && echo 'SET jitsi-meet-prosody/prosody_config none' | debconf-communicate")
	out = must(5*time.Minute, "DEBIAN_FRONTEND=noninteractive dpkg-reconfigure jitsi-videobridge2 jicofo jitsi-meet-prosody jitsi-meet-tokens 2>&1")
	t.Logf("dpkg-reconfigure:\n%s", out)
	if _, err := sh(time.Minute, "ls "+evidence); err != nil {
		t.Errorf("the postinsts did not run (%s not written again)", evidence)
	}
	if got := must(time.Minute, "echo GET jitsi-meet-prosody/prosody_config | debconf-communicate"); got != "0 /etc/prosody/conf.avail/meet.test.cfg.lua\n" {
		t.Errorf("jitsi-meet-tokens' postinst did not run: prosody_config = %q", got)
	}
	after := must(time.Minute, "stat -c '%n %U:%G %a %F' "+managed+" && sha256sum "+managed)
	if before != after {
		t.Errorf("the packages' postinsts changed managed files:\nbefore:\n%s\nafter:\n%s\npostinst output:\n%s", before, after, out)
	}
	if out, err := sh(2*time.Minute, "/usr/bin/jitsi-agent plan "+systemtest.SpecPath); err != nil {
		t.Errorf("plan after the postinsts must be clean (exit 0): %v\n%s", err, out)
	}
	must(time.Minute, "systemctl start jitsi-agent.service")
	login("after the postinsts ran again")

	// Purge: the agent says what it deletes and deletes its state.
	out = must(3*time.Minute, "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q jitsi-agent 2>&1")
	if !strings.Contains(out, "removing /var/lib/jitsi-agent") {
		t.Errorf("purge:\n%s", out)
	}
	if _, err := sh(time.Minute, "test ! -e /var/lib/jitsi-agent"); err != nil {
		t.Error("purge left /var/lib/jitsi-agent")
	}
}
