package adopt

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// writeSpec writes the deployment as a commented spec, with only the values
// that differ from the spec's defaults (so the spec reads like one a person
// wrote); secretFile is the app secret's file name relative to the spec.
func writeSpec(im *imported, sources []string, secretFile string, extra spec.Extra) []byte {
	d := im.d
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Imported by `jitsi-agent import` from this host's Jitsi configuration:\n")
	for _, s := range sources {
		w("#   %s\n", s)
	}
	w("# Review it, then `jitsi-agent plan` shows what apply would change\n")
	w("# (the import report lists every such change and why).\n\n")
	w("domain = %s\n", hq(d.Domain))
	if d.Tenants {
		w("tenants = true # https://DOMAIN/<tenant>/<room> (nginx tenant locations)\n")
	}

	allRoles := allRoles(d)
	if im.hostName != "" {
		w("\n# This machine (its videobridge's MUC nickname).\nhost %s {\n", hq(im.hostName))
		if len(d.Host.PublicIPs) > 0 {
			w("public_ips = %s # announced by the videobridge and coturn\n", hlist(d.Host.PublicIPs))
		}
		if len(d.Host.PrivateIPs) > 0 {
			w("private_ips = %s\n", hlist(d.Host.PrivateIPs))
		}
		if !allRoles {
			w("roles = %s # the components whose configuration was found\n", hlist(d.Host.Roles))
		}
		w("}\n")
	}
	if im.xmppHost != "" {
		var other []string
		for _, c := range spec.DefaultRoles() {
			if !slices.Contains(d.Host.Roles, c) {
				other = append(other, c)
			}
		}
		w("\n# The machine running Prosody (jvb.conf and jicofo.conf connect to it).\nhost %s {\naddress = %s\nroles = %s\n}\n", hq(im.xmppHost), hq(im.xmppHost), hlist(other))
		w("\n# The passwords and TURN secret shared with that machine were imported into\n# this host's state directory; keep them equal there (or move to cluster_secret).\nimported_secrets = true\n")
	}

	// auth
	w("\n")
	switch d.Auth.Mode {
	case spec.AuthJWT:
		j := d.Auth.JWT
		w("# Token authentication (Prosody authentication = \"token\").\nauth \"jwt\" {\n")
		w("app_id = %s\n", hq(j.AppID))
		w("app_secret = trimspace(file(%s)) # written by import, mode 0600; never inline\n", hq(secretFile))
		if j.Algorithm != "HS256" {
			w("algorithm = %s\n", hq(j.Algorithm))
		}
		if !slices.Equal(j.Issuers, []string{j.AppID}) {
			w("accepted_issuers = %s\n", hlist(j.Issuers))
		}
		if !slices.Equal(j.Audiences, []string{j.AppID}) {
			c := ""
			if slices.Equal(j.Audiences, []string{"*"}) {
				c = " # any audience: Prosody's default when asap_accepted_audiences is unset"
			}
			w("accepted_audiences = %s%s\n", hlist(j.Audiences), c)
		}
		if !j.DomainVerification {
			w("domain_verification = false # the token's sub is not checked against the domain\n")
		}
		if j.AllowEmpty {
			w("allow_empty_token = true\n")
		}
	case spec.AuthInternal:
		w("# Prosody accounts (authentication = \"internal_hashed\").\nauth \"internal\" {\n")
	default:
		w("# Anyone may create rooms (authentication = \"jitsi-anonymous\").\nauth \"anonymous\" {\n")
	}
	if d.Auth.Guests {
		w("guests = true # guest.%s: users without a login join rooms a host opened\n", d.Domain)
	}
	defMods := spec.ModeratorsFirstJoiner
	if d.Auth.Mode == spec.AuthJWT {
		defMods = spec.ModeratorsToken
	}
	if d.Auth.Moderators != defMods {
		w("moderators = %s\n", hq(d.Auth.Moderators))
	}
	w("}\n")

	// meeting
	m := d.Meeting
	var mb strings.Builder
	mw := func(format string, args ...any) { fmt.Fprintf(&mb, format, args...) }
	boolAttr := func(name string, v, def bool, comment string) {
		if v != def {
			if comment != "" {
				comment = " # " + comment
			}
			mw("%s = %t%s\n", name, v, comment)
		}
	}
	boolAttr("start_audio_muted", m.StartAudioMuted, false, "")
	boolAttr("start_video_muted", m.StartVideoMuted, false, "")
	if m.StartAudioMutedAfter > 0 {
		mw("start_audio_muted_after = %d\n", m.StartAudioMutedAfter)
	}
	if m.StartVideoMutedAfter > 0 {
		mw("start_video_muted_after = %d\n", m.StartVideoMutedAfter)
	}
	mw("lobby = %t # muc_lobby_rooms\n", m.Lobby)
	if m.MaxParticipants > 0 {
		mw("max_participants = %d # muc_max_occupants\n", m.MaxParticipants)
	}
	boolAttr("force_mute", m.ForceMute, true, "no avmoderation component")
	boolAttr("chat", m.Chat, true, "")
	boolAttr("screen_sharing", m.ScreenSharing, true, "")
	boolAttr("breakout_rooms", m.BreakoutRooms, true, "no muc_breakout_rooms")
	boolAttr("polls", m.Polls, true, "no polls component")
	boolAttr("reactions", m.Reactions, true, "")
	boolAttr("prejoin", m.Prejoin, true, "")
	boolAttr("require_display_name", m.RequireDisplayName, false, "")
	boolAttr("p2p", m.P2P, true, "")
	r := m.Recording
	var rb strings.Builder
	if r.Enabled {
		rb.WriteString("enabled = true\n")
		if r.Livestreaming {
			rb.WriteString("livestreaming = true\n")
		}
		if r.RecorderDomain != "recorder."+d.Domain {
			fmt.Fprintf(&rb, "recorder_domain = %s\n", hq(r.RecorderDomain))
		}
		if r.Brewery != "JibriBrewery" {
			fmt.Fprintf(&rb, "brewery = %s\n", hq(r.Brewery))
		}
		if r.PendingTimeout != 90*time.Second {
			fmt.Fprintf(&rb, "pending_timeout = %s\n", hq(fmtDuration(r.PendingTimeout)))
		}
	}
	trusted := r.TrustedDomains
	if r.Enabled {
		trusted = without(trusted, r.RecorderDomain)
		if len(trusted) > 0 {
			fmt.Fprintf(&rb, "trusted_domains = %s # jicofo xmpp.trusted-domains\n", hlist(trusted))
		}
	} else if trusted != nil && !slices.Equal(trusted, []string{r.RecorderDomain}) {
		fmt.Fprintf(&rb, "trusted_domains = %s # jicofo xmpp.trusted-domains\n", hlist(trusted))
	}
	if len(r.Whitelist) > 0 {
		fmt.Fprintf(&rb, "whitelist = %s\n", hlist(r.Whitelist))
	}
	if rb.Len() > 0 {
		mw("\nrecording {\n%s}\n", rb.String())
	}
	w("\nmeeting {\n%s}\n", mb.String())

	// videobridge
	vb := d.Videobridge
	var vbb strings.Builder
	if vb.UDPPort != spec.DefaultJVBUDPPort {
		fmt.Fprintf(&vbb, "udp_port = %d\n", vb.UDPPort)
	}
	defStun := []string{}
	if d.TURN.Enabled {
		defStun = []string{net2(d.TURN.Host, d.TURN.Port)}
	}
	if im.stunExplicit && !slices.Equal(vb.StunServers, defStun) {
		fmt.Fprintf(&vbb, "stun_servers = %s\n", hlist(vb.StunServers))
	}
	if vb.Websockets {
		vbb.WriteString("websockets = true\n")
	}
	if vb.Nickname != "" && vb.Nickname != im.hostName {
		fmt.Fprintf(&vbb, "nickname = %s # MUC_NICKNAME\n", hq(vb.Nickname))
	}
	if vb.Brewery != "JvbBrewery" {
		fmt.Fprintf(&vbb, "brewery = %s\n", hq(vb.Brewery))
	}
	if vb.HealthURL != "http://127.0.0.1:8080/about/health" {
		fmt.Fprintf(&vbb, "health_url = %s # http-servers.private\n", hq(vb.HealthURL))
	}
	if vbb.Len() > 0 {
		w("\nvideobridge {\n%s}\n", vbb.String())
	}

	var pb strings.Builder
	pl := d.Prosody
	if pl.C2SPort != spec.DefaultProsodyC2SPort {
		fmt.Fprintf(&pb, "c2s_port = %d\n", pl.C2SPort)
	}
	if pl.HTTPPort != spec.DefaultProsodyHTTPPort {
		fmt.Fprintf(&pb, "http_port = %d\n", pl.HTTPPort)
	}
	if pl.S2SPort != 0 {
		fmt.Fprintf(&pb, "s2s_port = %d\n", pl.S2SPort)
	}
	if pl.HTTPSPort != 0 {
		fmt.Fprintf(&pb, "https_port = %d\n", pl.HTTPSPort)
	}
	if pb.Len() > 0 {
		w("\n# Prosody's listeners.\nprosody {\n%s}\n", pb.String())
	}

	if d.Jicofo.MaxAudioSenders != 999999 || d.Jicofo.MaxVideoSenders != 999999 {
		w("\njicofo {\n")
		if d.Jicofo.MaxAudioSenders != 999999 {
			w("max_audio_senders = %d\n", d.Jicofo.MaxAudioSenders)
		}
		if d.Jicofo.MaxVideoSenders != 999999 {
			w("max_video_senders = %d\n", d.Jicofo.MaxVideoSenders)
		}
		w("}\n")
	}

	// turn
	t := d.TURN
	var tb strings.Builder
	if !t.Enabled {
		tb.WriteString("enabled = false # no coturn configuration found\n")
	} else {
		tb.WriteString("# secret: imported into the state directory (turn_secret), not written here\n")
		if t.Host != d.Domain {
			fmt.Fprintf(&tb, "host = %s\n", hq(t.Host))
		}
		if t.Port != spec.DefaultTURNPort {
			fmt.Fprintf(&tb, "port = %d\n", t.Port)
		}
		if t.TLSPort != spec.DefaultTURNTLSPort {
			fmt.Fprintf(&tb, "tls_port = %d\n", t.TLSPort)
		}
		if t.Realm != d.Domain {
			fmt.Fprintf(&tb, "realm = %s\n", hq(t.Realm))
		}
		if t.RelayMin > 0 && t.RelayMax > 0 {
			fmt.Fprintf(&tb, "relay_min_port = %d\nrelay_max_port = %d\n", t.RelayMin, t.RelayMax)
		}
		if t.TTL != 24*time.Hour {
			fmt.Fprintf(&tb, "credential_ttl = %s\n", hq(fmtDuration(t.TTL)))
		}
		if !t.DeniedPeerPrivate {
			tb.WriteString("deny_private_peers = false # no denied-peer-ip lines\n")
		}
	}
	w("\nturn {\n%s}\n", tb.String())

	// tls
	var tlb strings.Builder
	if t := d.TLS.Certificate; t != "/etc/jitsi/meet/"+d.Domain+".crt" {
		fmt.Fprintf(&tlb, "certificate = %s\n", hq(t))
	}
	if k := d.TLS.Key; k != "/etc/jitsi/meet/"+d.Domain+".key" {
		fmt.Fprintf(&tlb, "key = %s\n", hq(k))
	}
	if a := d.TLS.ACME; a != nil {
		tlb.WriteString("\n# nginx proxies ACME challenges to jitsi-agent; set email (and directory) here.\nacme {\n")
		if a.Listen != spec.DefaultACMEListen {
			fmt.Fprintf(&tlb, "listen = %s\n", hq(a.Listen))
		}
		if len(a.ExtraNames) > 0 {
			fmt.Fprintf(&tlb, "extra_names = %s\n", hlist(a.ExtraNames))
		}
		if a.RSA {
			tlb.WriteString("rsa = true\n")
		}
		tlb.WriteString("}\n")
	}
	if tlb.Len() > 0 {
		w("\ntls {\n%s}\n", tlb.String())
	}

	var wb strings.Builder
	if d.Web.HTTPPort != 80 {
		fmt.Fprintf(&wb, "http_port = %d\n", d.Web.HTTPPort)
	}
	if d.Web.HTTPSPort != 443 {
		fmt.Fprintf(&wb, "https_port = %d\n", d.Web.HTTPSPort)
	}
	if d.Web.Root != "/usr/share/jitsi-meet" {
		fmt.Fprintf(&wb, "root = %s\n", hq(d.Web.Root))
	}
	if !d.Web.HTTPRedirect {
		wb.WriteString("http_redirect = false\n")
	}
	if wb.Len() > 0 {
		w("\nweb {\n%s}\n", wb.String())
	}

	writeFirewall(&b, d.Firewall)

	var eb strings.Builder
	for _, e := range []struct{ name, text string }{
		{"prosody", extra.Prosody}, {"jicofo", extra.Jicofo}, {"jvb", extra.JVB}, {"sip_communicator", extra.SipCommunicator},
		{"config_js", extra.ConfigJS}, {"nginx", extra.Nginx}, {"nginx_server", extra.NginxServer}, {"coturn", extra.Coturn},
		{"jibri", extra.Jibri},
	} {
		if e.text != "" {
			fmt.Fprintf(&eb, "%s = %s\n", e.name, heredoc(e.text))
		}
	}
	if len(extra.ProsodyModules) > 0 {
		eb.WriteString("prosody_modules = {\n")
		for _, sec := range sortedKeys(extra.ProsodyModules) {
			fmt.Fprintf(&eb, "%s = %s\n", hq(sec), hlist(extra.ProsodyModules[sec]))
		}
		eb.WriteString("}\n")
	}
	if eb.Len() > 0 {
		w("\n# Settings the spec has no attribute for, kept verbatim: each text is\n# appended to its file (see the import report for where each came from).\nextra {\n%s}\n", eb.String())
	}
	return []byte(b.String())
}

func without(l []string, s string) []string {
	if l == nil {
		return nil
	}
	out := []string{}
	for _, e := range l {
		if e != s {
			out = append(out, e)
		}
	}
	return out
}

func net2(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

func fmtDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d%time.Second == 0:
		return strconv.Itoa(int(d/time.Second)) + "s"
	}
	return d.String()
}

// hq quotes s as an HCL string literal (no interpolation).
func hq(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case (c == '$' || c == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteByte(c)
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func hlist(l []string) string {
	parts := make([]string, len(l))
	for i, s := range l {
		parts[i] = hq(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// heredoc writes text (ending in a newline) as an HCL heredoc, escaping
// template sequences; the delimiter never occurs in the text.
func heredoc(text string) string {
	delim := "EOT"
	for i := 0; strings.Contains(text, delim); i++ {
		delim = "EOT" + strconv.Itoa(i)
	}
	esc := strings.ReplaceAll(text, "${", "$${")
	esc = strings.ReplaceAll(esc, "%{", "%%{")
	if !strings.HasSuffix(esc, "\n") {
		esc += "\n"
	}
	return "<<" + delim + "\n" + esc + delim
}
