package doctor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

func writeVhost(t *testing.T, root, tokenLines, mucModules string) {
	t.Helper()
	testenv.WriteUnder(t, root, ProsodyVhostPath(testDomain), renderedVhost(tokenLines, mucModules))
	link := filepath.Join(root, ProsodyEnabledPath(testDomain))
	if _, err := os.Lstat(link); err == nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../conf.avail/"+testDomain+".cfg.lua", link); err != nil {
		t.Fatal(err)
	}
}

func TestVhostEnabled(t *testing.T) {
	root := t.TempDir()
	writeVhost(t, root, goodTokenLines, tokenVerification)
	c := newChecker(testDeployment(), Env{}, root)
	if p := c.vhostEnabled(ProsodyVhostPath(testDomain)); p != "" {
		t.Errorf("relative link: %s", p)
	}
	link := filepath.Join(root, ProsodyEnabledPath(testDomain))
	for _, tc := range []struct{ target, want string }{
		{ProsodyVhostPath(testDomain), ""}, // absolute link, resolved under root
		{"../conf.avail/other.cfg.lua", "which does not exist"},
		{"", "does not exist, so Prosody does not load"},
	} {
		os.Remove(link)
		if tc.target != "" {
			if err := os.Symlink(tc.target, link); err != nil {
				t.Fatal(err)
			}
		}
		p := c.vhostEnabled(ProsodyVhostPath(testDomain))
		if (tc.want == "") != (p == "") || !strings.Contains(p, tc.want) {
			t.Errorf("target %q: %q, want %q", tc.target, p, tc.want)
		}
	}
	// Missing link: token.config fails even though the values match.
	rs := c.checkToken(context.Background())
	expect(t, byID(t, rs, "token.config"), Fail, "Prosody does not load")
	// A plain copy in conf.d is fine.
	testenv.WriteUnder(t, root, ProsodyEnabledPath(testDomain), renderedVhost(goodTokenLines, tokenVerification))
	expect(t, byID(t, c.checkToken(context.Background()), "token.config"), Pass)
}

type fakeTokens struct {
	err error
	got *ProsodyTokenConfig
}

func (f fakeTokens) MintAndVerify(_ context.Context, d *spec.Deployment, cfg ProsodyTokenConfig) error {
	if f.got != nil {
		*f.got = cfg
	}
	return f.err
}

func TestTokenChecksPass(t *testing.T) {
	root := t.TempDir()
	writeVhost(t, root, goodTokenLines, tokenVerification)
	var got ProsodyTokenConfig
	rs := newChecker(testDeployment(), Env{Tokens: fakeTokens{got: &got}}, root).checkToken(context.Background())
	expect(t, byID(t, rs, "token.config"), Pass, `app_id "myapp"`)
	expect(t, byID(t, rs, "token.hs256"), Pass, "HS256 token")
	expect(t, byID(t, rs, "token.verify"), Pass)
	if got.AppID != "myapp" || got.AppSecret.Reveal() != testSecret || got.Algorithm != "HS256" ||
		!slices.Equal(got.Issuers, []string{"myapp"}) || !slices.Equal(got.Audiences, []string{"myapp"}) ||
		!got.DomainVerification || got.AllowEmpty || got.MapperDomainBase != testDomain || !got.TokenVerificationOnMUC ||
		got.File != ProsodyVhostPath(testDomain) {
		t.Errorf("TokenChecker got %+v", got)
	}
}

func TestTokenDefaultsFromProsody(t *testing.T) {
	// Only app_id/app_secret set: Prosody's defaults apply (issuers {app_id},
	// audiences {"*"}, domain verification on).
	root := t.TempDir()
	writeVhost(t, root, `    authentication = "token"
    app_id = "myapp"
    app_secret = "s3cr3t-value-never-printed"`, tokenVerification)
	tc, err := ReadProsodyTokenConfig(root+ProsodyVhostPath(testDomain), "x", testDomain)
	if err != nil {
		t.Fatal(err)
	}
	if tc.Algorithm != "HS256" || !slices.Equal(tc.Issuers, []string{"myapp"}) || !slices.Equal(tc.Audiences, []string{"*"}) || !tc.DomainVerification {
		t.Errorf("defaults: %+v", tc)
	}
	d := testDeployment()
	rs := newChecker(d, Env{}, root).checkToken(context.Background())
	// The spec restricts audiences to {"myapp"}, the file does not.
	expect(t, byID(t, rs, "token.config"), Fail, `asap_accepted_audiences is { "*" }, the spec says { "myapp" }`)
	expect(t, byID(t, rs, "token.hs256"), Pass) // a wider audience still accepts the spec's tokens
	expect(t, byID(t, rs, "token.verify"), Skip)
}

