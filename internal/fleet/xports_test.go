package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/doctor"
	"github.com/jitsi-agent/jitsi-agent/internal/ports"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

const xportsSpec = `domain = "meet.example.com"
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

func loadAll(t *testing.T) (map[string]*spec.Deployment, map[string]string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spec.hcl")
	if err := os.WriteFile(p, []byte(xportsSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	deps := map[string]*spec.Deployment{}
	addrs := map[string]string{}
	for _, h := range []string{"front1", "signal-a", "jvb-a1", "signal-b", "jvb-b1"} {
		res := spec.Load(p, spec.Options{Host: h})
		if res.HasErrors() {
			t.Fatal(res.Summary())
		}
		deps[h] = res.Deployment
		addrs[h] = res.Deployment.Host.Address
	}
	return deps, addrs
}

func peerList(pp []PeerPort) string {
	var s []string
	for _, p := range pp {
		s = append(s, p.Peer+" "+p.Binding.ID)
	}
	return strings.Join(s, ", ")
}

// Each host needs exactly what the ports model opens to it on the others.
func TestPeerPortsFollowThePortsModel(t *testing.T) {
	deps, addrs := loadAll(t)
	c2s := deps["signal-a"].Ports().Port(ports.ProsodyC2S)
	for host, want := range map[string]string{
		"jvb-a1":   "signal-a " + ports.ProsodyC2S,
		"signal-a": "jvb-a1 " + ports.JVBPublic,
		"jvb-b1":   "signal-b " + ports.ProsodyC2S,
		"front1":   "signal-a " + ports.NginxHTTPS + ", signal-b " + ports.NginxHTTPS,
	} {
		if got := peerList(PeerPorts(deps[host], deps, addrs)); got != want {
			t.Errorf("%s needs %q, want %q", host, got, want)
		}
	}
	pp := PeerPorts(deps["jvb-a1"], deps, addrs)
	if len(pp) != 1 || pp[0].Addr != fmt.Sprintf("10.0.0.1:%d", c2s) {
		t.Fatalf("jvb-a1 dials %+v", pp)
	}
	// A peer without a live registration (no address) is not dialled.
	delete(addrs, "signal-a")
	if got := PeerPorts(deps["jvb-a1"], deps, addrs); len(got) != 0 {
		t.Fatalf("unregistered peer dialled: %+v", got)
	}
}

type fakeDialer struct {
	mu     sync.Mutex
	dialed []string
	down   map[string]bool
}

func (f *fakeDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	f.dialed = append(f.dialed, addr)
	f.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("dial without a deadline")
	}
	if f.down[addr] {
		return nil, errors.New("connection refused")
	}
	a, b := net.Pipe()
	b.Close()
	return a, nil
}

func TestCheckPeerPortsFake(t *testing.T) {
	deps, addrs := loadAll(t)
	pp := PeerPorts(deps["front1"], deps, addrs)
	https := deps["signal-b"].Ports().Port(ports.NginxHTTPS)
	down := fmt.Sprintf("10.0.1.1:%d", https)
	d := &fakeDialer{down: map[string]bool{down: true}}
	rs := CheckPeerPorts(context.Background(), d, "front1", pp, time.Second)
	if len(d.dialed) != 2 || len(rs) != 2 {
		t.Fatalf("dialed %v, results %+v", d.dialed, rs)
	}
	if rs[0].Status != doctor.Pass || rs[1].Status != doctor.Fail {
		t.Fatalf("results %+v", rs)
	}
	for _, w := range []string{down, "nginx", "signal-b", "front1"} {
		if !strings.Contains(rs[1].Seen, w) {
			t.Errorf("failure %q does not name %q", rs[1].Seen, w)
		}
	}
	if !strings.Contains(rs[1].Fix, "firewall") || !strings.Contains(rs[1].Fix, "systemctl status nginx") {
		t.Errorf("fix %q", rs[1].Fix)
	}
}

// A real dial on loopback: a listening port passes, a closed one fails.
func TestCheckPeerPortsLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	b := ports.Binding{ID: ports.ProsodyC2S, Service: "prosody", Proto: ports.TCP, Port: 5222, Reason: "Prosody c2s for jicofo and bridges"}
	pp := []PeerPort{
		{Peer: "signal-a", Addr: ln.Addr().String(), Binding: b},
		{Peer: "signal-b", Addr: closedAddr, Binding: b},
	}
	rs := CheckPeerPorts(context.Background(), &net.Dialer{}, "jvb-a1", pp, 5*time.Second)
	if rs[0].Status != doctor.Pass {
		t.Errorf("listening port: %+v", rs[0])
	}
	if rs[1].Status != doctor.Fail || !strings.Contains(rs[1].Seen, closedAddr+" (prosody on signal-b) is unreachable from jvb-a1") ||
		!strings.Contains(rs[1].Fix, "on signal-b") || !strings.Contains(rs[1].Fix, "firewall") {
		t.Errorf("closed port: %+v", rs[1])
	}
	if rs[1].ID != "fleet.port.signal-b.prosody.c2s" {
		t.Errorf("id %q", rs[1].ID)
	}
}
