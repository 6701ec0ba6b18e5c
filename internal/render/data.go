package render

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/firewall"
	"github.com/jitsi-agent/jitsi-agent/internal/membership"
	"github.com/jitsi-agent/jitsi-agent/internal/ports"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/token"
)

// BuiltinData is the value "." of the built-in templates, and of any file in
// the override directory (spec attribute templates_dir) that replaces one of
// them by name. It carries the Deployment itself plus the derived names and
// lists the templates need, computed once in Go so that every file agrees.
//
// Secret values appear only in the revealed string fields named below; the
// spec.Secret fields inside D print "(sensitive)".
type BuiltinData struct {
	// D is the validated deployment (all fields, defaults filled in).
	D *spec.Deployment

	// Domain is the public host name and XMPP domain (meet.example.com).
	Domain string
	// AuthDomain is auth.DOMAIN, where focus and jvb log in.
	AuthDomain string
	// MUCDomain is conference.DOMAIN.
	MUCDomain string
	// InternalMUCDomain is internal.auth.DOMAIN (the breweries).
	InternalMUCDomain string
	// GuestDomain is guest.DOMAIN when auth.guests is on, else "".
	GuestDomain string
	// RecorderDomain is the Jibri recorder vhost when recording is on, else "".
	RecorderDomain string
	// FocusJID and JVBJID are the component accounts.
	FocusJID, JVBJID string
	// JVBBreweryJID is the bridge brewery room; JibriBreweryJID the Jibri one
	// ("" when recording is off).
	JVBBreweryJID, JibriBreweryJID string
	// ServerURL is https://DOMAIN (with :port when not 443); WebsocketURL
	// the same with wss://.
	ServerURL, WebsocketURL string
	// ColibriRoutes are nginx's colibri-ws locations, one per videobridge
	// (one "default-id" route to the local bridge on a single-host spec).
	ColibriRoutes []ColibriRoute
	// BridgeServerID is this bridge's colibri-ws server id;
	// BridgePublicHost is where its colibri-ws HTTP server binds.
	BridgeServerID, BridgePublicHost string
	// XMPPServer is the host name Jicofo and JVB connect to for Prosody
	// c2s: "localhost" when this host runs Prosody, else the name of the
	// host that does.
	XMPPServer string

	// JWT: true when auth.mode is jwt; AppSecret is the revealed secret.
	JWT       bool
	AppSecret string
	// Passwords are the revealed XMPP passwords of the built-in accounts
	// this deployment has (files.Accounts whose condition holds), by
	// account name: {{index .Passwords "focus"}}.
	Passwords map[string]string

	// TURN is true when coturn is enabled; TURNSecret is the revealed
	// shared secret (turn.secret, else the generated one); TURNTTL the
	// credential lifetime in seconds.
	TURN       bool
	TURNSecret string
	TURNTTL    int

	// Lobby is true when the lobby MUC is loaded (meeting.lobby, or
	// moderators = wait-for-host, which parks guests in the lobby).
	Lobby bool
	// TokenAffiliation: moderators come from the token claim.
	TokenAffiliation bool
	// WaitForHost loads muc_wait_for_host + persistent_lobby: participants
	// without an account or token wait in the lobby until a host (a token
	// holder, or an internal account) has opened the room. On for
	// moderators = wait-for-host, and whenever guests are enabled, so that
	// guests can only join rooms a host has opened.
	WaitForHost bool
	// HostsAreOwners: muc_wait_for_host makes hosts owners
	// (moderators = wait-for-host); otherwise its auto-owner is disabled
	// and moderators come from token_affiliation or jicofo.
	HostsAreOwners bool
	// AutoOwner is jicofo's enable-auto-owner (true only for first-joiner).
	AutoOwner bool

	// LobbyWhitelist, AccessWhitelist, PasswordWhitelist and
	// TokenAllowlist feed muc_lobby_whitelist, muc_access_whitelist,
	// muc_password_whitelist and token_verification_allowlist.
	LobbyWhitelist, AccessWhitelist, PasswordWhitelist, TokenAllowlist []string
	// TrustedDomains is jicofo.xmpp.trusted-domains.
	TrustedDomains []string
	// ExternalStun are the stun/turn URLs config.js p2p uses
	// ("stun:turn.example.com:3478"); empty means none (never jitsi.net).
	P2PStunURLs []string

	// NATMappings pairs host.private_ips with host.public_ips for JVB.
	NATMappings []NATMapping
	// ExternalIPs are coturn external-ip values ("PUBLIC/PRIVATE" or "PUBLIC").
	ExternalIPs []string
	// JVBPrivateHost/JVBPrivatePort come from videobridge.health_url.
	JVBPrivateHost string
	JVBPrivatePort int
	// JVBWebsocketDomain is "DOMAIN:HTTPSPort" for videobridge.websockets.
	JVBWebsocketDomain string

	// FirewallRuleset is the nft script of the agent's table (internal/
	// firewall), "" when the spec's firewall is off.
	FirewallRuleset string

	// Ports is the port model of this host (spec.Deployment.Ports): the
	// fields below are read from it, so what the files bind is what
	// validation, the firewall and the probes assume.
	Ports ports.Set
	// ProsodyC2SPort, ProsodyHTTPPort: Prosody's c2s and BOSH/websocket
	// ports; ProsodyS2SPort and ProsodyHTTPSPort are 0 when off.
	ProsodyC2SPort, ProsodyHTTPPort, ProsodyS2SPort, ProsodyHTTPSPort int
	// JicofoRESTPort is jicofo's REST API (nginx proxies conference
	// requests to it); JVBPublicPort the videobridge's colibri websockets.
	JicofoRESTPort, JVBPublicPort int

	// ToolbarButtons is the config.js toolbar when chat or screen sharing
	// is off (the full list minus those buttons); nil leaves the upstream
	// default (every button).
	ToolbarButtons []string

	// ConfigJSPath is /etc/jitsi/meet/DOMAIN-config.js.
	ConfigJSPath string
	// CoturnCert/CoturnKey are coturn's own copies of the certificate
	// (/etc/coturn/certs/DOMAIN.{fullchain,privkey}.pem), readable by the
	// turnserver user; internal/certs deploys them.
	CoturnCert, CoturnKey string
	// RSACert/RSAKey are nginx's second (RSA) pair when tls.acme.rsa is on
	// (tls.certificate with "-rsa" before the extension), else "".
	RSACert, RSAKey string
	// ACMEProxy is the host:port nginx proxies HTTP-01 challenges to ("" =
	// served from the web root).
	ACMEProxy string
	// HTTPSRedirectPort is "" for 443, else ":PORT" (for redirects).
	HTTPSRedirectPort string
	// NginxHashBucketSize is the server_names_hash_bucket_size the
	// longest server name of the site needs, 0 when nginx's default (64,
	// the cache line) holds it: Debian's stock nginx.conf leaves the
	// directive unset and nginx refuses it twice.
	NginxHashBucketSize int
	// HeaderBuffer is nginx's large_client_header_buffers size ("10k"):
	// Prosody's request head limit, so that nginx refuses (414) what
	// Prosody would never answer. MaxTokenBytes is the token size that fits.
	HeaderBuffer  string
	MaxTokenBytes int

	// TURNServers are the TURN hosts Prosody hands out (from the
	// membership view, see turnServers; else the one turn.host).
	TURNServers []string

	// The front (a host with the "front" role, HAProxy): FrontShards are
	// the shards rooms are hashed to, FrontBridges the colibri-ws paths
	// that go to their bridge's shard (videobridge.websockets), FrontCert
	// the certificate HAProxy terminates TLS with (its key is FrontCert +
	// ".key", internal/certs deploys both), FrontShardCA the CA it checks
	// the shards' nginx certificates with.
	FrontShards  []FrontShard
	FrontBridges []FrontBridge
	FrontCert    string
	FrontShardCA string
}

