// Package room holds the one rule set jitsi-agent applies to meeting room
// names: which names are valid, the form Prosody compares a token's room claim
// with, and how an arbitrary stream id becomes a safe (optionally unguessable)
// room name. Mint, verify and the join endpoint all use it.
//
// # The node: the form Prosody compares
//
// The web and mobile clients turn the room name from the URL into the MUC
// room node like this (jitsi-meet getBackendSafeRoomName): percent-decode
// (left as is when the escapes are malformed), Unicode NFKC, lower case,
// encodeURIComponent, lower case again (hex digits too). "Weekly Sync" becomes
// "weekly%20sync" and "täst" becomes "t%c3%a4st". Prosody lower-cases a token's
// room claim (ASCII only) and compares it with that node, so a claim must be
// the node, or "*". Node implements that transformation.
//
// # Rules (Validate)
//
//  1. Not empty, valid UTF-8, no control characters, no leading or trailing
//     white space (checked on the decoded, NFKC-normalised name).
//  2. None of the characters the client strips from a room path or that nginx
//     and browsers treat as path syntax: : ? # [ ] @ ! $ & ' ( ) * + , ; = > < / " \
//     and no '%' left after decoding.
//  3. The node is at most MaxNodeBytes (1023) bytes: the XMPP localpart limit,
//     counted after percent-encoding, so a non-ASCII character costs 6 to 12 bytes.
//  4. Case does not matter: "Weekly" and "weekly" are the same room.
//  5. Not reserved: names nginx serves itself (config.js, external_api.js,
//     http-bind, xmpp-websocket, conference-request, _unlock, _api, static,
//     libs, css, images, fonts, lang, sounds, .well-known, ...), names that look
//     like a static file (robots.txt, anything ending in .js, .css, .html,
//     .json, ...), names starting with '.', and names starting with
//     "__jicofo-health-check" (jicofo's health rooms).
//
// Names an application generates should stay within [a-z0-9-] and at most
// MaxSanitizedLen characters: then the room claim is the name itself.
// Sanitize produces exactly such names.
package room

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"
)

// MaxNodeBytes is the longest room node (after percent-encoding) XMPP allows.
const MaxNodeBytes = 1023

// MaxSanitizedLen is the length limit of names Sanitize produces.
const MaxSanitizedLen = 64

// Wildcard is the room claim that matches every room.
const Wildcard = "*"

// HealthCheckPrefix starts jicofo's health-check room names.
const HealthCheckPrefix = "__jicofo-health-check"

