package doctor

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"

	"github.com/jitsi-agent/jitsi-agent/internal/prosody"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// ProsodyTokenConfig is the token configuration Prosody actually runs with,
// read from the rendered vhost file (defaults applied as mod_auth_token
// does).
type ProsodyTokenConfig struct {
	// File is the host path the values were read from.
	File string
	// Authentication is the DOMAIN vhost's "authentication" value.
	Authentication string
	AppID          string
	AppSecret      spec.Secret
	// Algorithm is signature_algorithm (default "HS256").
	Algorithm string
	// Issuers is asap_accepted_issuers (default { app_id }).
	Issuers []string
	// Audiences is asap_accepted_audiences (default { "*" }).
	Audiences []string
	// DomainVerification is enable_domain_verification (default true).
	DomainVerification bool
	// AllowEmpty is allow_empty_token (default false).
	AllowEmpty bool
	// MapperDomainBase is muc_mapper_domain_base ("" = unset).
	MapperDomainBase string
	// TokenVerificationOnMUC: the conference MUC loads "token_verification".
	TokenVerificationOnMUC bool
}

// TokenChecker mints a token from the deployment, as the token package does
// for the app, and verifies it with the server-side rules under cfg. It
// returns nil when Prosody would accept it, otherwise an error whose message
// is Prosody's rejection reason (never a secret). The lead wires
// internal/token.
type TokenChecker interface {
	MintAndVerify(ctx context.Context, d *spec.Deployment, cfg ProsodyTokenConfig) error
}

// ProsodyVhostPath is where the rendered vhost lives.
func ProsodyVhostPath(domain string) string { return "/etc/prosody/conf.avail/" + domain + ".cfg.lua" }

// ReadProsodyTokenConfig scans the vhost file for domain (path is the host
// path to read, rootPath the path shown to people).
func ReadProsodyTokenConfig(path, shown, domain string) (ProsodyTokenConfig, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return ProsodyTokenConfig{}, errors.New(pathErr(err, shown))
	}
	cfg, err := prosody.ParseConfig(src)
	if err != nil {
		return ProsodyTokenConfig{}, fmt.Errorf("%s: %w", shown, err)
	}
	return tokenConfigFrom(cfg, shown, domain), nil
}

func tokenConfigFrom(cfg *prosody.Config, shown, domain string) ProsodyTokenConfig {
	str := func(key string) string {
		if v, ok := cfg.Lookup(domain, key); ok && v.Kind == prosody.LuaString {
			return v.Str
		}
		return ""
	}
	list := func(key string, def []string) []string {
		if v, ok := cfg.Lookup(domain, key); ok {
			if v.Kind == prosody.LuaTable {
				return v.List
			}
			if v.Kind == prosody.LuaString {
				return []string{v.Str}
			}
		}
		return def
	}
	boolean := func(key string, def bool) bool {
		if v, ok := cfg.Lookup(domain, key); ok && v.Kind == prosody.LuaBool {
			return v.Bool
		}
		return def
	}
	tc := ProsodyTokenConfig{
		File:             shown,
		Authentication:   str("authentication"),
		AppID:            str("app_id"),
		AppSecret:        spec.NewSecret(str("app_secret")),
		Algorithm:        str("signature_algorithm"),
		MapperDomainBase: str("muc_mapper_domain_base"),
	}
	if tc.Algorithm == "" {
		tc.Algorithm = "HS256"
	}
	tc.Issuers = list("asap_accepted_issuers", []string{tc.AppID})
	tc.Audiences = list("asap_accepted_audiences", []string{"*"})
	tc.DomainVerification = boolean("enable_domain_verification", true)
	tc.AllowEmpty = boolean("allow_empty_token", false)
	if muc := cfg.Section("conference." + domain); muc != nil {
		if v, ok := muc.Options["modules_enabled"]; ok && v.Kind == prosody.LuaTable {
			tc.TokenVerificationOnMUC = slices.Contains(v.List, "token_verification")
		}
	}
	return tc
}

func sameSet(a, b []string) bool {
	x := append([]string(nil), a...)
	y := append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	x = slices.Compact(x)
	y = slices.Compact(y)
	return slices.Equal(x, y)
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "{ " + strings.Join(q, ", ") + " }"
}

