package fleet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/doctor"
	"github.com/jitsi-agent/jitsi-agent/internal/ports"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Dialer opens a TCP connection (net.Dialer in production, a fake in
// unit tests).
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// PeerTimeout bounds each cross-host dial.
const PeerTimeout = 3 * time.Second

// maxPeerDials bounds the dials in flight at once.
const maxPeerDials = 16

// PeerPort is one service of another host that this host must reach.
type PeerPort struct {
	Peer    string        // host name
	Addr    string        // "address:port" as dialled
	Binding ports.Binding // the peer's binding (service, reason)
}

// PeerPorts lists the TCP services of the peers that self must reach,
// from each peer's ports model: a public binding whose Sources include
// one of self's addresses (Prosody c2s for the shard's jicofo/bridges,
// a bridge's colibri-ws for nginx), and, when self is the front, each
// shard's nginx HTTPS. addrs are the peers' live addresses (their
// registrations); a peer without an address is left out. The result is
// sorted by peer then port.
func PeerPorts(self *spec.Deployment, peers map[string]*spec.Deployment, addrs map[string]string) []PeerPort {
	mine := selfAddrs(self.Host)
	var out []PeerPort
	for name, d := range peers {
		addr := addrs[name]
		if name == self.Host.Name || addr == "" || d == nil {
			continue
		}
		for _, b := range d.Ports().Public() {
			if b.Proto != ports.TCP {
				continue
			}
			need := slices.ContainsFunc(b.Sources, func(p netip.Prefix) bool {
				return slices.ContainsFunc(mine, p.Contains)
			})
			if b.ID == ports.NginxHTTPS && self.Host.HasRole(spec.Front) && !d.Host.HasRole(spec.Front) {
				need = true
			}
			if need {
				out = append(out, PeerPort{Peer: name, Addr: net.JoinHostPort(addr, strconv.Itoa(b.Port)), Binding: b})
			}
		}
	}
	slices.SortFunc(out, func(a, b PeerPort) int {
		if a.Peer != b.Peer {
			if a.Peer < b.Peer {
				return -1
			}
			return 1
		}
		return a.Binding.Port - b.Binding.Port
	})
	return out
}

func selfAddrs(h spec.Host) []netip.Addr {
	var out []netip.Addr
	for _, s := range append(append([]string{h.Address}, h.PublicIPs...), h.PrivateIPs...) {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// CheckPeerPorts dials every peer port concurrently (at most maxPeerDials
// at once, each bounded by timeout) and returns one result per port, in
// the order of pp: pass when the TCP connect succeeds, fail naming the
// peer, the address, the service and a fix otherwise.
func CheckPeerPorts(ctx context.Context, d Dialer, self string, pp []PeerPort, timeout time.Duration) []doctor.Result {
	out := make([]doctor.Result, len(pp))
	sem := make(chan struct{}, maxPeerDials)
	var wg sync.WaitGroup
	for i, p := range pp {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = dialPeer(ctx, d, self, p, timeout)
		}()
	}
	wg.Wait()
	return out
}

func dialPeer(ctx context.Context, d Dialer, self string, p PeerPort, timeout time.Duration) doctor.Result {
	b := p.Binding
	r := doctor.Result{ID: "fleet.port." + p.Peer + "." + b.ID, Title: fmt.Sprintf("%s reaches %s %s", self, p.Peer, b.ID)}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", p.Addr)
	if err != nil {
		r.Status = doctor.Fail
		r.Seen = fmt.Sprintf("%s (%s on %s) is unreachable from %s: %v", p.Addr, b.Service, p.Peer, self, err)
		r.Fix = fmt.Sprintf("on %s: check that %s runs (systemctl status %s) and listens on %d/tcp; open %d/tcp from %s in the firewall between them (%s)",
			p.Peer, b.Service, unitName(b.Service), b.Port, b.Port, self, b.Reason)
		return r
	}
	_ = c.Close()
	r.Status = doctor.Pass
	r.Seen = fmt.Sprintf("%s (%s on %s) answers", p.Addr, b.Service, p.Peer)
	return r
}

func unitName(service string) string {
	switch service {
	case "jvb":
		return "jitsi-videobridge2"
	case "jitsi-agent":
		return "jitsi-agent"
	}
	return service
}

// peerDeployments loads the current generation's spec for every host.
func peerDeployments(b *Bundle, clusterSecret string, hosts []string) (map[string]*spec.Deployment, error) {
	out := make(map[string]*spec.Deployment, len(hosts))
	for _, h := range hosts {
		path, opts := b.Options(h, clusterSecret)
		res := spec.Load(path, opts)
		if res.HasErrors() {
			return nil, fmt.Errorf("host %s: the spec of the current generation does not load: %s", h, res.Summary())
		}
		out[h] = res.Deployment
	}
	return out, nil
}
