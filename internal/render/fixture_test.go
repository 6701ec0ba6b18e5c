package render

import (
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Fake, fixed secrets: fixture values only, never real ones.
const (
	testAppSecret     = "ae971cee7d535e06e3d36d3d3eb4a02c47ff6d19" // 40 chars, random
	testFocusPassword = "test-focus-pw-4f8a2c"
	testJVBPassword   = "test-jvb-pw-9d3e7b"
	testTURNSecret    = "test-turn-secret-c0ffee42"
	testJibriPassword = "test-jibri-pw-51d0aa"
	testRecorderPw    = "test-recorder-pw-77e1b3"
)

// newDeployment builds a fully defaulted Deployment, as spec.Load would for a
// minimal spec with domain meet.example.com and jwt auth, then applies mods.
func newDeployment(mods ...func(*spec.Deployment)) *spec.Deployment {
	const domain = "meet.example.com"
	host := spec.Host{Name: "meet1", Roles: spec.DefaultRoles()}
	d := &spec.Deployment{
		SourceFile: "/etc/jitsi-agent/jitsi.hcl",
		SourceDir:  "/etc/jitsi-agent",
		Domain:     domain,
		Host:       host,
		Hosts:      []spec.Host{host},
		Auth: spec.Auth{
			Mode:       spec.AuthJWT,
			Moderators: spec.ModeratorsToken,
			JWT: &spec.JWT{
				AppID:              "jitsi-app",
				AppSecret:          spec.NewSecret(testAppSecret),
				Algorithm:          "HS256",
				Issuers:            []string{"jitsi-app"},
				Audiences:          []string{"jitsi-app"},
				Lifetime:           2 * time.Hour,
				DomainVerification: true,
			},
		},
		Meeting: spec.Meeting{
			Lobby: true, Chat: true, ScreenSharing: true, BreakoutRooms: true,
			Polls: true, Reactions: true, Prejoin: true, P2P: true, ForceMute: true,
			Recording: spec.Recording{
				RecorderDomain: "recorder." + domain,
				Brewery:        "JibriBrewery",
				PendingTimeout: 90 * time.Second,
			},
		},
		Videobridge: spec.Videobridge{
			UDPPort:     10000,
			StunServers: []string{domain + ":3478"},
			Nickname:    "meet1",
			Brewery:     "JvbBrewery",
			HealthURL:   "http://127.0.0.1:8080/about/health",
		},
		Jicofo: spec.JicofoSettings{MaxAudioSenders: 999999, MaxVideoSenders: 999999},
		TURN: spec.TURN{
			Enabled: true, Host: domain, Port: 3478, TLSPort: 5349, Realm: domain,
			TTL: 24 * time.Hour, DeniedPeerPrivate: true,
		},
		TLS: spec.TLS{
			Certificate: "/etc/jitsi/meet/" + domain + ".crt",
			Key:         "/etc/jitsi/meet/" + domain + ".key",
		},
		Web: spec.Web{HTTPPort: 80, HTTPSPort: 443, Root: "/usr/share/jitsi-meet", HTTPRedirect: true},
		Services: map[string]spec.Service{
			spec.Prosody: {Component: spec.Prosody, Unit: "prosody.service", Enabled: true, Restart: spec.RestartImmediate},
			spec.Jicofo:  {Component: spec.Jicofo, Unit: "jicofo.service", Enabled: true, Restart: spec.RestartImmediate},
			spec.JVB:     {Component: spec.JVB, Unit: "jitsi-videobridge2.service", Enabled: true, Restart: spec.RestartImmediate},
			spec.Jibri:   {Component: spec.Jibri, Unit: "jibri.service", Restart: spec.RestartImmediate},
			spec.Nginx:   {Component: spec.Nginx, Unit: "nginx.service", Enabled: true, Restart: spec.RestartImmediate},
			spec.Coturn:  {Component: spec.Coturn, Unit: "coturn.service", Enabled: true, Restart: spec.RestartImmediate},
			spec.Front:   {Component: spec.Front, Unit: "haproxy.service", Enabled: true, Restart: spec.RestartImmediate},
		},
		Secrets: spec.Secrets{
			TURNSecret: spec.NewSecret(testTURNSecret),
			Passwords: map[string]spec.Secret{
				"focus":    spec.NewSecret(testFocusPassword),
				"jvb":      spec.NewSecret(testJVBPassword),
				"jibri":    spec.NewSecret(testJibriPassword),
				"recorder": spec.NewSecret(testRecorderPw),
			},
		},
		StateDir: "/var/lib/jitsi-agent",
		Backups:  5,
		Drift:    spec.DriftRestore,
	}
	for _, m := range mods {
		m(d)
	}
	return d
}

// Modifiers for the matrix.

func authAnonymous(d *spec.Deployment) {
	d.Auth.Mode = spec.AuthAnonymous
	d.Auth.JWT = nil
	d.Auth.Moderators = spec.ModeratorsFirstJoiner
}

func authInternal(d *spec.Deployment) {
	d.Auth.Mode = spec.AuthInternal
	d.Auth.JWT = nil
	d.Auth.Moderators = spec.ModeratorsFirstJoiner
}

func guests(d *spec.Deployment)      { d.Auth.Guests = true }
func waitForHost(d *spec.Deployment) { d.Auth.Moderators = spec.ModeratorsWaitForHost }
func noLobby(d *spec.Deployment)     { d.Meeting.Lobby = false }
func noTURN(d *spec.Deployment) {
	d.TURN.Enabled = false
	d.Secrets.TURNSecret = spec.Secret{}
}
func tenants(d *spec.Deployment) { d.Tenants = true }

func recording(d *spec.Deployment) {
	d.Meeting.Recording.Enabled = true
	d.Meeting.Recording.Livestreaming = true
}

func featuresOff(d *spec.Deployment) {
	m := &d.Meeting
	m.Chat, m.ScreenSharing, m.BreakoutRooms, m.Polls = false, false, false, false
	m.Reactions, m.Prejoin, m.P2P, m.ForceMute = false, false, false, false
}

// roles makes the selected host one of two: "xmpp1" runs Prosody, Jicofo,
// nginx and coturn; the selected host (name) runs only r.
func roles(name string, r ...string) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		d.Host.Name = name
		d.Host.Roles = r
		d.Hosts = []spec.Host{
			{Name: "xmpp1", Roles: []string{spec.Prosody, spec.Jicofo, spec.Nginx, spec.Coturn}},
			d.Host,
		}
		d.Videobridge.Nickname = name
	}
}

