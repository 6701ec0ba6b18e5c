package spec

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template/parse"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/input"
	"github.com/jitsi-agent/jitsi-agent/internal/suggest"
)

// Defaults that other packages and the docs refer to.
const (
	DefaultStateDir       = "/var/lib/jitsi-agent"
	DefaultBackups        = 5
	DefaultTokenLifetime  = 2 * time.Hour
	DefaultJVBUDPPort     = 10000
	DefaultTURNPort       = 3478
	DefaultTURNTLSPort    = 5349
	DefaultACMEListen     = "127.0.0.1:8402"
	DefaultMetricsListen  = "127.0.0.1:9137"
	DefaultTokenAPIListen = "127.0.0.1:8450"
	// MaxDomainLength: DOMAIN-config.js must fit in a 255-byte file name.
	MaxDomainLength        = 255 - len("-config.js")
	DefaultProsodyC2SPort  = 5222
	DefaultProsodyHTTPPort = 5280
	DefaultWatchQuiet      = 200 * time.Millisecond
	DefaultWatchMax        = 2 * time.Second
	DefaultWatchRescan     = 5 * time.Minute
	MinAppSecretLength     = 32
	LetsEncryptProduction  = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging     = "https://acme-staging-v02.api.letsencrypt.org/directory"
	defaultTURNCredTTL     = 24 * time.Hour
	defaultJibriPending    = 90 * time.Second
	defaultJVBHealthURL    = "http://127.0.0.1:8080/about/health"
	defaultJicofoHealthURL = "http://127.0.0.1:8888/about/health"
)

// DefaultUnits are the Debian unit names of the built-in components.
var DefaultUnits = defaultUnits()

func defaultUnits() map[string]string {
	out := map[string]string{}
	for _, c := range files.Components() {
		out[c.Name] = c.Unit
	}
	return out
}

type resolver struct {
	raw      *rawSpec
	ctx      *hcl.EvalContext
	opts     Options
	specFile string
	specDir  string
	redact   *[]string
	diags    hcl.Diagnostics
	// badDomain: domain was refused; defaults derived from it are not
	// reported again.
	badDomain bool
}

func (r *resolver) errf(rng *hcl.Range, summary, format string, args ...any) {
	r.diags = append(r.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rng})
}

func (r *resolver) warnf(rng *hcl.Range, summary, format string, args ...any) {
	r.diags = append(r.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rng})
}

// at returns the range of attribute name in body, or of the block itself.
func at(body hcl.Body, name string) *hcl.Range {
	if body == nil {
		return nil
	}
	c, _, _ := body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: name}}})
	if c != nil {
		if a, ok := c.Attributes[name]; ok {
			rg := a.Expr.Range()
			return &rg
		}
	}
	rg := body.MissingItemRange()
	return &rg
}

func has(body hcl.Body, name string) bool {
	if body == nil {
		return false
	}
	c, _, _ := body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: name}}})
	_, ok := c.Attributes[name]
	return ok
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

func strOr(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

var dnsLabel = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`) }) // compiled on first use, not at every start

func validDomain(s string) bool {
	if len(s) > 253 || net.ParseIP(s) != nil {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !dnsLabel().MatchString(l) {
			return false
		}
	}
	return true
}

// parseDuration accepts Go durations ("2h", "90s") and plain seconds ("7200").
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write it like \"2h\", \"90s\", \"200ms\" or as seconds (7200)", s)
	}
	return d, nil
}

func (r *resolver) duration(body hcl.Body, name string, p *string, def time.Duration, min time.Duration) time.Duration {
	if p == nil {
		return def
	}
	d, err := parseDuration(*p)
	if err != nil {
		r.errf(at(body, name), "Invalid duration", "%s: %v.", name, err)
		return def
	}
	if d < min {
		r.errf(at(body, name), "Duration too short", "%s must be at least %s, got %s.", name, min, d)
		return def
	}
	return d
}

func (r *resolver) port(body hcl.Body, name string, p *int, def int) int {
	v := intOr(p, def)
	if v < 1 || v > 65535 {
		r.errf(at(body, name), "Invalid port", "%s must be between 1 and 65535, got %d.", name, v)
	}
	return v
}

func (r *resolver) oneOf(body hcl.Body, name string, p *string, def string, allowed ...string) string {
	v := strOr(p, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	hint := ""
	if s := closest(v, allowed); s != "" {
		hint = fmt.Sprintf(" Did you mean %q?", s)
	}
	r.errf(at(body, name), "Invalid value for "+name, "%q is not one of %s.%s", v, quoteList(allowed), hint)
	return def
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}

// Suggest returns the option closest to s for a "Did you mean" hint, or ""
// when none is close enough.
func Suggest(s string, options []string) string { return suggest.Closest(s, options) }

func closest(s string, options []string) string { return suggest.Closest(s, options) }

// secret evaluates a sensitive expression. inline reports a literal value.
func (r *resolver) secret(expr hcl.Expression, name string) (Secret, bool, bool) {
	if expr == nil {
		return Secret{}, false, false
	}
	v, diags := expr.Value(r.ctx)
	if diags.HasErrors() {
		r.diags = append(r.diags, diags...)
		return Secret{}, false, false
	}
	if v.IsNull() {
		return Secret{}, false, false
	}
	v, err := convert.Convert(v, cty.String)
	if err != nil || !v.IsKnown() {
		rg := expr.Range()
		r.errf(&rg, "Invalid value for "+name, "%s must be a string (for example env(\"JITSI_APP_SECRET\") or trimspace(file(\"secret.txt\"))).", name)
		return Secret{}, false, false
	}
	s := v.AsString()
	*r.redact = append(*r.redact, s)
	if err := input.Text(s); err != nil {
		rg := expr.Range()
		r.errf(&rg, "Invalid character in "+name, "The value of %s %v.", name, err)
		return Secret{}, false, false
	}
	if len(s) > 4096 {
		rg := expr.Range()
		r.errf(&rg, name+" too long", "%s is %d bytes; secrets are limited to 4096.", name, len(s))
		return Secret{}, false, false
	}
	_, litDiags := expr.Value(nil) // succeeds only for constants
	return NewSecret(s), !litDiags.HasErrors(), true
}

func (r *resolver) resolve() *Deployment {
	raw := r.raw
	d := &Deployment{SourceFile: r.specFile, SourceDir: r.specDir}
	r.checkStrings(reflect.ValueOf(raw))

	// Domain.
	d.Domain = raw.Domain
	if d.Domain != strings.ToLower(d.Domain) {
		r.errf(at(raw.Body, "domain"), "Domain must be lower case", "Prosody, nginx and the JWT sub claim compare the domain in lower case; write %q.", strings.ToLower(d.Domain))
	} else if !validDomain(d.Domain) {
		r.errf(at(raw.Body, "domain"), "Invalid domain", "%q is not a fully qualified DNS name (e.g. \"meet.example.com\"). It is the public host name and the XMPP domain; an IP address cannot be used.", d.Domain)
	} else if len(d.Domain) > MaxDomainLength {
		r.errf(at(raw.Body, "domain"), "Domain too long", "The domain has %d characters; at most %d fit: the Debian file names built from it (/etc/jitsi/meet/DOMAIN-config.js, /etc/prosody/conf.avail/DOMAIN.cfg.lua) must stay within the 255-byte file name limit.", len(d.Domain), MaxDomainLength)
	}
	r.badDomain = d.Domain != strings.ToLower(d.Domain) || !validDomain(d.Domain)
	d.Tenants = boolOr(raw.Tenants, false)

	r.resolveHosts(d)
	r.resolveAuth(d)
	r.resolveMeeting(d)
	r.resolveVideobridge(d)
	r.resolveJicofo(d)
	r.resolveTURN(d)
	r.resolveFleet(d)
	r.resolveTLS(d)
	r.resolveWeb(d)
	r.resolveServices(d)

	d.StateDir = strOr(raw.StateDir, DefaultStateDir)
	if !filepath.IsAbs(d.StateDir) {
		r.errf(at(raw.Body, "state_dir"), "State directory must be absolute", "state_dir holds generated secrets, the manifest and backups; give an absolute path such as %q.", DefaultStateDir)
	}
	d.Backups = intOr(raw.Backups, DefaultBackups)
	if d.Backups < 1 || d.Backups > 100 {
		r.errf(at(raw.Body, "backups"), "Invalid backups count", "backups is how many previous applies are kept for rollback: 1 to 100, got %d.", d.Backups)
	}
	d.Drift = r.oneOf(raw.Body, "drift", raw.Drift, DriftRestore, DriftRestore, DriftReport)
	if raw.TemplatesDir != nil {
		d.TemplatesDir = r.path(*raw.TemplatesDir)
	}

	r.resolveTemplates(d)
	r.raw.Templates = nil // their values and positions are in d.Templates now
	r.checkDestinationParents(d)
	r.resolveWatch(d)
	r.resolveMetrics(d)
	r.resolveTokenAPI(d)
	r.resolveExtra(d)
	r.resolveProsody(d)
	r.resolveFirewall(d)
	r.resolveBootstrap(d)
	r.checkPorts(d)
	return d
}

// MaxExtraBytes bounds each extra text.
const MaxExtraBytes = 64 << 10

func (r *resolver) resolveExtra(d *Deployment) {
	e := r.raw.Extra
	if e == nil {
		return
	}
	for _, f := range []struct {
		name string
		in   *string
		out  *string
	}{
		{"prosody", e.Prosody, &d.Extra.Prosody}, {"jicofo", e.Jicofo, &d.Extra.Jicofo}, {"jvb", e.JVB, &d.Extra.JVB},
		{"sip_communicator", e.SipCommunicator, &d.Extra.SipCommunicator}, {"config_js", e.ConfigJS, &d.Extra.ConfigJS},
		{"nginx", e.Nginx, &d.Extra.Nginx}, {"nginx_server", e.NginxServer, &d.Extra.NginxServer}, {"coturn", e.Coturn, &d.Extra.Coturn},
		{"jibri", e.Jibri, &d.Extra.Jibri},
	} {
		if f.in == nil || *f.in == "" {
			continue
		}
		v := *f.in
		switch {
		case len(v) > MaxExtraBytes:
			r.errf(at(e.Body, f.name), "Extra text too long", "extra.%s has %d bytes; the limit is %d. Keep only the settings the spec cannot express.", f.name, len(v), MaxExtraBytes)
		case strings.ContainsRune(v, 0):
			r.errf(at(e.Body, f.name), "Extra text contains a NUL byte", "extra.%s is appended to a text file; remove the NUL byte.", f.name)
		}
		if !strings.HasSuffix(v, "\n") {
			v += "\n"
		}
		*f.out = v
	}
	for section, mods := range e.ProsodyModules {
		for _, m := range mods {
			if !prosodyModuleName().MatchString(m) {
				r.errf(at(e.Body, "prosody_modules"), "Invalid Prosody module name", "%q (section %q): module names are letters, digits, '_' and '-', as in modules_enabled.", m, section)
			}
		}
		if !validDomain(section) {
			r.errf(at(e.Body, "prosody_modules"), "Invalid Prosody section", "%q is not a VirtualHost or Component name.", section)
		}
	}
	if len(e.ProsodyModules) > 0 {
		d.Extra.ProsodyModules = e.ProsodyModules
	}
}

var prosodyModuleName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`) }) // compiled on first use, not at every start

