// Package ports is the one model of every socket the rendered services of a
// host bind: Prosody (c2s, BOSH/websocket HTTP, optional s2s and HTTPS),
// Jicofo's REST API, the videobridge (media, private and public HTTP),
// nginx, coturn (STUN/TURN, TLS, relay range, RFC 5780 alternates) and the
// agent's own listeners (metrics, ACME challenge, join endpoint).
//
// spec.Deployment.Ports builds the Set from a validated spec (it is the only
// place that knows which spec attribute sets which port); the templates
// render the ports from it, spec validation refuses clashes with the
// attribute's location, the firewall opens exactly Set.Public(), and doctor
// and the live probes look for the services where the Set says they are.
package ports

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Protocols.
const (
	TCP = "tcp"
	UDP = "udp"
)

// Public names of the ports a deployment opens to other hosts (the firewall
// block's port labels).
const (
	NameHTTP      = "http"       // nginx: ACME HTTP-01 and the redirect
	NameHTTPS     = "https"      // nginx: the web app, config.js, BOSH, websockets
	NameJVB       = "jvb"        // videobridge media (UDP)
	NameTURN      = "turn"       // coturn STUN/TURN (UDP)
	NameTURNS     = "turns"      // coturn TURN over TLS (TCP)
	NameTURNRelay = "turn-relay" // coturn relay range (UDP)
	NameXMPP      = "xmpp"       // Prosody c2s for jicofo/jvb on other hosts
	NameS2S       = "s2s"        // Prosody server-to-server (only when turned on)
	NameTokenAPI  = "token-api"  // the join endpoint when it listens beyond loopback
	NameColibriWS = "colibri-ws" // a videobridge's colibri websockets, for nginx on other hosts
)

// Binding IDs: "<service>.<what>".
const (
	ProsodyC2S    = "prosody.c2s"
	ProsodyHTTP   = "prosody.http"
	ProsodyHTTPS  = "prosody.https"
	ProsodyS2S    = "prosody.s2s"
	JicofoREST    = "jicofo.rest"
	JVBMedia      = "jvb.media"
	JVBPrivate    = "jvb.private"
	JVBPublic     = "jvb.public"
	NginxHTTP     = "nginx.http"
	NginxHTTPS    = "nginx.https"
	FrontHTTP     = "front.http"
	FrontHTTPS    = "front.https"
	CoturnTURN    = "coturn.turn"
	CoturnTURNS   = "coturn.turns"
	CoturnAlt     = "coturn.alt"
	CoturnAltTLS  = "coturn.alt-tls"
	CoturnRelay   = "coturn.relay"
	AgentMetrics  = "agent.metrics"
	AgentACME     = "agent.acme"
	AgentTokenAPI = "agent.token-api"
)

// Binding is one socket (or, for coturn's relay, one range of sockets) a
// service binds.
type Binding struct {
	// ID is stable ("nginx.https", "prosody.c2s"): see the constants.
	ID string `json:"id"`
	// Service is the component that binds it ("prosody", "jicofo", "jvb",
	// "nginx", "coturn", "jitsi-agent").
	Service string `json:"service"`
	// Proto is TCP or UDP.
	Proto string `json:"proto"`
	// Host is the bind address; "" means every interface (IPv4 and IPv6).
	Host string `json:"host,omitempty"`
	// Port is the port, or the first of a range; ToPort is the last port of
	// a range (0 for a single port).
	Port   int `json:"port"`
	ToPort int `json:"to_port,omitempty"`
	// Public: other hosts must reach it (the firewall opens it). Name is
	// then its public name (NameHTTPS...), and Sources, when not empty, are
	// the only addresses that need it.
	Public  bool           `json:"public"`
	Name    string         `json:"name,omitempty"`
	Sources []netip.Prefix `json:"sources,omitempty"`
	// Reason says who uses it, for rule comments, doctor and errors.
	Reason string `json:"reason"`
	// Field is the spec attribute that sets the port ("web.https_port"),
	// "" when it is fixed.
	Field string `json:"field,omitempty"`
}

// Last is the last port of the binding (Port for a single port).
func (b Binding) Last() int {
	if b.ToPort > b.Port {
		return b.ToPort
	}
	return b.Port
}