// FrontShard is one shard behind the front: HAProxy server Name (the
// shard name) with a stable ID (hashing is by ID, so adding a shard moves
// only the rooms the new shard takes) at Server (its nginx, host:port).
type FrontShard struct {
	Name   string
	ID     uint32
	Server string
}

// FrontBridge routes /colibri-ws/ID/ to the bridge's shard.
type FrontBridge struct {
	ID    string
	Shard string
}

// ColibriRoute sends /colibri-ws/ID/... to one bridge.
type ColibriRoute struct {
	ID       string // server id, as in the URL
	Pattern  string // ID quoted for nginx's regular expression
	Upstream string // host:port of the bridge's colibri-ws server
}

// NATMapping is one static ice4j mapping.
type NATMapping struct {
	Name          string
	LocalAddress  string
	PublicAddress string
}

// allToolbarButtons is the upstream config.js button list (2026).
var allToolbarButtons = []string{
	"camera", "chat", "closedcaptions", "desktop", "download", "embedmeeting",
	"etherpad", "feedback", "filmstrip", "fullscreen", "hangup", "help",
	"highlight", "invite", "linktosalesforce", "livestreaming", "microphone",
	"noisesuppression", "participants-pane", "profile", "raisehand",
	"recording", "security", "select-background", "settings", "shareaudio",
	"sharedvideo", "shortcuts", "stats", "tileview", "toggle-camera",
	"videoquality", "whiteboard",
}