// specIssuers/specAudiences apply the spec's defaults.
func specIssuers(j *spec.JWT) []string {
	if len(j.Issuers) == 0 {
		return []string{j.AppID}
	}
	return j.Issuers
}

func specAudiences(j *spec.JWT) []string {
	if len(j.Audiences) == 0 {
		return []string{j.AppID}
	}
	return j.Audiences
}

func specAlg(j *spec.JWT) string {
	if j.Algorithm == "" {
		return "HS256"
	}
	return j.Algorithm
}

func (c *checker) checkToken(ctx context.Context) []Result {
	const idCfg, titleCfg = "token.config", "Prosody token settings match the spec"
	const idHS, titleHS = "token.hs256", "Spec-minted token verifies (built-in check)"
	const idLib, titleLib = "token.verify", "Token from the token package verifies"
	if c.d.Auth.Mode != spec.AuthJWT || c.d.Auth.JWT == nil {
		return []Result{skip("token", "Token authentication", "auth mode is "+c.d.Auth.Mode+", no tokens")}
	}
	if !c.runs(spec.Prosody) {
		return []Result{skip("token", "Token authentication", "this host does not run prosody")}
	}
	shown := ProsodyVhostPath(c.d.Domain)
	apply := "run 'jitsi-agent apply' to render " + shown + ", then restart prosody"
	tc, err := ReadProsodyTokenConfig(c.hostPath(shown), shown, c.d.Domain)
	if err != nil {
		return []Result{fail(idCfg, titleCfg, err.Error(), apply),
			skip(idHS, titleHS, "no Prosody config"), skip(idLib, titleLib, "no Prosody config")}
	}
	cfgRes := c.compareTokenConfig(tc, apply)
	if problem := c.vhostEnabled(shown); problem != "" {
		cfgRes = fail(cfgRes.ID, cfgRes.Title, problem+"; "+cfgRes.Seen, apply+" (it creates the conf.d link Prosody loads)")
	}
	out := []Result{cfgRes}
	out = append(out, c.builtinTokenCheck(tc, apply))
	if c.env.Tokens == nil {
		out = append(out, skip(idLib, titleLib, "token package not available in this build"))
	} else if err := c.env.Tokens.MintAndVerify(ctx, c.d, tc); err != nil {
		out = append(out, fail(idLib, titleLib, "Prosody would reject the token the app gets: "+err.Error(),
			tokenFix(err.Error(), apply)))
	} else {
		out = append(out, pass(idLib, titleLib, "a token minted by jitsi-agent's token package is accepted under "+shown+"'s settings"))
	}
	return out
}

// ProsodyEnabledPath is the conf.d link Prosody actually loads.
func ProsodyEnabledPath(domain string) string { return "/etc/prosody/conf.d/" + domain + ".cfg.lua" }

// vhostEnabled checks that conf.d holds the vhost (a link to the
// conf.avail file, as Debian does, or a copy); "" when it does.
func (c *checker) vhostEnabled(avail string) string {
	link := ProsodyEnabledPath(c.d.Domain)
	fi, err := os.Lstat(c.hostPath(link))
	if err != nil {
		return link + " does not exist, so Prosody does not load " + avail
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		return ""
	}
	target, err := os.Readlink(c.hostPath(link))
	if err != nil {
		return "cannot read the link " + link + ": " + err.Error()
	}
	resolved := target
	if !filepath.IsAbs(target) {
		resolved = filepath.Join(filepath.Dir(link), target)
	}
	if _, err := os.Stat(c.hostPath(resolved)); err != nil {
		return link + " points at " + target + ", which does not exist"
	}
	if filepath.Clean(resolved) != avail {
		return link + " points at " + target + ", not at " + avail
	}
	return ""
}