func (r *resolver) path(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(r.specDir, p)
}

func (r *resolver) resolveHosts(d *Deployment) {
	seen := map[string]bool{}
	for _, h := range r.raw.Hosts {
		if seen[h.Name] {
			r.errf(h.DefRange.Ptr(), "Duplicate host", "host %q is declared twice; host names must be unique.", h.Name)
			continue
		}
		seen[h.Name] = true
		host := Host{Name: h.Name, PublicIPs: h.PublicIPs, PrivateIPs: h.PrivateIPs, Roles: h.Roles, Shard: DefaultShard}
		if h.Shard != nil {
			host.Shard = *h.Shard
			if !bridgeID().MatchString(host.Shard) {
				r.errf(at(h.Body, "shard"), "Invalid shard name", "shard = %q in host %q: a shard name appears in HAProxy backend names and in the fleet's keys; use letters, digits, '.', '_' and '-' (at most 63), e.g. \"eu1\".", *h.Shard, h.Name)
			}
		}
		if h.Address != nil {
			host.Address = strings.ToLower(*h.Address)
			if !validAddress(host.Address) {
				r.errf(at(h.Body, "address"), "Invalid host address", "address = %q in host %q is neither an IP address nor a DNS name; give the address the other hosts reach this one at, e.g. \"10.0.0.5\" or \"%s.internal.example.com\".", *h.Address, h.Name, h.Name)
			}
		}
		for _, ip := range append(append([]string{}, h.PublicIPs...), h.PrivateIPs...) {
			if net.ParseIP(ip) == nil {
				r.errf(at(h.Body, "public_ips"), "Invalid IP address", "%q in host %q is not an IP address.", ip, h.Name)
			}
		}
		if len(h.PrivateIPs) > 0 && len(h.PrivateIPs) != len(h.PublicIPs) {
			r.errf(at(h.Body, "private_ips"), "Unpaired NAT addresses", "private_ips and public_ips are paired in order for the videobridge's static NAT mapping: give one public IP per private IP (%d private, %d public).", len(h.PrivateIPs), len(h.PublicIPs))
		}
		if h.Roles == nil {
			host.Roles = DefaultRoles()
		}
		for _, role := range h.Roles {
			if !slices.Contains(Components, role) {
				hint := ""
				if s := closest(role, Components); s != "" {
					hint = fmt.Sprintf(" Did you mean %q?", s)
				}
				r.errf(at(h.Body, "roles"), "Unknown role", "%q is not a component; roles are %s.%s", role, quoteList(Components), hint)
			}
		}
		d.Hosts = append(d.Hosts, host)
	}
	switch {
	case len(d.Hosts) == 0:
		name := r.opts.Host
		if name == "" {
			if hn, err := r.opts.Hostname(); err == nil {
				name = hn
			} else {
				name = "localhost"
			}
		}
		d.Host = Host{Name: name, Roles: DefaultRoles(), Shard: DefaultShard}
		d.Hosts = []Host{d.Host}
	case r.opts.Host != "":
		for _, h := range d.Hosts {
			if h.Name == r.opts.Host {
				d.Host = h
			}
		}
		if d.Host.Name == "" {
			names := make([]string, len(d.Hosts))
			for i, h := range d.Hosts {
				names[i] = h.Name
			}
			r.errf(nil, "Unknown host", "--host %q matches no host block; the spec declares %s.", r.opts.Host, quoteList(names))
		}
	case len(d.Hosts) == 1:
		d.Host = d.Hosts[0]
	default:
		hn, _ := r.opts.Hostname()
		for _, h := range d.Hosts {
			if h.Name == hn {
				d.Host = h
			}
		}
		if d.Host.Name == "" {
			d.Host = d.Hosts[0]
			r.warnf(r.raw.Hosts[0].DefRange.Ptr(), "Host not selected", "The spec declares %d hosts and none is named like this machine (%q); using %q. Pass --host NAME to choose.", len(d.Hosts), hn, d.Host.Name)
		}
	}
}

