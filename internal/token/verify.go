package token

import (
	"bytes"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/room"
)

// Stages at which Prosody rejects a token.
const (
	// StageLogin: mod_auth_token, at BOSH/WebSocket login
	// ("Error verifying token err:not-allowed, reason:<Reason>").
	StageLogin = "login"
	// StageJoin: mod_token_verification, when the user joins the MUC room.
	StageJoin = "join"
)

// Prosody's reason strings.
const (
	ReasonInvalidToken     = "Invalid token"
	ReasonInvalidHeader    = "Invalid header"
	ReasonInvalidBody      = "Invalid body"
	ReasonInvalidTyp       = "Invalid typ"
	ReasonInvalidAlg       = "Invalid or incorrect alg"
	ReasonInvalidSignature = "Invalid signature"
	ReasonExpNotNumber     = "exp must be number"
	ReasonNbfNotNumber     = "nbf must be number"
	ReasonNbf              = "Not acceptable by nbf"
	ReasonIssMissing       = "'iss' claim is missing"
	ReasonIssInvalid       = "invalid 'iss' claim"
	ReasonAudMissing       = "'aud' claim is missing"
	ReasonAudInvalid       = "invalid 'aud' claim"
	ReasonAlgClaimEmpty    = "'alg' claim must not be empty"
	ReasonSubMissing       = "sub claim is missing"
	ReasonRoomMissing      = "room claim is missing"
	// ReasonMismatch is logged at the MUC join under domain verification.
	ReasonMismatch = "Room and token mismatched"
	// ReasonRoomMismatch is the join-time reason without domain verification.
	ReasonRoomMismatch = "Room does not match the room from token"
	// expired reasons start with this; Prosody appends "(N sec since expired...)".
	reasonExpPrefix = "Not acceptable by exp"
)

// Rejection is why Prosody would refuse a token.
type Rejection struct {
	Stage string // StageLogin or StageJoin
	// Reason is the exact string Prosody logs.
	Reason string
	// Fix tells the token issuer what to change.
	Fix string
}

func (r *Rejection) Error() string { return r.Reason }

// Expired reports whether the rejection is an expired token.
func (r *Rejection) Expired() bool { return strings.HasPrefix(r.Reason, reasonExpPrefix) }

// Target is the meeting a token is checked against.
type Target struct {
	// Room is the room name as in the meeting URL (any form; it is turned
	// into the node Prosody compares).
	Room string
	// Tenant of https://DOMAIN/<tenant>/<room>, "" for none.
	Tenant string
}

// Claims is a verified token's content.
type Claims struct {
	Alg string
	// JSON is the decoded payload text.
	JSON []byte
	obj  *object
}

// Claim returns a top-level claim as raw JSON (nil when absent).
func (c *Claims) Claim(name string) json.RawMessage { return c.obj.get(name) }

// Str returns a string claim ("" when absent or not a string).
func (c *Claims) Str(name string) string {
	s, _ := jsonString(c.obj.get(name))
	return s
}

// Payload decodes the whole payload.
func (c *Claims) Payload() map[string]any {
	var out map[string]any
	_ = json.Unmarshal(c.JSON, &out) // validated when the token was verified
	return out
}

// jsonKind is the first byte of a JSON value: '"', '[', '{', 'n', 't',
// 'f', or '0' for numbers; 0 when absent.
func jsonKind(v json.RawMessage) byte {
	if len(v) == 0 {
		return 0
	}
	switch c := v[0]; c {
	case '"', '[', '{', 'n', 't', 'f':
		return c
	}
	return '0'
}

