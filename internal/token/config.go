// Package token mints and verifies Jitsi JWTs exactly as Prosody's token
// authentication judges them (jitsi-meet luajwtjitsi.lib.lua, token/util.lib.lua,
// mod_auth_token and mod_token_verification).
//
// Only the HMAC algorithms (HS256, HS384, HS512 with app_secret) are supported;
// they are what the spec configures. Every rejection carries the reason string
// Prosody logs, so an operator can grep the Prosody log for it, plus a fix.
package token

import (
	"errors"
	"fmt"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// DefaultLifetime is the token lifetime when the spec sets none (the app
// team's JITSI_JWT_EXPIRATION=7200).
const DefaultLifetime = 2 * time.Hour

// NotBeforeSkew is how far nbf is backdated, so that a Prosody host whose
// clock is slightly behind the issuer still accepts a fresh token (Prosody
// has no leeway).
const NotBeforeSkew = 10 * time.Second

// Size limits. A token travels in URLs: the meeting link (/<room>?jwt=) and
// the XMPP connection (/xmpp-websocket?room=..&token=.., /http-bind), through
// nginx to Prosody. Prosody 0.12's HTTP parser waits for the end of the
// request head within its first 10 KiB (net/http/parser.lua head_size_limit,
// not configurable): a longer head is never answered. The rendered nginx
// refuses request lines above the same size (large_client_header_buffers,
// 414) instead of passing them on to hang.
const (
	// ProsodyHeadLimit is Prosody's request head limit in bytes.
	ProsodyHeadLimit = 10 << 10
	// MaxTokenBytes is the largest token mint makes and verify accepts:
	// what is left of ProsodyHeadLimit after the request line's other parts
	// (method, path, prefix, a 1023-byte room node percent-encoded again:
	// up to ~1.7 KiB) and ~2 KiB of browser headers (User-Agent, Origin,
	// Sec-WebSocket-*, Accept-*, Cookie).
	MaxTokenBytes = 6 << 10
	// Bounds of user fields (bytes).
	MaxUserID     = 256
	MaxUserName   = 256
	MaxUserEmail  = 254
	MaxUserAvatar = 2048
)

// CheckSize refuses a token too large to reach Prosody through the rendered
// nginx (see MaxTokenBytes).
func CheckSize(tok string) error {
	if len(tok) > MaxTokenBytes {
		return fmt.Errorf("the token is %d bytes; at most %d bytes reach Prosody in a URL (Prosody answers no request whose head exceeds %d bytes, and nginx refuses longer request lines with 414): shorten context.user (name, avatar) and drop unneeded claims",
			len(tok), MaxTokenBytes, ProsodyHeadLimit)
	}
	return nil
}

// Config is what minting and verifying need. Build it with FromDeployment or
// by hand in tests.
type Config struct {
	// Domain is the XMPP domain (sub for non-tenant rooms).
	Domain string
	// Tenants allows https://DOMAIN/<tenant>/<room> rooms.
	Tenants bool
	// AppID is app_id: the iss of minted tokens.
	AppID string
	// Secret is app_secret, the HMAC key.
	Secret spec.Secret
	// Algorithm is HS256 (default), HS384 or HS512.
	Algorithm string
	// Issuers are asap_accepted_issuers (empty: only AppID). "*" accepts any.
	Issuers []string
	// Audiences are asap_accepted_audiences (empty: any, Prosody's default {"*"}).
	Audiences []string
	// Lifetime is the default token lifetime (0: DefaultLifetime).
	Lifetime time.Duration
	// DomainVerification is enable_domain_verification: sub must name the
	// domain (or the tenant) of the room.
	DomainVerification bool
	// AllowRoomless is asap_require_room_claim = false.
	AllowRoomless bool
	// Now is the clock (nil: time.Now). Prosody works in whole seconds.
	Now func() time.Time
}

// FromDeployment builds the token configuration from a validated deployment.
// It fails when the deployment does not use JWT authentication.
func FromDeployment(d *spec.Deployment) (Config, error) {
	if d == nil {
		return Config{}, errors.New("token: no deployment")
	}
	j := d.Auth.JWT
	if d.Auth.Mode != spec.AuthJWT || j == nil {
		return Config{}, fmt.Errorf("token: the spec uses %q authentication; tokens need auth \"jwt\"", d.Auth.Mode)
	}
	return Config{
		Domain:             d.Domain,
		Tenants:            d.Tenants,
		AppID:              j.AppID,
		Secret:             j.AppSecret,
		Algorithm:          j.Algorithm,
		Issuers:            append([]string(nil), j.Issuers...),
		Audiences:          append([]string(nil), j.Audiences...),
		Lifetime:           j.Lifetime,
		DomainVerification: j.DomainVerification,
	}, nil
}
