// Package joinapi serves the join endpoint the app team's backend calls:
//
//	POST /api/v1/live/streams/{stream_id}/join
//	Authorization: Bearer <api key>
//	{"identity": "user-1", "name": "Ada", "email": "ada@example.com", "is_host": false}
//
// answers
//
//	{"token": "<jwt>", "url": "https://meet.example.com", "room_name": "<room>",
//	 "meeting_url": "https://meet.example.com/<room>"}
//
// url is the server URL, as the app team's guide (§6) specifies: the mobile
// SDKs take it as serverURL, room_name as the room and token as the token.
// meeting_url is the full link; neither carries the token. A browser link is
// meeting_url + "?jwt=" + token.
//
// Errors are {"error": {"code": "...", "message": "..."}} with the stable codes
// listed in errors.go. Keys are compared in constant time; is_host is honoured
// only for keys with grant_hosts; each key has its own token-bucket rate
// limit; bodies are size-limited and decoded strictly. The access log never
// contains a token, an API key or the room name.
package joinapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/prosody"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/token"
)

// Defaults applied by New when the configuration leaves a field zero.
const (
	DefaultListen  = spec.DefaultTokenAPIListen
	DefaultMaxBody = 4 << 10 // 4 KiB: a join body is well under 1 KiB
	DefaultRate    = 50.0    // requests per second per key
)

// Key is one bearer API key.
type Key struct {
	Name string
	// Secret is the bearer value; it never prints itself.
	Secret spec.Secret
	// GrantHosts lets the key ask for is_host (moderator) tokens.
	GrantHosts bool
}

// Config is what the endpoint needs. Build it with FromDeployment.
type Config struct {
	// Listen is host:port (DefaultListen when empty). A non-loopback address
	// requires TLSCert and TLSKey.
	Listen  string
	TLSCert string
	TLSKey  string
	Keys    []Key
	// RateRPS and Burst are each key's token bucket (DefaultRate, and burst
	// = 2*rate when zero). A negative rate disables limiting.
	RateRPS float64
	Burst   int
	// MaxBody limits request bodies in bytes (DefaultMaxBody when zero).
	MaxBody int64
	// Unguessable makes room names unguessable from the stream id.
	Unguessable bool
	// RoomSecret keys the unguessable room-name suffix.
	RoomSecret []byte
	// ServerURL is the public meeting base URL (https://DOMAIN).
	ServerURL string
	// TTL is the lifetime of minted tokens (0: the token package's configured lifetime).
	TTL time.Duration
	// Profiles are the meeting types a join request may name.
	Profiles []spec.TokenProfile
	// Rooms reports and ends meetings; nil answers the status and end
	// endpoints with 503 meeting_service_unavailable.
	Rooms Rooms
	// Now is the clock for rate limiting (nil: time.Now).
	Now func() time.Time
}

// RoomSecretFrom derives the room-name key from the app secret, so that
// unguessable room names are stable across restarts without more state, and
// cannot be computed without the app secret.
func RoomSecretFrom(appSecret spec.Secret) []byte {
	m := hmac.New(sha256.New, []byte(appSecret.Reveal()))
	m.Write([]byte("jitsi-agent join-api room names v1"))
	return m.Sum(nil)
}

// FromDeployment builds the endpoint configuration from a deployment with a
// token_api block and JWT auth.
func FromDeployment(d *spec.Deployment) (Config, error) {
	if d == nil || d.TokenAPI == nil {
		return Config{}, errors.New("join api: the spec has no token_api block")
	}
	if d.Auth.JWT == nil || d.Auth.JWT.AppSecret.IsZero() {
		return Config{}, errors.New("join api: the spec does not use jwt auth with an app_secret")
	}
	a := d.TokenAPI
	keys := make([]Key, 0, len(a.Keys))
	for _, k := range a.Keys {
		keys = append(keys, Key{Name: k.Name, Secret: k.Key, GrantHosts: k.GrantHosts})
	}
	return Config{
		Listen:      a.Listen,
		TLSCert:     a.TLSCert,
		TLSKey:      a.TLSKey,
		Keys:        keys,
		RateRPS:     a.RateRPS,
		Burst:       a.Burst,
		MaxBody:     a.MaxBody,
		Unguessable: a.Unguessable,
		RoomSecret:  RoomSecretFrom(d.Auth.JWT.AppSecret),
		ServerURL:   d.ServerURL(),
		Profiles:    append([]spec.TokenProfile(nil), a.Profiles...),
	}, nil
}

// withDefaults fills zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.RateRPS == 0 {
		c.RateRPS = DefaultRate
	}
	if c.Burst <= 0 {
		c.Burst = max(1, int(2*c.RateRPS))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ServerURL == "" {
		return c, errors.New("join api: server URL is empty")
	}
	if len(c.Keys) == 0 {
		return c, errors.New("join api: no API keys: add at least one key to token_api")
	}
	seen := map[string]bool{}
	for i, k := range c.Keys {
		if k.Name == "" {
			return c, fmt.Errorf("join api: key %d has no name", i+1)
		}
		if seen[k.Name] {
			return c, fmt.Errorf("join api: key name %q is used twice", k.Name)
		}
		seen[k.Name] = true
		if n := len(k.Secret.Reveal()); n < 16 {
			return c, fmt.Errorf("join api: key %q is %d characters; use at least 16 random characters (e.g. openssl rand -hex 32)", k.Name, n)
		}
	}
	profiles := map[string]bool{}
	for _, p := range c.Profiles {
		if !validProfile(p.Name) || profiles[p.Name] {
			return c, fmt.Errorf("join api: profile name %q is invalid or used twice", p.Name)
		}
		profiles[p.Name] = true
		switch p.Moderator {
		case "", spec.ProfileModeratorRequest, spec.ProfileModeratorAlways, spec.ProfileModeratorNever:
		default:
			return c, fmt.Errorf("join api: profile %q: unknown moderator rule %q", p.Name, p.Moderator)
		}
		if p.Lifetime < 0 || p.Lifetime > spec.MaxTokenLifetime {
			return c, fmt.Errorf("join api: profile %q: lifetime %s out of range", p.Name, p.Lifetime)
		}
	}
	if c.Unguessable && len(c.RoomSecret) == 0 {
		return c, errors.New("join api: unguessable room names need a room secret")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, errors.New("join api: set both tls_cert and tls_key, or neither")
	}
	if c.TLSCert == "" {
		lb, err := loopback(c.Listen)
		if err != nil {
			return c, err
		}
		if !lb {
			return c, fmt.Errorf("join api: listen address %s is not loopback and no TLS is configured: tokens would cross the network in clear text; set tls_cert and tls_key, or listen on 127.0.0.1", c.Listen)
		}
	}
	return c, nil
}

// loopback reports whether host:port binds only loopback interfaces.
func loopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("join api: listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false, nil // a host name may resolve anywhere
	}
	return ip.IsLoopback(), nil
}

// ForDeployment builds the endpoint for a deployment with a token_api block:
// the signer from auth "jwt", the endpoint settings from token_api. The
// daemon calls it after each successful spec load and restarts the listener
// when the result's settings changed.
func ForDeployment(d *spec.Deployment, logger Logger) (*Server, error) {
	cfg, err := FromDeployment(d)
	if err != nil {
		return nil, err
	}
	tc, err := token.FromDeployment(d)
	if err != nil {
		return nil, fmt.Errorf("join api: %w", err)
	}
	tk, err := token.New(tc)
	if err != nil {
		return nil, fmt.Errorf("join api: %w", err)
	}
	cfg.Rooms = NewProsodyRooms(d, tk, prosody.System())
	return New(cfg, tk, logger)
}