func jsonString(v json.RawMessage) (string, bool) {
	if jsonKind(v) != '"' {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 && len(v) >= 2 {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

func jsonNumber(v json.RawMessage) (float64, bool) {
	if jsonKind(v) != '0' {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) { // out of range is +-Inf, as for Lua's strtod
		return 0, false
	}
	return f, true
}

// splitToken splits like luajwtjitsi's gmatch("[^\\.]+"): the separators are
// '.' and '\', and empty segments are skipped.
func splitToken(tok string) (segs [3]string, signed string, ok bool) {
	n := 0
	start := -1
	for i := 0; i <= len(tok); i++ {
		if i == len(tok) || tok[i] == '.' || tok[i] == '\\' {
			if start >= 0 {
				if n == 3 {
					return segs, "", false
				}
				segs[n] = tok[start:i]
				n++
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if n != 3 {
		return segs, "", false
	}
	return segs, segs[0] + "." + segs[1], true
}

// fromURL64 decodes like basexx.from_url64: '=' anywhere is ignored, any
// other character outside the URL-safe alphabet is an error, and left-over
// bits are dropped.
func fromURL64(s string) ([]byte, bool) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, false // Go's decoder skips line breaks; basexx does not
	}
	if strings.IndexByte(s, '=') >= 0 {
		s = strings.ReplaceAll(s, "=", "")
	}
	if len(s)%4 == 1 {
		if _, err := base64.RawURLEncoding.DecodeString(s[len(s)-1:] + "A"); err != nil {
			return nil, false
		}
		s = s[:len(s)-1]
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return b, err == nil
}

// luaNumber formats a float the way Lua 5.4's tostring does (lua-cjson
// decodes every JSON number to a float): "%.14g", plus ".0" when that
// looks like an integer.
func luaNumber(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	s := strconv.FormatFloat(f, 'g', 14, 64)
	if strings.Trim(s, "-0123456789") == "" {
		s += ".0"
	}
	return s
}

// present is Lua truthiness of a decoded JSON value as luajwtjitsi tests it:
// absent and false are "not set"; null (cjson.null) is set.
func present(v json.RawMessage) bool {
	k := jsonKind(v)
	return k != 0 && k != 'f'
}

func acceptedClaim(v json.RawMessage, accepted []string) bool {
	s, isStr := jsonString(v)
	for _, a := range accepted {
		if a == "*" || (isStr && s == a) {
			return true
		}
	}
	return false
}

// Verify checks tok in Prosody's order and returns its claims, or a
// *Rejection with Prosody's reason and a fix.
//
// The order is the one in luajwtjitsi's verify, which checks exp and nbf
// before iss and aud (so an expired token with a wrong issuer is reported
// as expired, as Prosody does).
//
// Login checks (luajwtjitsi verify + token/util): token shape, typ exactly
// "JWT", alg exactly the configured one, signature, exp and nbf types, exp
// (now >= exp rejects) and nbf (now < nbf rejects) without leeway, iss in
// the accepted issuers, aud present and accepted, sub present, room present.
// With a target, the join check follows (mod_token_verification): room claim
// against the room node and, under domain verification, sub against the
// domain or tenant.
func (t *Tokens) Verify(tok string, target *Target) (*Claims, error) {
	c, rej := t.verifyLogin(tok)
	if rej != nil {
		return nil, rej
	}
	if target != nil {
		if rej := t.verifyJoin(c, *target); rej != nil {
			return c, rej
		}
	}
	return c, nil
}

func (t *Tokens) reject(reason, fix string) *Rejection {
	return &Rejection{Stage: StageLogin, Reason: reason, Fix: fix}
}

func (t *Tokens) verifyLogin(tok string) (*Claims, *Rejection) {
	segs, signed, ok := splitToken(tok)
	if !ok {
		return nil, t.reject(ReasonInvalidToken, "pass a complete JWT: three non-empty base64url parts joined by '.'; an unsigned (alg none) token has no third part")
	}
	hraw, ok := fromURL64(segs[0])
	var h *object
	if ok {
		h, ok = parseObject(hraw)
	}
	if !ok {
		return nil, t.reject(ReasonInvalidHeader, "the header is not base64url-encoded JSON; use a JWT library to encode it")
	}
	praw, ok := fromURL64(segs[1])
	var p *object
	if ok {
		p, ok = parseObject(praw)
	}
	if !ok {
		return nil, t.reject(ReasonInvalidBody, "the payload is not a base64url-encoded JSON object")
	}
	sig, ok := fromURL64(segs[2])
	if !ok {
		return nil, t.reject(ReasonInvalidSignature, "the signature part is not base64url")
	}
	if typ, _ := jsonString(h.get("typ")); typ != "JWT" {
		return nil, t.reject(ReasonInvalidTyp, `set the header "typ" to exactly "JWT" (upper case)`)
	}
	if alg, _ := jsonString(h.get("alg")); alg != t.alg {
		return nil, t.reject(ReasonInvalidAlg, fmt.Sprintf("sign with %s, the algorithm the server is configured for (the header says %s)", t.alg, describe(h.get("alg"))))
	}
	var want [64]byte
	if !hmac.Equal(sig, t.sign([]byte(signed), want[:0])) {
		return nil, t.reject(ReasonInvalidSignature, "sign with the app_secret from the spec (the same value Prosody's app_secret has); check for a stale or truncated secret or trailing newline")
	}
	exp, expNum := jsonNumber(p.get("exp"))
	if present(p.get("exp")) && !expNum {
		return nil, t.reject(ReasonExpNotNumber, "write exp as a JSON number of seconds since the epoch, not a string")
	}
	nbf, nbfNum := jsonNumber(p.get("nbf"))
	if present(p.get("nbf")) && !nbfNum {
		return nil, t.reject(ReasonNbfNotNumber, "write nbf as a JSON number of seconds since the epoch, or leave it out")
	}
	now := float64(t.cfg.Now().Unix())
	if expNum && now >= exp {
		reason := reasonExpPrefix + " (" + luaNumber(now-exp) + " sec since expired"
		if iat, ok := jsonNumber(p.get("iat")); ok {
			reason += ", valid for:" + luaNumber(exp-iat) + " sec"
		}
		reason += ")"
		return nil, t.reject(reason, "mint a fresh token with a longer lifetime; if it was just minted, the issuer's clock is behind the Prosody host's: sync both with NTP (Prosody has no leeway)")
	}
	if nbfNum && now < nbf {
		return nil, t.reject(ReasonNbf, fmt.Sprintf("nbf is %s s in the future: the issuer's clock is ahead of the Prosody host's; sync with NTP, or backdate nbf a few seconds", luaNumber(nbf-now)))
	}
	iss := p.get("iss")
	if iss == nil {
		return nil, t.reject(ReasonIssMissing, fmt.Sprintf("set iss to %q (the app_id)", t.issuer))
	}
	if !acceptedClaim(iss, t.issuers) {
		return nil, t.reject(ReasonIssInvalid, fmt.Sprintf("set iss to %q (the app_id); the token says %s; accepted: %s", t.issuer, describe(iss), strings.Join(t.issuers, ", ")))
	}
	aud := p.get("aud")
	if aud == nil {
		return nil, t.reject(ReasonAudMissing, fmt.Sprintf("add \"aud\": %q", t.audience))
	}
	if !acceptedClaim(aud, t.audiences) {
		fix := fmt.Sprintf("set aud to the string %q; the token says %s; accepted: %s", t.audience, describe(aud), strings.Join(t.audiences, ", "))
		if jsonKind(aud) == '[' {
			fix = fmt.Sprintf("aud must be a single string, not an array: set \"aud\": %q (Prosody compares with ==)", t.audience)
		}
		return nil, t.reject(ReasonAudInvalid, fix)
	}
	if alg, ok := jsonString(p.get("alg")); ok && (alg == "none" || alg == "") {
		return nil, t.reject(ReasonAlgClaimEmpty, "remove the \"alg\" claim from the payload")
	}
	if p.get("sub") == nil {
		return nil, t.reject(ReasonSubMissing, fmt.Sprintf("add \"sub\": %q (the XMPP domain), the tenant name for tenant rooms, or \"*\"", t.cfg.Domain))
	}
	if p.get("room") == nil && !t.cfg.AllowRoomless {
		return nil, t.reject(ReasonRoomMissing, `add "room": the lower-case percent-encoded room name (jitsi-agent token mint computes it), or "*" for any room`)
	}
	alg, _ := jsonString(h.get("alg"))
	return &Claims{Alg: alg, JSON: praw, obj: p}, nil
}

func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

func describe(v json.RawMessage) string {
	switch jsonKind(v) {
	case 0:
		return "nothing"
	case 'n':
		return "null"
	case '"':
		s, _ := jsonString(v)
		return strconv.Quote(s)
	case '0':
		f, _ := jsonNumber(v)
		return luaNumber(f) + " (a number)"
	case 't', 'f':
		return string(v) + " (a boolean)"
	case '[':
		return "an array"
	}
	return "an object"
}

// verifyJoin is mod_token_verification's verify_room for the room URL
// https://DOMAIN/[tenant/]room.
func (t *Tokens) verifyJoin(c *Claims, tg Target) *Rejection {
	node := room.Node(tg.Room)
	tenant := asciiLower(tg.Tenant)
	roomClaim, roomIsStr := jsonString(c.obj.get("room"))
	hasRoom := c.obj.get("room") != nil
	wantRoom := node
	fixRoom := func() string {
		return fmt.Sprintf("set room to %q (the lower-case percent-encoded node of %q) or \"*\"", node, tg.Room)
	}

	if !t.cfg.DomainVerification {
		// Without a room claim (asap_require_room_claim = false) any room is fine.
		if !hasRoom || (roomIsStr && (roomClaim == room.Wildcard || asciiLower(roomClaim) == wantRoom)) {
			return nil
		}
		if tenant != "" && roomIsStr && asciiLower(roomClaim) == "["+tenant+"]"+node {
			return nil
		}
		return &Rejection{Stage: StageJoin, Reason: ReasonRoomMismatch, Fix: fixRoom() + fmt.Sprintf("; the token says %s", describe(c.obj.get("room")))}
	}

	sub, subIsStr := jsonString(c.obj.get("sub"))
	roomOK := roomIsStr && (roomClaim == room.Wildcard || asciiLower(roomClaim) == node)
	var subOK bool
	if tenant != "" {
		subOK = subIsStr && (sub == "*" || asciiLower(sub) == tenant)
	} else {
		subOK = subIsStr && (sub == "*" || asciiLower(sub) == t.cfg.Domain)
	}
	if roomOK && subOK {
		return nil
	}
	var fixes []string
	if !roomOK {
		fixes = append(fixes, fixRoom()+fmt.Sprintf(" (the token says %s)", describe(c.obj.get("room"))))
	}
	if !subOK {
		fixSub := fmt.Sprintf("set sub to the XMPP domain %q (not conference.%s, not the URL) or \"*\"", t.cfg.Domain, t.cfg.Domain)
		if tenant != "" {
			fixSub = fmt.Sprintf("set sub to the tenant %q or \"*\"", tenant)
		}
		fixes = append(fixes, fixSub+fmt.Sprintf(" (the token says %s)", describe(c.obj.get("sub"))))
	}
	return &Rejection{Stage: StageJoin, Reason: ReasonMismatch, Fix: strings.Join(fixes, "; ")}
}
