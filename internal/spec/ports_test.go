package spec

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/ports"
)

func loadSrc(t *testing.T, src string) *Result {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spec.hcl")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p, Options{LookupEnv: env(map[string]string{"JITSI_AGENT_TEST_SECRET": testSecret}),
		Hostname: func() (string, error) { return "a", nil }})
}

func ids(s ports.Set) []string {
	var out []string
	for _, b := range s {
		out = append(out, b.ID)
	}
	slices.Sort(out)
	return out
}

func TestPortsDefaults(t *testing.T) {
	res := loadSrc(t, `domain = "meet.example.com"
auth "anonymous" {}
`)
	if res.HasErrors() {
		t.Fatal(res.Summary())
	}
	s := res.Deployment.Ports()
	want := []string{ports.AgentMetrics, ports.CoturnAlt, ports.CoturnAltTLS, ports.CoturnRelay, ports.CoturnTURN, ports.CoturnTURNS,
		ports.JicofoREST, ports.JVBMedia, ports.JVBPrivate, ports.NginxHTTP, ports.NginxHTTPS, ports.ProsodyC2S, ports.ProsodyHTTP}
	slices.Sort(want)
	if got := ids(s); !slices.Equal(got, want) {
		t.Errorf("bindings = %v, want %v (s2s and Prosody https off by default)", got, want)
	}
	if len(s.Clashes()) != 0 {
		t.Errorf("defaults clash: %v", s.Clashes())
	}
	var pub []string
	for _, b := range s.Public() {
		pub = append(pub, b.Name+"="+b.Label())
	}
	if !slices.Equal(pub, []string{"http=80/tcp", "https=443/tcp", "turns=5349/tcp", "turn=3478/udp", "jvb=10000/udp", "turn-relay=49152-65535/udp"}) {
		t.Errorf("public = %v", pub)
	}
	if b, _ := s.Get(ports.ProsodyHTTP); !b.Loopback() || b.Port != 5280 {
		t.Errorf("prosody http: %+v", b)
	}
}

func TestPortsSpecTurnsThingsOn(t *testing.T) {
	res := loadSrc(t, `domain = "meet.example.com"
auth "jwt" {
  app_id     = "app"
  app_secret = env("JITSI_AGENT_TEST_SECRET")
}
prosody {
  s2s_port   = 5269
  https_port = 5281
  c2s_port   = 15222
}
turn {
  secret = env("JITSI_AGENT_TEST_SECRET")
  relay_min_port = 40000
  relay_max_port = 40100
}
videobridge { websockets = true }
token_api {
  listen          = "0.0.0.0:8443"
  tls_certificate = "/etc/ssl/api.crt"
  tls_key         = "/etc/ssl/api.key"
  key "app" { key = env("JITSI_AGENT_TEST_SECRET") }
}
cluster_secret = "9b1f4c7e2a6d8035e1c4f7a92b6d0e83c5a17f49"
host "a" {
  address = "10.0.0.1"
  roles   = ["prosody", "nginx", "jicofo", "coturn"]
}
host "b" {
  address    = "198.51.100.7"
  roles      = ["jvb"]
  public_ips = ["198.51.100.7"]
}
`)
	if res.HasErrors() {
		t.Fatal(res.Summary())
	}
	s := res.Deployment.Ports()
	if s.On(ports.JVBMedia) || s.On(ports.JVBPublic) {
		t.Error("host a does not run the videobridge")
	}
	c2s, _ := s.Get(ports.ProsodyC2S)
	if c2s.Port != 15222 || !c2s.Public || c2s.Name != ports.NameXMPP || len(c2s.Sources) != 1 || c2s.Sources[0].String() != "198.51.100.7/32" {
		t.Errorf("c2s for the bridge on host b: %+v", c2s)
	}
	if s.Port(ports.ProsodyS2S) != 5269 || s.Port(ports.ProsodyHTTPS) != 5281 {
		t.Error("s2s/https not turned on")
	}
	relay, _ := s.Get(ports.CoturnRelay)
	if relay.Label() != "40000-40100/udp" || relay.Field != "turn.relay_min_port" {
		t.Errorf("relay: %+v", relay)
	}
	api, _ := s.Get(ports.AgentTokenAPI)
	if !api.Public || api.Host != "" || api.Port != 8443 {
		t.Errorf("token api on 0.0.0.0 is public on every interface: %+v", api)
	}
}

// BenchmarkPortsAndClashes: the port model and its clash check run on every
// spec load.
func BenchmarkPortsAndClashes(b *testing.B) {
	res := loadExample(b, nil)
	if res.HasErrors() {
		b.Fatal(res.Summary())
	}
	d := res.Deployment
	for b.Loop() {
		if len(d.Ports().Clashes()) != 0 {
			b.Fatal("clash")
		}
	}
}
