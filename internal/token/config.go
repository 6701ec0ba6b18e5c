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