func newBuiltinData(d *spec.Deployment, view *membership.View) (*BuiltinData, error) {
	if err := checkDomain(d.Domain); err != nil {
		return nil, err
	}
	b := &BuiltinData{
		D:                 d,
		Domain:            d.Domain,
		AuthDomain:        d.AuthDomain(),
		MUCDomain:         d.MUCDomain(),
		InternalMUCDomain: d.InternalMUCDomain(),
		FocusJID:          d.FocusJID(),
		JVBJID:            d.JVBJID(),
		JVBBreweryJID:     d.JVBBreweryJID(),
		ServerURL:         d.ServerURL(),
		WebsocketURL:      "wss://" + strings.TrimPrefix(d.ServerURL(), "https://"),
		XMPPServer:        xmppServer(d),
		Passwords:         map[string]string{},
		TURN:              d.TURN.Enabled,
		TURNTTL:           int(d.TURN.TTL.Seconds()),
		ConfigJSPath:      "/etc/jitsi/meet/" + d.Domain + "-config.js",
		CoturnCert:        "/etc/coturn/certs/" + d.Domain + ".fullchain.pem",
		CoturnKey:         "/etc/coturn/certs/" + d.Domain + ".privkey.pem",
		HeaderBuffer:      strconv.Itoa(token.ProsodyHeadLimit>>10) + "k",
		MaxTokenBytes:     token.MaxTokenBytes,
	}
	if d.Auth.Guests {
		b.GuestDomain = d.GuestDomain()
	}
	rec := d.Meeting.Recording
	if rec.Enabled {
		b.RecorderDomain = rec.RecorderDomain
		b.JibriBreweryJID = rec.BreweryJID(d)
	}
	for _, a := range files.Accounts() {
		if d.Feature(a.When) {
			b.Passwords[a.Name] = d.Secrets.Password(a.Name).Reveal()
		}
	}
	if d.Auth.Mode == spec.AuthJWT {
		if d.Auth.JWT == nil {
			return nil, errors.New("auth mode jwt without jwt settings")
		}
		b.JWT = true
		b.AppSecret = d.Auth.JWT.AppSecret.Reveal()
	}
	if b.TURN {
		b.TURNSecret = d.TURN.Secret.Reveal()
		if b.TURNSecret == "" {
			b.TURNSecret = d.Secrets.TURNSecret.Reveal()
		}
		if b.TURNTTL <= 0 {
			b.TURNTTL = 86400
		}
	}

	switch d.Auth.Moderators {
	case spec.ModeratorsToken:
		b.TokenAffiliation = b.JWT
	case spec.ModeratorsWaitForHost:
		b.WaitForHost = true
		b.HostsAreOwners = true
	case spec.ModeratorsFirstJoiner, "":
		b.AutoOwner = true
	default:
		return nil, fmt.Errorf("unknown moderators mode %q", d.Auth.Moderators)
	}
	if d.Auth.Guests && d.Auth.Mode != spec.AuthAnonymous {
		b.WaitForHost = true
	}
	b.Lobby = d.Meeting.Lobby || b.WaitForHost

	// Whitelists: the recorder's hidden participant and the user's list
	// skip the lobby, the participant limit and the token room check; focus
	// never counts against the limit.
	var skip []string
	if rec.Enabled {
		skip = append(skip, rec.RecorderDomain)
	}
	skip = append(skip, rec.Whitelist...)
	b.LobbyWhitelist = dedupe(skip)
	b.AccessWhitelist = dedupe(append([]string{b.FocusJID}, skip...))
	b.PasswordWhitelist = []string{b.FocusJID}
	if rec.Enabled {
		b.PasswordWhitelist = append(b.PasswordWhitelist, "recorder@"+rec.RecorderDomain)
	}
	allow := append([]string(nil), skip...)
	if b.GuestDomain != "" {
		// Guests carry no token; without this token_verification (domain
		// verification on) rejects every guest join.
		allow = append(allow, b.GuestDomain)
	}
	b.TokenAllowlist = dedupe(allow)
	if rec.Enabled {
		b.TrustedDomains = dedupe(append([]string{rec.RecorderDomain}, rec.TrustedDomains...))
	} else {
		b.TrustedDomains = dedupe(append([]string(nil), rec.TrustedDomains...))
	}

	// P2P STUN: own coturn when TURN is on, else the videobridge's STUN
	// servers; never the jitsi.net default.
	if b.TURN {
		b.P2PStunURLs = []string{"stun:" + net.JoinHostPort(d.TURN.Host, strconv.Itoa(d.TURN.Port))}
	} else {
		for _, s := range d.Videobridge.StunServers {
			b.P2PStunURLs = append(b.P2PStunURLs, "stun:"+s)
		}
	}

	// NAT: pair private and public addresses in order.
	pub, priv := d.Host.PublicIPs, d.Host.PrivateIPs
	if len(priv) > 0 && len(priv) != len(pub) {
		return nil, fmt.Errorf("host %q: %d private_ips but %d public_ips; they pair up in order", d.Host.Name, len(priv), len(pub))
	}
	for i, p := range pub {
		if i < len(priv) {
			b.NATMappings = append(b.NATMappings, NATMapping{
				Name: "nat" + strconv.Itoa(i), LocalAddress: priv[i], PublicAddress: p,
			})
			b.ExternalIPs = append(b.ExternalIPs, p+"/"+priv[i])
		} else {
			b.ExternalIPs = append(b.ExternalIPs, p)
		}
	}

	b.JVBPrivateHost, b.JVBPrivatePort = "127.0.0.1", 8080
	if d.Videobridge.HealthURL != "" {
		h, p, err := hostPort(d.Videobridge.HealthURL)
		if err != nil {
			return nil, fmt.Errorf("videobridge health_url: %w", err)
		}
		b.JVBPrivateHost, b.JVBPrivatePort = h, p
	}
	b.JVBWebsocketDomain = net.JoinHostPort(d.Domain, strconv.Itoa(httpsPort(d)))
	b.BridgeServerID, b.BridgePublicHost = bridgeEndpoint(d)
	b.ColibriRoutes = colibriRoutes(d, view)
	b.TURNServers = turnServers(d, view)
	if d.Host.HasRole(spec.Front) {
		var err error
		if b.FrontShards, err = frontShards(d, view); err != nil {
			return nil, err
		}
		b.FrontBridges = frontBridges(d, view, b.FrontShards)
		b.FrontCert = files.FrontCert(d.Domain)
		b.FrontShardCA = d.TLS.ShardCA
		if b.FrontShardCA == "" {
			b.FrontShardCA = spec.FrontSystemCA
		}
	}

	b.Ports = d.Ports()
	fw, err := firewall.Script(d)
	if err != nil {
		return nil, fmt.Errorf("firewall: %w", err)
	}
	b.FirewallRuleset = string(fw)
	b.ProsodyC2SPort = orDefault(d.Prosody.C2SPort, spec.DefaultProsodyC2SPort)
	b.ProsodyHTTPPort = orDefault(d.Prosody.HTTPPort, spec.DefaultProsodyHTTPPort)
	b.ProsodyS2SPort, b.ProsodyHTTPSPort = d.Prosody.S2SPort, d.Prosody.HTTPSPort
	b.JicofoRESTPort, b.JVBPublicPort = spec.JicofoRESTPort, spec.JVBPublicPort

	if !d.Meeting.Chat || !d.Meeting.ScreenSharing {
		for _, btn := range allToolbarButtons {
			switch {
			case btn == "chat" && !d.Meeting.Chat,
				btn == "desktop" && !d.Meeting.ScreenSharing,
				btn == "recording" && !rec.Enabled,
				btn == "livestreaming" && !rec.Livestreaming:
				continue
			}
			b.ToolbarButtons = append(b.ToolbarButtons, btn)
		}
	}

	if d.TLS.ACME != nil && d.TLS.ACME.Listen != "" {
		b.ACMEProxy = d.TLS.ACME.Listen
		if d.TLS.ACME.RSA {
			b.RSACert, b.RSAKey = rsaVariant(d.TLS.Certificate), rsaVariant(d.TLS.Key)
		}
	}
	names := []string{d.Domain}
	if d.TLS.ACME != nil {
		names = append(names, d.TLS.ACME.ExtraNames...)
	}
	b.NginxHashBucketSize = nginxHashBucketSize(names)
	if p := httpsPort(d); p != 443 {
		b.HTTPSRedirectPort = ":" + strconv.Itoa(p)
	}
	return b, nil
}