func (r *resolver) resolveAuth(d *Deployment) {
	auths := r.raw.Auth
	if len(auths) == 0 {
		rg := r.raw.Body.MissingItemRange()
		r.errf(&rg, "Missing auth block", "Say how users log in: auth \"jwt\" { app_id = \"my-app\" app_secret = env(\"JITSI_APP_SECRET\") } for token auth, auth \"anonymous\" {} for open rooms, or auth \"internal\" {} for Prosody accounts.")
		return
	}
	if len(auths) > 1 {
		r.errf(auths[1].DefRange.Ptr(), "Duplicate auth block", "Only one auth block is allowed; the first is at %s.", auths[0].DefRange)
	}
	a := auths[0]
	modes := []string{AuthJWT, AuthAnonymous, AuthInternal}
	if !slices.Contains(modes, a.Mode) {
		hint := ""
		if s := closest(a.Mode, modes); s != "" {
			hint = fmt.Sprintf(" Did you mean %q?", s)
		}
		r.errf(a.LabelRange.Ptr(), "Unknown auth mode", "auth %q: the modes are %s.%s", a.Mode, quoteList(modes), hint)
		return
	}
	d.Auth.Mode = a.Mode
	d.Auth.Guests = boolOr(a.Guests, false)
	defMod := ModeratorsToken
	if a.Mode != AuthJWT {
		defMod = ModeratorsFirstJoiner
	}
	d.Auth.Moderators = r.oneOf(a.Body, "moderators", a.Moderators, defMod, ModeratorsToken, ModeratorsWaitForHost, ModeratorsFirstJoiner)

	if a.Mode != AuthJWT {
		for _, name := range []string{"app_id", "app_secret", "algorithm", "accepted_issuers", "accepted_audiences", "token_lifetime", "domain_verification", "allow_empty_token"} {
			if has(a.Body, name) {
				r.errf(at(a.Body, name), "Attribute only valid for JWT auth", "%s configures token authentication and has no effect with auth %q. Remove it, or switch to auth \"jwt\".", name, a.Mode)
			}
		}
		if d.Auth.Moderators == ModeratorsToken {
			r.errf(at(a.Body, "moderators"), "Token moderators need JWT auth", "moderators = \"token\" reads context.user.moderator from a JWT; with auth %q there is no token. Use \"first-joiner\" (or \"wait-for-host\" with internal accounts).", a.Mode)
		}
		if a.Mode == AuthAnonymous && d.Auth.Guests {
			r.errf(at(a.Body, "guests"), "Guests need an authenticated mode", "With auth \"anonymous\" everyone is already a guest; guests = true adds an anonymous domain next to jwt or internal auth.")
		}
		if a.Mode == AuthAnonymous && d.Auth.Moderators == ModeratorsWaitForHost {
			r.errf(at(a.Body, "moderators"), "Nobody can be the host", "wait-for-host waits for an authenticated user; with auth \"anonymous\" nobody authenticates, so every meeting would wait forever. Use \"first-joiner\".")
		}
		return
	}

	j := &JWT{}
	d.Auth.JWT = j
	if a.AppID == nil || strings.TrimSpace(*a.AppID) == "" {
		r.errf(at(a.Body, "app_id"), "Missing app_id", "JWT auth needs app_id: the application identifier your backend puts in the token's iss claim (the app team's JITSI_APP_ID), e.g. app_id = \"my-app-id\".")
	} else {
		j.AppID = *a.AppID
		if strings.ContainsAny(j.AppID, "\"'\\` \t\n") {
			r.errf(at(a.Body, "app_id"), "Invalid app_id", "app_id must not contain quotes, backslashes, backticks or white space; Jitsi's token tooling rejects them.")
		}
	}
	sec, inline, ok := r.secret(a.AppSecret, "app_secret")
	switch {
	case !ok && !has(a.Body, "app_secret"):
		r.errf(at(a.Body, "app_secret"), "Missing app_secret", "JWT auth needs the shared HS256 secret. Keep it out of the spec: app_secret = env(\"JITSI_APP_SECRET\") or trimspace(file(\"/etc/jitsi-agent/app_secret\")). Generate one with: openssl rand -hex 32")
	case ok:
		j.AppSecret = sec
		j.AppSecretInline = inline
		if n := len(sec.Reveal()); n < MinAppSecretLength {
			r.errf(at(a.Body, "app_secret"), "app_secret too short", "The JWT secret must be at least %d characters (it has %d); short HMAC secrets can be brute-forced from any token. Generate one with: openssl rand -hex 32", MinAppSecretLength, n)
		}
		if why := WeakSecret(sec.Reveal()); why != "" {
			r.errf(at(a.Body, "app_secret"), "Weak app_secret", "The JWT secret can be guessed: %s. Anyone who guesses it can mint tokens for every room. Generate one with: %s", why, GenerateSecretHint)
		}
		if strings.TrimSpace(sec.Reveal()) != sec.Reveal() {
			r.errf(at(a.Body, "app_secret"), "app_secret has surrounding white space", "The secret starts or ends with white space (often a trailing newline from a file). Wrap it: trimspace(file(\"...\")).")
		}
		if inline {
			r.warnf(at(a.Body, "app_secret"), "Secret written inline", "app_secret is a literal in the spec, so anyone who can read the spec (or its git history) can mint tokens. Use env(\"JITSI_APP_SECRET\") or file(\"...\").")
		}
	}
	j.Algorithm = strOr(a.Algorithm, "HS256")
	switch j.Algorithm {
	case "HS256", "HS384", "HS512":
	case "RS256", "RS384", "RS512":
		r.errf(at(a.Body, "algorithm"), "Asymmetric algorithms are not supported", "%s needs an asap_key_server for public keys, which jitsi-agent does not manage yet. Use HS256 with app_secret.", j.Algorithm)
	default:
		r.errf(at(a.Body, "algorithm"), "Invalid algorithm", "%q is not a JWT algorithm Prosody accepts; use \"HS256\" (or HS384/HS512).", j.Algorithm)
	}
	j.Issuers = a.AcceptedIssuers
	if len(j.Issuers) == 0 {
		j.Issuers = []string{j.AppID}
	}
	j.Audiences = a.AcceptedAudiences
	if len(j.Audiences) == 0 {
		j.Audiences = []string{j.AppID}
	}
	for _, list := range [][]string{j.Issuers, j.Audiences} {
		for _, v := range list {
			if v == "" || strings.ContainsAny(v, "\"\\\n") {
				r.errf(at(a.Body, "accepted_issuers"), "Invalid issuer or audience", "%q: issuers and audiences must be non-empty and contain no quotes, backslashes or newlines.", v)
			}
		}
	}
	j.Lifetime = r.duration(a.Body, "token_lifetime", a.TokenLifetime, DefaultTokenLifetime, time.Minute)
	if j.Lifetime > 24*time.Hour {
		r.warnf(at(a.Body, "token_lifetime"), "Long token lifetime", "Tokens valid for %s stay usable long after a user should have lost access; Prosody checks exp only at login, so a 2h lifetime does not cut meetings short.", j.Lifetime)
	}
	j.DomainVerification = boolOr(a.DomainVerification, true)
	j.AllowEmpty = boolOr(a.AllowEmpty, false)
	if j.AllowEmpty && d.Auth.Moderators == ModeratorsToken && !d.Auth.Guests {
		r.warnf(at(a.Body, "allow_empty_token"), "Empty tokens allowed", "allow_empty_token = true lets users without a token create rooms; for guests, prefer guests = true, which only lets them join rooms a host opened.")
	}
}

