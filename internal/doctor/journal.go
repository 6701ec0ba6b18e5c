package doctor

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/jitsi-agent/jitsi-agent/internal/journal"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// journalLines is how many recent lines of each unit the doctor reads.
const journalLines = 2000

// knownError is a failure people meet, recognised in a unit's journal.
type knownError struct {
	id    string
	units []string // components whose journal may show it
	re    *regexp.Regexp
	// explain returns what it means and the fix, from the match (never
	// printing a token: groups holding one are not used).
	explain func(m []string) (meaning, fix string)
}

var tokenFixes = map[string]string{
	"Invalid signature":        "the app signs tokens with another secret than Prosody's app_secret: give the backend the spec's secret (render its .env from the spec), then check one token with 'jitsi-agent token verify SPEC TOKEN'",
	"Invalid or incorrect alg": "sign with the algorithm of auth.jwt.algorithm (HS256 by default)",
	"Invalid typ":              `the token header must say "typ": "JWT"`,
	"Not acceptable by nbf":    "the issuer's clock is ahead of this host's: sync both with NTP",
	"invalid 'iss' claim":      "set iss to the spec's app_id",
	"'iss' claim is missing":   "set iss to the spec's app_id",
	"invalid 'aud' claim":      "set aud to one of auth.jwt.accepted_audiences (a string, not an array)",
	"'aud' claim is missing":   "add aud (one of auth.jwt.accepted_audiences)",
	"room claim is missing":    `add the room claim: the room_name the join endpoint returns, or "*"`,
	"sub claim is missing":     "add sub: the XMPP domain (or the tenant, or \"*\")",
	"token required":           "the client connected without a token: pass the token to the SDK (or enable guests)",
}

var roomFix = "the token's room claim does not admit the room the client joined: join the room_name the join endpoint returned (lower-case, percent-encoded), or check the claim with 'jitsi-agent token verify SPEC TOKEN --room ROOM'"

// knownErrors() is built on first use: its regular expressions are not
// compiled at every start of jitsi-agent.
var knownErrors = sync.OnceValue(func() []knownError {
	return []knownError{
		{id: "token-login", units: []string{spec.Prosody},
			re: regexp.MustCompile(`Error verifying token err:([^,]*), reason:(.*?)(?: tenant:| room:|$)`),
			explain: func(m []string) (string, string) {
				reason := strings.TrimSpace(m[2])
				fix, ok := tokenFixes[reason]
				if strings.HasPrefix(reason, "Not acceptable by exp") {
					fix, ok = "the token expired before the client logged in: mint it right before connecting (call join again on reconnect), or sync the clocks with NTP", true
				}
				if !ok {
					fix = "check a token the app minted with 'jitsi-agent token verify SPEC TOKEN': it names the fix"
				}
				return fmt.Sprintf("Prosody refused a token at login: %q", reason), fix
			}},
		{id: "token-join", units: []string{spec.Prosody},
			re: regexp.MustCompile(`not allowed to join: \S+ err: (\S*) reason: (.*)$`),
			explain: func(m []string) (string, string) {
				return fmt.Sprintf("Prosody refused a token at the room join: %q", strings.TrimSpace(m[2])), roomFix
			}},
		{id: "module-load", units: []string{spec.Prosody},
			re: regexp.MustCompile(`Unable to load module '?([A-Za-z0-9_-]+)'?:?\s*(.*)$`),
			explain: func(m []string) (string, string) {
				return fmt.Sprintf("Prosody could not load module %s (%s)", m[1], strings.TrimSpace(truncate(m[2], 120))),
					"install what provides it (Jitsi's modules come with jitsi-meet-prosody in /usr/share/jitsi-meet/prosody-plugins; Lua libraries: 'jitsi-agent doctor' prosody.lua-deps names them), then 'jitsi-agent apply'"
			}},
		{id: "xmpp-login", units: []string{spec.Jicofo, spec.JVB},
			re: regexp.MustCompile(`(?i)(SASLError[^\n]*not-authorized|not-authorized[^\n]*SASL|authentication failed[^\n]*(?:focus|jvb))`),
			explain: func(m []string) (string, string) {
				return "the component's XMPP login to Prosody was refused (not-authorized)",
					"its password in jicofo.conf / jvb.conf differs from Prosody's account: run 'jitsi-agent apply' (it keeps the accounts in sync with the state directory's passwords) and restart the component"
			}},
		{id: "bind", units: []string{spec.Nginx},
			re: regexp.MustCompile(`bind\(\) to (\S+) failed \((\d+): ([^)]*)\)`),
			explain: func(m []string) (string, string) {
				fix := "another process holds " + m[1] + ": find it with 'ss -ltnp' and stop it, or change web.https_port / web.http_port in the spec"
				if m[2] == "99" {
					fix = m[1] + " is not an address of this host: fix the listen address (web block) or the host's network"
				}
				return fmt.Sprintf("nginx could not listen on %s: %s", m[1], m[3]), fix
			}},
		{id: "bind", units: []string{spec.Coturn},
			re: regexp.MustCompile(`(?i)(?:cannot bind [^\n]*?socket to addr(?:ess)?:?\s*(\S+)|Trying to bind fd \d+ to <([^>]+)>: errno=(\d+))`),
			explain: func(m []string) (string, string) {
				addr := m[1] + m[2]
				return fmt.Sprintf("coturn could not open its listener on %s", addr),
					"another process holds the TURN port (3478/5349) or the address is not on this host: 'ss -lunpt' shows the holder; check turn.port/tls_port and host.public_ips/private_ips in the spec"
			}},
	}
})

