package agent

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/accounts"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

const fleetSpec = `domain = "meet.example.com"
cluster_secret = env("JITSI_CLUSTER_SECRET")
auth "anonymous" {}
videobridge { websockets = true }
host "signal1" {
  address = "10.0.0.1"
  roles   = ["prosody", "jicofo", "nginx"]
}
host "jvb1" {
  address    = "10.0.0.11"
  roles      = ["jvb"]
  public_ips = ["198.51.100.11"]
}
host "jvb2" {
  address = "jvb2.internal.example.com"
  roles   = ["jvb"]
}
host "turn1" {
  address = "turn.example.com"
  roles   = ["coturn"]
}
`

// renderHost loads the fleet spec for one host and renders it in its own
// (empty) root, as that machine would.
func renderHost(t *testing.T, src, host string) (*spec.Deployment, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "spec.hcl")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	res := spec.Load(p, spec.Options{Host: host, LookupEnv: func(k string) (string, bool) {
		if k == "JITSI_CLUSTER_SECRET" {
			return "4e9d2b7a1c6f30e8d5b94a17c2e6f08b3d71a5c9", true
		}
		return "", false
	}})
	if res.HasErrors() {
		t.Fatalf("host %s: %s", host, res.Summary())
	}
	set, err := DesiredStateReadOnly(res.Deployment, t.TempDir(), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("host %s: %v", host, err)
	}
	return res.Deployment, fileMap(set)
}

func fileMap(set *render.Set) map[string]string {
	out := map[string]string{}
	for _, f := range set.Files {
		out[f.Path] = string(f.Content)
	}
	return out
}

func match(t *testing.T, host, file, content, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(content)
	if m == nil {
		t.Fatalf("host %s: %s has no match for %s:\n%s", host, file, re, content)
	}
	return m[1]
}

func TestFleetHostsAgree(t *testing.T) {
	const (
		jvbConf   = "/etc/jitsi/videobridge/jvb.conf"
		prosody   = "/etc/prosody/conf.avail/meet.example.com.cfg.lua"
		nginx     = "/etc/nginx/sites-available/meet.example.com.conf"
		coturn    = "/etc/coturn/turnserver.conf"
		jicofoCfg = "/etc/jitsi/jicofo/jicofo.conf"
	)
	sig, sigFiles := renderHost(t, fleetSpec, "signal1")
	var jvbPassword string
	for _, a := range accounts.ForDeployment(sig) {
		if a.User == "jvb" {
			jvbPassword = a.Password.Reveal()
		}
	}
	if jvbPassword == "" {
		t.Fatal("signal1 expects no jvb account")
	}
	if _, ok := sigFiles[jvbConf]; ok {
		t.Error("signal1 renders jvb.conf but does not run the videobridge")
	}
	if got := match(t, "signal1", jicofoCfg, sigFiles[jicofoCfg], `hostname = "([^"]+)"`); got != "localhost" {
		t.Errorf("jicofo on the Prosody host dials %q, want localhost", got)
	}
	prosodyTURN := match(t, "signal1", prosody, sigFiles[prosody], `external_service_secret = "([^"]+)"`)
	if got := match(t, "signal1", prosody, sigFiles[prosody], `type = "turn", host = "([^"]+)"`); got != "turn.example.com" {
		t.Errorf("Prosody hands out TURN host %q, want the TURN host's address turn.example.com", got)
	}

	bridges := map[string]string{"jvb1": "10.0.0.11:9090", "jvb2": "jvb2.internal.example.com:9090"}
	for name, upstream := range bridges {
		_, f := renderHost(t, fleetSpec, name)
		conf := f[jvbConf]
		if got := match(t, name, jvbConf, conf, `HOSTNAME = "([^"]+)"`); got != "10.0.0.1" {
			t.Errorf("%s: JVB dials XMPP server %q, want the Prosody host's address 10.0.0.1", name, got)
		}
		if got := match(t, name, jvbConf, conf, `PASSWORD = "([^"]+)"`); got != jvbPassword {
			t.Errorf("%s: jvb.conf password differs from the account Prosody's host expects", name)
		}
		if got := match(t, name, jvbConf, conf, `server-id = "([^"]+)"`); got != name {
			t.Errorf("%s: colibri-ws server-id %q, want the host name", name, got)
		}
		wantBind := "0.0.0.0"
		if name == "jvb1" {
			wantBind = "10.0.0.11"
		}
		if got := match(t, name, jvbConf, conf, `public \{\s*host = "([^"]+)"`); got != wantBind {
			t.Errorf("%s: colibri-ws binds %q, want %q (nginx runs on signal1)", name, got, wantBind)
		}
		if got := match(t, name, jvbConf, conf, `addresses = \[ ?"([^"]+)"`); got != "turn.example.com:3478" {
			t.Errorf("%s: STUN server %q, want the TURN host turn.example.com:3478", name, got)
		}
		loc := regexp.QuoteMeta("location ~ ^/colibri-ws/"+regexp.QuoteMeta(name)+"/(.*) {") + `\s*proxy_pass http://([^/]+)/colibri-ws/` + regexp.QuoteMeta(name) + `/`
		if got := match(t, "signal1", nginx, sigFiles[nginx], loc); got != upstream {
			t.Errorf("nginx routes %s's colibri-ws to %q, want %q", name, got, upstream)
		}
	}
	if strings.Contains(sigFiles[nginx], "default-id") || strings.Contains(sigFiles[nginx], "127.0.0.1:9090") {
		t.Errorf("signal1's nginx still routes colibri-ws to a local bridge:\n%s", sigFiles[nginx])
	}

	_, turnFiles := renderHost(t, fleetSpec, "turn1")
	if got := match(t, "turn1", coturn, turnFiles[coturn], `(?m)^static-auth-secret=(\S+)$`); got != prosodyTURN {
		t.Error("coturn's static-auth-secret differs from the secret Prosody signs TURN credentials with")
	}
}