func (r *resolver) resolveMeeting(d *Deployment) {
	m := r.raw.Meeting
	if m == nil {
		m = &rawMeeting{}
	}
	mt := &d.Meeting
	mt.StartAudioMuted = boolOr(m.StartAudioMuted, false)
	mt.StartVideoMuted = boolOr(m.StartVideoMuted, false)
	mt.StartAudioMutedAfter = intOr(m.StartAudioMutedAfter, 0)
	mt.StartVideoMutedAfter = intOr(m.StartVideoMutedAfter, 0)
	for name, v := range map[string]int{"start_audio_muted_after": mt.StartAudioMutedAfter, "start_video_muted_after": mt.StartVideoMutedAfter} {
		if v < 0 {
			r.errf(at(m.Body, name), "Invalid participant count", "%s is the number of participants after whom newcomers start muted; it cannot be negative.", name)
		}
	}
	mt.Lobby = boolOr(m.Lobby, true)
	mt.MaxParticipants = intOr(m.MaxParticipants, 0)
	if mt.MaxParticipants < 0 || mt.MaxParticipants == 1 {
		r.errf(at(m.Body, "max_participants"), "Invalid max_participants", "max_participants must be 0 (unlimited) or at least 2, got %d.", mt.MaxParticipants)
	}
	mt.ForceMute = boolOr(m.ForceMute, true)
	mt.Chat = boolOr(m.Chat, true)
	mt.ScreenSharing = boolOr(m.ScreenSharing, true)
	mt.BreakoutRooms = boolOr(m.BreakoutRooms, true)
	mt.Polls = boolOr(m.Polls, true)
	mt.Reactions = boolOr(m.Reactions, true)
	mt.Prejoin = boolOr(m.Prejoin, true)
	mt.RequireDisplayName = boolOr(m.RequireDisplayName, false)
	mt.P2P = boolOr(m.P2P, true)

	if m.MaxDuration != nil && has(m.Body, "max_duration") {
		rg := m.MaxDuration.Range()
		r.errf(&rg, "Jitsi cannot limit meeting duration", "Upstream Jitsi has no module that ends a meeting after a fixed time, so jitsi-agent will not pretend to. "+
			"What exists: mod_reservations (your backend answers a reservation API with a duration and Prosody destroys the room when it is exceeded) and the community time_restricted module. "+
			"Enforce the limit in your backend (stop issuing tokens, and end the meeting through your own API), then remove max_duration.")
	}
	if m.EndWhenHostLeaves != nil && has(m.Body, "end_when_host_leaves") {
		rg := m.EndWhenHostLeaves.Range()
		r.errf(&rg, "Jitsi cannot end a meeting when the host leaves", "Upstream Jitsi has no such module. A moderator can end the meeting for everyone from the UI (the endconference component, always rendered); "+
			"community modules (owner_restricted, token_owner_party) exist but are not breakout-safe. Remove end_when_host_leaves; with moderators = \"wait-for-host\" guests cannot start a meeting without a host.")
	}

	rec := m.Recording
	if rec == nil {
		rec = &rawRecording{}
	}
	rc := &mt.Recording
	rc.Enabled = boolOr(rec.Enabled, false)
	rc.Livestreaming = boolOr(rec.Livestreaming, false)
	rc.RecorderDomain = strOr(rec.RecorderDomain, "recorder."+d.Domain)
	rc.Brewery = strOr(rec.Brewery, "JibriBrewery")
	rc.TrustedDomains = rec.TrustedDomains
	if len(rc.TrustedDomains) == 0 {
		rc.TrustedDomains = []string{rc.RecorderDomain}
	}
	rc.Whitelist = rec.Whitelist
	rc.PendingTimeout = r.duration(rec.Body, "pending_timeout", rec.PendingTimeout, defaultJibriPending, time.Second)
	// A default derived from an invalid domain repeats the domain's error.
	if (rc.Enabled || rec.RecorderDomain != nil) && !validDomain(rc.RecorderDomain) && (rec.RecorderDomain != nil || !r.badDomain) {
		r.errf(at(rec.Body, "recorder_domain"), "Invalid recorder domain", "%q is not a DNS name; the default recorder.%s is usually right.", rc.RecorderDomain, d.Domain)
	}
	if !hclIdent(rc.Brewery) {
		r.errf(at(rec.Body, "brewery"), "Invalid brewery name", "The Jibri brewery is a MUC room node such as \"JibriBrewery\": letters, digits, '_' and '-'.")
	}
	if rc.Livestreaming && !rc.Enabled {
		r.errf(at(rec.Body, "livestreaming"), "Livestreaming needs recording", "Livestreaming goes through Jibri like recording; set enabled = true in the recording block as well.")
	}
	if rec.Body != nil && !rc.Enabled {
		for _, name := range []string{"recorder_domain", "brewery", "trusted_domains", "whitelist", "pending_timeout"} {
			if has(rec.Body, name) {
				r.warnf(at(rec.Body, name), "Recording is disabled", "%s has no effect while recording.enabled is false.", name)
			}
		}
	}
}

func (r *resolver) resolveVideobridge(d *Deployment) {
	v := r.raw.Videobridge
	if v == nil {
		v = &rawVideobridge{}
	}
	vb := &d.Videobridge
	vb.UDPPort = r.port(v.Body, "udp_port", v.UDPPort, DefaultJVBUDPPort)
	vb.StunServers = v.StunServers
	vb.Websockets = boolOr(v.Websockets, false)
	vb.Nickname = strOr(v.Nickname, d.Host.Name)
	vb.Brewery = strOr(v.Brewery, "JvbBrewery")
	vb.HealthURL = strOr(v.HealthURL, defaultJVBHealthURL)
	for _, s := range vb.StunServers {
		if _, p, err := net.SplitHostPort(s); err != nil || p == "" {
			r.errf(at(v.Body, "stun_servers"), "Invalid STUN server", "%q must be host:port, e.g. \"%s:3478\".", s, d.Domain)
		}
		if strings.Contains(s, "jitsi.net") {
			r.warnf(at(v.Body, "stun_servers"), "External STUN dependency", "%q is Jitsi's public server; a self-hosted deployment usually points at its own coturn (the default when turn is enabled).", s)
		}
	}
	if !hclIdent(vb.Brewery) {
		r.errf(at(v.Body, "brewery"), "Invalid brewery name", "The bridge brewery is a MUC room node such as \"JvbBrewery\".")
	}
	r.checkURL(v.Body, "health_url", vb.HealthURL)
}

func (r *resolver) checkURL(body hcl.Body, name, s string) {
	if s == "" {
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.errf(at(body, name), "Invalid URL", "%s must be an http(s) URL such as %q.", name, defaultJVBHealthURL)
	}
}

func (r *resolver) resolveJicofo(d *Deployment) {
	j := r.raw.Jicofo
	if j == nil {
		j = &rawJicofo{}
	}
	d.Jicofo.MaxAudioSenders = intOr(j.MaxAudioSenders, 999999)
	d.Jicofo.MaxVideoSenders = intOr(j.MaxVideoSenders, 999999)
	if d.Jicofo.MaxAudioSenders < 1 || d.Jicofo.MaxVideoSenders < 1 {
		r.errf(at(j.Body, "max_audio_senders"), "Invalid sender limit", "max_audio_senders and max_video_senders must be at least 1.")
	}
	d.Jicofo.HealthURL = strOr(j.HealthURL, defaultJicofoHealthURL)
	r.checkURL(j.Body, "health_url", d.Jicofo.HealthURL)
}

func (r *resolver) resolveTURN(d *Deployment) {
	t := r.raw.TURN
	if t == nil {
		t = &rawTURN{}
	}
	tu := &d.TURN
	tu.Enabled = boolOr(t.Enabled, true)
	tu.Host = strOr(t.Host, d.Domain)
	tu.HostSet = t.Host != nil
	turnFromAddress := false
	if t.Host == nil && d.MultiHost() {
		// The TURN server clients get from Prosody is the coturn host,
		// not the web front the domain points at.
		// With shards: this host's shard's coturn, else the first one.
		// With a front the domain points at HAProxy, so the coturn
		// host's address is right even beside nginx.
		cs := d.ShardHostsWith(Coturn)
		if len(cs) == 0 {
			cs = d.HostsWith(Coturn)
		}
		if len(cs) == 1 || len(cs) > 0 && d.HasFront() {
			if (d.HasFront() || !cs[0].HasRole(Nginx)) && cs[0].Address != "" {
				tu.Host, turnFromAddress = cs[0].Address, true
			}
		}
	}
	tu.Port = r.port(t.Body, "port", t.Port, DefaultTURNPort)
	tu.TLSPort = r.port(t.Body, "tls_port", t.TLSPort, DefaultTURNTLSPort)
	tu.Realm = strOr(t.Realm, d.Domain)
	tu.RelayMin = intOr(t.RelayMinPort, 0)
	tu.RelayMax = intOr(t.RelayMaxPort, 0)
	tu.TTL = r.duration(t.Body, "credential_ttl", t.CredentialTTL, defaultTURNCredTTL, time.Minute)
	tu.DeniedPeerPrivate = boolOr(t.DenyPrivatePeers, true)
	if (tu.RelayMin == 0) != (tu.RelayMax == 0) {
		r.errf(at(t.Body, "relay_min_port"), "Incomplete relay range", "Set both relay_min_port and relay_max_port, or neither (coturn's default range 49152-65535 applies).")
	} else if tu.RelayMin != 0 && (tu.RelayMin < 1024 || tu.RelayMax > 65535 || tu.RelayMin >= tu.RelayMax) {
		r.errf(at(t.Body, "relay_min_port"), "Invalid relay range", "The relay range must satisfy 1024 <= relay_min_port < relay_max_port <= 65535 (got %d-%d).", tu.RelayMin, tu.RelayMax)
	}
	if !validDomain(tu.Host) && !(turnFromAddress && net.ParseIP(tu.Host) != nil) && (t.Host != nil || !r.badDomain) {
		r.errf(at(t.Body, "host"), "Invalid TURN host", "%q is not a DNS name clients can resolve.", tu.Host)
	}
	if msg := lineProblem(tu.Realm); msg != "" && (t.Realm != nil || !r.badDomain) {
		r.errf(at(t.Body, "realm"), "Invalid TURN realm", "turn.realm %s: it is written as realm=VALUE on one line of turnserver.conf.", msg)
	}
	if sec, inline, ok := r.secret(t.Secret, "secret"); ok {
		tu.Secret = sec
		if strings.TrimSpace(sec.Reveal()) != sec.Reveal() {
			r.errf(at(t.Body, "secret"), "TURN secret has surrounding white space", "The secret starts or ends with white space (often a trailing newline from a file). Wrap it: trimspace(file(\"...\")).")
		}
		if why := WeakSecret(sec.Reveal()); why != "" {
			r.errf(at(t.Body, "secret"), "Weak TURN secret", "The TURN shared secret can be guessed: %s. Anyone who guesses it can mint TURN credentials and relay through this server. Generate one with: %s, or omit it to have one generated.", why, GenerateSecretHint)
		}
		if n := len(sec.Reveal()); n < 16 {
			r.errf(at(t.Body, "secret"), "TURN secret too short", "The TURN shared secret must be at least 16 characters (it has %d). Or omit it: jitsi-agent then generates one and keeps it in the state directory.", n)
		}
		if inline {
			r.warnf(at(t.Body, "secret"), "Secret written inline", "The TURN secret is a literal in the spec; use env() or file(), or omit it to have one generated.")
		}
	}
	if !tu.Enabled && d.Videobridge.StunServers == nil {
		d.Videobridge.StunServers = []string{}
	}
	if tu.Enabled && d.Videobridge.StunServers == nil {
		d.Videobridge.StunServers = []string{net.JoinHostPort(tu.Host, strconv.Itoa(tu.Port))}
	}
	if !tu.Enabled && t.Body != nil {
		for _, name := range []string{"secret", "host", "port", "tls_port", "realm", "relay_min_port", "relay_max_port"} {
			if has(t.Body, name) {
				r.warnf(at(t.Body, name), "TURN is disabled", "%s has no effect while turn.enabled is false.", name)
			}
		}
	}
}

