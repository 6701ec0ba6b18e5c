// Package spec parses, decodes and validates a jitsi-agent deployment spec
// (HCL native syntax or .hcl.json) into a typed, fully defaulted Deployment.
//
// The Deployment is the contract between the spec and everything downstream:
// render, plan/apply, token, certs and doctor read it and never see HCL.
package spec

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/ports"
)

// Auth modes.
const (
	AuthJWT       = "jwt"
	AuthAnonymous = "anonymous"
	AuthInternal  = "internal"
)

// Moderator sources (auth.moderators).
const (
	ModeratorsToken       = "token"         // context.user.moderator via mod_token_affiliation
	ModeratorsWaitForHost = "wait-for-host" // guests wait until a token holder (host) arrives
	ModeratorsFirstJoiner = "first-joiner"  // jicofo auto-owner: the first participant moderates
)

// Restart policies for disruptive restarts (service.restart).
const (
	RestartImmediate = "immediate"
	RestartDefer     = "defer"
)

// Drift policies.
const (
	DriftRestore = "restore"
	DriftReport  = "report"
)

// Component names (internal/files is the table of components and files).
const (
	Prosody = files.Prosody
	Jicofo  = files.Jicofo
	JVB     = files.JVB
	Nginx   = files.Nginx
	Jibri   = files.Jibri
	Coturn  = files.Coturn
	Front   = files.Front
)

// Feature evaluates a condition of the files table (internal/files): is
// the feature on in this deployment?
func (d *Deployment) Feature(c files.Condition) bool {
	switch c {
	case files.Always:
		return true
	case files.TURN:
		return d.TURN.Enabled
	case files.Recording:
		return d.Meeting.Recording.Enabled
	case files.FirewallOn:
		return d.Firewall.Enabled
	}
	return false
}

// Components lists the built-in components in reload order.
var Components = files.ComponentNames()