func TestTokenSecretMismatchNotRevealed(t *testing.T) {
	root := t.TempDir()
	writeVhost(t, root, strings.Replace(goodTokenLines, testSecret, "other-secret-in-file", 1), tokenVerification)
	rs := newChecker(testDeployment(), Env{Tokens: fakeTokens{err: errors.New("Invalid signature")}}, root).checkToken(context.Background())
	r := byID(t, rs, "token.config")
	expect(t, r, Fail, "app_secret differs from the spec's (values not shown)")
	r = byID(t, rs, "token.hs256")
	expect(t, r, Fail, "Invalid signature")
	if !strings.Contains(r.Fix, "app secret") || !strings.Contains(r.Fix, "jitsi-agent apply") {
		t.Errorf("fix %q", r.Fix)
	}
	expect(t, byID(t, rs, "token.verify"), Fail, "Invalid signature")
}

func TestTokenConfigMismatches(t *testing.T) {
	cases := []struct {
		name, from, to, muc string
		wantSeen            string
		st                  Status
		hsSeen              string
	}{
		{"app_id", `app_id = "myapp"`, `app_id = "other"`, tokenVerification, `app_id is "other", the spec says "myapp"`, Fail, ""},
		{"issuer", `asap_accepted_issuers = { "myapp" }`, `asap_accepted_issuers = { "someone" }`, tokenVerification, "asap_accepted_issuers", Fail, "invalid 'iss' claim"},
		{"audience", `asap_accepted_audiences = { "myapp" }`, `asap_accepted_audiences = { "jitsi" }`, tokenVerification, "asap_accepted_audiences", Fail, "invalid 'aud' claim"},
		{"algorithm", `signature_algorithm = "HS256"`, `signature_algorithm = "HS512"`, tokenVerification, `signature_algorithm is "HS512"`, Fail, "Invalid or incorrect alg"},
		{"domain verification", `enable_domain_verification = true`, `enable_domain_verification = false`, tokenVerification, "enable_domain_verification is false", Fail, ""},
		{"not token auth", `authentication = "token"`, `authentication = "jitsi-anonymous"`, tokenVerification, `authentication is "jitsi-anonymous"`, Fail, ""},
		{"no secret", `app_secret = "s3cr3t-value-never-printed"`, `--app_secret = "x"`, tokenVerification, "app_secret is not set", Fail, "Invalid signature"},
		{"no token_verification", "", "", "", "does not load token_verification", Warn, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			lines := goodTokenLines
			if c.from != "" {
				if !strings.Contains(lines, c.from) {
					t.Fatalf("fixture lacks %q", c.from)
				}
				lines = strings.Replace(lines, c.from, c.to, 1)
			}
			writeVhost(t, root, lines, c.muc)
			rs := newChecker(testDeployment(), Env{}, root).checkToken(context.Background())
			expect(t, byID(t, rs, "token.config"), c.st, c.wantSeen)
			if c.hsSeen != "" {
				expect(t, byID(t, rs, "token.hs256"), Fail, c.hsSeen)
			}
		})
	}
}

func TestTokenMapperBaseMissing(t *testing.T) {
	root := t.TempDir()
	writeVhost(t, root, goodTokenLines, tokenVerification)
	src := strings.Replace(renderedVhost(goodTokenLines, tokenVerification), `muc_mapper_domain_base = "meet.example.test"`, "", 1)
	testenv.WriteUnder(t, root, ProsodyVhostPath(testDomain), src)
	rs := newChecker(testDeployment(), Env{}, root).checkToken(context.Background())
	expect(t, byID(t, rs, "token.config"), Fail, "muc_mapper_domain_base", "Room does not exist")
}