func (r *resolver) resolveTLS(d *Deployment) {
	t := r.raw.TLS
	if t == nil {
		t = &rawTLS{}
	}
	d.TLS.Certificate = strOr(t.Certificate, "/etc/jitsi/meet/"+d.Domain+".crt")
	d.TLS.Key = strOr(t.Key, "/etc/jitsi/meet/"+d.Domain+".key")
	for name, p := range map[string]string{"certificate": d.TLS.Certificate, "key": d.TLS.Key} {
		if !filepath.IsAbs(p) {
			r.errf(at(t.Body, name), "Path must be absolute", "tls.%s is read by nginx, Prosody and coturn; give an absolute path.", name)
		} else if msg := nginxProblem(p); msg != "" && (has(t.Body, name) || !r.badDomain) {
			r.errf(at(t.Body, name), "Path not usable", "tls.%s %s.", name, msg)
		}
	}
	d.TLS.ShardCA = strOr(t.ShardCA, FrontSystemCA)
	if d.TLS.ShardCA != FrontSystemCA {
		if !filepath.IsAbs(d.TLS.ShardCA) {
			r.errf(at(t.Body, "shard_ca"), "Path must be absolute", "tls.shard_ca is read by HAProxy on the front host; give an absolute path, or leave it unset for the system's trust store (%s).", FrontSystemCA)
		} else if !haproxyPath().MatchString(d.TLS.ShardCA) {
			r.errf(at(t.Body, "shard_ca"), "Path not usable", "tls.shard_ca %q: HAProxy's configuration takes it as one word; use letters, digits and . _ - + / only.", d.TLS.ShardCA)
		}
	}
	if t.ACME == nil {
		return
	}
	a := t.ACME
	ac := &ACME{}
	ac.Email = strOr(a.Email, "")
	if ac.Email != "" && (!strings.Contains(ac.Email, "@") || strings.ContainsAny(ac.Email, " \t\n")) {
		r.errf(at(a.Body, "email"), "Invalid email", "%q is not an email address; the CA uses it for account recovery.", ac.Email)
	}
	ac.Staging = boolOr(a.Staging, false)
	switch {
	case a.Directory != nil && ac.Staging:
		r.errf(at(a.Body, "staging"), "Both staging and directory set", "staging = true selects Let's Encrypt's staging directory; with an explicit directory URL, drop staging.")
	case a.Directory != nil:
		ac.DirectoryURL = *a.Directory
	case ac.Staging:
		ac.DirectoryURL = LetsEncryptStaging
	default:
		ac.DirectoryURL = LetsEncryptProduction
	}
	if u, err := url.Parse(ac.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" {
		r.errf(at(a.Body, "directory"), "Invalid ACME directory", "%q must be an https URL of an ACME directory (default %s).", ac.DirectoryURL, LetsEncryptProduction)
	}
	ac.ExtraNames = a.ExtraNames
	for _, n := range ac.ExtraNames {
		if strings.HasPrefix(n, "*.") {
			r.errf(at(a.Body, "extra_names"), "Wildcards need DNS-01", "%q is a wildcard; HTTP-01 (the only challenge jitsi-agent uses) cannot validate wildcards. List the names explicitly.", n)
		} else if !validDomain(n) {
			r.errf(at(a.Body, "extra_names"), "Invalid name", "%q is not a DNS name.", n)
		}
	}
	ac.RSA = boolOr(a.RSA, false)
	ac.RenewBefore = r.duration(a.Body, "renew_before", a.RenewBefore, 0, 0)
	if ac.RenewBefore > 30*24*time.Hour {
		r.warnf(at(a.Body, "renew_before"), "Renewal window capped", "autocert renews at most 30 days before expiry; renew_before = %s acts as \"720h\".", ac.RenewBefore)
	}
	ac.Listen = strOr(a.Listen, DefaultACMEListen)
	r.loopback(a.Body, "listen", ac.Listen, true)
	d.TLS.ACME = ac
}

// loopback checks a host:port and, when must is set, that it is loopback.
// An invalid address is reported here and counts as loopback, so callers do
// not pile a second, misleading error on top.
func (r *resolver) loopback(body hcl.Body, name, addr string, must bool) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		r.errf(at(body, name), "Invalid listen address", "%s must be host:port, e.g. \"127.0.0.1:9137\".", name)
		return true
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		r.errf(at(body, name), "Invalid listen address", "%s: %q is not a port number (1-65535).", name, port)
		return true
	}
	ip := net.ParseIP(host)
	isLoop := host == "localhost" || (ip != nil && ip.IsLoopback())
	if must && !isLoop {
		r.errf(at(body, name), "Listener must be on loopback", "%s = %q would expose it beyond this host; use 127.0.0.1 or [::1] (nginx proxies to it).", name, addr)
	}
	return isLoop
}

func (r *resolver) resolveWeb(d *Deployment) {
	w := r.raw.Web
	if w == nil {
		w = &rawWeb{}
	}
	d.Web.HTTPPort = r.port(w.Body, "http_port", w.HTTPPort, 80)
	d.Web.HTTPSPort = r.port(w.Body, "https_port", w.HTTPSPort, 443)
	d.Web.Root = strOr(w.Root, "/usr/share/jitsi-meet")
	d.Web.HTTPRedirect = boolOr(w.HTTPRedirect, true)
	if !filepath.IsAbs(d.Web.Root) {
		r.errf(at(w.Body, "root"), "Path must be absolute", "web.root is where the jitsi-meet-web package installs the app (default /usr/share/jitsi-meet).")
	} else if msg := nginxProblem(d.Web.Root); msg != "" {
		r.errf(at(w.Body, "root"), "Path not usable", "web.root %s.", msg)
	}
	if d.TLS.ACME != nil && d.Web.HTTPPort != 80 {
		r.warnf(at(w.Body, "http_port"), "ACME needs port 80", "Let's Encrypt validates HTTP-01 on port 80; with http_port = %d a port forward from 80 must exist.", d.Web.HTTPPort)
	}
}

