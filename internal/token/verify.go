package token

import (
	"crypto/hmac"
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/luapattern"
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
	ReasonSubMissing       = "sub claim is missing"
	ReasonRoomMissing      = "room claim is missing"
	// ReasonMismatch is logged at the MUC join under domain verification.
	ReasonMismatch = "Room and token mismatched"
	// ReasonRoomMismatch is the join-time reason without domain verification.
	ReasonRoomMismatch = "Room does not match the room from token"
	// ReasonInvalidPattern: a regex room claim (context.room.regex) that
	// string.match refuses.
	ReasonInvalidPattern = "Room claim is not a valid Lua pattern"
	// ReasonNoRoomMatch: a regex room claim that matches nothing in the room name.
	ReasonNoRoomMatch = "Room name cannot be matched to the one from token."
	// expired reasons start with this; Prosody appends "(N sec since expired...)".
	reasonExpPrefix = "Not acceptable by exp"
)

// Rejection is why Prosody would refuse a token.
type Rejection struct {
	Stage string // StageLogin or StageJoin
	// Reason is the exact string Prosody logs. For a token on which Jitsi's
	// code raises a Lua error (Crash), it is Lua's error message: Prosody
	// logs a traceback and the login or join never completes.
	Reason string
	// Fix tells the token issuer what to change.
	Fix   string
	Crash bool
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
	// Notes are things Prosody accepts that are probably not meant, e.g. a
	// room claim of false without domain verification (every room).
	Notes []string
	body  lvalue
}

// Str returns a string claim ("" when absent or not a string).
func (c *Claims) Str(name string) string {
	v := c.body.field(name)
	if v.t != lStr {
		return ""
	}
	return v.s
}

// Payload returns the payload as encoding/json would decode it (numbers
// float64, objects map[string]any).
func (c *Claims) Payload() map[string]any {
	m, _ := c.body.goValue().(map[string]any)
	return m
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
		if math.Signbit(f) {
			return "-nan"
		}
		return "nan"
	}
	s := strconv.FormatFloat(f, 'g', 14, 64)
	if strings.Trim(s, "-0123456789") == "" {
		s += ".0"
	}
	return s
}

// luaStr2Number is Lua 5.4's string-to-number coercion for arithmetic
// ("100" - 1): surrounding white space allowed, no inf or nan.
func luaStr2Number(s string) (float64, bool) {
	s = strings.Trim(s, " \f\n\r\t\v")
	if s == "" || strings.ContainsAny(s, "nN") {
		return 0, false
	}
	n, f := strtod([]byte(s))
	if n != len(s) {
		return 0, false
	}
	return f, true
}

func acceptedClaim(v lvalue, accepted []string) bool {
	for _, a := range accepted {
		if a == "*" || v.isStr(a) {
			return true
		}
	}
	return false
}

// Verify checks tok in Prosody's order and returns its claims, or a
// *Rejection with Prosody's reason and a fix.
//
// It follows jitsi-meet's luajwtjitsi verify, token/util's
// process_and_verify_token (login, mod_auth_token) and verify_room (MUC
// join, mod_token_verification) step by step, on the Lua values lua-cjson
// decodes, including the tokens on which that code raises a Lua error
// (Rejection.Crash). exp and nbf are checked before iss and aud (an expired
// token with a wrong issuer is reported as expired, as Prosody does).
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

func crash(stage, msg, fix string) *Rejection {
	return &Rejection{Stage: stage, Reason: msg, Crash: true,
		Fix: fix + " (Prosody's token code raises this Lua error, logs a traceback, and the " + stage + " never completes)"}
}

