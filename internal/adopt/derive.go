package adopt

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// imported is what import understood: the deployment (as the spec will
// describe it) and the secrets found.
type imported struct {
	d *spec.Deployment
	// explicit notes values that must be written even when they look like
	// a default, e.g. stun_servers = [] with TURN on.
	stunExplicit bool
	// hostName is the host block name ("" = none).
	hostName string
	// xmppHost is the Prosody machine when it is not this one.
	xmppHost   string
	appSecret  string
	turnSecret secretFound
	// passwords are the built-in accounts' passwords found on the host, by
	// account name (files.Accounts): where each lives in the host's files
	// is this file's knowledge (focus in jicofo.conf or the legacy files,
	// jvb in jvb.conf, jibri and recorder in jibri.conf).
	passwords map[string]secretFound
	notes     []Finding // understood-with-remarks (conflicts, short secrets)
	rsa       bool
}

type secretFound struct {
	value string
	where string // file:line
}

func at(file string, line int) string {
	if line <= 0 {
		return file
	}
	return fmt.Sprintf("%s:%d", file, line)
}

// derive maps the host's files to a deployment.
func derive(h *hostFiles) (*imported, error) {
	dom := h.domain
	d := &spec.Deployment{Domain: dom}
	im := &imported{d: d, passwords: map[string]secretFound{}}

	// Defaults, as spec.Load fills them; overwritten below from the files.
	d.Auth = spec.Auth{Mode: spec.AuthAnonymous, Moderators: spec.ModeratorsFirstJoiner}
	d.Meeting = spec.Meeting{Lobby: false, Chat: true, ScreenSharing: true, Reactions: true, Prejoin: true, P2P: true,
		Recording: spec.Recording{RecorderDomain: "recorder." + dom, Brewery: "JibriBrewery", PendingTimeout: 90 * time.Second}}
	d.Videobridge = spec.Videobridge{UDPPort: spec.DefaultJVBUDPPort, Brewery: "JvbBrewery", HealthURL: "http://127.0.0.1:8080/about/health"}
	d.Jicofo = spec.JicofoSettings{MaxAudioSenders: 999999, MaxVideoSenders: 999999}
	d.TURN = spec.TURN{Host: dom, Port: spec.DefaultTURNPort, TLSPort: spec.DefaultTURNTLSPort, Realm: dom, TTL: 24 * time.Hour}
	d.TLS = spec.TLS{Certificate: "/etc/jitsi/meet/" + dom + ".crt", Key: "/etc/jitsi/meet/" + dom + ".key"}
	d.Web = spec.Web{HTTPPort: 80, HTTPSPort: 443, Root: "/usr/share/jitsi-meet", HTTPRedirect: true}

	// Roles: the components whose files exist.
	var roles []string
	if h.prosody != nil {
		roles = append(roles, spec.Prosody)
	}
	if h.jicofo != nil || h.jicofoLegacy != nil {
		roles = append(roles, spec.Jicofo)
	}
	if h.jvb != nil || h.jvbLegacy != nil {
		roles = append(roles, spec.JVB)
	}
	if h.nginx != nil || h.configJS != nil {
		roles = append(roles, spec.Nginx)
	}
	if h.turn != nil {
		roles = append(roles, spec.Coturn)
	}
	if h.jibri != nil {
		roles = append(roles, spec.Jibri)
	}
	d.Host.Roles = roles

	if err := deriveProsody(h, im); err != nil {
		return nil, err
	}
	deriveJicofo(h, im)
	deriveJibri(h, im)
	deriveJVB(h, im)
	deriveListeners(h, im)
	deriveConfigJS(h, im)
	deriveNginx(h, im)
	deriveTURN(h, im)

	// The host block: named like the videobridge's MUC nickname when that is
	// a usable name, so nickname needs no attribute of its own.
	// Always one host block, so the spec renders the same on any machine
	// (without one, the host is named like the machine, which the files
	// mention). An unusable nickname is kept as videobridge.nickname.
	name := hostNameFrom(d.Videobridge.Nickname)
	if n := renderedHostName(h); n != "" {
		name = n // a host jitsi-agent already manages says its name
	}
	if !d.Host.HasRole(spec.Prosody) {
		for _, doc := range []*hoconDoc{h.jvb, h.jicofo} {
			if doc == nil {
				continue
			}
			for _, k := range []string{shardKey("HOSTNAME"), "jicofo.xmpp.client.hostname"} {
				if x, ok := doc.str(k); ok && x != "localhost" && hostNameOK(x) && im.xmppHost == "" {
					im.xmppHost = x
				}
			}
		}
	}
	im.hostName = name
	d.Host.Name = name
	return im, nil
}

