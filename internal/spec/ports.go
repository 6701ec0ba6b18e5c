package spec

import (
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"

	"github.com/jitsi-agent/jitsi-agent/internal/ports"
)

// Coturn's relay range when turnserver.conf sets none (min-port/max-port).
const (
	CoturnRelayMin = 49152
	CoturnRelayMax = 65535
)

// JVBPublicPort is the videobridge's public HTTP server (colibri
// websockets), on loopback behind nginx.
const JVBPublicPort = 9090

// JicofoRESTPort is jicofo's REST API (conference-request, health);
// jicofo.conf keeps jicofo's default.
const JicofoRESTPort = 8888

// Runs reports whether this host runs the component (every default
// component when the host has no roles; the front only when named).
func (d *Deployment) Runs(component string) bool {
	if len(d.Host.Roles) == 0 {
		return slices.Contains(DefaultRoles(), component)
	}
	return d.Host.HasRole(component)
}

// Ports is every socket the services rendered for this host bind: the one
// port model (package ports). The templates render these ports, validation
// refuses clashes, the firewall opens Ports().Public().
func (d *Deployment) Ports() ports.Set {
	var s ports.Set
	add := func(b ports.Binding) {
		if b.Port < 1 || b.Port > 65535 || b.ToPort != 0 && (b.ToPort < b.Port || b.ToPort > 65535) {
			return // invalid: validation reports the attribute itself
		}
		s = append(s, b)
	}
	listen := func(id, service, addr, reason, field string) ports.Binding {
		host, p, err := net.SplitHostPort(addr)
		if err != nil {
			return ports.Binding{}
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return ports.Binding{}
		}
		if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
			host = ""
		}
		return ports.Binding{ID: id, Service: service, Proto: ports.TCP, Host: host, Port: n, Reason: reason, Field: field}
	}

	if d.Runs(Prosody) {
		c2sPort, httpPort := d.Prosody.C2SPort, d.Prosody.HTTPPort
		if c2sPort == 0 { // a Deployment built without defaults (tests)
			c2sPort = DefaultProsodyC2SPort
		}
		if httpPort == 0 {
			httpPort = DefaultProsodyHTTPPort
		}
		c2s := ports.Binding{ID: ports.ProsodyC2S, Service: Prosody, Proto: ports.TCP, Port: c2sPort,
			Reason: "Prosody c2s: jicofo and the videobridge log in", Field: "prosody.c2s_port"}
		if srcs := d.remoteLogins(); len(srcs) > 0 {
			c2s.Public, c2s.Name, c2s.Sources = true, ports.NameXMPP, srcs
			c2s.Reason = "Prosody c2s: jicofo and videobridges on the other hosts log in"
		}
		add(c2s)
		add(ports.Binding{ID: ports.ProsodyHTTP, Service: Prosody, Proto: ports.TCP, Host: "127.0.0.1", Port: httpPort,
			Reason: "Prosody HTTP: BOSH and XMPP websocket, proxied by nginx", Field: "prosody.http_port"})
		if d.Prosody.S2SPort != 0 {
			add(ports.Binding{ID: ports.ProsodyS2S, Service: Prosody, Proto: ports.TCP, Port: d.Prosody.S2SPort, Public: true, Name: ports.NameS2S,
				Reason: "Prosody s2s: server-to-server federation", Field: "prosody.s2s_port"})
		}
		if d.Prosody.HTTPSPort != 0 {
			add(ports.Binding{ID: ports.ProsodyHTTPS, Service: Prosody, Proto: ports.TCP, Port: d.Prosody.HTTPSPort,
				Reason: "Prosody's own HTTPS", Field: "prosody.https_port"})
		}
	}
	if d.Runs(Jicofo) {
		add(ports.Binding{ID: ports.JicofoREST, Service: Jicofo, Proto: ports.TCP, Host: "127.0.0.1", Port: JicofoRESTPort,
			Reason: "jicofo REST: conference requests (proxied by nginx) and health"})
	}
	if d.Runs(JVB) {
		add(ports.Binding{ID: ports.JVBMedia, Service: JVB, Proto: ports.UDP, Port: d.Videobridge.UDPPort, Public: true, Name: ports.NameJVB,
			Reason: "videobridge media (ICE/UDP) from every participant", Field: "videobridge.udp_port"})
		if h, p, ok := urlHostPort(d.Videobridge.HealthURL); ok {
			add(ports.Binding{ID: ports.JVBPrivate, Service: JVB, Proto: ports.TCP, Host: h, Port: p,
				Reason: "videobridge private HTTP: health and metrics", Field: "videobridge.health_url"})
		}
		if d.Videobridge.Websockets {
			b := ports.Binding{ID: ports.JVBPublic, Service: JVB, Proto: ports.TCP, Host: d.ColibriBind(), Port: JVBPublicPort,
				Reason: "videobridge colibri websockets, proxied by nginx", Field: "videobridge.websockets"}
			if b.Host != "127.0.0.1" {
				b.Public, b.Name, b.Sources = true, ports.NameColibriWS, d.hostIPs(Nginx, true)
				b.Reason = "videobridge colibri websockets, proxied by nginx on the other hosts"
			}
			add(b)
		}
	}
	if d.Runs(Nginx) {
		if d.Web.HTTPRedirect || d.TLS.ACME != nil && d.TLS.ACME.Listen != "" {
			why := "nginx HTTP: redirect to HTTPS"
			if d.TLS.ACME != nil {
				why = "nginx HTTP: Let's Encrypt HTTP-01 challenges and the redirect to HTTPS"
			}
			add(ports.Binding{ID: ports.NginxHTTP, Service: Nginx, Proto: ports.TCP, Port: d.Web.HTTPPort, Public: true, Name: ports.NameHTTP,
				Reason: why, Field: "web.http_port"})
		}
		https := ports.Binding{ID: ports.NginxHTTPS, Service: Nginx, Proto: ports.TCP, Port: d.Web.HTTPSPort, Public: true, Name: ports.NameHTTPS,
			Reason: "nginx HTTPS: the web app, config.js, BOSH and XMPP websockets", Field: "web.https_port"}
		if d.HasFront() {
			// Browsers reach the shard through the front only.
			https.Sources = d.hostIPs(Front, false)
			https.Reason = "nginx HTTPS: the shard's web app, BOSH and websockets, for the front (HAProxy)"
		}
		add(https)
	}
	if d.Runs(Front) {
		if d.Web.HTTPRedirect || d.TLS.ACME != nil && d.TLS.ACME.Listen != "" {
			add(ports.Binding{ID: ports.FrontHTTP, Service: Front, Proto: ports.TCP, Port: d.Web.HTTPPort, Public: true, Name: ports.NameHTTP,
				Reason: "front (HAProxy) HTTP: redirect to HTTPS", Field: "web.http_port"})
		}
		add(ports.Binding{ID: ports.FrontHTTPS, Service: Front, Proto: ports.TCP, Port: d.Web.HTTPSPort, Public: true, Name: ports.NameHTTPS,
			Reason: "front (HAProxy) HTTPS: every browser; each room goes to its shard's nginx", Field: "web.https_port"})
	}
	if d.TURN.Enabled && d.Runs(Coturn) {
		add(ports.Binding{ID: ports.CoturnTURN, Service: Coturn, Proto: ports.UDP, Port: d.TURN.Port, Public: true, Name: ports.NameTURN,
			Reason: "coturn STUN/TURN over UDP", Field: "turn.port"})
		add(ports.Binding{ID: ports.CoturnTURNS, Service: Coturn, Proto: ports.TCP, Port: d.TURN.TLSPort, Public: true, Name: ports.NameTURNS,
			Reason: "coturn TURN over TLS, for clients whose UDP is blocked", Field: "turn.tls_port"})
		// coturn also binds listening-port+1 (RFC 5780 NAT discovery) when
		// the host has more than one address of a family.
		add(ports.Binding{ID: ports.CoturnAlt, Service: Coturn, Proto: ports.UDP, Port: d.TURN.Port + 1,
			Reason: "coturn alternate STUN port (RFC 5780, turn.port + 1)", Field: "turn.port"})
		add(ports.Binding{ID: ports.CoturnAltTLS, Service: Coturn, Proto: ports.TCP, Port: d.TURN.TLSPort + 1,
			Reason: "coturn alternate TLS port (RFC 5780, turn.tls_port + 1)", Field: "turn.tls_port"})
		lo, hi, field := d.TURN.RelayMin, d.TURN.RelayMax, "turn.relay_min_port"
		if lo == 0 {
			lo, hi, field = CoturnRelayMin, CoturnRelayMax, ""
		}
		add(ports.Binding{ID: ports.CoturnRelay, Service: Coturn, Proto: ports.UDP, Port: lo, ToPort: hi, Public: true, Name: ports.NameTURNRelay,
			Reason: "coturn relayed media (relay range)", Field: field})
	}
	if d.Metrics.Listen != "" {
		add(listen(ports.AgentMetrics, "jitsi-agent", d.Metrics.Listen, "jitsi-agent /metrics, /healthz, /status", "metrics.listen"))
	}
	if d.TLS.ACME != nil && d.TLS.ACME.Listen != "" {
		add(listen(ports.AgentACME, "jitsi-agent", d.TLS.ACME.Listen, "jitsi-agent ACME HTTP-01 responder, proxied by nginx", "tls.acme.listen"))
	}
	if d.TokenAPI != nil {
		b := listen(ports.AgentTokenAPI, "jitsi-agent", d.TokenAPI.Listen, "jitsi-agent join endpoint for the app's backend", "token_api.listen")
		if b.Port != 0 && !b.Loopback() {
			b.Public, b.Name = true, ports.NameTokenAPI
		}
		add(b)
	}
	s.Sort()
	return s
}