func TestTokenNoFile(t *testing.T) {
	rs := newChecker(testDeployment(), Env{}, t.TempDir()).checkToken(context.Background())
	r := byID(t, rs, "token.config")
	expect(t, r, Fail, "does not exist")
	if !strings.Contains(r.Fix, "jitsi-agent apply") {
		t.Errorf("fix %q", r.Fix)
	}
	d := testDeployment()
	d.Auth.Mode, d.Auth.JWT = spec.AuthAnonymous, nil
	expect(t, newChecker(d, Env{}, t.TempDir()).checkToken(context.Background())[0], Skip)
}

func TestVerifyLikeProsody(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tc := ProsodyTokenConfig{AppSecret: spec.NewSecret("k"), Algorithm: "HS256", Issuers: []string{"app"}, Audiences: []string{"jitsi"}, DomainVerification: true}
	base := func() map[string]any {
		return map[string]any{"iss": "app", "aud": "jitsi", "sub": "Meet.Example.Test", "room": "*", "exp": now.Unix() + 60}
	}
	mint := func(alg, secret string, mod func(map[string]any)) string {
		c := base()
		if mod != nil {
			mod(c)
		}
		tok, err := mintHS(alg, secret, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cases := []struct {
		tok, want string
	}{
		{mint("HS256", "k", nil), ""},
		{mint("HS256", "wrong", nil), "Invalid signature"},
		{mint("HS512", "k", nil), "Invalid or incorrect alg"},
		{mint("HS256", "k", func(c map[string]any) { c["exp"] = now.Unix() }), "Not acceptable by exp (0 sec since expired)"},
		{mint("HS256", "k", func(c map[string]any) { c["exp"] = "1900000000" }), "exp must be number"},
		{mint("HS256", "k", func(c map[string]any) { c["nbf"] = now.Unix() + 1 }), "Not acceptable by nbf"},
		{mint("HS256", "k", func(c map[string]any) { c["nbf"] = now.Unix() }), ""},
		{mint("HS256", "k", func(c map[string]any) { c["iss"] = "x" }), "invalid 'iss' claim"},
		{mint("HS256", "k", func(c map[string]any) { delete(c, "aud") }), "'aud' claim is missing"},
		{mint("HS256", "k", func(c map[string]any) { c["aud"] = []string{"jitsi"} }), "invalid 'aud' claim"},
		{mint("HS256", "k", func(c map[string]any) { delete(c, "sub") }), "sub claim is missing"},
		{mint("HS256", "k", func(c map[string]any) { c["sub"] = "conference.meet.example.test" }), "Room and token mismatched"},
		{mint("HS256", "k", func(c map[string]any) { delete(c, "room") }), "room claim is missing"},
		{"a.b", "Invalid token"},
	}
	for i, c := range cases {
		err := verifyLikeProsody(c.tok, tc, "meet.example.test", now)
		if c.want == "" && err != nil {
			t.Errorf("%d: %v", i, err)
		}
		if c.want != "" && (err == nil || err.Error() != c.want) {
			t.Errorf("%d: got %v, want %q", i, err, c.want)
		}
	}
	// Wildcards: any issuer, any audience (arrays included), domain verification off.
	tc2 := tc
	tc2.Issuers, tc2.Audiences, tc2.DomainVerification = []string{"*"}, []string{"*"}, false
	tok := mint("HS256", "k", func(c map[string]any) { c["iss"] = "x"; c["aud"] = []string{"a"}; c["sub"] = "other" })
	if err := verifyLikeProsody(tok, tc2, "meet.example.test", now); err != nil {
		t.Errorf("wildcards: %v", err)
	}
	// Typ must be exactly JWT.
	h := b64.EncodeToString([]byte(`{"alg":"HS256","typ":"jwt"}`))
	parts := strings.Split(mint("HS256", "k", nil), ".")
	if err := verifyLikeProsody(h+"."+parts[1]+"."+parts[2], tc, "meet.example.test", now); err == nil || err.Error() != "Invalid typ" {
		t.Errorf("typ: %v", err)
	}
}
