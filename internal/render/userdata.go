package render

import (
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// TemplateData is the value "." of a user template (a `template "name" {}`
// block in the spec). It is a stable, documented view of the deployment for
// files the app team's own software reads, such as a backend .env or a
// Flutter jitsi_config.dart. Fields are plain values; the only secret in it
// is AppSecret, revealed on purpose, so any output that uses it is treated
// as sensitive (its diffs are redacted).
//
// Every template also has these functions, which turn a value into a literal
// that cannot break out of its string: lua, lualist, hocon, hoconlist,
// js/json (JSON literal, also valid JavaScript), nginx (double-quoted nginx
// string; refuses "$"), line (a value for a key=value line; refuses
// newlines), shell (POSIX single-quoted word), dart (Dart string literal,
// "$" escaped), and join (strings.Join). Templates run with
// missingkey=error: a misspelt field fails the render with the template's
// name and line.
//
// Example (.env for the backend):
//
//	JITSI_APP_ID={{ .AppID }}
//	JITSI_APP_SECRET={{ shell .AppSecret }}
//	JITSI_SERVER_URL={{ .ServerURL }}
//	JITSI_JWT_EXPIRATION={{ .JWTLifetimeSeconds }}
type TemplateData struct {
	// Name is the template block's label.
	Name string
	// Domain is the public host name and XMPP domain, e.g. "meet.example.com".
	Domain string
	// ServerURL is the public HTTPS URL, e.g. "https://meet.example.com"
	// (with ":port" when web.https_port is not 443).
	ServerURL string
	// Tenants is true when https://DOMAIN/<tenant>/<room> URLs are enabled.
	Tenants bool

	// AuthMode is "jwt", "anonymous" or "internal".
	AuthMode string
	// Moderators is "token", "wait-for-host" or "first-joiner".
	Moderators string
	// GuestDomain is "guest.DOMAIN" when guests are enabled, else "".
	GuestDomain string

	// AppID is the JWT app id (the iss claim); "" unless AuthMode is jwt.
	AppID string
	// AppSecret is the JWT signing secret, revealed; "" unless AuthMode is jwt.
	AppSecret string
	// Algorithm is the JWT algorithm, e.g. "HS256".
	Algorithm string
	// Issuers and Audiences are the accepted iss and aud values.
	Issuers   []string
	Audiences []string
	// JWTLifetimeSeconds is the token lifetime in seconds (7200 by default).
	JWTLifetimeSeconds int
	// DomainVerification: the token's sub must be Domain (or the tenant).
	DomainVerification bool

	// MUCDomain is "conference.DOMAIN", where room JIDs live.
	MUCDomain string

	// TURNEnabled tells whether coturn is part of the deployment; TURNHost,
	// TURNPort (UDP/TCP STUN/TURN) and TURNTLSPort (TURN over TLS) are the
	// addresses clients use. TURNRealm is coturn's realm.
	TURNEnabled bool
	TURNHost    string
	TURNPort    int
	TURNTLSPort int
	TURNRealm   string

	// VideobridgeUDPPort is the media port (10000 by default).
	VideobridgeUDPPort int
	// HTTPPort and HTTPSPort are nginx's ports.
	HTTPPort, HTTPSPort int

	// Host is the name of the host this render is for; PublicIPs its
	// announced addresses.
	Host      string
	PublicIPs []string

	// Meeting features, as in the spec's meeting block.
	StartAudioMuted, StartVideoMuted bool
	Lobby, Chat, ScreenSharing       bool
	BreakoutRooms, Polls, Reactions  bool
	Prejoin, RequireDisplayName, P2P bool
	ForceMute                        bool
	MaxParticipants                  int
	Recording, Livestreaming         bool

	budget *budget // execution limits (see limits.go); not visible to templates
}

func newTemplateData(d *spec.Deployment, name string) TemplateData {
	td := TemplateData{
		Name:               name,
		Domain:             d.Domain,
		ServerURL:          d.ServerURL(),
		Tenants:            d.Tenants,
		AuthMode:           d.Auth.Mode,
		Moderators:         d.Auth.Moderators,
		MUCDomain:          d.MUCDomain(),
		TURNEnabled:        d.TURN.Enabled,
		TURNHost:           d.TURN.Host,
		TURNPort:           d.TURN.Port,
		TURNTLSPort:        d.TURN.TLSPort,
		TURNRealm:          d.TURN.Realm,
		VideobridgeUDPPort: d.Videobridge.UDPPort,
		HTTPPort:           d.Web.HTTPPort,
		HTTPSPort:          d.Web.HTTPSPort,
		Host:               d.Host.Name,
		PublicIPs:          append([]string(nil), d.Host.PublicIPs...),
		StartAudioMuted:    d.Meeting.StartAudioMuted,
		StartVideoMuted:    d.Meeting.StartVideoMuted,
		Lobby:              d.Meeting.Lobby,
		Chat:               d.Meeting.Chat,
		ScreenSharing:      d.Meeting.ScreenSharing,
		BreakoutRooms:      d.Meeting.BreakoutRooms,
		Polls:              d.Meeting.Polls,
		Reactions:          d.Meeting.Reactions,
		Prejoin:            d.Meeting.Prejoin,
		RequireDisplayName: d.Meeting.RequireDisplayName,
		P2P:                d.Meeting.P2P,
		ForceMute:          d.Meeting.ForceMute,
		MaxParticipants:    d.Meeting.MaxParticipants,
		Recording:          d.Meeting.Recording.Enabled,
		Livestreaming:      d.Meeting.Recording.Livestreaming,
	}
	if d.Auth.Guests {
		td.GuestDomain = d.GuestDomain()
	}
	if j := d.Auth.JWT; j != nil && d.Auth.Mode == spec.AuthJWT {
		td.AppID = j.AppID
		td.AppSecret = j.AppSecret.Reveal()
		td.Algorithm = j.Algorithm
		td.Issuers = append([]string(nil), j.Issuers...)
		td.Audiences = append([]string(nil), j.Audiences...)
		td.JWTLifetimeSeconds = int(j.Lifetime.Seconds())
		td.DomainVerification = j.DomainVerification
	}
	return td
}