var hostMarker = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^# (?:Jitsi Videobridge|Jibri) configuration \(HOCON\) for host (\S+) of `)
}) // compiled on first use, not at every start

// renderedHostName reads the host name from the header jitsi-agent's own
// jvb.conf and jibri.conf carry ("" for other files).
func renderedHostName(h *hostFiles) string {
	for _, p := range []string{pathJVB, pathJibri} {
		if m := hostMarker().FindSubmatch(h.raw[p]); m != nil && hostNameOK(string(m[1])) {
			return string(m[1])
		}
	}
	return ""
}

// hostNameFrom turns a MUC nickname into a host block name: lower case,
// [a-z0-9-], at most 63 characters; "imported" when nothing is left.
func hostNameFrom(nick string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(nick) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	name := strings.TrimRight(b.String(), "-")
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	if name == "" {
		return "imported"
	}
	return name
}

func hostNameOK(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0) {
			return false
		}
	}
	return true
}

func deriveProsody(h *hostFiles, im *imported) error {
	c := h.prosody
	if c == nil {
		return nil
	}
	d := im.d
	dom := d.Domain
	vh := c.section(dom)
	mucName := "conference." + dom
	if s, ok := vh.str("main_muc"); ok {
		mucName = s
	}
	muc := c.section(mucName)
	vhMods := vh.modules()
	mucMods := muc.modules()

	authn, _ := vh.str("authentication")
	switch authn {
	case "token":
		d.Auth.Mode = spec.AuthJWT
		j := &spec.JWT{Algorithm: "HS256", DomainVerification: true, Lifetime: spec.DefaultTokenLifetime}
		j.AppID, _ = vh.str("app_id")
		im.appSecret, _ = vh.str("app_secret")
		if a, ok := vh.str("signature_algorithm"); ok && a != "" {
			j.Algorithm = a
		}
		if l, ok := vh.strList("asap_accepted_issuers"); ok {
			j.Issuers = l
		} else {
			j.Issuers = []string{j.AppID}
		}
		if l, ok := vh.strList("asap_accepted_audiences"); ok {
			j.Audiences = l
		} else {
			j.Audiences = []string{"*"} // mod_auth_token's default
		}
		if b, ok := vh.boolean("enable_domain_verification"); ok {
			j.DomainVerification = b
		}
		if b, ok := vh.boolean("allow_empty_token"); ok {
			j.AllowEmpty = b
		}
		d.Auth.JWT = j
		if j.AppID == "" {
			return fmt.Errorf("%s: VirtualHost %q uses token authentication without app_id; add app_id (the token's iss) and run import again", at(c.File, vh.Opts["authentication"].Line), dom)
		}
		if im.appSecret == "" {
			return fmt.Errorf("%s: VirtualHost %q uses token authentication without app_secret (asymmetric keys are not supported); add app_secret and run import again", at(c.File, vh.Opts["authentication"].Line), dom)
		}
	case "internal_hashed", "internal_plain":
		d.Auth.Mode = spec.AuthInternal
	case "jitsi-anonymous", "anonymous", "":
		d.Auth.Mode = spec.AuthAnonymous
	default:
		return fmt.Errorf("%s: authentication = %q is not one jitsi-agent can manage (token, internal_hashed, jitsi-anonymous)", at(c.File, vh.Opts["authentication"].Line), authn)
	}
	if g := c.section("guest." + dom); g != nil && g.Kind == "host" {
		d.Auth.Guests = true
	}
	switch {
	case mucMods["token_affiliation"] && d.Auth.Mode == spec.AuthJWT:
		d.Auth.Moderators = spec.ModeratorsToken
	case mucMods["muc_wait_for_host"]:
		if b, ok := muc.boolean("wait_for_host_disable_auto_owners"); ok && !b {
			d.Auth.Moderators = spec.ModeratorsWaitForHost
		} else if !ok {
			d.Auth.Moderators = spec.ModeratorsWaitForHost
		}
	}

	m := &d.Meeting
	m.Lobby = vhMods["muc_lobby_rooms"]
	m.BreakoutRooms = vhMods["muc_breakout_rooms"]
	if mucMods["muc_max_occupants"] {
		if n, ok := muc.number("muc_max_occupants"); ok {
			m.MaxParticipants = int(n)
		}
	}
	for _, s := range c.Sections {
		switch s.Module {
		case "av_moderation_component":
			m.ForceMute = true
		case "polls_component":
			m.Polls = true
		}
	}
	// Whitelists: every list holds the same "skip" entries (recorder domain
	// and the user's whitelist); take the first one present.
	for _, l := range []struct {
		s   *luaSection
		key string
	}{{vh, "muc_lobby_whitelist"}, {muc, "token_verification_allowlist"}, {muc, "muc_access_whitelist"}} {
		if l.s == nil {
			continue
		}
		if v, ok := l.s.strList(l.key); ok {
			m.Recording.Whitelist = v
			break
		}
	}

	// TURN as Prosody hands it out.
	if es, ok := c.Sections[0].Opts["external_services"]; ok {
		if list, ok := es.Value.([]any); ok {
			for _, e := range list {
				svc, ok := e.(map[string]any)
				if !ok {
					continue
				}
				port, _ := svc["port"].(float64)
				host, _ := svc["host"].(string)
				switch svc["type"] {
				case "turn":
					d.TURN.Enabled = true
					if host != "" {
						d.TURN.Host = host
					}
					if port > 0 {
						d.TURN.Port = int(port)
					}
					if ttl, ok := svc["ttl"].(float64); ok && ttl > 0 {
						d.TURN.TTL = time.Duration(ttl) * time.Second
					}
				case "turns":
					if port > 0 {
						d.TURN.TLSPort = int(port)
					}
				}
			}
		}
	}
	if s, ok := c.Sections[0].str("external_service_secret"); ok && s != "" {
		im.turnSecret = secretFound{value: s, where: at(c.File, c.Sections[0].Opts["external_service_secret"].Line)}
	}
	return nil
}