func (c *checker) compareTokenConfig(tc ProsodyTokenConfig, apply string) Result {
	const id, title = "token.config", "Prosody token settings match the spec"
	j := c.d.Auth.JWT
	var bad []string
	var warns []string
	if tc.Authentication != "token" {
		bad = append(bad, fmt.Sprintf("authentication is %q on VirtualHost %q, not \"token\"", tc.Authentication, c.d.Domain))
	}
	if tc.AppID != j.AppID {
		bad = append(bad, fmt.Sprintf("app_id is %q, the spec says %q", tc.AppID, j.AppID))
	}
	switch {
	case tc.AppSecret.IsZero():
		bad = append(bad, "app_secret is not set")
	case subtle.ConstantTimeCompare([]byte(tc.AppSecret.Reveal()), []byte(j.AppSecret.Reveal())) != 1:
		bad = append(bad, "app_secret differs from the spec's (values not shown)")
	}
	if tc.Algorithm != specAlg(j) {
		bad = append(bad, fmt.Sprintf("signature_algorithm is %q, the spec says %q", tc.Algorithm, specAlg(j)))
	}
	if !sameSet(tc.Issuers, specIssuers(j)) {
		bad = append(bad, fmt.Sprintf("asap_accepted_issuers is %s, the spec says %s", quoteList(tc.Issuers), quoteList(specIssuers(j))))
	}
	if !sameSet(tc.Audiences, specAudiences(j)) {
		bad = append(bad, fmt.Sprintf("asap_accepted_audiences is %s, the spec says %s", quoteList(tc.Audiences), quoteList(specAudiences(j))))
	}
	if tc.DomainVerification != j.DomainVerification {
		bad = append(bad, fmt.Sprintf("enable_domain_verification is %t, the spec says %t", tc.DomainVerification, j.DomainVerification))
	}
	if tc.AllowEmpty != j.AllowEmpty {
		bad = append(bad, fmt.Sprintf("allow_empty_token is %t, the spec says %t", tc.AllowEmpty, j.AllowEmpty))
	}
	if tc.MapperDomainBase != c.d.Domain {
		bad = append(bad, fmt.Sprintf("muc_mapper_domain_base is %q, must be %q (every join fails with \"Room does not exist\")", tc.MapperDomainBase, c.d.Domain))
	}
	if !tc.TokenVerificationOnMUC {
		warns = append(warns, "Component \"conference."+c.d.Domain+"\" does not load token_verification: any valid token can join or create any room")
	}
	if len(bad) > 0 {
		return fail(id, title, tc.File+": "+strings.Join(append(bad, warns...), "; "),
			apply+" (plan shows the difference; tokens the app mints follow the spec)")
	}
	if len(warns) > 0 {
		return warn(id, title, tc.File+": "+strings.Join(warns, "; "),
			"add \"token_verification\" to modules_enabled of the conference component ("+apply+")")
	}
	return pass(id, title, fmt.Sprintf("%s: token auth, app_id %q, %s, issuers %s, audiences %s, domain verification %t",
		tc.File, tc.AppID, tc.Algorithm, quoteList(tc.Issuers), quoteList(tc.Audiences), tc.DomainVerification))
}

// builtinTokenCheck mints an HS* token from the spec's values and verifies it
// with Prosody's rules (luajwtjitsi + token/util.lib.lua) under the file's
// values. It is independent of the token package.
func (c *checker) builtinTokenCheck(tc ProsodyTokenConfig, apply string) Result {
	const id, title = "token.hs256", "Spec-minted token verifies (built-in check)"
	j := c.d.Auth.JWT
	alg := specAlg(j)
	if newHMAC(alg, nil) == nil {
		return skip(id, title, "algorithm "+alg+" is not an HMAC algorithm")
	}
	now := c.env.Now()
	iss := j.AppID
	if !slices.Contains(specIssuers(j), iss) {
		iss = specIssuers(j)[0]
	}
	life := j.Lifetime
	if life <= 0 {
		life = time.Hour
	}
	claims := map[string]any{
		"iss": iss, "aud": specAudiences(j)[0], "sub": c.d.Domain, "room": "*",
		"iat": now.Unix(), "exp": now.Add(life).Unix(),
		"context": map[string]any{"user": map[string]any{"name": "jitsi-agent doctor"}},
	}
	tok, err := mintHS(alg, j.AppSecret.Reveal(), claims)
	if err != nil {
		return fail(id, title, "cannot mint a test token: "+err.Error(), "check auth.jwt in the spec")
	}
	if err := verifyLikeProsody(tok, tc, c.d.Domain, now); err != nil {
		return fail(id, title, fmt.Sprintf("Prosody would reject a %s token with iss %q, aud %q, sub %q: %v", alg, iss, claims["aud"], c.d.Domain, err),
			tokenFix(err.Error(), apply))
	}
	return pass(id, title, fmt.Sprintf("%s token (iss %q, aud %q, sub %q, room \"*\") verifies against %s", alg, iss, claims["aud"], c.d.Domain, tc.File))
}