// nginxHashBucketSize is the smallest power of two from 64 on whose
// buckets hold every name (nginx's ngx_hash_init: a pointer, the name
// padded to 8 bytes with its length, and the terminating pointer), or 0
// when the default 64 does.
func nginxHashBucketSize(names []string) int {
	need := 0
	for _, n := range names {
		need = max(need, 8+(len(n)+2+7)&^7+8)
	}
	if need <= 64 {
		return 0
	}
	size := 64
	for size < need {
		size *= 2
	}
	return size
}

// orDefault is v, or def for a Deployment built without defaults.
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func httpsPort(d *spec.Deployment) int {
	if d.Web.HTTPSPort == 0 {
		return 443
	}
	return d.Web.HTTPSPort
}

// xmppServer is where jicofo/jvb reach Prosody's c2s port: this host, or
// the address of the host that runs Prosody in this host's shard.
func xmppServer(d *spec.Deployment) string {
	if d.Host.HasRole(spec.Prosody) || len(d.Host.Roles) == 0 {
		return "localhost"
	}
	ps := d.ShardHostsWith(spec.Prosody)
	if len(ps) == 0 {
		ps = d.HostsWith(spec.Prosody)
	}
	switch {
	case len(ps) == 0:
		return d.Domain
	case ps[0].Address != "":
		return ps[0].Address
	}
	return ps[0].Name
}