// fleet is a static multi-host shard with colibri websockets: signal1
// (Prosody, Jicofo, nginx, coturn) and two bridges, one reached by IP and
// one by DNS name; name selects the host rendered.
func fleet(name string) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		d.Hosts = []spec.Host{
			{Name: "signal1", Address: "10.0.0.1", Roles: []string{spec.Prosody, spec.Jicofo, spec.Nginx, spec.Coturn}},
			{Name: "jvb1", Address: "10.0.0.11", Roles: []string{spec.JVB}},
			{Name: "jvb2", Address: "jvb2.internal.example.com", Roles: []string{spec.JVB}},
		}
		for _, h := range d.Hosts {
			if h.Name == name {
				d.Host = h
			}
		}
		d.Videobridge.Nickname = name
		d.Videobridge.Websockets = true
	}
}

// sharded is a fleet of two shards behind a front, rendered for host name.
func sharded(name string) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		d.Hosts = []spec.Host{
			{Name: "front1", Address: "192.0.2.10", Shard: spec.DefaultShard, Roles: []string{spec.Front}},
			{Name: "signal-a", Address: "10.0.0.1", Shard: "a", Roles: []string{spec.Prosody, spec.Jicofo, spec.Nginx, spec.Coturn}},
			{Name: "jvb-a1", Address: "10.0.0.11", Shard: "a", Roles: []string{spec.JVB}},
			{Name: "signal-b", Address: "signal-b.internal.example.com", Shard: "b", Roles: []string{spec.Prosody, spec.Jicofo, spec.Nginx, spec.Coturn}},
			{Name: "jvb-b1", Address: "10.0.1.11", Shard: "b", Roles: []string{spec.JVB}},
			{Name: "jvb-b2", Address: "10.0.1.12", Shard: "b", Roles: []string{spec.JVB}},
		}
		for _, h := range d.Hosts {
			if h.Name == name {
				d.Host = h
			}
		}
		d.Videobridge.Nickname = name
		d.Videobridge.Websockets = true
		d.TURN.Host = "10.0.0.1"
		if name == "signal-b" {
			d.TURN.Host = "signal-b.internal.example.com"
		}
		d.TLS.ShardCA = spec.FrontSystemCA
	}
}

// everything is the largest deployment: every feature and list in use.
func everything(d *spec.Deployment) {
	guests(d)
	recording(d)
	tenants(d)
	d.Meeting.MaxParticipants = 50
	d.Meeting.StartAudioMuted = true
	d.Meeting.StartAudioMutedAfter = 10
	d.Meeting.StartVideoMutedAfter = 5
	d.Meeting.RequireDisplayName = true
	d.Meeting.Recording.TrustedDomains = []string{"jibri.example.com"}
	d.Meeting.Recording.Whitelist = []string{"sip.example.com", "transcriber@recorder.meet.example.com"}
	d.Host.PublicIPs = []string{"203.0.113.10", "198.51.100.20"}
	d.Host.PrivateIPs = []string{"10.0.0.10", "10.0.1.20"}
	d.Hosts = []spec.Host{d.Host}
	d.Videobridge.Websockets = true
	d.Videobridge.StunServers = []string{"meet.example.com:3478", "stun.example.net:3478"}
	d.TURN.RelayMin, d.TURN.RelayMax = 40000, 49999
	d.TURN.Secret = spec.NewSecret("test-turn-secret-given-5a5a5a")
	d.TLS.ACME = &spec.ACME{Email: "ops@example.com", Listen: "127.0.0.1:8402"}
	d.Auth.JWT.Audiences = []string{"jitsi-app", "jitsi"}
	d.Auth.JWT.Issuers = []string{"jitsi-app", "backend"}
	d.Templates = []spec.Template{
		{
			Name: "backend_env", Source: "/etc/jitsi-agent/templates/backend.env.tmpl",
			Destination: "/srv/backend/.env", Mode: 0o600, Owner: "backend", Group: "backend",
			Notify: []string{"backend.service"}, Check: "test -s {{.Path}}", Drift: spec.DriftReport,
		},
		{
			Name: "flutter_config", Source: "/etc/jitsi-agent/templates/jitsi_config.dart.tmpl",
			Destination: "/srv/app/lib/jitsi_config.dart", Mode: 0o644,
		},
	}
}