// tokenFix maps a rejection reason to a fix.
func tokenFix(reason, apply string) string {
	switch {
	case strings.Contains(reason, "signature"):
		return "the app secret in the spec and in Prosody differ: " + apply + "; the app must sign with the spec's secret"
	case strings.Contains(reason, "iss"):
		return "set auth.jwt issuers to include the token issuer, or make the app use iss = app_id; " + apply
	case strings.Contains(reason, "aud"):
		return "make auth.jwt audiences include the audience the app sends; " + apply
	case strings.Contains(reason, "exp"), strings.Contains(reason, "nbf"):
		return "synchronise this host's clock with NTP (timedatectl set-ntp true); Prosody allows no leeway"
	case strings.Contains(reason, "alg"):
		return "make auth.jwt algorithm and Prosody's signature_algorithm agree; " + apply
	}
	return apply
}

func newHMAC(alg string, key []byte) hash.Hash {
	switch alg {
	case "HS256":
		return hmac.New(sha256.New, key)
	case "HS384":
		return hmac.New(sha512.New384, key)
	case "HS512":
		return hmac.New(sha512.New, key)
	}
	return nil
}

var b64 = base64.RawURLEncoding

func mintHS(alg, secret string, claims map[string]any) (string, error) {
	h, err := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	if err != nil {
		return "", fmt.Errorf("encode header: %w", err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	signing := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	m := newHMAC(alg, []byte(secret))
	if m == nil {
		return "", fmt.Errorf("unsupported algorithm %q", alg)
	}
	m.Write([]byte(signing))
	return signing + "." + b64.EncodeToString(m.Sum(nil)), nil
}

// verifyLikeProsody applies mod_auth_token's checks, with its messages.
func verifyLikeProsody(tok string, tc ProsodyTokenConfig, domain string, now time.Time) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return errors.New("Invalid token")
	}
	var hdr map[string]any
	hb, err := b64.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &hdr) != nil {
		return errors.New("Invalid header")
	}
	if hdr["typ"] != "JWT" {
		return errors.New("Invalid typ")
	}
	if hdr["alg"] != tc.Algorithm {
		return errors.New("Invalid or incorrect alg")
	}
	m := newHMAC(tc.Algorithm, []byte(tc.AppSecret.Reveal()))
	if m == nil {
		return errors.New("Invalid or incorrect alg")
	}
	m.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, m.Sum(nil)) {
		return errors.New("Invalid signature")
	}
	var cl map[string]any
	pb, err := b64.DecodeString(parts[1])
	if err != nil || json.Unmarshal(pb, &cl) != nil {
		return errors.New("Invalid payload")
	}
	if exp, ok := cl["exp"]; ok {
		f, isNum := exp.(float64)
		if !isNum {
			return errors.New("exp must be number")
		}
		if float64(now.Unix()) >= f {
			return fmt.Errorf("Not acceptable by exp (%d sec since expired)", now.Unix()-int64(f))
		}
	}
	if nbf, ok := cl["nbf"]; ok {
		f, isNum := nbf.(float64)
		if !isNum || float64(now.Unix()) < f {
			return errors.New("Not acceptable by nbf")
		}
	}
	iss, _ := cl["iss"].(string)
	if iss == "" || !(slices.Contains(tc.Issuers, iss) || slices.Contains(tc.Issuers, "*")) {
		return errors.New("invalid 'iss' claim")
	}
	aud, present := cl["aud"]
	if !present {
		return errors.New("'aud' claim is missing")
	}
	if !slices.Contains(tc.Audiences, "*") {
		as, isStr := aud.(string)
		if !isStr || !slices.Contains(tc.Audiences, as) {
			return errors.New("invalid 'aud' claim")
		}
	}
	sub, _ := cl["sub"].(string)
	if sub == "" {
		return errors.New("sub claim is missing")
	}
	if _, ok := cl["room"]; !ok {
		return errors.New("room claim is missing")
	}
	if tc.DomainVerification {
		s := strings.ToLower(sub)
		if s != "*" && s != strings.ToLower(domain) {
			return errors.New("Room and token mismatched")
		}
	}
	return nil
}
