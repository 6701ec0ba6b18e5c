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

const shardedSpec = `domain = "meet.example.com"
cluster_secret = "4e9d2b7a1c6f30e8d5b94a17c2e6f08b3d71a5c9"
auth "anonymous" {}
videobridge { websockets = true }
host "front1" {
  address = "192.0.2.10"
  roles   = ["front"]
}
host "signal-a" {
  address = "10.0.0.1"
  roles   = ["prosody", "jicofo", "nginx", "coturn"]
}
host "jvb-a1" {
  address = "10.0.0.11"
  roles   = ["jvb"]
}
host "signal-b" {
  shard   = "b"
  address = "10.0.1.1"
  roles   = ["prosody", "jicofo", "nginx", "coturn"]
}
host "jvb-b1" {
  shard   = "b"
  address = "10.0.1.11"
  roles   = ["jvb"]
}
`

// TestShardedSpec: each shard's hosts reach their own shard's Prosody and
// nginx; nginx is open to the front only; the front binds the web ports;
// TURN goes to the shard's coturn (the domain points at the front).
func TestShardedSpec(t *testing.T) {
	a := loadHost(t, shardedSpec, "signal-a")
	if a.Host.Shard != DefaultShard {
		t.Fatalf("signal-a shard %q", a.Host.Shard)
	}
	p := a.Ports()
	c2s, _ := p.Get(ports.ProsodyC2S)
	if len(c2s.Sources) != 1 || c2s.Sources[0].String() != "10.0.0.11/32" {
		t.Errorf("c2s of shard default open to %v, want jvb-a1 only", c2s.Sources)
	}
	https, _ := p.Get(ports.NginxHTTPS)
	if len(https.Sources) != 1 || https.Sources[0].String() != "192.0.2.10/32" {
		t.Errorf("nginx https open to %v, want the front only", https.Sources)
	}
	if a.TURN.Host != "10.0.0.1" {
		t.Errorf("TURN host %q, want signal-a's address (the domain is the front)", a.TURN.Host)
	}
	b := loadHost(t, shardedSpec, "signal-b")
	if b.Host.Shard != "b" || b.TURN.Host != "10.0.1.1" {
		t.Errorf("signal-b: shard %q TURN %q", b.Host.Shard, b.TURN.Host)
	}
	jb := loadHost(t, shardedSpec, "jvb-b1")
	ws, _ := jb.Ports().Get(ports.JVBPublic)
	if len(ws.Sources) != 1 || ws.Sources[0].String() != "10.0.1.1/32" {
		t.Errorf("jvb-b1 colibri-ws open to %v, want its shard's nginx", ws.Sources)
	}
	f := loadHost(t, shardedSpec, "front1").Ports()
	fh, ok := f.Get(ports.FrontHTTPS)
	if !ok || fh.Port != 443 || !fh.Public || len(fh.Sources) != 0 || f.On(ports.NginxHTTPS) || f.On(ports.ProsodyC2S) {
		t.Errorf("front ports: %+v", f)
	}
	if !f.On(ports.FrontHTTP) {
		t.Error("front does not redirect HTTP")
	}
}

// A host block without roles never runs the front.
func TestFrontIsOptIn(t *testing.T) {
	d := loadHost(t, `domain = "meet.example.com"
auth "anonymous" {}
`, "box")
	if d.Host.HasRole(Front) || d.Ports().On(ports.FrontHTTPS) {
		t.Fatalf("default roles %v include the front", d.Host.Roles)
	}
}