// nginxProblem mirrors what the nginx template escaping refuses, so the
// spec reports it with a location instead of the render failing later.
var haproxyPath = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/[A-Za-z0-9._/+-]{1,1000}$`) })

func nginxProblem(s string) string {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return "contains a control character (a newline?)"
		case c == '$':
			return "contains \"$\", which nginx would expand as a variable"
		}
	}
	return ""
}

// lineProblem mirrors the "line" escaping of key=value files.
func lineProblem(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return "contains a control character (a newline?)"
		}
	}
	if strings.TrimSpace(s) != s {
		return "has leading or trailing white space"
	}
	return ""
}

// conditionAttr names the spec attribute behind a component's condition.
var conditionAttr = map[files.Condition]string{files.TURN: "turn.enabled", files.Recording: "meeting.recording.enabled", files.FirewallOn: "firewall.enabled"}

func (r *resolver) resolveServices(d *Deployment) {
	d.Services = map[string]Service{}
	for _, c := range files.Components() {
		d.Services[c.Name] = Service{Component: c.Name, Unit: c.Unit, Enabled: d.Feature(c.When), Restart: RestartImmediate}
	}
	seen := map[string]bool{}
	for _, s := range r.raw.Services {
		if !slices.Contains(Components, s.Name) {
			hint := ""
			if c := closest(s.Name, Components); c != "" {
				hint = fmt.Sprintf(" Did you mean %q?", c)
			}
			r.errf(s.NameRange.Ptr(), "Unknown service", "service %q: the components are %s.%s Units of your own go in a template's notify list.", s.Name, quoteList(Components), hint)
			continue
		}
		if seen[s.Name] {
			r.errf(s.DefRange.Ptr(), "Duplicate service", "service %q is configured twice.", s.Name)
			continue
		}
		seen[s.Name] = true
		sv := d.Services[s.Name]
		sv.Unit = strOr(s.Unit, sv.Unit)
		if !validUnit(sv.Unit) {
			r.errf(at(s.Body, "unit"), "Invalid unit name", "%q is not a systemd unit name such as \"jicofo.service\".", sv.Unit)
		}
		sv.Enabled = boolOr(s.Enabled, sv.Enabled)
		if c, ok := files.Lookup(s.Name); ok && s.Enabled != nil && *s.Enabled && !d.Feature(c.When) {
			r.warnf(at(s.Body, "enabled"), "Service enabled without its configuration",
				"%s is off, so jitsi-agent renders none of %s's files here: enabled = true runs its unit with whatever configuration its package left. Turn %s on, or remove enabled.", conditionAttr[c.When], s.Name, conditionAttr[c.When])
		}
		sv.Restart = r.oneOf(s.Body, "restart", s.Restart, RestartImmediate, RestartImmediate, RestartDefer)
		if sv.Restart == RestartDefer && s.Name == Nginx {
			r.warnf(at(s.Body, "restart"), "Reloads are never deferred", "%s picks up changes by reload without ending meetings; restart = \"defer\" only matters when a restart is needed.", s.Name)
		}
		sv.HealthURL = strOr(s.HealthURL, "")
		r.checkURL(s.Body, "health_url", sv.HealthURL)
		if s.Drift != nil {
			sv.Drift = r.oneOf(s.Body, "drift", s.Drift, DriftRestore, DriftRestore, DriftReport)
		}
		d.Services[s.Name] = sv
	}
	if d.Services[JVB].HealthURL == "" {
		sv := d.Services[JVB]
		sv.HealthURL = d.Videobridge.HealthURL
		d.Services[JVB] = sv
	}
	if d.Services[Jicofo].HealthURL == "" {
		sv := d.Services[Jicofo]
		sv.HealthURL = d.Jicofo.HealthURL
		d.Services[Jicofo] = sv
	}
}

var unitRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9:_.@\\-]+\.(service|socket|target|timer|path|mount)$`)
}) // compiled on first use, not at every start

func validUnit(s string) bool { return unitRe().MatchString(s) }

// BuiltinPaths are the files the built-in components render for domain
// (internal/files); user templates may not write over them.
func BuiltinPaths(domain string) []string { return files.Paths(domain) }

var ownerRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_][a-z0-9_-]*\$?$|^[0-9]+$`) }) // compiled on first use, not at every start

// TLSPaths are the certificate and key files jitsi-agent deploys for nginx,
// Prosody and coturn (internal/certs writes them; a test keeps both lists
// in step).
func TLSPaths(d *Deployment) []string {
	out := []string{d.TLS.Certificate, d.TLS.Key,
		"/etc/prosody/certs/" + d.Domain + ".crt", "/etc/prosody/certs/" + d.Domain + ".key",
		"/etc/coturn/certs/" + d.Domain + ".fullchain.pem", "/etc/coturn/certs/" + d.Domain + ".privkey.pem"}
	if d.TLS.ACME != nil {
		nginx := []string{d.TLS.Certificate, d.TLS.Key}
		for _, n := range d.TLS.ACME.ExtraNames {
			nginx = append(nginx, filepath.Join(filepath.Dir(d.TLS.Certificate), n+".crt"), filepath.Join(filepath.Dir(d.TLS.Key), n+".key"))
		}
		out = append(out, nginx[2:]...)
		if d.TLS.ACME.RSA {
			for _, p := range nginx {
				ext := filepath.Ext(p)
				out = append(out, strings.TrimSuffix(p, ext)+"-rsa"+ext)
			}
		}
	}
	return out
}

func (r *resolver) resolveTemplates(d *Deployment) {
	builtin := map[string]bool{}
	for _, p := range append(BuiltinPaths(d.Domain), TLSPaths(d)...) {
		builtin[p] = true
	}
	dests := map[string]string{}
	names := map[string]bool{}
	type source struct {
		err     string
		notText bool
		secret  bool
		text    []byte
	}
	sources := map[string]source{}
	d.Templates = make([]Template, 0, len(r.raw.Templates))
	for _, t := range r.raw.Templates {
		if names[t.Name] {
			r.errf(t.DefRange.Ptr(), "Duplicate template", "template %q is declared twice.", t.Name)
			continue
		}
		names[t.Name] = true
		tp := Template{Name: t.Name, Range: t.DefRange, Owner: strOr(t.Owner, ""), Group: strOr(t.Group, ""), Notify: t.Notify, Check: strOr(t.Check, "")}
		tp.Source = r.path(t.Source)
		src, seen := sources[tp.Source]
		if !seen { // many templates may share one source: read and scan it once
			b, err := r.opts.ReadFile(tp.Source)
			switch {
			case err != nil:
				src.err = fmt.Sprintf("%v. Relative sources resolve against the spec's directory (%s)", err, r.specDir)
			case input.Text(string(b)) != nil:
				src.err = fmt.Sprintf("%s %v", tp.Source, input.Text(string(b)))
				src.notText = true
			default:
				src.secret = readsSecret(t.Name, b)
				src.text = b
			}
			sources[tp.Source] = src
		}
		switch {
		case src.notText:
			r.errf(at(t.Body, "source"), "Template source is not text", "template %q: %s.", t.Name, src.err)
		case src.err != "":
			r.errf(at(t.Body, "source"), "Template source not readable", "template %q: %s.", t.Name, src.err)
		}
		tp.ReadsSecret = src.secret
		tp.SourceText = src.text
		tp.Destination = filepath.Clean(t.Destination)
		if msg := r.destinationProblem(d, t.Destination); msg != "" {
			summary := "Destination not allowed"
			if !filepath.IsAbs(t.Destination) {
				summary = "Destination must be absolute"
			}
			r.errf(at(t.Body, "destination"), summary, "template %q: %s", t.Name, msg)
		} else {
			switch {
			case builtin[tp.Destination]:
				r.errf(at(t.Body, "destination"), "Destination is a built-in file", "template %q would overwrite %s, which jitsi-agent renders itself. To change a built-in file, override its template in templates_dir.", t.Name, tp.Destination)
			case dests[tp.Destination] != "":
				r.errf(at(t.Body, "destination"), "Two templates write one file", "templates %q and %q both write %s.", dests[tp.Destination], t.Name, tp.Destination)
			}
		}
		dests[tp.Destination] = t.Name
		defMode := "0644"
		if tp.ReadsSecret {
			defMode = "0640" // the file carries the JWT secret
		}
		mode := strOr(t.Mode, defMode)
		m, err := strconv.ParseUint(mode, 8, 32)
		if err != nil || m > 0o7777 || len(mode) < 3 {
			r.errf(at(t.Body, "mode"), "Invalid mode", "mode must be an octal string such as \"0640\", got %q.", mode)
		} else {
			tp.Mode = uint32(m)
			if m&0o002 != 0 {
				r.errf(at(t.Body, "mode"), "World-writable output", "mode %s lets any user rewrite %s; drop the o+w bit.", mode, tp.Destination)
			}
			if tp.ReadsSecret && m&0o004 != 0 {
				r.errf(at(t.Body, "mode"), "World-readable secret", "template %q reads .AppSecret, so mode %s would let any local user read the JWT signing secret from %s and mint tokens. Use \"0640\" with group = the app's group (or \"0600\").", t.Name, mode, tp.Destination)
			}
		}
		for name, v := range map[string]string{"owner": tp.Owner, "group": tp.Group} {
			if v != "" && !ownerRe().MatchString(v) {
				r.errf(at(t.Body, name), "Invalid "+name, "%q is not a user or group name.", v)
			}
		}
		for _, u := range tp.Notify {
			if !validUnit(u) {
				r.errf(at(t.Body, "notify"), "Invalid unit name", "template %q: notify entry %q is not a systemd unit name such as \"app-backend.service\".", t.Name, u)
			}
		}
		if t.Drift != nil {
			tp.Drift = r.oneOf(t.Body, "drift", t.Drift, DriftRestore, DriftRestore, DriftReport)
		}
		if tp.Check != "" {
			rest := checkPlaceholder().ReplaceAllString(tp.Check, "")
			if strings.Contains(rest, "{{") {
				r.errf(at(t.Body, "check"), "Unknown placeholder in check", "template %q: the check command may only use {{.Path}} (the staged file's path), e.g. check = \"/usr/bin/myapp --check {{.Path}}\".", t.Name)
			}
		}
		d.Templates = append(d.Templates, tp)
	}
}

// checkPlaceholder is the one placeholder a template's check command knows.
var checkPlaceholder = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\{\{\s*\.Path\s*\}\}`) }) // compiled on first use, not at every start

