package spec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/ports"
)

const fleetPortsSpec = `domain = "meet.example.com"
cluster_secret = "4e9d2b7a1c6f30e8d5b94a17c2e6f08b3d71a5c9"
auth "anonymous" {}
videobridge { websockets = true }
host "signal1" {
  address = "10.0.0.1"
  roles   = ["prosody", "jicofo", "nginx", "coturn"]
}
host "jvb1" {
  address = "10.0.0.11"
  roles   = ["jvb"]
}
`

func loadHost(t *testing.T, src, host string) *Deployment {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spec.hcl")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	res := Load(p, Options{Host: host})
	if res.HasErrors() {
		t.Fatal(res.Summary())
	}
	return res.Deployment
}

// The other hosts' addresses open the ports they need: the bridge's c2s
// login on the Prosody host, nginx's colibri-ws proxy on the bridge.
func TestFleetPortsFollowAddresses(t *testing.T) {
	sig := loadHost(t, fleetPortsSpec, "signal1").Ports()
	c2s, _ := sig.Get(ports.ProsodyC2S)
	if !c2s.Public || len(c2s.Sources) != 1 || c2s.Sources[0].String() != "10.0.0.11/32" {
		t.Errorf("c2s on signal1: %+v, want open to jvb1's address", c2s)
	}
	if sig.On(ports.JVBPublic) {
		t.Error("signal1 binds colibri-ws but runs no bridge")
	}
	d := loadHost(t, fleetPortsSpec, "jvb1")
	ws, ok := d.Ports().Get(ports.JVBPublic)
	if !ok || ws.Host != "10.0.0.11" || !ws.Public || ws.Name != ports.NameColibriWS || len(ws.Sources) != 1 || ws.Sources[0].String() != "10.0.0.1/32" {
		t.Errorf("colibri-ws on jvb1: %+v, want bound on 10.0.0.11 and open to signal1 (10.0.0.1)", ws)
	}
	if d.TURN.Host != "meet.example.com" {
		t.Errorf("TURN host %q: coturn runs on the web front, the domain is right", d.TURN.Host)
	}
}

// A single-host spec keeps loopback and the generated secrets.
func TestSingleHostUnchanged(t *testing.T) {
	d := loadHost(t, `domain = "meet.example.com"
auth "anonymous" {}
videobridge { websockets = true }
`, "box")
	ws, _ := d.Ports().Get(ports.JVBPublic)
	if ws.Host != "127.0.0.1" || ws.Public {
		t.Errorf("single host colibri-ws: %+v", ws)
	}
	if !d.ClusterSecret.IsZero() || d.MultiHost() {
		t.Error("single host spec is multi-host")
	}
}