// userSources are the sources of the templates in everything().
var userSources = map[string][]byte{
	"backend_env": []byte(strings.Join([]string{
		"JITSI_APP_ID={{ line .AppID }}",
		"JITSI_APP_SECRET={{ shell .AppSecret }}",
		"JITSI_SERVER_URL={{ .ServerURL }}",
		"JITSI_JWT_EXPIRATION={{ .JWTLifetimeSeconds }}",
		"",
	}, "\n")),
	"flutter_config": []byte(strings.Join([]string{
		"// Generated by jitsi-agent for {{ .Domain }}.",
		"class JitsiConfig {",
		"  static const String serverUrl = {{ dart .ServerURL }};",
		"  static const String domain = {{ dart .Domain }};",
		"  static const int tokenLifetimeSeconds = {{ .JWTLifetimeSeconds }};",
		"}",
		"",
	}, "\n")),
}

type combo struct {
	name string
	mods []func(*spec.Deployment)
}

// matrix covers every value of auth mode, guests, lobby, recording, TURN
// and tenants at least once, plus moderator modes, role splits and the
// largest deployment.
var matrix = []combo{
	{"jwt-default", nil},
	{"jwt-guests-waitforhost", []func(*spec.Deployment){guests, waitForHost}},
	{"jwt-recording-tenants", []func(*spec.Deployment){recording, tenants, func(d *spec.Deployment) { d.Meeting.MaxParticipants = 25 }}},
	{"jwt-nolobby-noturn-featuresoff", []func(*spec.Deployment){noLobby, noTURN, featuresOff}},
	{"jwt-guests-tenants-noturn", []func(*spec.Deployment){guests, tenants, noTURN}},
	{"anonymous", []func(*spec.Deployment){authAnonymous}},
	{"anonymous-recording-tenants-noturn", []func(*spec.Deployment){authAnonymous, recording, tenants, noTURN, noLobby}},
	{"internal-waitforhost", []func(*spec.Deployment){authInternal, waitForHost}},
	{"internal-guests-nolobby-recording", []func(*spec.Deployment){authInternal, guests, noLobby, recording}},
	{"jwt-nat-ports-acme", []func(*spec.Deployment){func(d *spec.Deployment) {
		d.Host.PublicIPs = []string{"203.0.113.10"}
		d.Host.PrivateIPs = []string{"10.0.0.10"}
		d.Hosts = []spec.Host{d.Host}
		d.Web.HTTPPort, d.Web.HTTPSPort = 8080, 8443
		d.TLS.ACME = &spec.ACME{Listen: "127.0.0.1:8402"}
		d.Meeting.StartVideoMuted = true
		d.Meeting.StartAudioMutedAfter = 3
		d.Meeting.RequireDisplayName = true
		d.Meeting.Chat = false
		d.Videobridge.StunServers = nil
		d.Videobridge.Websockets = true
		d.Auth.Moderators = spec.ModeratorsFirstJoiner
	}}},
	{"split-jvb-only", []func(*spec.Deployment){roles("bridge7", spec.JVB)}},
	{"split-web-turn", []func(*spec.Deployment){roles("edge1", spec.Nginx, spec.Coturn)}},
	{"fleet-signal-websockets", []func(*spec.Deployment){fleet("signal1")}},
	{"fleet-bridge-websockets", []func(*spec.Deployment){fleet("jvb1")}},
	{"front-two-shards", []func(*spec.Deployment){sharded("front1")}},
	{"front-acme-ports", []func(*spec.Deployment){sharded("front1"), func(d *spec.Deployment) {
		d.Web.HTTPPort, d.Web.HTTPSPort = 8080, 8443
		d.TLS.ACME = &spec.ACME{Listen: "127.0.0.1:8402"}
		d.TLS.ShardCA = "/etc/haproxy/shard-ca.pem"
		d.Videobridge.Websockets = false
	}}},
	{"shard-b-signal", []func(*spec.Deployment){sharded("signal-b")}},
	{"everything", []func(*spec.Deployment){everything}},
}
