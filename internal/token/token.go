package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jitsi-agent/jitsi-agent/internal/luapattern"
	"github.com/jitsi-agent/jitsi-agent/internal/room"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Tokens mints and verifies tokens for one configuration. It is safe for
// concurrent use.
type Tokens struct {
	cfg       Config
	alg       string
	headerB64 string // base64url of the fixed header minted tokens carry
	macs      sync.Pool
	issuer    string
	audience  string
	issuers   []string
	audiences []string
}

// New checks the configuration and prepares the signer.
func New(cfg Config) (*Tokens, error) {
	if cfg.Algorithm == "" {
		cfg.Algorithm = "HS256"
	}
	var h func() hash.Hash
	switch cfg.Algorithm {
	case "HS256":
		h = sha256.New
	case "HS384":
		h = sha512.New384
	case "HS512":
		h = sha512.New
	default:
		return nil, fmt.Errorf("token: algorithm %q is not supported: use HS256, HS384 or HS512", cfg.Algorithm)
	}
	if cfg.AppID == "" {
		return nil, errors.New("token: app_id is empty")
	}
	if cfg.Secret.IsZero() {
		return nil, errors.New("token: app_secret is empty")
	}
	if cfg.Domain == "" {
		return nil, errors.New("token: domain is empty")
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	key := []byte(cfg.Secret.Reveal())
	t := &Tokens{cfg: cfg, alg: cfg.Algorithm}
	t.macs.New = func() any { return hmac.New(h, key) }
	t.headerB64 = b64(`{"alg":"` + cfg.Algorithm + `","typ":"JWT"}`)

	t.issuers = cfg.Issuers
	if len(t.issuers) == 0 {
		t.issuers = []string{cfg.AppID}
	}
	t.audiences = cfg.Audiences
	if len(t.audiences) == 0 {
		t.audiences = []string{"*"}
	}
	// iss: the app id when it is accepted, else the first concrete issuer.
	t.issuer = cfg.AppID
	if !slices.Contains(t.issuers, cfg.AppID) && !slices.Contains(t.issuers, "*") {
		t.issuer = firstConcrete(t.issuers, cfg.AppID)
	}
	// aud: the first configured audience (a string, never an array).
	t.audience = firstConcrete(t.audiences, cfg.AppID)
	return t, nil
}

func firstConcrete(list []string, def string) string {
	for _, v := range list {
		if v != "*" && v != "" {
			return v
		}
	}
	return def
}

// Config returns the effective configuration (defaults applied). Its Secret
// never prints itself.
func (t *Tokens) Config() Config { return t.cfg }

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func (t *Tokens) sign(input []byte, dst []byte) []byte {
	m := t.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(input)
	dst = m.Sum(dst)
	t.macs.Put(m)
	return dst
}

// User is context.user: what Jitsi shows and how it assigns roles.
type User struct {
	ID     string `json:"id,omitempty"`
	Name   string `json:"name,omitempty"`
	Email  string `json:"email,omitempty"`
	Avatar string `json:"avatar,omitempty"`
	// Moderator is read by mod_token_affiliation (the top-level "moderator"
	// of the app team's draft payload is ignored by Jitsi).
	Moderator bool `json:"moderator"`
}

// MintRequest describes one token.
type MintRequest struct {
	// Room is the room name as in the meeting URL ("Weekly Sync" or
	// "weekly-sync"), or "*" for every room.
	Room string
	// RoomPattern, when set instead of Room, is a Lua pattern the room
	// node must match entirely (Prosody compares the match with the room);
	// the token gets context.room.regex = true. It needs domain
	// verification (Prosody ignores the flag without it).
	RoomPattern string
	// Tenant is the tenant of https://DOMAIN/<tenant>/<room> ("" = none).
	Tenant string
	User   User
	// Features becomes context.features. When present it replaces Jitsi's
	// moderator-based defaults, so list every feature the user should have.
	Features map[string]bool
	// TTL overrides the configured lifetime (0 = configured).
	TTL time.Duration
	// Service mints the agent's own short token for asking Prosody (room
	// status through mod_muc_size): only the claims Prosody's verification
	// reads (aud, iss, sub, room, exp), no iat, nbf or context; User and
	// Features must be empty. Prosody decodes a token with pure-Lua base64,
	// so a shorter token is a faster request.
	Service bool
}

type mintContext struct {
	User     User            `json:"user"`
	Features map[string]bool `json:"features,omitempty"`
	Room     *mintRoom       `json:"room,omitempty"`
}

type mintRoom struct {
	Regex bool `json:"regex"`
}

type mintPayload struct {
	Aud     string       `json:"aud"`
	Iss     string       `json:"iss"`
	Sub     string       `json:"sub"`
	Room    string       `json:"room"`
	Iat     int64        `json:"iat,omitempty"`
	Nbf     int64        `json:"nbf,omitempty"`
	Exp     int64        `json:"exp"`
	Context *mintContext `json:"context,omitempty"`
}

// MaxTTL bounds --ttl: a leaked token should not live for months.
const MaxTTL = spec.MaxTokenLifetime

// RoomClaim returns the room claim for a room name ("*" stays "*"): the
// lower-case percent-encoded node Prosody compares. It validates the name.
func RoomClaim(name string) (string, error) {
	if name == room.Wildcard {
		return name, nil
	}
	if err := room.Validate(name); err != nil {
		return "", err
	}
	return room.Node(name), nil
}

// Mint signs a token for the request. Errors never contain the secret.
func (t *Tokens) Mint(r MintRequest) (string, error) {
	var claim string
	var roomCtx *mintRoom
	if r.RoomPattern != "" {
		if r.Room != "" {
			return "", errors.New("mint: give a room or a room pattern, not both")
		}
		if err := t.checkRoomPattern(r.RoomPattern); err != nil {
			return "", fmt.Errorf("mint: %w", err)
		}
		claim, roomCtx = r.RoomPattern, &mintRoom{Regex: true}
	} else {
		c, err := RoomClaim(r.Room)
		if err != nil {
			return "", fmt.Errorf("mint: %w", err)
		}
		claim = c
	}
	sub := t.cfg.Domain
	if r.Tenant != "" {
		if !t.cfg.Tenants {
			return "", fmt.Errorf("mint: tenant %q given but the spec does not enable tenants", r.Tenant)
		}
		if err := room.ValidateTenant(r.Tenant); err != nil {
			return "", fmt.Errorf("mint: %w", err)
		}
		sub = r.Tenant
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"id", r.User.ID, MaxUserID}, {"name", r.User.Name, MaxUserName}, {"email", r.User.Email, MaxUserEmail}, {"avatar", r.User.Avatar, MaxUserAvatar}} {
		if len(f.v) > f.max {
			return "", fmt.Errorf("mint: context.user.%s is %d bytes; the limit is %d (a token must fit in a URL: at most %d bytes reach Prosody)", f.name, len(f.v), f.max, MaxTokenBytes)
		}
		if !utf8.ValidString(f.v) {
			return "", fmt.Errorf("mint: context.user.%s is not valid UTF-8", f.name)
		}
	}
	ttl := r.TTL
	if ttl == 0 {
		ttl = t.cfg.Lifetime
	}
	if ttl < time.Second || ttl > MaxTTL {
		return "", fmt.Errorf("mint: lifetime %s is out of range: use 1s to %s", ttl, MaxTTL)
	}
	now := t.cfg.Now().Unix()
	p := mintPayload{
		Aud:  t.audience,
		Iss:  t.issuer,
		Sub:  sub,
		Room: claim,
		Exp:  now + int64(ttl/time.Second),
	}
	if r.Service {
		if r.User != (User{}) || r.Features != nil || roomCtx != nil {
			return "", errors.New("mint: a service token carries no user, features or room pattern")
		}
	} else {
		p.Iat = now
		p.Nbf = now - int64(NotBeforeSkew/time.Second)
		p.Context = &mintContext{User: r.User, Features: r.Features, Room: roomCtx}
	}
	body, err := json.Marshal(&p)
	if err != nil {
		return "", fmt.Errorf("mint: encode claims: %w", err)
	}
	enc := base64.RawURLEncoding
	hdr := t.headerB64
	buf := make([]byte, 0, len(hdr)+1+enc.EncodedLen(len(body))+1+enc.EncodedLen(64))
	buf = append(buf, hdr...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, body)
	var sig [64]byte
	s := t.sign(buf, sig[:0])
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, s)
	if err := CheckSize(string(buf)); err != nil {
		return "", fmt.Errorf("mint: %w", err)
	}
	return string(buf), nil
}