// CheckCommand expands {{.Path}} in a template's check command.
func CheckCommand(check, path string) string {
	return checkPlaceholder().ReplaceAllLiteralString(check, path)
}

// checkDestinationParents refuses a destination that is a directory of
// another managed file (a file cannot be both). Sorting makes it
// O(n log n): the paths under "dest/" follow dest+"/" in sorted order.
func (r *resolver) checkDestinationParents(d *Deployment) {
	all := append(append([]string{}, BuiltinPaths(d.Domain)...), TLSPaths(d)...)
	for _, t := range d.Templates {
		all = append(all, t.Destination)
	}
	sort.Strings(all)
	for _, t := range d.Templates {
		prefix := t.Destination + "/"
		i := sort.SearchStrings(all, prefix)
		if i < len(all) && strings.HasPrefix(all[i], prefix) {
			rg := t.Range
			r.errf(&rg, "Destination is a directory", "template %q writes %s, but %s is also managed, so %s must be a directory. Give the template a file path.", t.Name, t.Destination, all[i], t.Destination)
		}
	}
}

// destinationProblem explains why a template destination (as written) is
// refused, or returns "".
func (r *resolver) destinationProblem(d *Deployment, dest string) string {
	clean := filepath.Clean(dest)
	switch {
	case !filepath.IsAbs(dest):
		return fmt.Sprintf("destination %q must be an absolute path such as \"/srv/app/.env\".", dest)
	case strings.HasSuffix(dest, "/"):
		return fmt.Sprintf("destination %q ends with \"/\"; give the path of a file, such as %q.", dest, clean+"/config")
	case slices.Contains(strings.Split(dest, "/"), ".."):
		return fmt.Sprintf("destination %q contains \"..\"; write the path it means (%s) so what is written is what the spec says.", dest, clean)
	case clean != dest:
		return fmt.Sprintf("destination %q is not in clean form; write %q.", dest, clean)
	case clean == "/":
		return "destination \"/\" is a directory; give the path of a file."
	}
	for _, dir := range []string{"/proc", "/sys", "/dev", "/run/systemd"} {
		if clean == dir || strings.HasPrefix(clean, dir+"/") {
			return fmt.Sprintf("%s is under %s, which holds no configuration files.", clean, dir)
		}
	}
	if sd := filepath.Clean(d.StateDir); filepath.IsAbs(sd) && (clean == sd || strings.HasPrefix(clean, sd+"/")) {
		return fmt.Sprintf("%s is inside jitsi-agent's own state directory %s (generated secrets, manifest, backups); write somewhere else.", clean, sd)
	}
	if strings.Contains(filepath.Base(clean), TempMarker) {
		return fmt.Sprintf("the file name of %s contains %q, which marks jitsi-agent's temporary files.", clean, TempMarker)
	}
	return ""
}

// TempMarker is in the name of every temporary file jitsi-agent stages
// (kept in step with internal/fsys by a test).
const TempMarker = ".jitsi-agent-tmp-"

// readsSecret reports whether a user template's source refers to
// .AppSecret anywhere (field, variable or chain). A source that does not
// parse reads nothing here; render reports its syntax error.
func readsSecret(name string, src []byte) bool {
	if !strings.Contains(string(src), "AppSecret") {
		return false
	}
	trees := map[string]*parse.Tree{}
	tr := parse.New(name)
	tr.Mode = parse.SkipFuncCheck
	if _, err := tr.Parse(string(src), "", "", trees); err != nil {
		return true // unparsable: assume the worst for the mode
	}
	for _, t := range trees {
		if t != nil && t.Root != nil && nodeReadsSecret(t.Root) {
			return true
		}
	}
	return false
}

func nodeReadsSecret(n parse.Node) bool {
	has := func(idents []string) bool { return slices.Contains(idents, "AppSecret") }
	switch x := n.(type) {
	case nil:
		return false
	case *parse.ListNode:
		if x == nil {
			return false
		}
		for _, c := range x.Nodes {
			if nodeReadsSecret(c) {
				return true
			}
		}
	case *parse.ActionNode:
		return nodeReadsSecret(x.Pipe)
	case *parse.PipeNode:
		if x == nil {
			return false
		}
		for _, c := range x.Cmds {
			if nodeReadsSecret(c) {
				return true
			}
		}
	case *parse.CommandNode:
		for _, a := range x.Args {
			if nodeReadsSecret(a) {
				return true
			}
		}
	case *parse.FieldNode:
		return has(x.Ident)
	case *parse.VariableNode:
		return has(x.Ident)
	case *parse.ChainNode:
		return has(x.Field) || nodeReadsSecret(x.Node)
	case *parse.IfNode:
		return nodeReadsSecret(x.Pipe) || nodeReadsSecret(x.List) || nodeReadsSecret(x.ElseList)
	case *parse.RangeNode:
		return nodeReadsSecret(x.Pipe) || nodeReadsSecret(x.List) || nodeReadsSecret(x.ElseList)
	case *parse.WithNode:
		return nodeReadsSecret(x.Pipe) || nodeReadsSecret(x.List) || nodeReadsSecret(x.ElseList)
	case *parse.TemplateNode:
		return nodeReadsSecret(x.Pipe)
	}
	return false
}
func (r *resolver) resolveWatch(d *Deployment) {
	w := r.raw.Watch
	if w == nil {
		w = &rawWatch{}
	}
	d.Watch.Quiet = r.duration(w.Body, "quiet", w.Quiet, DefaultWatchQuiet, time.Millisecond)
	d.Watch.Max = r.duration(w.Body, "max", w.Max, DefaultWatchMax, time.Millisecond)
	d.Watch.Rescan = r.duration(w.Body, "rescan", w.Rescan, DefaultWatchRescan, time.Second)
	if d.Watch.Max < d.Watch.Quiet {
		r.errf(at(w.Body, "max"), "max shorter than quiet", "watch.max (%s) caps how long a burst of changes can postpone an apply; it must be at least watch.quiet (%s).", d.Watch.Max, d.Watch.Quiet)
	}
}

func (r *resolver) resolveMetrics(d *Deployment) {
	m := r.raw.Metrics
	if m == nil {
		d.Metrics.Listen = DefaultMetricsListen
		return
	}
	d.Metrics.Listen = strOr(m.Listen, DefaultMetricsListen)
	if d.Metrics.Listen != "" {
		r.loopback(m.Body, "listen", d.Metrics.Listen, true)
	}
}