func (h *hostFiles) shardName() string {
	const prefix = "videobridge.apis.xmpp-client.configs."
	if h.jvb == nil {
		return "shard"
	}
	for _, p := range h.jvb.Order {
		if strings.HasPrefix(p, prefix) {
			rest := strings.TrimPrefix(p, prefix)
			if i := strings.IndexByte(rest, '.'); i > 0 {
				return rest[:i]
			}
		}
	}
	return "shard"
}

// allRoles reports whether the host runs every component it could: coturn
// may be missing (TURN off or elsewhere), Jibri when recording is off.
func allRoles(d *spec.Deployment) bool {
	for _, c := range spec.Components {
		switch {
		case d.Host.HasRole(c), c == spec.Coturn, c == spec.Front, c == spec.Jibri && !d.Meeting.Recording.Enabled:
		default:
			return false
		}
	}
	return true
}

// deriveJibri takes Jibri's two passwords from the first XMPP environment
// of jibri.conf (the rest of the file is jitsi-agent's to render).
func deriveJibri(h *hostFiles, im *imported) {
	j := h.jibri
	if j == nil {
		return
	}
	const envs = "jibri.api.xmpp.environments"
	v, _ := j.get(envs)
	list, _ := v.([]any)
	if len(list) == 0 {
		return
	}
	env, _ := list[0].(map[string]any)
	where := at(j.File, j.Leaves[envs].Line)
	for login, account := range map[string]string{"control-login": "jibri", "call-login": "recorder"} {
		if l, ok := env[login].(map[string]any); ok {
			if pw, ok := l["password"].(string); ok && pw != "" {
				im.passwords[account] = secretFound{value: pw, where: where}
			}
		}
	}
}