// MaxRoomPattern bounds a room pattern's length (Prosody's room nodes are
// at most 1023 bytes; a pattern needs far less).
const MaxRoomPattern = 256

// checkRoomPattern refuses patterns Prosody would not use as meant: without
// domain verification the flag is ignored, string.lower runs over the
// pattern first (so %W would become %w), and malformed patterns make every
// join fail with "Room claim is not a valid Lua pattern".
func (t *Tokens) checkRoomPattern(p string) error {
	if !t.cfg.DomainVerification {
		return errors.New("room pattern: Prosody reads context.room.regex only with domain verification (auth.jwt.domain_verification = true); without it the pattern is compared as a literal room name")
	}
	if len(p) > MaxRoomPattern {
		return fmt.Errorf("room pattern is %d bytes; the limit is %d", len(p), MaxRoomPattern)
	}
	if p == room.Wildcard {
		return errors.New(`room pattern "*": use the room "*" for every room (a pattern "*" matches a literal '*')`)
	}
	if asciiLower(p) != p {
		return fmt.Errorf("room pattern %q has upper-case letters: Prosody lower-cases the claim before matching (%%W would become %%w, %%U %%u); write it in lower case", p)
	}
	if err := luapattern.Check(p); err != nil {
		return fmt.Errorf("room pattern %q is not a valid Lua pattern: %v (see https://www.lua.org/manual/5.4/manual.html#6.4.1; it is not a Go or POSIX regular expression)", p, err)
	}
	return nil
}

// FeatureNames are the context.features keys the Jitsi client and Prosody
// know (the client's MEET_FEATURES plus name-readonly).
var FeatureNames = spec.JitsiFeatures

// ParseFeatures parses "screen-sharing=false,recording=true" (values
// true/false; a bare key means true). Unknown keys are an error with a hint.
func ParseFeatures(s string) (map[string]bool, error) {
	out := map[string]bool{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, hasV := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		val := true
		if hasV {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "true", "1", "yes", "on":
			case "false", "0", "no", "off":
				val = false
			default:
				return nil, fmt.Errorf("feature %q: value %q is not true or false", k, v)
			}
		}
		if !slices.Contains(FeatureNames, k) {
			names := slices.Clone(FeatureNames)
			sort.Strings(names)
			return nil, fmt.Errorf("unknown feature %q: Jitsi knows %s", k, strings.Join(names, ", "))
		}
		out[k] = val
	}
	return out, nil
}