// With cluster_secret nothing is generated per host: an apply's desired
// state on a fresh root stores no jvb password or TURN secret of its own.
func TestFleetGeneratesNoSecrets(t *testing.T) {
	d, _ := renderHost(t, fleetSpec, "jvb1")
	root := t.TempDir()
	set, err := DesiredState(d, root, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"jvb_password", "turn_secret", "focus_password"} {
		if _, err := os.Stat(filepath.Join(StateDir(d, root), "secrets", name)); err == nil {
			t.Errorf("%s was generated into the state directory", name)
		}
	}
	conf := fileMap(set)["/etc/jitsi/videobridge/jvb.conf"]
	if !strings.Contains(conf, `PASSWORD = "`+d.Secrets.Password("jvb").Reveal()+`"`) || len(d.Secrets.Password("jvb").Reveal()) != 40 {
		t.Errorf("jvb.conf does not carry the derived password")
	}
}

// A colocated bridge (nginx on the same host) keeps loopback.
func TestFleetColocatedBridgeOnLoopback(t *testing.T) {
	src := strings.Replace(fleetSpec, `roles   = ["prosody", "jicofo", "nginx"]`, `roles   = ["prosody", "jicofo", "nginx", "jvb"]`, 1)
	_, f := renderHost(t, src, "signal1")
	nginx := f["/etc/nginx/sites-available/meet.example.com.conf"]
	if !strings.Contains(nginx, "proxy_pass http://127.0.0.1:9090/colibri-ws/signal1/") {
		t.Errorf("the bridge on signal1 is not routed over loopback:\n%s", nginx)
	}
	if got := match(t, "signal1", "jvb.conf", f["/etc/jitsi/videobridge/jvb.conf"], `public \{\s*host = "([^"]+)"`); got != "127.0.0.1" {
		t.Errorf("colocated bridge binds colibri-ws on %q, want 127.0.0.1", got)
	}
}