func deriveJicofo(h *hostFiles, im *imported) {
	d := im.d
	if j := h.jicofo; j != nil {
		if pw, ok := j.str("jicofo.xmpp.client.password"); ok && pw != "" {
			im.passwords["focus"] = secretFound{value: pw, where: at(j.File, j.Leaves["jicofo.xmpp.client.password"].Line)}
		}
		if b, ok := j.str("jicofo.bridge.brewery-jid"); ok {
			if node, _, ok := strings.Cut(b, "@"); ok {
				d.Videobridge.Brewery = node
			}
		}
		if b, ok := j.str("jicofo.jibri.brewery-jid"); ok {
			d.Meeting.Recording.Enabled = true
			if node, _, ok := strings.Cut(b, "@"); ok {
				d.Meeting.Recording.Brewery = node
			}
		}
		if t, ok := j.str("jicofo.jibri.pending-timeout"); ok {
			if dur, ok := hoconDuration(t); ok {
				d.Meeting.Recording.PendingTimeout = dur
			}
		}
		if l, ok := j.strList("jicofo.xmpp.trusted-domains"); ok {
			d.Meeting.Recording.TrustedDomains = l
		}
		if n, ok := j.integer("jicofo.conference.max-audio-senders"); ok {
			d.Jicofo.MaxAudioSenders = n
		}
		if n, ok := j.integer("jicofo.conference.max-video-senders"); ok {
			d.Jicofo.MaxVideoSenders = n
		}
	}
	// Legacy credentials (older installs): the shell config and the
	// properties file; jicofo reads the properties over jicofo.conf.
	if s := h.jicofoShell; s != nil && im.passwords["focus"].value == "" {
		if e, ok := s.last("JICOFO_AUTH_PASSWORD"); ok && e.Value != "" {
			im.passwords["focus"] = secretFound{value: e.Value, where: at(s.File, e.Line)}
		}
	}
	if p := h.jicofoLegacy; p != nil {
		for _, k := range []string{"org.jitsi.jicofo.auth.PASSWORD", "org.jitsi.jicofo.xmpp.client.PASSWORD"} {
			if e, ok := p.last(k); ok && e.Value != "" {
				im.passwords["focus"] = secretFound{value: e.Value, where: at(p.File, e.Line)}
			}
		}
		if e, ok := p.last("org.jitsi.jicofo.BRIDGE_MUC"); ok {
			if node, _, ok := strings.Cut(e.Value, "@"); ok {
				d.Videobridge.Brewery = node
			}
		}
	}
}

