package firewall

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func load(t *testing.T, path string, host string) *spec.Deployment {
	t.Helper()
	res := spec.Load(path, spec.Options{
		Host: host,
		LookupEnv: func(k string) (string, bool) {
			v, ok := map[string]string{"JITSI_APP_SECRET": "c750d07b4ed825ac6f7143f45cfc50f80b90ebd8",
				"JOIN_API_KEY": "5d0c1e3f9a7b2c4e6f8a0b1c3d5e7f9a"}[k]
			return v, ok
		},
		Hostname: func() (string, error) { return "meet1", nil },
	})
	if res.HasErrors() {
		var b bytes.Buffer
		res.WriteDiagnostics(&b)
		t.Fatalf("spec does not load:\n%s", b.String())
	}
	return res.Deployment
}

func loadSrc(t *testing.T, src, host string) *spec.Deployment {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spec.hcl")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return load(t, p, host)
}

func labels(ps []Port) string {
	var out []string
	for _, p := range ps {
		s := p.Name + "=" + p.Label()
		for _, src := range p.Sources {
			s += " from " + src.String()
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// The app team's checklist (443, 10000/udp, 3478/udp, 5349/tcp, plus 80 and
// the relay range) comes from the example spec alone.
func TestExamplePorts(t *testing.T) {
	d := load(t, "../../examples/meet.hcl", "")
	if !d.Firewall.Enabled || d.Firewall.SSHPort != 22 {
		t.Fatalf("example firewall: %+v", d.Firewall)
	}
	got := labels(PublicPorts(d))
	want := "http=80/tcp; https=443/tcp; turns=5349/tcp; turn=3478/udp; jvb=10000/udp; turn-relay=49160-49200/udp"
	if got != want {
		t.Fatalf("ports:\n got %s\nwant %s", got, want)
	}
}

func TestFirewallOffWithoutBlock(t *testing.T) {
	d := loadSrc(t, `domain = "meet.example.com"
auth "anonymous" {}
`, "")
	if d.Firewall.Enabled {
		t.Fatal("a spec without a firewall block must leave the firewall off")
	}
	d = loadSrc(t, `domain = "meet.example.com"
auth "anonymous" {}
firewall { enabled = false }
`, "")
	if d.Firewall.Enabled {
		t.Fatal("enabled = false")
	}
}

func TestPortsRestrictionsAndRoles(t *testing.T) {
	src := `domain = "meet.example.com"
auth "anonymous" {}
cluster_secret = "9b1f4c7e2a6d8035e1c4f7a92b6d0e83c5a17f49"
host "meet1" {
  address = "10.0.0.1"
  roles   = ["prosody", "jicofo", "nginx", "coturn"]
}
host "jvb1" {
  roles       = ["jvb"]
  public_ips  = ["198.51.100.7"]
  private_ips = ["10.0.0.7"]
}
host "jvb2" {
  roles      = ["jvb"]
  public_ips = ["2001:db8::7"]
}
web { http_redirect = false }
turn { enabled = true }
firewall {
  ssh_port    = 2222
  ssh_sources = ["192.0.2.0/24", "2001:db8:1::/48"]
  port "turn-relay" { open = false }
  port "https" {
    sources = ["203.0.113.0/24"]
    reason  = "office only"
  }
  port "backend" {
    port     = 8000
    to_port  = 8010
    protocol = "udp"
    sources  = ["10.0.0.1"]
  }
}
`
	d := loadSrc(t, src, "meet1")
	got := labels(PublicPorts(d))
	want := "https=443/tcp from 203.0.113.0/24; xmpp=5222/tcp from 198.51.100.7/32 from 10.0.0.7/32 from 2001:db8::7/128; " +
		"turns=5349/tcp; turn=3478/udp; backend=8000-8010/udp from 10.0.0.1/32"
	if got != want {
		t.Fatalf("meet1 ports:\n got %s\nwant %s", got, want)
	}
	r := RulesFor(d)
	if r.SSH.From != 2222 || len(r.SSH.Sources) != 2 {
		t.Fatalf("ssh: %+v", r.SSH)
	}
	out, err := Render(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `comment "443/tcp https: office only"`) {
		t.Errorf("reason override missing:\n%s", out)
	}
	if got := labels(PublicPorts(loadSrc(t, src, "jvb1"))); got != "jvb=10000/udp; backend=8000-8010/udp from 10.0.0.1/32" {
		t.Fatalf("jvb1 ports: %s", got)
	}
}

// The example spec alone opens its ports: rendered, applied in a namespace
// and probed from outside.
func TestExampleSpecFromOutside(t *testing.T) {
	l := newLab(t)
	d := load(t, "../../examples/meet.hcl", "")
	script, err := Render(RulesFor(d))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{22, 80, 443, 5349, 5222, 5280} {
		l.listenTCP(t, p)
	}
	for _, p := range []int{10000, 3478, 49160, 49200, 49201} {
		l.listenUDP(t, p)
	}
	m := newManager(t, l)
	if _, err := m.Apply(context.Background(), script, 0); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{22, 80, 443, 5349} {
		if !l.tcpOpen(t, l.hostIP4, p, true) {
			t.Errorf("%d/tcp closed", p)
		}
	}
	for _, p := range []int{5222, 5280} {
		if l.tcpOpen(t, l.hostIP6, p, false) {
			t.Errorf("%d/tcp open", p)
		}
	}
	for _, p := range []int{10000, 3478, 49160, 49200} {
		if !l.udpOpen(t, l.hostIP6, p, true) {
			t.Errorf("%d/udp closed", p)
		}
	}
	if l.udpOpen(t, l.hostIP4, 49201, false) {
		t.Error("49201/udp (outside the relay range) open")
	}
}

// Parse reads back what Render wrote.
func TestParseRoundTrip(t *testing.T) {
	r := testRules(2222)
	r.SSH.Sources = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	out, err := Render(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Render(back)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(out) {
		t.Fatalf("round trip differs:\n%s\nwant:\n%s", again, out)
	}
	if _, err := Parse([]byte("table inet jitsi_agent {\n\tchain input {\n\t\ttcp dport 1 drop\n\t}\n}\n")); err == nil {
		t.Fatal("a foreign rule parsed")
	}
}