// Label is "443/tcp", "127.0.0.1:5280/tcp" or "49152-65535/udp".
func (b Binding) Label() string {
	p := strconv.Itoa(b.Port)
	if b.Last() != b.Port {
		p += "-" + strconv.Itoa(b.Last())
	}
	if b.Host != "" {
		h := b.Host
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
		p = h + ":" + p
	}
	return p + "/" + b.Proto
}

// Describe is "web.https_port (nginx HTTPS: ...)" or the reason alone.
func (b Binding) Describe() string {
	if b.Field != "" {
		return b.Field + " (" + b.Reason + ")"
	}
	return b.Reason
}

// Loopback reports whether only this host can reach the binding.
func (b Binding) Loopback() bool {
	if b.Host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(b.Host)
	return err == nil && a.IsLoopback()
}

// overlaps reports whether two bindings cannot both be bound: same
// protocol, intersecting port ranges, and addresses that intersect (every
// interface intersects every address).
func overlaps(a, b Binding) bool {
	if a.Proto != b.Proto || a.Port > b.Last() || b.Port > a.Last() {
		return false
	}
	if a.Host == "" || b.Host == "" {
		return true
	}
	return sameAddr(a.Host, b.Host)
}

func sameAddr(x, y string) bool {
	norm := func(s string) string {
		if s == "localhost" {
			return "127.0.0.1"
		}
		if a, err := netip.ParseAddr(s); err == nil {
			if a.IsUnspecified() {
				return ""
			}
			return a.Unmap().String()
		}
		return strings.ToLower(s)
	}
	nx, ny := norm(x), norm(y)
	return nx == "" || ny == "" || nx == ny
}

// Set is every binding of one host, in a stable order (by protocol, port,
// then ID).
type Set []Binding

// Sort orders the set.
func (s Set) Sort() {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].Proto != s[j].Proto {
			return s[i].Proto < s[j].Proto
		}
		if s[i].Port != s[j].Port {
			return s[i].Port < s[j].Port
		}
		return s[i].ID < s[j].ID
	})
}

// Get returns the binding with the ID.
func (s Set) Get(id string) (Binding, bool) {
	for _, b := range s {
		if b.ID == id {
			return b, true
		}
	}
	return Binding{}, false
}

// Port returns the port of the binding with the ID, 0 when the host does
// not bind it (turned off, or a component this host does not run).
func (s Set) Port(id string) int {
	b, _ := s.Get(id)
	return b.Port
}

// On reports whether the host binds the ID.
func (s Set) On(id string) bool {
	_, ok := s.Get(id)
	return ok
}

// Service returns the bindings of one service.
func (s Set) Service(name string) Set {
	var out Set
	for _, b := range s {
		if b.Service == name {
			out = append(out, b)
		}
	}
	return out
}

// Public returns the bindings other hosts must reach: what a firewall opens.
func (s Set) Public() Set {
	var out Set
	for _, b := range s {
		if b.Public {
			out = append(out, b)
		}
	}
	return out
}

// Clash is two or more bindings that cannot be bound together.
type Clash struct {
	Proto    string
	Port     int
	Bindings []Binding
}

// Error is "5269/tcp is used by web.https_port (nginx ...) and Prosody s2s (...)".
func (c Clash) Error() string {
	names := make([]string, len(c.Bindings))
	for i, b := range c.Bindings {
		names[i] = b.Describe()
	}
	return fmt.Sprintf("%d/%s is used by %s", c.Port, c.Proto, strings.Join(names, " and "))
}

// Fields are the spec attributes involved, in binding order, without
// duplicates.
func (c Clash) Fields() []string {
	var out []string
	for _, b := range c.Bindings {
		if b.Field != "" && !slices.Contains(out, b.Field) {
			out = append(out, b.Field)
		}
	}
	return out
}

// Clashes finds every group of bindings that would fight over a port. Each
// group is reported once, at the lowest port the first two share.
func (s Set) Clashes() []Clash {
	sorted := slices.Clone(s)
	sorted.Sort()
	var out []Clash
	used := make([]bool, len(sorted))
	for i := range sorted {
		if used[i] {
			continue
		}
		group := []Binding{sorted[i]}
		for j := i + 1; j < len(sorted); j++ {
			if !used[j] && overlaps(sorted[i], sorted[j]) {
				group = append(group, sorted[j])
				used[j] = true
			}
		}
		if len(group) < 2 {
			continue
		}
		port := max(group[0].Port, group[1].Port)
		out = append(out, Clash{Proto: group[0].Proto, Port: port, Bindings: group})
	}
	return out
}