func deriveJVB(h *hostFiles, im *imported) {
	d := im.d
	vb := &d.Videobridge
	shard := "videobridge.apis.xmpp-client.configs." + h.shardName() + "."
	var natLocal, natPublic []string
	if j := h.jvb; j != nil {
		if n, ok := j.integer("videobridge.ice.udp.port"); ok {
			vb.UDPPort = n
		}
		if pw, ok := j.str(shard + "PASSWORD"); ok && pw != "" {
			im.passwords["jvb"] = secretFound{value: pw, where: at(j.File, j.Leaves[shard+"PASSWORD"].Line)}
		}
		if n, ok := j.str(shard + "MUC_NICKNAME"); ok {
			vb.Nickname = n
		}
		if b, ok := j.boolean("videobridge.websockets.enabled"); ok {
			vb.Websockets = b
		}
		host, hok := j.str("videobridge.http-servers.private.host")
		port, pok := j.integer("videobridge.http-servers.private.port")
		if hok || pok {
			if !hok {
				host = "127.0.0.1"
			}
			if !pok {
				port = 8080
			}
			vb.HealthURL = "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/about/health"
		}
		if en, ok := j.boolean("ice4j.harvest.mapping.stun.enabled"); ok && !en {
			vb.StunServers = []string{}
			im.stunExplicit = true
		} else if l, ok := j.strList("ice4j.harvest.mapping.stun.addresses"); ok {
			vb.StunServers = l
			im.stunExplicit = true
		}
		if v, ok := j.get("ice4j.harvest.mapping.static-mappings"); ok {
			if list, ok := v.([]any); ok {
				for _, e := range list {
					m, ok := e.(map[string]any)
					if !ok {
						continue
					}
					l, _ := m["local-address"].(string)
					p, _ := m["public-address"].(string)
					if l != "" && p != "" {
						natLocal = append(natLocal, l)
						natPublic = append(natPublic, p)
					}
				}
			}
		}
	}
	if p := h.jvbLegacy; p != nil {
		const pre = "org.jitsi.videobridge.xmpp.user.shard."
		if e, ok := p.last(pre + "PASSWORD"); ok && e.Value != "" {
			im.passwords["jvb"] = secretFound{value: e.Value, where: at(p.File, e.Line)}
		}
		if e, ok := p.last(pre + "MUC_NICKNAME"); ok {
			vb.Nickname = e.Value
		}
		if e, ok := p.last(pre + "MUC_JIDS"); ok && h.jicofo == nil {
			if node, _, ok := strings.Cut(e.Value, "@"); ok {
				vb.Brewery = node
			}
		}
		l, lok := p.last("org.ice4j.ice.harvest.NAT_HARVESTER_LOCAL_ADDRESS")
		pub, pok := p.last("org.ice4j.ice.harvest.NAT_HARVESTER_PUBLIC_ADDRESS")
		if lok && pok && len(natLocal) == 0 {
			natLocal, natPublic = []string{l.Value}, []string{pub.Value}
		}
		if e, ok := p.last("org.ice4j.ice.harvest.STUN_MAPPING_HARVESTER_ADDRESSES"); ok {
			vb.StunServers = splitList(e.Value)
			im.stunExplicit = true
		}
	}
	d.Host.PrivateIPs = natLocal
	d.Host.PublicIPs = natPublic
}

func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// hoconDuration reads "90 seconds", "90s", "2 minutes", "1500 ms", 90.
func hoconDuration(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, false
	}
	unit := strings.TrimSpace(s[i:])
	var mult time.Duration
	switch unit {
	case "", "ms", "milli", "millis", "millisecond", "milliseconds":
		mult = time.Millisecond
	case "s", "second", "seconds":
		mult = time.Second
	case "m", "minute", "minutes":
		mult = time.Minute
	case "h", "hour", "hours":
		mult = time.Hour
	case "d", "day", "days":
		mult = 24 * time.Hour
	default:
		return 0, false
	}
	return time.Duration(n * float64(mult)), true
}

func deriveConfigJS(h *hostFiles, im *imported) {
	c := h.configJS
	if c == nil {
		return
	}
	d := im.d
	m := &d.Meeting
	if b, ok := c.boolean("startWithAudioMuted"); ok {
		m.StartAudioMuted = b
	}
	if b, ok := c.boolean("startWithVideoMuted"); ok {
		m.StartVideoMuted = b
	}
	if n, ok := c.number("startAudioMuted"); ok {
		m.StartAudioMutedAfter = int(n)
	}
	if n, ok := c.number("startVideoMuted"); ok {
		m.StartVideoMutedAfter = int(n)
	}
	if b, ok := c.boolean("disableChat"); ok {
		m.Chat = !b
	}
	if b, ok := c.boolean("disableReactions"); ok {
		m.Reactions = !b
	}
	if b, ok := c.boolean("prejoinConfig.enabled"); ok {
		m.Prejoin = b
	}
	if b, ok := c.boolean("requireDisplayName"); ok {
		m.RequireDisplayName = b
	}
	if b, ok := c.boolean("p2p.enabled"); ok {
		m.P2P = b
	}
	if v, ok := c.get("toolbarButtons"); ok {
		if l, ok := toStrings(v); ok {
			has := map[string]bool{}
			for _, b := range l {
				has[b] = true
			}
			if !has["desktop"] {
				m.ScreenSharing = false
			}
			if !has["chat"] {
				m.Chat = false
			}
		}
	}
	if h.prosody == nil { // a web-only host: features from config.js alone
		if b, ok := c.boolean("disablePolls"); ok {
			m.Polls = !b
		}
		if b, ok := c.boolean("securityUi.hideLobbyButton"); ok {
			m.Lobby = !b
		}
		if b, ok := c.boolean("breakoutRooms.hideAddRoomButton"); ok {
			m.BreakoutRooms = !b
		}
		if s, ok := c.str("hosts.anonymousdomain"); ok && s != "" {
			d.Auth.Guests = true
		}
	}
	if s, ok := c.str("hiddenDomain"); ok && s != "" {
		m.Recording.Enabled = true
		m.Recording.RecorderDomain = s
	}
	if b, ok := c.boolean("liveStreaming.enabled"); ok {
		m.Recording.Livestreaming = b
	}
	// bosh: https://DOMAIN:PORT/ + subdir ... gives the HTTPS port on a
	// host without nginx.
	if s, ok := c.str("bosh"); ok && h.nginx == nil {
		if u, err := url.Parse(s); err == nil && u.Port() != "" {
			if p, err := strconv.Atoi(u.Port()); err == nil {
				d.Web.HTTPSPort = p
			}
		}
	}
}