// remoteLogins are the addresses of the other hosts that run jicofo or a
// videobridge but not Prosody: they log in to this host's c2s port.
func (d *Deployment) remoteLogins() []netip.Prefix {
	var srcs []netip.Prefix
	for _, h := range d.Hosts {
		if h.Name == d.Host.Name || len(h.Roles) == 0 || h.HasRole(Prosody) || !h.HasRole(Jicofo) && !h.HasRole(JVB) || h.ShardName() != d.Host.ShardName() {
			continue
		}
		for _, ip := range append(append([]string{}, h.PublicIPs...), h.PrivateIPs...) {
			if a, err := netip.ParseAddr(ip); err == nil {
				a = a.Unmap()
				srcs = append(srcs, netip.PrefixFrom(a, a.BitLen()))
			}
		}
		// The host's address, when it is an IP the others do not list.
		if a, err := netip.ParseAddr(h.Address); err == nil {
			a = a.Unmap()
			if p := netip.PrefixFrom(a, a.BitLen()); !slices.Contains(srcs, p) {
				srcs = append(srcs, p)
			}
		}
	}
	return srcs
}

// hostIPs are the addresses of the other hosts that run the component
// (in this host's shard only when shard is set).
func (d *Deployment) hostIPs(c string, shard bool) []netip.Prefix {
	var srcs []netip.Prefix
	hosts := d.HostsWith(c)
	if shard {
		hosts = d.ShardHostsWith(c)
	}
	for _, h := range hosts {
		if h.Name == d.Host.Name {
			continue
		}
		for _, ip := range append(append([]string{h.Address}, h.PublicIPs...), h.PrivateIPs...) {
			if a, err := netip.ParseAddr(ip); err == nil {
				a = a.Unmap()
				if p := netip.PrefixFrom(a, a.BitLen()); !slices.Contains(srcs, p) {
					srcs = append(srcs, p)
				}
			}
		}
	}
	return srcs
}

// urlHostPort is the host and port an http(s) URL points at.
func urlHostPort(raw string) (string, int, bool) {
	if raw == "" {
		return "", 0, false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return "", 0, false
	}
	ps := u.Port()
	if ps == "" {
		if u.Scheme == "https" {
			return u.Hostname(), 443, true
		}
		return u.Hostname(), 80, true
	}
	p, err := strconv.Atoi(ps)
	if err != nil {
		return "", 0, false
	}
	h := u.Hostname()
	if a, err := netip.ParseAddr(h); err == nil && a.IsUnspecified() {
		h = ""
	}
	return h, p, true
}

// ColibriBind is where the videobridge's colibri-ws server binds: loopback
// when nginx runs on this host (or the spec has one host), else the host's
// address ("" = every address when the address is a DNS name).
func (d *Deployment) ColibriBind() string {
	if !d.MultiHost() {
		return "127.0.0.1"
	}
	for _, n := range d.ShardHostsWith(Nginx) {
		if n.Name != d.Host.Name {
			if a, err := netip.ParseAddr(d.Host.Address); err == nil {
				return a.String()
			}
			return ""
		}
	}
	return "127.0.0.1"
}