// bridgeEndpoint is this host's colibri-ws server id and bind address:
// "default-id" for a single-host spec, else the host name; bound where
// spec.ColibriBind says (every address for "").
func bridgeEndpoint(d *spec.Deployment) (id, bind string) {
	id, bind = d.Host.Name, d.ColibriBind()
	if !d.MultiHost() {
		id = "default-id"
	}
	if bind == "" {
		bind = "0.0.0.0"
	}
	return id, bind
}

// colibriRoutes is one nginx route per videobridge of this host's shard:
// from the membership view when there is one (a live member without an
// address cannot be reached and gets no route), else from the spec's host
// blocks in file order. A bridge on this host is reached on loopback.
func colibriRoutes(d *spec.Deployment, view *membership.View) []ColibriRoute {
	port := strconv.Itoa(spec.JVBPublicPort)
	route := func(name, addr string) ColibriRoute {
		id := name
		if name == d.Host.Name {
			addr = "127.0.0.1"
			id, _ = bridgeEndpoint(d) // "default-id" on a single-host spec
		}
		return ColibriRoute{ID: id, Pattern: regexp.QuoteMeta(id), Upstream: net.JoinHostPort(addr, port)}
	}
	var out []ColibriRoute
	shard := shardOf(d.Host)
	if view != nil {
		for _, b := range view.Select(shard, spec.JVB) {
			if b.Address != "" || b.Host == d.Host.Name {
				out = append(out, route(b.Host, b.Address))
			}
		}
		return out
	}
	if !d.MultiHost() {
		return []ColibriRoute{{ID: "default-id", Pattern: "default-id", Upstream: net.JoinHostPort("127.0.0.1", port)}}
	}
	for _, b := range d.HostsWith(spec.JVB) {
		if shardOf(b) != shard {
			continue
		}
		addr := b.Address
		if addr == "" {
			addr = "127.0.0.1" // validation asks for an address where it matters
		}
		out = append(out, route(b.Name, addr))
	}
	return out
}