// Secret is a string that never prints itself. Use Reveal() where the value is
// really needed (rendering, signing).
type Secret struct{ v string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

func (s Secret) String() string               { return "(sensitive)" }
func (s Secret) GoString() string             { return "(sensitive)" }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"(sensitive)"`), nil }
func (s Secret) MarshalText() ([]byte, error) { return []byte("(sensitive)"), nil }

// Deployment is the validated, defaulted model of one spec.
type Deployment struct {
	// SourceFile is the spec path as given; SourceDir is its directory
	// (relative file() paths and template sources resolve against it).
	SourceFile string
	SourceDir  string

	// Domain is the public host name and XMPP domain, lower case.
	Domain string
	// Tenants enables https://DOMAIN/<tenant>/<room> URLs.
	Tenants bool

	// ClusterSecret, when set, is the one secret every shared internal
	// secret (XMPP passwords, TURN secret) is derived from (HKDF-SHA256, see
	// internal/secrets.Derive), so every host of a multi-host spec renders
	// the same values. Required when the spec has more than one host.
	ClusterSecret Secret

	// Host is the selected host's own values (one spec may describe several).
	Host Host
	// Hosts lists every host block, in file order (Host is one of them, or
	// the implicit default host when there are none).
	Hosts []Host

	Auth        Auth
	Meeting     Meeting
	Videobridge Videobridge
	Jicofo      JicofoSettings
	TURN        TURN
	TLS         TLS
	Web         Web

	// Services maps component name -> systemd unit settings, one entry per
	// built-in component.
	Services map[string]Service

	Templates []Template

	// TemplatesDir overrides built-in templates by file name ("" = none).
	TemplatesDir string
	// StateDir holds generated secrets, the manifest and backups.
	StateDir string
	// Backups is how many previous applies are kept.
	Backups int
	// Drift is the default drift policy for managed files.
	Drift string

	Watch    Watch
	Metrics  Metrics
	TokenAPI *TokenAPI
	// Prosody holds Prosody's listeners (Ports() lists every port).
	Prosody ProsodyListeners
	// Firewall is the nftables table of the agent's own (off unless the
	// spec has a firewall block).
	Firewall Firewall
	// Bootstrap is where 'jitsi-agent bootstrap' installs the packages from.
	Bootstrap Bootstrap

	// Extra is verbatim text appended to built-in files (settings the spec
	// has no attribute for; jitsi-agent import keeps a host's here).
	Extra Extra

	// Secrets holds every secret value that the rendered files contain
	// (app secret, TURN secret, focus/jvb passwords). Filled by the secrets
	// store before rendering; used for redaction.
	Secrets Secrets
}

// Host is what differs between machines running the same deployment.
type Host struct {
	Name string
	// PublicIPs are announced by the videobridge (NAT static mapping) and used
	// by coturn's external-ip.
	PublicIPs []string
	// PrivateIPs are the local addresses paired with PublicIPs behind NAT.
	PrivateIPs []string
	// Roles: which components this host runs (all of them by default).
	Roles []string
	// Address is the DNS name or IP address the other hosts reach this one
	// at (Prosody's c2s, a bridge's colibri websockets, coturn); "" when
	// the spec does not give one.
	Address string
	// Shard is the shard the host belongs to: a shard is one Prosody, one
	// Jicofo and their bridges; a front routes each room to one shard.
	// "" (a spec without shards) is DefaultShard.
	Shard string
}

// ShardName is the host's shard, DefaultShard when it names none.
func (h Host) ShardName() string {
	if h.Shard == "" {
		return DefaultShard
	}
	return h.Shard
}

// DefaultShard is the shard of hosts whose block names none.
const DefaultShard = "default"

// Roles returns the role names a host block may have.
func Roles() []string { return slices.Clone(Components) }

// DefaultRoles are the roles of a host block without a roles attribute
// (and of the implicit host): every component but the front.
func DefaultRoles() []string { return files.DefaultRoles() }

// MultiHost reports whether the spec describes more than one host.
func (d *Deployment) MultiHost() bool { return len(d.Hosts) > 1 }

// ShardHostsWith returns the hosts of this host's shard that run the
// component, in file order.
func (d *Deployment) ShardHostsWith(c string) []Host {
	var out []Host
	for _, h := range d.HostsWith(c) {
		if h.ShardName() == d.Host.ShardName() {
			out = append(out, h)
		}
	}
	return out
}

// HasFront reports whether a host of the spec runs the front.
func (d *Deployment) HasFront() bool { return len(d.HostsWith(Front)) > 0 }

// HostsWith returns the hosts that run the component, in file order.
func (d *Deployment) HostsWith(c string) []Host {
	var out []Host
	for _, h := range d.Hosts {
		if h.HasRole(c) {
			out = append(out, h)
		}
	}
	return out
}

// HasRole reports whether the host runs the component.
func (h Host) HasRole(c string) bool {
	for _, r := range h.Roles {
		if r == c {
			return true
		}
	}
	return false
}

// Auth describes how users log in.
type Auth struct {
	Mode string // jwt | anonymous | internal
	// Guests enables the anonymous guest domain (guest.DOMAIN) next to jwt
	// or internal auth: guests may join rooms a host has opened.
	Guests bool
	// Moderators: token | wait-for-host | first-joiner.
	Moderators string
	JWT        *JWT // set when Mode == jwt
}

// JWT holds token authentication settings.
type JWT struct {
	AppID     string
	AppSecret Secret
	// AppSecretInline is true when the secret was written as a literal in the
	// spec (a warning, not an error).
	AppSecretInline bool
	Algorithm       string   // HS256 (HS384/HS512 accepted)
	Issuers         []string // asap_accepted_issuers; defaults to [AppID]
	Audiences       []string // asap_accepted_audiences; defaults to [AppID]
	Lifetime        time.Duration
	// DomainVerification: sub must be DOMAIN (or the tenant).
	DomainVerification bool
	AllowEmpty         bool
}

// Meeting holds meeting features.
type Meeting struct {
	StartAudioMuted bool
	StartVideoMuted bool
	// StartAudioMutedAfter/StartVideoMutedAfter: every participant after the
	// Nth starts muted (0 = not set).
	StartAudioMutedAfter int
	StartVideoMutedAfter int
	Lobby                bool
	MaxParticipants      int // 0 = unlimited
	ForceMute            bool
	Chat                 bool
	ScreenSharing        bool
	BreakoutRooms        bool
	Polls                bool
	Reactions            bool
	Prejoin              bool
	RequireDisplayName   bool
	P2P                  bool
	Recording            Recording
}

// Recording holds Jibri wiring.
type Recording struct {
	Enabled        bool
	Livestreaming  bool
	RecorderDomain string // recorder.DOMAIN
	Brewery        string // JibriBrewery (node of the brewery MUC)
	TrustedDomains []string
	Whitelist      []string // JIDs/domains that skip lobby/limits/token checks
	PendingTimeout time.Duration
}

// BreweryJID is the Jibri brewery room JID.
func (r Recording) BreweryJID(d *Deployment) string {
	return r.Brewery + "@internal.auth." + d.Domain
}

// Videobridge holds JVB settings.
type Videobridge struct {
	UDPPort     int
	StunServers []string // host:port; default: own coturn when TURN is on
	Websockets  bool
	Nickname    string // MUC_NICKNAME; defaults to the host name
	Brewery     string // JvbBrewery
	// HealthURL is the private REST health endpoint.
	HealthURL string
}

// JicofoSettings holds jicofo-only knobs.
type JicofoSettings struct {
	MaxAudioSenders int
	MaxVideoSenders int
	HealthURL       string
}

// TURN holds coturn settings.
type TURN struct {
	Enabled bool
	Secret  Secret
	Host    string // DNS name clients use; defaults to Domain
	// HostSet: turn.host is in the spec (else Host is derived from the
	// coturn hosts, and a fleet's live view may list several).
	HostSet  bool
	Port     int // 3478 udp
	TLSPort  int // 5349 tcp
	Realm    string
	RelayMin int
	RelayMax int
	TTL      time.Duration
	// DeniedPeerPrivate keeps the denied-peer-ip list for private ranges.
	DeniedPeerPrivate bool
}

// TLS holds certificate paths and optional ACME settings.
type TLS struct {
	Certificate string
	Key         string
	// ShardCA is the CA file the front (HAProxy) verifies each shard's
	// nginx certificate with; FrontSystemCA (the default) is the system's
	// trust store.
	ShardCA string
	ACME    *ACME
}

// FrontSystemCA is HAProxy's name for the system's trust store.
const FrontSystemCA = "@system-ca"

// ACME configures Let's Encrypt (or another ACME CA).
type ACME struct {
	Email        string
	DirectoryURL string
	Staging      bool
	ExtraNames   []string
	RSA          bool          // also obtain an RSA certificate
	RenewBefore  time.Duration // 0 = autocert default (a third of the lifetime)
	Listen       string        // loopback listener nginx proxies the challenge to
}

// Web holds nginx/config.js settings.
type Web struct {
	HTTPPort  int
	HTTPSPort int
	Root      string // /usr/share/jitsi-meet
	// Redirect HTTP to HTTPS (and serve ACME challenges on port 80).
	HTTPRedirect bool
}

// ProsodyListeners are the ports Prosody listens on. 0 turns a listener
// off; s2s and Prosody's own HTTPS are off unless the spec sets them (nginx
// terminates TLS, and Jitsi federates only for visitors).
type ProsodyListeners struct {
	C2SPort   int // jicofo, jvb (and clients without BOSH) log in; default 5222
	HTTPPort  int // BOSH and XMPP websocket on loopback, proxied by nginx; default 5280
	S2SPort   int // server-to-server; 0 = off
	HTTPSPort int // Prosody's own HTTPS; 0 = off
}

// Service is the systemd side of one component.
type Service struct {
	Component string
	Unit      string
	Enabled   bool
	Restart   string // immediate | defer
	HealthURL string
	// Drift overrides the global drift policy for this component's files.
	Drift string
}

// Template is a user-defined output.
type Template struct {
	Name   string
	Source string // resolved path of the template source
	// SourceText is the source as the spec's loader read it (through
	// Options.ReadFile): rendering uses it, so a fleet generation's
	// template travels with the generation instead of being read from
	// the host's disk.
	SourceText  []byte
	Destination string
	Mode        uint32
	Owner       string
	Group       string
	Notify      []string
	Check       string // command run against the staged file; {{.Path}} expands
	Drift       string
	Range       hcl.Range
	// ReadsSecret is true when the source refers to .AppSecret: the output
	// then defaults to mode 0640 and may not be world-readable.
	ReadsSecret bool
}

// Extra holds verbatim text that the built-in templates append, one field
// per file: Prosody (Lua, after the last section: reopen a section with
// VirtualHost/Component), Jicofo and JVB (HOCON; later keys win),
// SipCommunicator (properties), ConfigJS (JavaScript statements after
// `var config`), Nginx (http context, after the server blocks), NginxServer
// (inside the HTTPS server block, after its locations) and Coturn (lines).
// Each ends with a newline when non-empty.
type Extra struct {
	Prosody, Jicofo, JVB, SipCommunicator, ConfigJS, Nginx, NginxServer, Coturn, Jibri string
	// ProsodyModules maps a Prosody section (VirtualHost or Component
	// name) to modules appended to the modules_enabled the template writes
	// for it (setting modules_enabled again in Prosody text would replace
	// the list and draw a "Duplicate option" warning).
	ProsodyModules map[string][]string
}

// Watch configures the daemon.
type Watch struct {
	Quiet  time.Duration
	Max    time.Duration
	Rescan time.Duration
}

// Metrics configures the loopback observability listener.
type Metrics struct {
	Listen string // "" = off
}

// TokenAPI configures the join endpoint.
type TokenAPI struct {
	Listen  string
	TLSCert string
	TLSKey  string
	Keys    []APIKey
	RateRPS float64
	Burst   int
	MaxBody int64
	// RoomPrefix/Unguessable control sanitize(): stream ids become rooms.
	Unguessable bool
	// Profiles are the meeting types a join request may name ("profile").
	Profiles []TokenProfile
}

// Moderator rules of a token profile.
const (
	// ProfileModeratorRequest: is_host decides (keys with grant_hosts only).
	ProfileModeratorRequest = "request"
	// ProfileModeratorAlways: every token of the profile is a moderator's
	// (keys with grant_hosts only).
	ProfileModeratorAlways = "always"
	// ProfileModeratorNever: no moderators; is_host is refused.
	ProfileModeratorNever = "never"
)

// MaxTokenLifetime bounds token lifetimes (a leaked token should not live
// for months).
const MaxTokenLifetime = 30 * 24 * time.Hour

// JitsiFeatures are the context.features keys the Jitsi client and Prosody
// know (the client's MEET_FEATURES plus name-readonly).
var JitsiFeatures = []string{"branding", "calendar", "create-polls", "file-upload", "flip", "inbound-call",
	"livestreaming", "live-translation", "lobby", "moderation", "outbound-call", "recording", "room",
	"screen-sharing", "send-groupchat", "list-visitors", "sip-inbound-call", "sip-outbound-call",
	"transcription", "name-readonly"}

// TokenProfile is one meeting type: its tokens' lifetime, who is a
// moderator, and context.features (nil: Jitsi's moderator-based defaults).
type TokenProfile struct {
	Name      string
	Lifetime  time.Duration // 0: auth.jwt token_lifetime
	Moderator string
	Features  map[string]bool
}

// FirewallBuiltinPorts lists the built-in port names.
// A firewall "port" block with one of these labels restricts or closes the
// port of that name in the port model (ports.Binding.Name).
var FirewallBuiltinPorts = []string{ports.NameHTTP, ports.NameHTTPS, ports.NameJVB, ports.NameTURN, ports.NameTURNS,
	ports.NameTURNRelay, ports.NameXMPP, ports.NameS2S, ports.NameTokenAPI, ports.NameColibriWS}

// Firewall configures the agent's nftables table.
type Firewall struct {
	Enabled bool
	// SSHPort is always allowed (default 22).
	SSHPort    int
	SSHSources []netip.Prefix
	// Ports are the firewall's "port" blocks: extra ports, or restrictions
	// of built-in ones (Builtin set).
	Ports []FirewallPort
}

// FirewallPort is one "port" block.
type FirewallPort struct {
	Name     string
	Builtin  bool
	Port     int // extra ports only
	ToPort   int // last port of a range (0 = one port)
	Protocol string
	Sources  []netip.Prefix // empty = anywhere
	Reason   string
	// Open is false to close a built-in port.
	Open  bool
	Range hcl.Range
}

// FirewallPort returns the port block named name, if any.
func (f Firewall) Port(name string) (FirewallPort, bool) {
	for _, p := range f.Ports {
		if p.Name == name {
			return p, true
		}
	}
	return FirewallPort{}, false
}

// APIKey is a bearer key for the join endpoint.
type APIKey struct {
	Name       string
	Key        Secret
	GrantHosts bool
}

// Secrets are the internal secrets generated once and kept in the state dir,
// plus the user-supplied ones, for redaction.
type Secrets struct {
	TURNSecret Secret
	// Passwords are the built-in XMPP accounts' passwords by account name
	// (one per row of files.Accounts: focus, jvb, jibri, recorder).
	Passwords map[string]Secret
}

// Password is the password of the built-in account name (zero when not
// loaded).
func (s Secrets) Password(name string) Secret { return s.Passwords[name] }

// SetPassword sets the password of the built-in account name.
func (s *Secrets) SetPassword(name string, v Secret) {
	if s.Passwords == nil {
		s.Passwords = map[string]Secret{}
	}
	s.Passwords[name] = v
}

// Filled returns a copy of s in which every empty generated secret (the
// TURN secret and every account's password) is fill()'s value.
func (s Secrets) Filled(fill func() Secret) Secrets {
	out := Secrets{TURNSecret: s.TURNSecret, Passwords: maps.Clone(s.Passwords)}
	if out.TURNSecret.IsZero() {
		out.TURNSecret = fill()
	}
	for _, a := range files.Accounts() {
		if out.Password(a.Name).IsZero() {
			out.SetPassword(a.Name, fill())
		}
	}
	return out
}

// SecretValues returns every non-empty secret value in the deployment, for redaction.
func (d *Deployment) SecretValues() []string {
	var out []string
	add := func(s Secret) {
		if !s.IsZero() {
			out = append(out, s.Reveal())
		}
	}
	if d.Auth.JWT != nil {
		add(d.Auth.JWT.AppSecret)
	}
	add(d.TURN.Secret)
	add(d.ClusterSecret)
	add(d.Secrets.TURNSecret)
	for _, a := range files.Accounts() {
		add(d.Secrets.Password(a.Name))
	}
	if d.TokenAPI != nil {
		for _, k := range d.TokenAPI.Keys {
			add(k.Key)
		}
	}
	return out
}

// Derived names used across components. Keeping them in one place is what
// keeps Prosody, Jicofo, JVB and config.js in agreement.

// AuthDomain is the internal login domain of focus and jvb.
func (d *Deployment) AuthDomain() string { return "auth." + d.Domain }

// MUCDomain is the conference MUC component.
func (d *Deployment) MUCDomain() string { return "conference." + d.Domain }

// InternalMUCDomain hosts the breweries.
func (d *Deployment) InternalMUCDomain() string { return "internal.auth." + d.Domain }

// GuestDomain is the anonymous guest vhost.
func (d *Deployment) GuestDomain() string { return "guest." + d.Domain }

// AccountHost is the domain of a built-in account (files.Accounts).
func (d *Deployment) AccountHost(h files.AccountHost) string {
	if h == files.RecorderDomain {
		return d.Meeting.Recording.RecorderDomain
	}
	return d.AuthDomain()
}

// FocusJID is jicofo's account.
func (d *Deployment) FocusJID() string { return "focus@" + d.AuthDomain() }

// JVBJID is the videobridge's account.
func (d *Deployment) JVBJID() string { return "jvb@" + d.AuthDomain() }

// JVBBreweryJID is the bridge brewery room.
func (d *Deployment) JVBBreweryJID() string {
	return d.Videobridge.Brewery + "@" + d.InternalMUCDomain()
}

// ServerURL is the public HTTPS URL of the deployment.
func (d *Deployment) ServerURL() string {
	if d.Web.HTTPSPort != 0 && d.Web.HTTPSPort != 443 {
		return "https://" + d.Domain + ":" + strconv.Itoa(d.Web.HTTPSPort)
	}
	return "https://" + d.Domain
}