func (t *Tokens) verifyLogin(tok string) (*Claims, *Rejection) {
	segs, signed, ok := splitToken(tok)
	if !ok {
		return nil, t.reject(ReasonInvalidToken, "pass a complete JWT: three non-empty base64url parts joined by '.'; an unsigned (alg none) token has no third part")
	}
	// basexx.from_url64 returns nil plus the bad character, and
	// cjson.safe.decode raises on two arguments instead of returning nil.
	const b64Crash = "bad argument #1 to 'decode' (expected 1 argument)"
	hraw, ok := fromURL64(segs[0])
	if !ok {
		return nil, crash(StageLogin, b64Crash, "the header part has a character outside the base64url alphabet (A-Z a-z 0-9 - _): check for white space, '+', '/' or URL escapes such as %2E")
	}
	h, jerr := cjsonDecode(hraw)
	if jerr != "" {
		return nil, t.reject(ReasonInvalidHeader, "the header is not JSON lua-cjson can decode ("+jerr+"); use a JWT library to encode it")
	}
	praw, ok := fromURL64(segs[1])
	if !ok {
		return nil, crash(StageLogin, b64Crash, "the payload part has a character outside the base64url alphabet (A-Z a-z 0-9 - _): check for white space, '+', '/' or URL escapes such as %2E")
	}
	p, jerr := cjsonDecode(praw)
	if jerr != "" {
		return nil, t.reject(ReasonInvalidBody, "the payload is not JSON lua-cjson can decode ("+jerr+")")
	}
	sig, ok := fromURL64(segs[2])
	if !ok {
		return nil, t.reject(ReasonInvalidSignature, "the signature part is not base64url")
	}
	typ, indexable := h.get("typ")
	if !indexable {
		return nil, crash(StageLogin, "attempt to index a "+h.typeName()+" value (local 'header')", "the header must be a JSON object")
	}
	if !typ.isStr("JWT") {
		return nil, t.reject(ReasonInvalidTyp, `set the header "typ" to exactly "JWT" (upper case)`)
	}
	if alg := h.field("alg"); !alg.isStr(t.alg) {
		return nil, t.reject(ReasonInvalidAlg, fmt.Sprintf("sign with %s, the algorithm the server is configured for (the header says %s)", t.alg, alg.describe()))
	}
	var want [64]byte
	if !hmac.Equal(sig, t.sign([]byte(signed), want[:0])) {
		return nil, t.reject(ReasonInvalidSignature, "sign with the app_secret from the spec (the same value Prosody's app_secret has); check for a stale or truncated secret or trailing newline")
	}
	exp, indexable := p.get("exp")
	if !indexable {
		return nil, crash(StageLogin, "attempt to index a "+p.typeName()+" value (local 'body')", "the payload must be a JSON object")
	}
	if exp.truthy() && exp.t != lNum {
		return nil, t.reject(ReasonExpNotNumber, "write exp as a JSON number of seconds since the epoch, not a string")
	}
	nbf := p.field("nbf")
	if nbf.truthy() && nbf.t != lNum {
		return nil, t.reject(ReasonNbfNotNumber, "write nbf as a JSON number of seconds since the epoch, or leave it out")
	}
	now := float64(t.cfg.Now().Unix())
	expFix := "mint a fresh token with a longer lifetime; if it was just minted, the issuer's clock is behind the Prosody host's: sync both with NTP (Prosody has no leeway)"
	if exp.t == lNum && now >= exp.n {
		reason := reasonExpPrefix + " (" + luaNumber(now-exp.n) + " sec since expired"
		if iat := p.field("iat"); iat.truthy() {
			var v float64
			switch iat.t {
			case lNum:
				v = iat.n
			case lStr:
				f, ok := luaStr2Number(iat.s)
				if !ok {
					return nil, crash(StageLogin, "attempt to sub a 'number' with a 'string'", "write iat as a JSON number")
				}
				v = f
			default:
				return nil, crash(StageLogin, "attempt to perform arithmetic on a "+iat.typeName()+" value (field 'iat')", "write iat as a JSON number")
			}
			reason += ", valid for:" + luaNumber(exp.n-v) + " sec"
		}
		reason += ")"
		return nil, t.reject(reason, expFix)
	}
	if nbf.t == lNum && now < nbf.n {
		return nil, t.reject(ReasonNbf, fmt.Sprintf("nbf is %s s in the future: the issuer's clock is ahead of the Prosody host's; sync with NTP, or backdate nbf a few seconds", luaNumber(nbf.n-now)))
	}
	iss := p.field("iss")
	if iss.t == lNil {
		return nil, t.reject(ReasonIssMissing, fmt.Sprintf("set iss to %q (the app_id)", t.issuer))
	}
	if !acceptedClaim(iss, t.issuers) {
		return nil, t.reject(ReasonIssInvalid, fmt.Sprintf("set iss to %q (the app_id); the token says %s; accepted: %s", t.issuer, iss.describe(), strings.Join(t.issuers, ", ")))
	}
	aud := p.field("aud")
	if aud.t == lNil {
		return nil, t.reject(ReasonAudMissing, fmt.Sprintf("add \"aud\": %q", t.audience))
	}
	if !acceptedClaim(aud, t.audiences) {
		fix := fmt.Sprintf("set aud to the string %q; the token says %s; accepted: %s", t.audience, aud.describe(), strings.Join(t.audiences, ", "))
		if aud.t == lTable && aud.o.array {
			fix = fmt.Sprintf("aud must be a single string, not an array: set \"aud\": %q (Prosody compares with ==)", t.audience)
		}
		return nil, t.reject(ReasonAudInvalid, fix)
	}
	// process_and_verify_token: room (when required), then sub, then context.
	if !t.cfg.AllowRoomless && p.field("room").t == lNil {
		return nil, t.reject(ReasonRoomMissing, `add "room": the lower-case percent-encoded room name (jitsi-agent token mint computes it), or "*" for any room`)
	}
	if p.field("sub").t == lNil {
		return nil, t.reject(ReasonSubMissing, fmt.Sprintf("add \"sub\": %q (the XMPP domain), the tenant name for tenant rooms, or \"*\"", t.cfg.Domain))
	}
	if ctx := p.field("context"); ctx.t != lNil {
		if _, ok := ctx.get("tenant"); !ok {
			return nil, crash(StageLogin, "attempt to index a "+ctx.typeName()+" value (field 'context')",
				fmt.Sprintf("context is %s: make it an object ({\"user\": {...}}) or leave it out", ctx.describe()))
		}
	}
	alg := h.field("alg").s
	return &Claims{Alg: alg, JSON: praw, body: p}, nil
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// luaLower is string.lower(v): strings and numbers (as tostring); other
// types raise "bad argument #1 to 'lower'".
func luaLower(v lvalue) (string, string) {
	s, ok := v.tostring()
	if !ok {
		return "", "bad argument #1 to 'lower' (string expected, got " + v.argTypeName() + ")"
	}
	return asciiLower(s), ""
}

// roomPatternFlag reports whether context.room.regex is true or "true";
// crashMsg is set when Lua cannot index context.room.
func roomPatternFlag(body lvalue) (regex bool, crashMsg string) {
	ctx := body.field("context")
	if ctx.t == lNil {
		return false, ""
	}
	cr := ctx.field("room")
	if !cr.truthy() {
		return false, ""
	}
	flag, ok := cr.get("regex")
	if !ok {
		return false, "attempt to index a " + cr.typeName() + " value (field 'jitsi_meet_context_room')"
	}
	return (flag.t == lBool && flag.b) || flag.isStr("true"), ""
}

// verifyJoin is token/util's verify_room for the room address
// [tenant]node@conference.DOMAIN, as mod_token_verification reports it.
func (t *Tokens) verifyJoin(c *Claims, tg Target) *Rejection {
	node := room.Node(tg.Room)
	tenant := asciiLower(tg.Tenant)
	roomJID := node // jid.split's node of the room address
	if tenant != "" {
		roomJID = "[" + tenant + "]" + node
	}
	mucDomain := "conference." + t.cfg.Domain
	claim := c.body.field("room")
	authRoom := claim
	if authRoom.t == lStr {
		authRoom.s = asciiLower(authRoom.s)
	}
	fixRoom := func() string {
		return fmt.Sprintf("set room to %q (the lower-case percent-encoded node of %q) or \"*\"; the token says %s", node, tg.Room, claim.describe())
	}
	join := func(reason, fix string) *Rejection { return &Rejection{Stage: StageJoin, Reason: reason, Fix: fix} }

	if !t.cfg.DomainVerification {
		// if auth_room and (room ~= auth_room and not ends_with(room, ']'..auth_room)) and auth_room ~= '*'
		if !authRoom.truthy() {
			if claim.t == lBool {
				c.Notes = append(c.Notes, "the room claim is false: without domain verification Prosody lets this token into every room; use \"*\" if that is meant, or the room's name")
			}
			return nil
		}
		if authRoom.isStr(roomJID) {
			return nil
		}
		suffix, ok := authRoom.tostring()
		if !ok {
			return crash(StageJoin, "attempt to concatenate a "+authRoom.typeName()+" value (local 'auth_room')", fixRoom())
		}
		if strings.HasSuffix(roomJID, "]"+suffix) || authRoom.isStr(room.Wildcard) {
			return nil
		}
		return join(ReasonRoomMismatch, fixRoom())
	}

	targetSub, targetRoom := "", roomJID
	if m, _ := luapattern.Match(roomJID, "^%[([^%]]+)%](.+)$"); m.Matched {
		// extract_subdomain: "[sub]room"
		i := strings.IndexByte(roomJID, ']')
		targetSub, targetRoom = m.Value, roomJID[i+1:]
	}
	var roomToCheck lvalue
	if authRoom.isStr(room.Wildcard) {
		roomToCheck = lvalue{t: lStr, s: targetRoom}
	} else {
		regex, crashMsg := roomPatternFlag(c.body)
		if crashMsg != "" {
			return crash(StageJoin, crashMsg, "context.room must be an object such as {\"regex\": true}, or left out")
		}
		if regex {
			pattern, ok := authRoom.tostring()
			if !ok {
				return join(ReasonInvalidPattern, fmt.Sprintf("with context.room.regex the room claim must be a Lua pattern string; the token says %s", claim.describe()))
			}
			m, err := luapattern.Match(targetRoom, pattern)
			if err != nil {
				return join(ReasonInvalidPattern, fmt.Sprintf("string.match raises %q for the pattern %q (Prosody lower-cases it first); see https://www.lua.org/manual/5.4/manual.html#6.4.1", err.Error(), pattern))
			}
			switch {
			case !m.Matched:
				roomToCheck = lvalue{}
			case m.IsPos:
				roomToCheck = lvalue{t: lStr, s: m.String()}
			default:
				roomToCheck = lvalue{t: lStr, s: m.Value}
			}
		} else {
			roomToCheck = authRoom
		}
		if !roomToCheck.truthy() {
			if t.cfg.AllowRoomless {
				return nil
			}
			if regex {
				return join(ReasonNoRoomMatch, fmt.Sprintf("the pattern %q matches nothing in the room name %q", authRoom.s, targetRoom))
			}
			return join(ReasonNoRoomMatch, fixRoom())
		}
	}
	if ctx := c.body.field("context"); ctx.t != lNil {
		if tn := ctx.field("tenant"); tn.truthy() {
			if _, msg := luaLower(tn); msg != "" {
				return crash(StageJoin, msg, "context.tenant must be a string")
			}
		}
	}
	sub := c.body.field("sub")
	authDomain, msg := luaLower(sub)
	if msg != "" {
		return crash(StageJoin, msg, fmt.Sprintf("sub must be a string: the XMPP domain %q, the tenant, or \"*\"", t.cfg.Domain))
	}
	rc, ok := roomToCheck.tostring()
	var want string
	if targetSub != "" {
		if !ok {
			return crash(StageJoin, "attempt to concatenate a "+roomToCheck.typeName()+" value (local 'room_to_check')", fixRoom())
		}
		s := authDomain
		if authDomain == "*" {
			s = targetSub
		}
		want = "[" + s + "]" + rc + "@" + mucDomain
	} else {
		if !ok {
			return crash(StageJoin, "attempt to concatenate a "+roomToCheck.typeName()+" value (local 'node')", fixRoom())
		}
		host := "conference." + authDomain
		if authDomain == "*" {
			host = mucDomain
		}
		want = rc + "@" + host
	}
	if want == roomJID+"@"+mucDomain {
		return nil
	}
	var fixes []string
	roomOK := want[:strings.LastIndexByte(want, '@')] == roomJID
	if !roomOK {
		if regex, _ := roomPatternFlag(c.body); regex {
			fixes = append(fixes, fmt.Sprintf("the pattern %q matches %q, not the whole room name %q: Prosody compares the match with the room", authRoom.s, rc, targetRoom))
		} else {
			fixes = append(fixes, fixRoom())
		}
	}
	if !strings.HasSuffix(want, "@"+mucDomain) || (targetSub != "" && !strings.HasPrefix(want, "["+targetSub+"]")) {
		fixSub := fmt.Sprintf("set sub to the XMPP domain %q (not conference.%s, not the URL) or \"*\"", t.cfg.Domain, t.cfg.Domain)
		if targetSub != "" {
			fixSub = fmt.Sprintf("set sub to the tenant %q or \"*\"", targetSub)
		}
		fixes = append(fixes, fixSub+fmt.Sprintf(" (the token says %s)", sub.describe()))
	}
	if len(fixes) == 0 {
		fixes = append(fixes, fixRoom())
	}
	return join(ReasonMismatch, strings.Join(fixes, "; "))
}