func deriveNginx(h *hostFiles, im *imported) {
	n := h.nginx
	if n == nil {
		return
	}
	d := im.d
	tls := n.tlsServer()
	if tls != nil {
		for _, l := range tls.find("listen") {
			if p, err := strconv.Atoi(listenPort(l)); err == nil {
				d.Web.HTTPSPort = p
				break
			}
		}
		certs := tls.find("ssl_certificate")
		keys := tls.find("ssl_certificate_key")
		if len(certs) > 0 {
			d.TLS.Certificate = certs[0].arg(0)
		}
		if len(keys) > 0 {
			d.TLS.Key = keys[0].arg(0)
		}
		if r := tls.first("root"); r != nil {
			d.Web.Root = r.arg(0)
		}
		// Tenants: the /<tenant>/config.js location.
		if tls.location("~", `^/([^/?&:'"]+)/config.js$`) != nil {
			d.Tenants = true
		}
		if len(certs) > 1 {
			im.rsa = true
		}
	}
	plain := n.plainServer()
	if plain == nil {
		d.Web.HTTPRedirect = false
		d.Web.HTTPPort = 80
		return
	}
	for _, l := range plain.find("listen") {
		if p, err := strconv.Atoi(listenPort(l)); err == nil {
			d.Web.HTTPPort = p
			break
		}
	}
	d.Web.HTTPRedirect = false
	if loc := plain.location("/"); loc != nil {
		if r := loc.first("return"); r != nil && (r.arg(0) == "301" || r.arg(0) == "302") {
			d.Web.HTTPRedirect = true
		}
	}
	if acme := plain.location("^~", "/.well-known/acme-challenge/"); acme != nil {
		if pp := acme.first("proxy_pass"); pp != nil {
			listen := strings.TrimPrefix(pp.arg(0), "http://")
			d.TLS.ACME = &spec.ACME{Listen: listen, RSA: im.rsa}
			if sn := plain.first("server_name"); sn != nil && len(sn.Args) > 1 {
				d.TLS.ACME.ExtraNames = append([]string(nil), sn.Args[1:]...)
			}
			if im.rsa {
				// the RSA pair is derived from the ECDSA paths
				d.TLS.ACME.RSA = true
			}
		}
	}
}