// checkJournal maps the failures people meet, in the recent journal of
// each unit the spec runs, to what they mean and the fix.
func (c *checker) checkJournal(ctx context.Context) []Result {
	const id, title = "journal", "Known errors in the services' recent journal"
	if c.env.Journal == nil {
		return []Result{skip(id, title, "journalctl is not available (not a systemd host, or --root is set)")}
	}
	var out []Result
	read := 0
	for _, comp := range c.activeComponents() {
		unit := c.unit(comp, comp+".service")
		lines, err := c.env.Journal.Lines(ctx, unit, journalLines)
		if err != nil {
			out = append(out, skip(id+"."+comp, unit+" journal", "cannot read: "+err.Error()))
			continue
		}
		read++
		type hit struct {
			meaning, fix, last string
			n                  int
		}
		hits := map[string]*hit{}
		var order []string
		for _, line := range lines {
			for _, k := range knownErrors() {
				if !slices.Contains(k.units, comp) {
					continue
				}
				m := k.re.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				meaning, fix := k.explain(m)
				key := k.id + "\x00" + meaning
				h := hits[key]
				if h == nil {
					h = &hit{meaning: meaning, fix: fix}
					hits[key] = h
					order = append(order, key)
				}
				h.n++
				h.last = journalTime(line)
			}
		}
		for _, key := range order {
			h := hits[key]
			kid := strings.SplitN(key, "\x00", 2)[0]
			seen := journal.MaskTokens(fmt.Sprintf("%s: %s (%d time(s), last %s)", unit, h.meaning, h.n, h.last))
			out = append(out, warn(id+"."+comp+"."+kid, unit+": "+kid, seen, h.fix))
		}
	}
	if len(out) == 0 {
		if read == 0 {
			return []Result{skip(id, title, "no journal to read")}
		}
		return []Result{pass(id, title, fmt.Sprintf("no known errors in the last %d lines of %d unit(s)", journalLines, read))}
	}
	return out
}

// journalTime is the timestamp of a short-iso journal line ("" if none).
func journalTime(line string) string {
	if f := strings.Fields(line); len(f) > 0 && len(f[0]) >= 19 && f[0][4] == '-' && f[0][10] == 'T' {
		return f[0]
	}
	return "time unknown"
}