// stripped are the characters the client removes from room and tenant path
// parts, plus the backslash (browsers read it as '/').
const stripped = `:?#[]@!$&'()*+,;=></"\`

// reserved are nodes that collide with paths nginx serves itself.
var reserved = map[string]bool{
	"config.js":           true,
	"external_api.js":     true,
	"interface_config.js": true,
	"http-bind":           true,
	"xmpp-websocket":      true,
	"conference-request":  true,
	"_unlock":             true,
	"_api":                true,
	"static":              true,
	"libs":                true,
	"css":                 true,
	"images":              true,
	"fonts":               true,
	"lang":                true,
	"sounds":              true,
	".well-known":         true,
	"colibri-ws":          true,
	"robots.txt":          true,
	"manifest.json":       true,
	"favicon.ico":         true,
	"index.html":          true,
	"pwa-worker.js":       true,
}

// fileExts are suffixes that make a name look like a static file
// (nginx try_files would serve the file instead of the meeting).
var fileExts = []string{".js", ".mjs", ".css", ".html", ".htm", ".json", ".txt", ".ico",
	".png", ".svg", ".wasm", ".map", ".xml", ".webmanifest", ".woff", ".woff2", ".ttf"}

// Error is why a room name is not valid, with a fix.
type Error struct {
	Name   string // the name as given
	Reason string
	Fix    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("room name %q: %s", e.Name, e.Reason)
}

// Reserved reports whether node (the encoded lowercase form, see Node) is one
// of the reserved names, a static-file-like name or a jicofo health room.
func Reserved(node string) bool {
	if reserved[node] || strings.HasPrefix(node, ".") || strings.HasPrefix(node, HealthCheckPrefix) {
		return true
	}
	for _, ext := range fileExts {
		if strings.HasSuffix(node, ext) {
			return true
		}
	}
	return false
}

// Validate checks a room name as a user would type it in a meeting URL
// (plain "Weekly Sync" or already encoded "weekly%20sync") against the rules
// in the package documentation. It returns nil or an *Error.
func Validate(name string) error {
	fail := func(reason, fix string) error { return &Error{Name: name, Reason: reason, Fix: fix} }
	if name == "" {
		return fail("is empty", "give the meeting a name, e.g. weekly-sync")
	}
	if !utf8.ValidString(name) {
		return fail("is not valid UTF-8", "pass the name as UTF-8 text")
	}
	if name == Wildcard {
		return fail(`"*" is the wildcard room claim, not a room`, "name a room; use --room '*' only for tokens valid in every room")
	}
	decoded := norm.NFKC.String(decode(name))
	if strings.TrimSpace(decoded) == "" {
		return fail("is only white space", "give the meeting a name, e.g. weekly-sync")
	}
	if strings.TrimSpace(decoded) != decoded {
		return fail("starts or ends with white space", "trim the name")
	}
	for _, r := range decoded {
		switch {
		case unicode.IsControl(r):
			return fail(fmt.Sprintf("contains the control character %U", r), "remove control characters")
		case r == '%':
			return fail("contains '%' that is not part of a valid %XX escape sequence", "remove the '%' or encode it as %25 consistently")
		case strings.ContainsRune(stripped, r):
			return fail(fmt.Sprintf("contains %q, which the Jitsi client strips from room names (or the URL treats as syntax)", r),
				"use letters, digits and '-' only, e.g. "+Suggest(name))
		case unicode.IsSpace(r) && r != ' ':
			return fail(fmt.Sprintf("contains the white-space character %U", r), "use plain spaces or '-'")
		}
	}
	node := Node(name)
	if len(node) > MaxNodeBytes {
		return fail(fmt.Sprintf("is %d bytes after percent-encoding; the limit is %d", len(node), MaxNodeBytes),
			"use a shorter name (non-ASCII characters cost 6 to 12 bytes each)")
	}
	if strings.HasPrefix(node, HealthCheckPrefix) {
		return fail("starts with "+HealthCheckPrefix+", reserved for jicofo health checks", "choose another name")
	}
	if Reserved(node) {
		return fail("collides with a path the web server serves itself (static file, endpoint or directory)",
			"choose another name, e.g. "+Suggest(name)+"-room")
	}
	return nil
}

// Suggest returns a valid [a-z0-9-] name close to s (no hash suffix), for
// error messages. It may still be reserved; callers append something.
func Suggest(s string) string {
	b := fold(s)
	if b == "" {
		return "meeting"
	}
	if len(b) > MaxSanitizedLen {
		b = strings.TrimRight(b[:MaxSanitizedLen], "-")
	}
	return b
}

var lowerPool = sync.Pool{New: func() any { c := cases.Lower(language.Und); return &c }}

// lower is JavaScript's String.prototype.toLowerCase: the full Unicode
// mapping (SpecialCasing, final sigma), not Go's per-rune simple mapping.
func lower(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return asciiLower(s)
	}
	c := lowerPool.Get().(*cases.Caser)
	out := c.String(s)
	lowerPool.Put(c)
	return out
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

// Node returns the MUC room node the Jitsi client derives from name: decode,
// NFKC, lower case, encodeURIComponent, lower case (hex digits too). This is
// the exact string a token's room claim must equal. Node of a node is the
// node itself.
func Node(name string) string {
	s := decode(strings.ToValidUTF8(name, "\uFFFD"))
	s = norm.NFKC.String(s)
	s = lower(s)
	return encodeComponent(s)
}

// ClaimMatches reports whether a token room claim accepts the room node, as
// Prosody compares them: ASCII lower case of the claim, then equality, or "*".
func ClaimMatches(claim, node string) bool {
	return claim == Wildcard || asciiLower(claim) == node
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decode is JavaScript's decodeURIComponent with the client's fallback: on a
// malformed escape or bytes that are not UTF-8, the input is returned as is.
func decode(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return s
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return s
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	if !utf8.Valid(b) {
		return s
	}
	return string(b)
}

// unreserved are the bytes encodeURIComponent leaves alone.
func unreserved(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_.!~*'()", c) >= 0
}

// encodeComponent is encodeURIComponent followed by ASCII lower case, with
// lower-case hex digits.
func encodeComponent(s string) string {
	const hexdigits = "0123456789abcdef"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return asciiLower(s)
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case unreserved(c):
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
		default:
			b = append(b, '%', hexdigits[c>>4], hexdigits[c&15])
		}
	}
	return string(b)
}

// fold maps s to [a-z0-9-]: NFKC, accents removed (NFD without combining
// marks), lower case, every other run of characters becomes one '-', and
// leading/trailing '-' trimmed.
func fold(s string) string {
	s = norm.NFKC.String(strings.ToValidUTF8(s, ""))
	s = lower(norm.NFD.String(s))
	var b strings.Builder
	b.Grow(len(s))
	dash := false
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		case unicode.Is(unicode.Mn, r):
			// a combining accent: drop it, keep the base letter's run going
		default:
			dash = true
		}
	}
	return b.String()
}

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// unguessableSuffixLen is the HMAC suffix length in base32 characters
// (26 characters = 130 bits, from a 128-bit truncated HMAC-SHA256).
const unguessableSuffixLen = 26

// digestSuffixLen is the length of the plain digest suffix that keeps
// distinct stream ids distinct when folding them loses information.
const digestSuffixLen = 10

// Sanitize turns any stream id into a valid room name of [a-z0-9-], at most
// MaxSanitizedLen characters, that always passes Validate and is stable for
// the same stream id.
//
// Without unguessable, a stream id that already is such a name (lower case,
// [a-z0-9-], no leading/trailing/double '-', not reserved, short enough) is
// kept as it is; any other id is folded to [a-z0-9-] and gets a short SHA-256
// suffix so that ids differing only in case or punctuation stay distinct.
//
// With unguessable, the name is the folded id (at most 37 characters) plus a
// 26-character suffix derived from HMAC-SHA256(secret, stream id): the same id
// gives the same room, but nobody without the secret can compute the room of
// a given id. secret must be non-empty and kept private.
func Sanitize(streamID string, unguessable bool, secret []byte) string {
	base := fold(streamID)
	if unguessable {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("jitsi-agent room v1\x00"))
		m.Write([]byte(streamID))
		suffix := b32.EncodeToString(m.Sum(nil)[:16])[:unguessableSuffixLen]
		return join(base, suffix)
	}
	if base == streamID && len(base) <= MaxSanitizedLen && base != "" && !Reserved(base) {
		return base
	}
	sum := sha256.Sum256([]byte(streamID))
	return join(base, hex.EncodeToString(sum[:])[:digestSuffixLen])
}

func join(base, suffix string) string {
	if base == "" {
		base = "room"
	}
	if max := MaxSanitizedLen - 1 - len(suffix); len(base) > max {
		base = strings.TrimRight(base[:max], "-")
	}
	return base + "-" + suffix
}

// ValidateTenant checks a tenant name (https://DOMAIN/<tenant>/<room>):
// [a-z0-9-], 1 to 63 characters, not starting or ending with '-'. Prosody 13
// rejects '_' in the tenant's domain label, and config.js lower-cases it.
func ValidateTenant(t string) error {
	fail := func(reason string) error {
		return &Error{Name: t, Reason: "tenant " + reason, Fix: "use a tenant of lower-case letters, digits and '-', e.g. " + Suggest(t)}
	}
	if t == "" {
		return fail("is empty")
	}
	if len(t) > 63 {
		return fail("is longer than 63 characters (a DNS label)")
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return fail(fmt.Sprintf("contains %q; only [a-z0-9-] is allowed", rune(c)))
		}
	}
	if t[0] == '-' || t[len(t)-1] == '-' {
		return fail("starts or ends with '-'")
	}
	return nil
}
