package adopt

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/adopt/adopttest"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// TestFixtureMatchesRealPostinst runs the real maintainer scripts of
// jitsi-meet-prosody, jitsi-meet-tokens and jitsi-meet-turnserver (their `configure` branch, with
// every grep guard and sed as shipped) against a scratch root, with
// debconf's db_* answered from a preseed table and the commands that touch
// the system (prosodyctl, invoke-rc.d, update-ca-certificates, sleep)
// stubbed; absolute paths are moved under the root. The Prosody file and
// turnserver.conf they produce must be byte-identical to the fixture
// adopttest builds, so the
// import tests run on what the packages really write.
func TestFixtureMatchesRealPostinst(t *testing.T) {
	bash := testenv.LookPath(t, "bash", "apt-get install bash")
	up := adopttest.UpstreamDir(t)
	root := t.TempDir()
	doc := filepath.Join(up, "jitsi-meet/doc/debian/jitsi-meet-prosody")
	for _, d := range []string{"etc/prosody/conf.avail", "etc/prosody/conf.d", "etc/prosody/certs", "var/lib/prosody", "usr/local/share/ca-certificates", "etc/default", "etc/jitsi/meet"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	// Debian's prosody package ships a main config that includes conf.d.
	os.WriteFile(filepath.Join(root, "etc/prosody/prosody.cfg.lua"), []byte("admins = { }\nInclude \"conf.d/*.cfg.lua\"\n"), 0o644)
	// coturn's package ships /etc/default/coturn with the switch commented.
	os.WriteFile(filepath.Join(root, "etc/default/coturn"), []byte("#TURNSERVER_ENABLED=1\n"), 0o644)

	script := func(name string) string {
		b, err := os.ReadFile(filepath.Join(up, "jitsi-meet/debian", name))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		s = strings.ReplaceAll(s, ". /usr/share/debconf/confmodule", ":")
		s = strings.ReplaceAll(s, "/usr/share/jitsi-meet-prosody/", doc+"/")
		s = strings.ReplaceAll(s, "/usr/share/jitsi-meet-turnserver/", filepath.Join(up, "jitsi-meet/doc/debian/jitsi-meet-turn")+"/")
		for _, p := range []string{"/etc/prosody", "/var/lib/prosody", "/usr/local/share/ca-certificates", "/etc/turnserver.conf", "/etc/default/coturn", "/etc/jitsi/meet"} {
			s = strings.ReplaceAll(s, p, root+p)
		}
		return s
	}
	stubs := `
declare -A DB=(
  [jitsi-videobridge/jvb-hostname]="` + adopttest.Domain + `"
  [jitsi-videobridge/jvbsecret]="` + adopttest.JVBPassword + `"
  [jicofo/jicofo-authpassword]="` + adopttest.FocusPassword + `"
  [jitsi-meet-prosody/turn-secret]="` + adopttest.TURNSecret + `"
  [jitsi-meet/cert-choice]="Generate a new self-signed certificate"
  [jitsi-meet-tokens/appid]="` + adopttest.AppID + `"
  [jitsi-meet-tokens/appsecret]="` + adopttest.AppSecret + `"
)
db_get() { RET="${DB[$1]}"; }
db_set() { DB[$1]="$2"; }
db_input() { :; }; db_go() { :; }; db_stop() { :; }; db_subst() { :; }
prosodyctl() { :; }; invoke-rc.d() { :; }; update-ca-certificates() { :; }; sleep() { :; }
`
	prog := stubs + "\nset -- configure\n(\n" + script("jitsi-meet-prosody.postinst") + "\n)\n(\n" + script("jitsi-meet-tokens.postinst") + "\n)\n(\n" + script("jitsi-meet-turnserver.postinst") + "\n)\n"
	// the tokens script reads the hostname the prosody script stored: run
	// both in one shell, the debconf table carried over by db_set in the
	// parent (the subshells only isolate their `exit 0`).
	prog = strings.Replace(prog, "\n(\n"+script("jitsi-meet-tokens.postinst"), "\nDB[jitsi-meet-prosody/jvb-hostname]=\""+adopttest.Domain+"\"\n(\n"+script("jitsi-meet-tokens.postinst"), 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-c", prog)
	cmd.Env = append(os.Environ(), "PATH=/usr/bin:/bin")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("postinst: %v\n%s", err, out)
	}
	real, err := os.ReadFile(filepath.Join(root, "etc/prosody/conf.avail", adopttest.Domain+".cfg.lua"))
	if err != nil {
		t.Fatal(err)
	}
	fixtureRoot := adopttest.QuickInstall(t, true)
	fixture, err := os.ReadFile(filepath.Join(fixtureRoot, "etc/prosody/conf.avail", adopttest.Domain+".cfg.lua"))
	if err != nil {
		t.Fatal(err)
	}
	// undo the path move in what the scripts wrote (the auth host's ssl paths)
	realText := strings.ReplaceAll(string(real), root, "")
	if !strings.Contains(realText, `authentication = "token" -- do not delete me`) || !strings.Contains(realText, `app_secret="`+adopttest.AppSecret+`"`) {
		t.Fatalf("the scripts did not run their token edits:\n%s", realText)
	}
	if realText != string(fixture) {
		t.Errorf("the fixture differs from what the packages' scripts write:\n%s", firstDiff(realText, string(fixture)))
	}
	turn, err := os.ReadFile(filepath.Join(root, "etc/turnserver.conf"))
	if err != nil {
		t.Fatal(err)
	}
	turnFixture, _ := os.ReadFile(filepath.Join(fixtureRoot, "etc/turnserver.conf"))
	if string(turn) != string(turnFixture) {
		t.Errorf("turnserver.conf differs from what jitsi-meet-turnserver's script writes:\n%s", firstDiff(string(turn), string(turnFixture)))
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/default/coturn")); string(b) != "TURNSERVER_ENABLED=1\n" {
		t.Errorf("the turnserver script did not run to its end: /etc/default/coturn is %q", b)
	}
}

// TestJVBFixtureMatchesRealPostinst: jitsi-videobridge2's real postinst
// (configure branch, debconf preseeded, uuidgen answering the fixture's
// nickname, user/group/service commands stubbed, paths under a scratch
// root) writes the jvb.conf the tests import.
func TestJVBFixtureMatchesRealPostinst(t *testing.T) {
	bash := testenv.LookPath(t, "bash", "apt-get install bash")
	up := adopttest.UpstreamDir(t)
	root := t.TempDir()
	for _, d := range []string{"etc/jitsi/videobridge", "etc/default", "usr/share/jitsi-videobridge", "var/log/jitsi"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	b, err := os.ReadFile(filepath.Join(up, "jitsi-videobridge/debian/postinst"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), ". /usr/share/debconf/confmodule", ":")
	for _, p := range []string{"/etc/jitsi/videobridge", "/etc/default/jitsi-videobridge", "/usr/share/jitsi-videobridge", "/var/log/jitsi"} {
		s = strings.ReplaceAll(s, p, root+p)
	}
	stubs := `
declare -A DB=(
  [jitsi-videobridge/jvb-hostname]="` + adopttest.Domain + `"
  [jitsi-videobridge/jvbsecret]="` + adopttest.JVBPassword + `"
)
db_get() { RET="${DB[$1]}"; }
db_set() { DB[$1]="$2"; }
db_input() { :; }; db_go() { :; }; db_stop() { :; }
uuidgen() { echo "` + adopttest.Nickname + `"; }
getent() { return 0; }; groups() { echo "jvb : jitsi"; }; groupadd() { :; }; groupdel() { :; }
useradd() { :; }; usermod() { :; }; chown() { :; }; dpkg-statoverride() { return 1; }
systemctl() { :; }; sysctl() { :; }; hocon() { echo "hocon must not be needed" >&2; return 1; }
set -- configure
`
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-c", stubs+"(\n"+s+"\n)\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("postinst: %v\n%s", err, out)
	}
	real, err := os.ReadFile(filepath.Join(root, "etc/jitsi/videobridge/jvb.conf"))
	if err != nil {
		t.Fatal(err)
	}
	fixture, _ := os.ReadFile(filepath.Join(adopttest.QuickInstall(t, false), "etc/jitsi/videobridge/jvb.conf"))
	if string(real) != string(fixture) {
		t.Errorf("jvb.conf differs from what jitsi-videobridge2's script writes:\n%s", firstDiff(string(real), string(fixture)))
	}
}

// TestWebFixtureMatchesRealPostinst: jitsi-meet-web-config's real postinst
// (nginx installed, self-signed certificate chosen; openssl, dpkg-query and
// service commands stubbed) writes the config.js and nginx site the tests
// import.
func TestWebFixtureMatchesRealPostinst(t *testing.T) {
	bash := testenv.LookPath(t, "bash", "apt-get install bash")
	up := adopttest.UpstreamDir(t)
	root := t.TempDir()
	share := t.TempDir() // /usr/share/jitsi-meet-web-config as the package installs it
	for src, dst := range map[string]string{"jitsi-meet/config.js": "config.js", "jitsi-meet/doc/debian/jitsi-meet/jitsi-meet.example": "jitsi-meet.example"} {
		b, err := os.ReadFile(filepath.Join(up, src))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(share, dst), b, 0o644)
	}
	for _, d := range []string{"etc/jitsi/meet", "etc/nginx/sites-available", "etc/nginx/sites-enabled"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	b, err := os.ReadFile(filepath.Join(up, "jitsi-meet/debian/jitsi-meet-web-config.postinst"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), ". /usr/share/debconf/confmodule", ":")
	s = strings.ReplaceAll(s, "/usr/share/jitsi-meet-web-config/", share+"/")
	for _, p := range []string{"/etc/jitsi/meet", "/etc/nginx"} {
		s = strings.ReplaceAll(s, p, root+p)
	}
	stubs := `
declare -A DB=(
  [jitsi-videobridge/jvb-hostname]="` + adopttest.Domain + `"
  [jitsi-meet/cert-choice]="Generate a new self-signed certificate"
)
db_get() { RET="${DB[$1]}"; }
db_set() { DB[$1]="$2"; }
db_input() { :; }; db_go() { :; }; db_stop() { :; }; db_subst() { :; }
dpkg-query() { case "$*" in *"'nginx'"*|*" nginx") echo "install ok installed";; esac; }
openssl() { :; }; hostname() { echo localhost; }; invoke-rc.d() { :; }
set -- configure
`
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bash, "-c", stubs+"(\n"+s+"\n)\n").CombinedOutput(); err != nil {
		t.Fatalf("postinst: %v\n%s", err, out)
	}
	fixtureRoot := adopttest.QuickInstall(t, false)
	for _, p := range []string{"/etc/jitsi/meet/" + adopttest.Domain + "-config.js", "/etc/nginx/sites-available/" + adopttest.Domain + ".conf"} {
		real, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatalf("the script did not write %s: %v", p, err)
		}
		fixture, _ := os.ReadFile(filepath.Join(fixtureRoot, p))
		if string(real) != string(fixture) {
			t.Errorf("%s differs from what jitsi-meet-web-config's script writes:\n%s", p, firstDiff(string(real), string(fixture)))
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "/etc/nginx/sites-enabled/"+adopttest.Domain+".conf")); err != nil {
		t.Errorf("the script did not enable the site: %v", err)
	}
}