func (r *resolver) resolveTokenAPI(d *Deployment) {
	t := r.raw.TokenAPI
	if t == nil {
		return
	}
	api := &TokenAPI{}
	api.Listen = strOr(t.Listen, DefaultTokenAPIListen)
	api.TLSCert = strOr(t.TLSCertificate, "")
	api.TLSKey = strOr(t.TLSKey, "")
	if (api.TLSCert == "") != (api.TLSKey == "") {
		r.errf(at(t.Body, "tls_certificate"), "Incomplete TLS settings", "Set both tls_certificate and tls_key for the token API, or neither.")
	}
	if isLoop := r.loopback(t.Body, "listen", api.Listen, false); !isLoop && api.TLSCert == "" {
		r.errf(at(t.Body, "listen"), "Exposed token API needs TLS", "listen = %q is reachable from other hosts and would send tokens in clear text. Keep it on 127.0.0.1 behind your backend, or set tls_certificate and tls_key.", api.Listen)
	}
	api.RateRPS = 50
	if t.RateLimit != nil {
		api.RateRPS = *t.RateLimit
	}
	api.Burst = intOr(t.Burst, 100)
	if api.RateRPS <= 0 || api.Burst < 1 {
		r.errf(at(t.Body, "rate_limit"), "Invalid rate limit", "rate_limit (requests per second per key) must be > 0 and burst >= 1.")
	}
	api.MaxBody = int64(intOr(t.MaxBody, 4096))
	if api.MaxBody < 256 || api.MaxBody > 1<<20 {
		r.errf(at(t.Body, "max_body_bytes"), "Invalid body limit", "max_body_bytes must be between 256 and 1048576.")
	}
	api.Unguessable = boolOr(t.UnguessableRooms, false)
	if d.Auth.JWT == nil {
		rg := t.DefRange
		r.errf(&rg, "Token API needs JWT auth", "token_api issues JWTs for the app's join endpoint; it only makes sense with auth \"jwt\".")
	}
	if len(t.Keys) == 0 {
		rg := t.DefRange
		r.errf(&rg, "Token API without keys", "Add at least one key \"name\" { key = env(\"JOIN_API_KEY\") } block: the endpoint never runs unauthenticated.")
	}
	seen := map[string]bool{}
	for _, k := range t.Keys {
		if seen[k.Name] {
			r.errf(k.DefRange.Ptr(), "Duplicate key", "key %q is declared twice.", k.Name)
			continue
		}
		seen[k.Name] = true
		sec, inline, ok := r.secret(k.Key, "key")
		if !ok {
			continue
		}
		if strings.TrimSpace(sec.Reveal()) != sec.Reveal() {
			r.errf(at(k.Body, "key"), "API key has surrounding white space", "key %q starts or ends with white space (often a trailing newline from a file), so clients sending the key would never match. Wrap it: trimspace(file(\"...\")).", k.Name)
		}
		if why := WeakSecret(sec.Reveal()); why != "" {
			r.errf(at(k.Body, "key"), "Weak API key", "key %q can be guessed: %s. Generate one with: %s", k.Name, why, GenerateSecretHint)
		}
		if len(sec.Reveal()) < 24 {
			r.errf(at(k.Body, "key"), "API key too short", "key %q must be at least 24 characters. Generate one with: openssl rand -hex 24", k.Name)
		}
		if inline {
			r.warnf(at(k.Body, "key"), "Secret written inline", "key %q is a literal in the spec; use env() or file().", k.Name)
		}
		api.Keys = append(api.Keys, APIKey{Name: k.Name, Key: sec, GrantHosts: boolOr(k.GrantHosts, false)})
	}
	r.resolveTokenProfiles(api, t.Profiles)
	d.TokenAPI = api
}

// profileName is what a join request may send as "profile".
var profileName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`) }) // compiled on first use, not at every start

func (r *resolver) resolveTokenProfiles(api *TokenAPI, raw []rawTokenProfile) {
	seen := map[string]bool{}
	for _, p := range raw {
		if !profileName().MatchString(p.Name) {
			r.errf(p.DefRange.Ptr(), "Invalid profile name", "profile %q: use 1-32 lower-case letters, digits, '-' or '_', starting with a letter (the app sends it as \"profile\").", p.Name)
			continue
		}
		if seen[p.Name] {
			r.errf(p.DefRange.Ptr(), "Duplicate profile", "profile %q is declared twice.", p.Name)
			continue
		}
		seen[p.Name] = true
		tp := TokenProfile{Name: p.Name, Moderator: strOr(p.Moderator, ProfileModeratorRequest)}
		tp.Lifetime = r.duration(p.Body, "lifetime", p.Lifetime, 0, time.Minute)
		if tp.Lifetime > MaxTokenLifetime {
			r.errf(at(p.Body, "lifetime"), "Token lifetime too long", "profile %q: lifetime must be at most %s, got %s; a leaked token stays usable that long.", p.Name, MaxTokenLifetime, tp.Lifetime)
		}
		switch tp.Moderator {
		case ProfileModeratorRequest, ProfileModeratorAlways, ProfileModeratorNever:
		default:
			r.errf(at(p.Body, "moderator"), "Invalid moderator rule", "profile %q: moderator must be \"request\" (is_host decides, for keys with grant_hosts), \"always\" or \"never\", got %q.", p.Name, tp.Moderator)
		}
		if p.Features != nil {
			tp.Features = map[string]bool{}
			for k, v := range p.Features {
				if !slices.Contains(JitsiFeatures, k) {
					r.errf(at(p.Body, "features"), "Unknown feature", "profile %q: feature %q is not one Jitsi knows; the features are %s.", p.Name, k, strings.Join(JitsiFeatures, ", "))
					continue
				}
				tp.Features[k] = v
			}
		}
		api.Profiles = append(api.Profiles, tp)
	}
}

// resolveProsody reads the prosody block (Prosody's listeners).
func (r *resolver) resolveProsody(d *Deployment) {
	p := r.raw.Prosody
	if p == nil {
		p = &rawProsody{}
	}
	d.Prosody.C2SPort = r.port(p.Body, "c2s_port", p.C2SPort, DefaultProsodyC2SPort)
	d.Prosody.HTTPPort = r.port(p.Body, "http_port", p.HTTPPort, DefaultProsodyHTTPPort)
	if p.S2SPort != nil {
		d.Prosody.S2SPort = r.port(p.Body, "s2s_port", p.S2SPort, 0)
	}
	if p.HTTPSPort != nil {
		d.Prosody.HTTPSPort = r.port(p.Body, "https_port", p.HTTPSPort, 0)
	}
}

// fieldRange is where a spec attribute ("web.https_port",
// "tls.acme.listen") is written, or its block when it is not.
func (r *resolver) fieldRange(field string) *hcl.Range {
	i := strings.LastIndex(field, ".")
	if i < 0 {
		return at(r.raw.Body, field)
	}
	block, name := field[:i], field[i+1:]
	raw := r.raw
	var body hcl.Body
	switch block {
	case "web":
		if raw.Web != nil {
			body = raw.Web.Body
		}
	case "videobridge":
		if raw.Videobridge != nil {
			body = raw.Videobridge.Body
		}
	case "jicofo":
		if raw.Jicofo != nil {
			body = raw.Jicofo.Body
		}
	case "turn":
		if raw.TURN != nil {
			body = raw.TURN.Body
		}
	case "metrics":
		if raw.Metrics != nil {
			body = raw.Metrics.Body
		}
	case "tls.acme":
		if raw.TLS != nil && raw.TLS.ACME != nil {
			body = raw.TLS.ACME.Body
		}
	case "token_api":
		if raw.TokenAPI != nil {
			body = raw.TokenAPI.Body
		}
	case "prosody":
		if raw.Prosody != nil {
			body = raw.Prosody.Body
		}
	}
	if body == nil || !has(body, name) {
		return nil
	}
	return at(body, name)
}

// checkPorts refuses specs whose services would fight over a port: every
// binding of the port model (Deployment.Ports), pairwise, with the
// location of an attribute the user wrote.
func (r *resolver) checkPorts(d *Deployment) {
	set := d.Ports()
	for _, c := range set.Clashes() {
		var rng *hcl.Range
		fields := c.Fields()
		for _, f := range fields {
			if rg := r.fieldRange(f); rg != nil {
				rng = rg
				break
			}
		}
		if rng == nil {
			rg := r.raw.Body.MissingItemRange()
			rng = &rg
		}
		fix := "give each its own port"
		if len(fields) > 0 {
			fix = "change " + strings.Join(fields, " or ")
		}
		r.errf(rng, "Port conflict", "%s; %s.", c.Error(), fix)
	}
}