// turnServers are the TURN hosts Prosody hands out. turn.host in the spec,
// or no view: the one d.TURN.Host. With a view: the healthy coturn members
// of this host's shard with an address (of every shard when this one has
// none), each at its address, or at the domain when it is an nginx host of
// a spec without a front (the domain points at it); none: d.TURN.Host.
func turnServers(d *spec.Deployment, view *membership.View) []string {
	if view == nil || d.TURN.HostSet {
		return []string{d.TURN.Host}
	}
	pick := func(shard string) []string {
		var out []string
		for _, m := range view.Select(shard, spec.Coturn) {
			h := m.Address
			if m.HasRole(spec.Nginx) && !d.HasFront() {
				h = d.Domain
			}
			if m.Healthy && h != "" && !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
		return out
	}
	out := pick(shardOf(d.Host))
	if len(out) == 0 {
		out = pick("")
	}
	if len(out) == 0 {
		return []string{d.TURN.Host}
	}
	return out
}

// frontShards are the shards behind the front, sorted by name: each
// reached at one nginx host (from the view: its first healthy nginx
// member with an address, else its first one; from the spec: its first
// nginx host block) on web.https_port.
func frontShards(d *spec.Deployment, view *membership.View) ([]FrontShard, error) {
	port := strconv.Itoa(httpsPort(d))
	addr := map[string]string{}
	var names []string
	if view != nil {
		for _, s := range view.Shards() {
			var first, healthy string
			for _, m := range view.Select(s, spec.Nginx) {
				if m.Address == "" || m.HasRole(spec.Front) {
					continue
				}
				if first == "" {
					first = m.Address
				}
				if healthy == "" && m.Healthy {
					healthy = m.Address
				}
			}
			if healthy == "" {
				healthy = first
			}
			if healthy != "" {
				names = append(names, s)
				addr[s] = healthy
			}
		}
	} else {
		for _, h := range d.HostsWith(spec.Nginx) {
			s := h.ShardName()
			if _, ok := addr[s]; ok || h.Address == "" || h.HasRole(spec.Front) {
				continue
			}
			names = append(names, s)
			addr[s] = h.Address
		}
		slices.Sort(names)
	}
	out := make([]FrontShard, 0, len(names))
	ids := map[uint32]string{}
	for _, s := range names {
		id := shardID(s)
		if other, ok := ids[id]; ok {
			return nil, fmt.Errorf("front: shards %q and %q hash to the same HAProxy server id %d; rename one", other, s, id)
		}
		ids[id] = s
		out = append(out, FrontShard{Name: s, ID: id, Server: net.JoinHostPort(addr[s], port)})
	}
	return out, nil
}

// shardID is a shard's HAProxy server id: FNV-1a of its name, 1..2^31-1.
// HAProxy's consistent hash places a server by its id, so the id must not
// depend on the shard's position in the file.
func shardID(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	id := h.Sum32() & 0x7fffffff
	if id == 0 {
		id = 1
	}
	return id
}

// frontBridges are the colibri-ws routes of the front (with
// videobridge.websockets): each bridge to its shard, sorted by bridge.
func frontBridges(d *spec.Deployment, view *membership.View, shards []FrontShard) []FrontBridge {
	if !d.Videobridge.Websockets {
		return nil
	}
	known := func(s string) bool {
		return slices.ContainsFunc(shards, func(f FrontShard) bool { return f.Name == s })
	}
	var out []FrontBridge
	if view != nil {
		for _, m := range view.Select("", spec.JVB) {
			if known(m.Shard) {
				out = append(out, FrontBridge{ID: m.Host, Shard: m.Shard})
			}
		}
	} else {
		for _, h := range d.HostsWith(spec.JVB) {
			if known(h.ShardName()) {
				out = append(out, FrontBridge{ID: h.Name, Shard: h.ShardName()})
			}
		}
	}
	slices.SortFunc(out, func(a, b FrontBridge) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// shardOf is the host's shard (spec.DefaultShard when the spec names none).
func shardOf(h spec.Host) string {
	if h.Shard == "" {
		return spec.DefaultShard
	}
	return h.Shard
}

func hostPort(raw string) (string, int, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", 0, errors.New("not a URL")
	}
	host := u.Hostname()
	if host == "" {
		return "", 0, errors.New("URL has no host")
	}
	ps := u.Port()
	if ps == "" {
		if u.Scheme == "https" {
			return host, 443, nil
		}
		return host, 80, nil
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, errors.New("URL has an invalid port")
	}
	return host, p, nil
}

// checkDomain refuses domains that would escape the paths they are part of.
func checkDomain(d string) error {
	if d == "" {
		return errors.New("deployment has no domain")
	}
	if strings.ContainsAny(d, "/\\ \t\r\n\"'$") || strings.Contains(d, "..") {
		return errors.New("deployment domain contains characters not allowed in a host name")
	}
	return nil
}

func dedupe(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(in))
	out := in[:0:0]
	for _, s := range in {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

// rsaVariant inserts "-rsa" before the extension: the path of the RSA twin
// of a certificate or key file (the convention internal/certs deploys).
func rsaVariant(p string) string {
	ext := path.Ext(p)
	return strings.TrimSuffix(p, ext) + "-rsa" + ext
}