func deriveTURN(h *hostFiles, im *imported) {
	t := h.turn
	d := im.d
	if t == nil {
		if d.TURN.Enabled && d.Host.HasRole(spec.Coturn) {
			d.TURN.Enabled = true
		}
		return
	}
	d.TURN.Enabled = true
	if s, ok := t.value("static-auth-secret"); ok && s != "" {
		e, _ := t.last("static-auth-secret")
		if im.turnSecret.value != "" && im.turnSecret.value != s {
			im.notes = append(im.notes, Finding{File: t.File, Line: e.Line, Kind: KindChanged,
				Setting: "static-auth-secret",
				Reason:  fmt.Sprintf("differs from Prosody's external_service_secret (%s): clients get credentials coturn rejects. Prosody's value is kept for both", im.turnSecret.where)})
		} else if im.turnSecret.value == "" {
			im.turnSecret = secretFound{value: s, where: at(t.File, e.Line)}
		}
	}
	if s, ok := t.value("realm"); ok {
		d.TURN.Realm = s
	}
	if s, ok := t.value("listening-port"); ok {
		if p, err := strconv.Atoi(s); err == nil && h.prosody == nil {
			d.TURN.Port = p
		}
	}
	if s, ok := t.value("tls-listening-port"); ok {
		if p, err := strconv.Atoi(s); err == nil && h.prosody == nil {
			d.TURN.TLSPort = p
		}
	}
	if s, ok := t.value("min-port"); ok {
		d.TURN.RelayMin, _ = strconv.Atoi(s)
	}
	if s, ok := t.value("max-port"); ok {
		d.TURN.RelayMax, _ = strconv.Atoi(s)
	}
	d.TURN.DeniedPeerPrivate = len(t.all("denied-peer-ip")) > 0
	// external-ip PUBLIC[/PRIVATE]: the same pairs as JVB's NAT mapping;
	// coturn's are used when jvb.conf has none.
	if len(d.Host.PublicIPs) == 0 {
		var pub, priv []string
		for _, e := range t.all("external-ip") {
			p, l, _ := strings.Cut(e.Value, "/")
			pub = append(pub, p)
			if l != "" {
				priv = append(priv, l)
			}
		}
		d.Host.PublicIPs = pub
		if len(priv) == len(pub) {
			d.Host.PrivateIPs = priv
		}
	}
}

// deriveListeners reads Prosody's ports: from the vhost file's global
// c2s_ports/http_ports/https_ports/s2s_ports when it sets them, else from
// what connects to them (jicofo's and jvb's c2s port, nginx's upstream).
// Ports the file leaves at Prosody's defaults for s2s and HTTPS stay off
// in the spec; the report lists the change.
func deriveListeners(h *hostFiles, im *imported) {
	pl := &im.d.Prosody
	pl.C2SPort, pl.HTTPPort = spec.DefaultProsodyC2SPort, spec.DefaultProsodyHTTPPort
	first := func(key string) (int, bool) {
		if h.prosody == nil {
			return 0, false
		}
		o, ok := h.prosody.Sections[0].Opts[key]
		if !ok {
			return 0, false
		}
		switch v := o.Value.(type) {
		case float64:
			return int(v), true
		case []any:
			if len(v) == 0 {
				return 0, true
			}
			if n, ok := v[0].(float64); ok {
				return int(n), true
			}
		case map[string]any: // {} is an empty list
			return 0, true
		}
		return 0, false
	}
	if n, ok := first("c2s_ports"); ok && n > 0 {
		pl.C2SPort = n
	} else if h.jicofo != nil {
		if n, ok := h.jicofo.integer("jicofo.xmpp.client.port"); ok {
			pl.C2SPort = n
		}
	} else if h.jvb != nil {
		if n, ok := h.jvb.integer(shardKey("PORT")); ok {
			pl.C2SPort = n
		}
	}
	if n, ok := first("http_ports"); ok && n > 0 {
		pl.HTTPPort = n
	} else if h.nginx != nil {
		for _, d := range h.nginx.Top {
			if d.Name == "upstream" && d.arg(0) == "prosody" {
				if srv := d.first("server"); srv != nil {
					if i := strings.LastIndexByte(srv.arg(0), ':'); i >= 0 {
						if n, err := strconv.Atoi(srv.arg(0)[i+1:]); err == nil {
							pl.HTTPPort = n
						}
					}
				}
			}
		}
	}
	if n, ok := first("https_ports"); ok {
		pl.HTTPSPort = n
	}
	if n, ok := first("s2s_ports"); ok {
		pl.S2SPort = n
	}
}
