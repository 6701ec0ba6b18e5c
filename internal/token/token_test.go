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
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

const (
	testSecret = "s3cret-0123456789-abcdefghijklmnop"
	testNow    = 1_800_000_000
)

func testConfig() Config {
	return Config{
		Domain:             "meet.example.com",
		Tenants:            true,
		AppID:              "my-app",
		Secret:             spec.NewSecret(testSecret),
		Algorithm:          "HS256",
		Audiences:          []string{"my-app"},
		DomainVerification: true,
		Now:                func() time.Time { return time.Unix(testNow, 0) },
	}
}

func newTokens(t testing.TB, mod func(*Config)) *Tokens {
	t.Helper()
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	tk, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func decodePart(t *testing.T, s string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("part %q: %v", s, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("part %s: %v", raw, err)
	}
	return m
}

func TestMintRoundTrip(t *testing.T) {
	tk := newTokens(t, nil)
	tok, err := tk.Mint(MintRequest{
		Room:     "Weekly Sync",
		User:     User{ID: "u1", Name: "Ada", Email: "ada@example.com", Avatar: "https://example.com/a.png", Moderator: true},
		Features: map[string]bool{"screen-sharing": false, "recording": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	if h := decodePart(t, parts[0]); h["alg"] != "HS256" || h["typ"] != "JWT" || len(h) != 2 {
		t.Errorf("header = %v", h)
	}
	p := decodePart(t, parts[1])
	want := map[string]any{"iss": "my-app", "aud": "my-app", "sub": "meet.example.com", "room": "weekly%20sync",
		"iat": float64(testNow), "nbf": float64(testNow - 10), "exp": float64(testNow + 7200)}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("claim %s = %#v, want %#v", k, p[k], v)
		}
	}
	user := p["context"].(map[string]any)["user"].(map[string]any)
	if user["id"] != "u1" || user["name"] != "Ada" || user["email"] != "ada@example.com" || user["moderator"] != true ||
		user["avatar"] != "https://example.com/a.png" {
		t.Errorf("context.user = %v", user)
	}
	feat := p["context"].(map[string]any)["features"].(map[string]any)
	if feat["screen-sharing"] != false || feat["recording"] != true {
		t.Errorf("context.features = %v", feat)
	}
	for _, top := range []string{"moderator", "name", "email", "audio", "video"} {
		if _, ok := p[top]; ok {
			t.Errorf("top-level %q is ignored by Jitsi and must not be minted", top)
		}
	}
	c, err := tk.Verify(tok, &Target{Room: "Weekly Sync"})
	if err != nil {
		t.Fatalf("verify own token: %v", err)
	}
	if c.Str("room") != "weekly%20sync" || c.Alg != "HS256" || c.Payload()["context"] == nil {
		t.Errorf("claims = %+v", c)
	}
	for _, other := range []string{"weekly%20sync", "WEEKLY SYNC", "Weekly%20Sync"} {
		if _, err := tk.Verify(tok, &Target{Room: other}); err != nil {
			t.Errorf("room %q is the same node; got %v", other, err)
		}
	}
}

func TestMintVariants(t *testing.T) {
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		tk := newTokens(t, func(c *Config) { c.Algorithm = alg })
		tok, err := tk.Mint(MintRequest{Room: "täst", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		p := decodePart(t, strings.Split(tok, ".")[1])
		if p["room"] != "t%c3%a4st" || p["exp"] != float64(testNow+3600) {
			t.Errorf("%s: payload %v", alg, p)
		}
		if _, err := tk.Verify(tok, &Target{Room: "täst"}); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
		other := newTokens(t, func(c *Config) {
			c.Algorithm = map[string]string{"HS256": "HS512", "HS384": "HS256", "HS512": "HS384"}[alg]
		})
		if _, err := other.Verify(tok, nil); err == nil || err.Error() != ReasonInvalidAlg {
			t.Errorf("%s token under another alg: %v", alg, err)
		}
	}
	tk := newTokens(t, nil)
	tok, err := tk.Mint(MintRequest{Room: "standup", Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if p := decodePart(t, strings.Split(tok, ".")[1]); p["sub"] != "acme" {
		t.Errorf("tenant sub = %v", p["sub"])
	}
	if _, err := tk.Verify(tok, &Target{Room: "standup", Tenant: "acme"}); err != nil {
		t.Errorf("tenant token: %v", err)
	}
	if _, err := tk.Verify(tok, &Target{Room: "standup", Tenant: "other"}); err == nil || err.Error() != ReasonMismatch {
		t.Errorf("tenant token in another tenant: %v", err)
	}
	if _, err := tk.Verify(tok, &Target{Room: "standup"}); err == nil || err.Error() != ReasonMismatch {
		t.Errorf("tenant token for the domain room: %v", err)
	}
	wild, err := tk.Mint(MintRequest{Room: "*"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Verify(wild, &Target{Room: "anything goes"}); err != nil {
		t.Errorf("wildcard room: %v", err)
	}
	// Issuers without the app id: iss is the first accepted issuer.
	tk2 := newTokens(t, func(c *Config) { c.Issuers = []string{"backend"}; c.Audiences = nil })
	tok2, _ := tk2.Mint(MintRequest{Room: "r"})
	if p := decodePart(t, strings.Split(tok2, ".")[1]); p["iss"] != "backend" || p["aud"] != "my-app" {
		t.Errorf("iss/aud = %v/%v", p["iss"], p["aud"])
	}
}

func TestMintErrors(t *testing.T) {
	tk := newTokens(t, nil)
	for name, r := range map[string]MintRequest{
		"reserved room":  {Room: "config.js"},
		"empty room":     {Room: ""},
		"stripped chars": {Room: "a/b"},
		"bad tenant":     {Room: "r", Tenant: "Acme_Corp"},
		"ttl too long":   {Room: "r", TTL: 365 * 24 * time.Hour},
		"ttl negative":   {Room: "r", TTL: -time.Second},
	} {
		if _, err := tk.Mint(r); err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), testSecret) {
			t.Errorf("%s: error leaks the secret", name)
		}
	}
	noTenants := newTokens(t, func(c *Config) { c.Tenants = false })
	if _, err := noTenants.Mint(MintRequest{Room: "r", Tenant: "acme"}); err == nil {
		t.Error("tenant without tenants enabled: no error")
	}
	if _, err := New(Config{Domain: "d", AppID: "a", Secret: spec.NewSecret("x"), Algorithm: "RS256"}); err == nil {
		t.Error("RS256 config accepted")
	}
	if _, err := New(Config{Domain: "d", AppID: "a"}); err == nil {
		t.Error("empty secret accepted")
	}
}

// craft builds a token with arbitrary header and payload JSON, signed with
// key using hash h (nil: signature part given literally as sig).
func craft(headerJSON, payloadJSON string, h func() hash.Hash, key string) string {
	in := base64.RawURLEncoding.EncodeToString([]byte(headerJSON)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payloadJSON))
	m := hmac.New(h, []byte(key))
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

const hdr = `{"alg":"HS256","typ":"JWT"}`

// body returns a valid payload with the given claims replaced (a nil value deletes).
func body(over map[string]any) string {
	p := map[string]any{"iss": "my-app", "aud": "my-app", "sub": "meet.example.com", "room": "weekly-sync",
		"iat": testNow - 60, "nbf": testNow - 60, "exp": testNow + 3600}
	for k, v := range over {
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	b, _ := json.Marshal(p)
	return string(b)
}

type rejectCase struct {
	name   string
	tok    string
	target *Target
	mod    func(*Config)
	reason string // "" = accepted
	stage  string
}

func rejectionCases() []rejectCase {
	good := craft(hdr, body(nil), sha256.New, testSecret)
	in := strings.Join(strings.Split(good, ".")[:2], ".")
	return []rejectCase{
		{name: "valid", tok: good, target: &Target{Room: "weekly-sync"}},
		{name: "valid, login only", tok: good},
		{name: "garbage", tok: "not-a-token", reason: ReasonInvalidToken},
		{name: "alg none, empty signature", tok: b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(body(nil)) + ".", reason: ReasonInvalidToken},
		{name: "alg none with a signature part", tok: craft(`{"alg":"none","typ":"JWT"}`, body(nil), sha256.New, testSecret), reason: ReasonInvalidAlg},
		{name: "HS/RS confusion (RS256 header, HMAC body)", tok: craft(`{"alg":"RS256","typ":"JWT"}`, body(nil), sha256.New, testSecret), reason: ReasonInvalidAlg},
		{name: "HS512 against HS256", tok: craft(`{"alg":"HS512","typ":"JWT"}`, body(nil), sha512.New, testSecret), reason: ReasonInvalidAlg},
		{name: "alg missing", tok: craft(`{"typ":"JWT"}`, body(nil), sha256.New, testSecret), reason: ReasonInvalidAlg},
		{name: "missing typ", tok: craft(`{"alg":"HS256"}`, body(nil), sha256.New, testSecret), reason: ReasonInvalidTyp},
		{name: "lowercase typ", tok: craft(`{"alg":"HS256","typ":"jwt"}`, body(nil), sha256.New, testSecret), reason: ReasonInvalidTyp},
		{name: "typ checked before alg", tok: craft(`{"alg":"RS256"}`, body(nil), sha256.New, testSecret), reason: ReasonInvalidTyp},
		{name: "bad header JSON", tok: craft(`{"alg":`, body(nil), sha256.New, testSecret), reason: ReasonInvalidHeader},
		{name: "bad body JSON", tok: craft(hdr, `{"iss"`, sha256.New, testSecret), reason: ReasonInvalidBody},
		{name: "bad signature base64", tok: in + ".!!!", reason: ReasonInvalidSignature},
		{name: "wrong secret", tok: craft(hdr, body(nil), sha256.New, "another-secret-another-secret-xx"), reason: ReasonInvalidSignature},
		{name: "tampered payload", tok: base64.RawURLEncoding.EncodeToString([]byte(hdr)) + "." + base64.RawURLEncoding.EncodeToString([]byte(body(map[string]any{"room": "*"}))) + "." + strings.Split(good, ".")[2], reason: ReasonInvalidSignature},
		{name: "expired", tok: craft(hdr, body(map[string]any{"exp": testNow - 5, "iat": testNow - 7205}), sha256.New, testSecret), reason: "Not acceptable by exp (5.0 sec since expired, valid for:7200.0 sec)"},
		{name: "expired without iat", tok: craft(hdr, body(map[string]any{"exp": testNow - 5, "iat": nil}), sha256.New, testSecret), reason: "Not acceptable by exp (5.0 sec since expired)"},
		{name: "exp == now is expired", tok: craft(hdr, body(map[string]any{"exp": testNow, "iat": nil}), sha256.New, testSecret), reason: "Not acceptable by exp (0.0 sec since expired)"},
		{name: "exp == now+1 is fine", tok: craft(hdr, body(map[string]any{"exp": testNow + 1}), sha256.New, testSecret)},
		{name: "no exp is fine", tok: craft(hdr, body(map[string]any{"exp": nil}), sha256.New, testSecret)},
		{name: "non-numeric exp", tok: craft(hdr, body(map[string]any{"exp": "1800003600"}), sha256.New, testSecret), reason: ReasonExpNotNumber},
		{name: "null exp", tok: craft(hdr, `{"iss":"my-app","aud":"my-app","sub":"meet.example.com","room":"r","exp":null}`, sha256.New, testSecret), reason: ReasonExpNotNumber},
		{name: "non-numeric nbf", tok: craft(hdr, body(map[string]any{"nbf": "soon"}), sha256.New, testSecret), reason: ReasonNbfNotNumber},
		{name: "future nbf", tok: craft(hdr, body(map[string]any{"nbf": testNow + 30}), sha256.New, testSecret), reason: ReasonNbf},
		{name: "nbf == now is fine", tok: craft(hdr, body(map[string]any{"nbf": testNow}), sha256.New, testSecret)},
		{name: "expiry checked before issuer", tok: craft(hdr, body(map[string]any{"exp": testNow - 1, "iat": nil, "iss": "x"}), sha256.New, testSecret), reason: "Not acceptable by exp (1.0 sec since expired)"},
		{name: "wrong iss", tok: craft(hdr, body(map[string]any{"iss": "other-app"}), sha256.New, testSecret), reason: ReasonIssInvalid},
		{name: "iss case differs", tok: craft(hdr, body(map[string]any{"iss": "My-App"}), sha256.New, testSecret), reason: ReasonIssInvalid},
		{name: "missing iss", tok: craft(hdr, body(map[string]any{"iss": nil}), sha256.New, testSecret), reason: ReasonIssMissing},
		{name: "iss wildcard accepted", tok: craft(hdr, body(map[string]any{"iss": "anyone"}), sha256.New, testSecret), mod: func(c *Config) { c.Issuers = []string{"*"} }},
		{name: "missing aud", tok: craft(hdr, body(map[string]any{"aud": nil}), sha256.New, testSecret), reason: ReasonAudMissing},
		{name: "wrong aud", tok: craft(hdr, body(map[string]any{"aud": "jitsi"}), sha256.New, testSecret), reason: ReasonAudInvalid},
		{name: "array aud, audiences restricted", tok: craft(hdr, body(map[string]any{"aud": []string{"my-app"}}), sha256.New, testSecret), reason: ReasonAudInvalid},
		{name: "array aud, audiences open", tok: craft(hdr, body(map[string]any{"aud": []string{"x"}}), sha256.New, testSecret), mod: func(c *Config) { c.Audiences = nil }},
		{name: "missing sub", tok: craft(hdr, body(map[string]any{"sub": nil}), sha256.New, testSecret), reason: ReasonSubMissing},
		{name: "missing sub, no domain verification", tok: craft(hdr, body(map[string]any{"sub": nil}), sha256.New, testSecret), mod: func(c *Config) { c.DomainVerification = false }, reason: ReasonSubMissing},
		{name: "missing room", tok: craft(hdr, body(map[string]any{"room": nil}), sha256.New, testSecret), reason: ReasonRoomMissing},
		{name: "missing room allowed", tok: craft(hdr, body(map[string]any{"room": nil}), sha256.New, testSecret), mod: func(c *Config) { c.AllowRoomless = true; c.DomainVerification = false }, target: &Target{Room: "any"}},
		{name: "wrong sub", tok: craft(hdr, body(map[string]any{"sub": "conference.meet.example.com"}), sha256.New, testSecret), target: &Target{Room: "weekly-sync"}, reason: ReasonMismatch, stage: StageJoin},
		{name: "wrong sub passes login", tok: craft(hdr, body(map[string]any{"sub": "conference.meet.example.com"}), sha256.New, testSecret)},
		{name: "sub case-insensitive", tok: craft(hdr, body(map[string]any{"sub": "MEET.example.com"}), sha256.New, testSecret), target: &Target{Room: "weekly-sync"}},
		{name: "sub wildcard", tok: craft(hdr, body(map[string]any{"sub": "*"}), sha256.New, testSecret), target: &Target{Room: "weekly-sync"}},
		{name: "wrong sub, no domain verification", tok: craft(hdr, body(map[string]any{"sub": "elsewhere"}), sha256.New, testSecret), target: &Target{Room: "weekly-sync"}, mod: func(c *Config) { c.DomainVerification = false }},
		{name: "wrong room", tok: good, target: &Target{Room: "other-room"}, reason: ReasonMismatch, stage: StageJoin},
		{name: "wrong room, no domain verification", tok: good, target: &Target{Room: "other-room"}, mod: func(c *Config) { c.DomainVerification = false }, reason: ReasonRoomMismatch, stage: StageJoin},
		{name: "unencoded room claim", tok: craft(hdr, body(map[string]any{"room": "weekly sync"}), sha256.New, testSecret), target: &Target{Room: "Weekly Sync"}, reason: ReasonMismatch, stage: StageJoin},
		{name: "encoded upper-case room claim", tok: craft(hdr, body(map[string]any{"room": "Weekly%20Sync"}), sha256.New, testSecret), target: &Target{Room: "Weekly Sync"}},
		{name: "tenant room, sub = tenant", tok: craft(hdr, body(map[string]any{"sub": "acme"}), sha256.New, testSecret), target: &Target{Room: "weekly-sync", Tenant: "acme"}},
		{name: "tenant room, sub = domain", tok: good, target: &Target{Room: "weekly-sync", Tenant: "acme"}, reason: ReasonMismatch, stage: StageJoin},
		{name: "alg none claim in body (current upstream has no such check)", tok: craft(hdr, body(map[string]any{"alg": "none"}), sha256.New, testSecret)},
		{name: "signature with padding", tok: good + "=="},
		{name: "empty segment skipped like Prosody", tok: strings.Replace(good, ".", "..", 1), target: &Target{Room: "weekly-sync"}},
	}
}

func TestVerifyRejections(t *testing.T) {
	for _, tc := range rejectionCases() {
		t.Run(tc.name, func(t *testing.T) {
			tk := newTokens(t, tc.mod)
			_, err := tk.Verify(tc.tok, tc.target)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var rej *Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("err = %v, want rejection %q", err, tc.reason)
			}
			if rej.Reason != tc.reason {
				t.Fatalf("reason %q, want %q", rej.Reason, tc.reason)
			}
			stage := tc.stage
			if stage == "" {
				stage = StageLogin
			}
			if rej.Stage != stage {
				t.Errorf("stage %s, want %s", rej.Stage, stage)
			}
			if rej.Fix == "" {
				t.Error("no fix hint")
			}
			if strings.Contains(rej.Reason+rej.Fix+fmt.Sprint(rej), testSecret) {
				t.Error("rejection leaks the secret")
			}
		})
	}
}

func TestMintRoomPattern(t *testing.T) {
	tk := newTokens(t, nil)
	tok, err := tk.Mint(MintRequest{RoomPattern: "^team%-%d+$"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tk.Verify(tok, &Target{Room: "team-42"})
	if err != nil {
		t.Fatalf("team-42: %v", err)
	}
	if c.Str("room") != "^team%-%d+$" || c.Payload()["context"].(map[string]any)["room"].(map[string]any)["regex"] != true {
		t.Errorf("claims %s", c.JSON)
	}
	if _, err := tk.Verify(tok, &Target{Room: "team-x"}); err == nil {
		t.Error("team-x accepted")
	}
	for pat, want := range map[string]string{
		"[":                                   "not a valid Lua pattern",
		"(a":                                  "unfinished capture",
		"%W+":                                 "upper-case",
		"*":                                   `use the room "*"`,
		"^a$" + "%1":                          "invalid capture index",
		strings.Repeat("a", MaxRoomPattern+1): "limit",
	} {
		if _, err := tk.Mint(MintRequest{RoomPattern: pat}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("pattern %q: %v, want %q", pat, err, want)
		}
	}
	if _, err := tk.Mint(MintRequest{RoomPattern: "a", Room: "a"}); err == nil {
		t.Error("room and pattern accepted")
	}
	noDV := newTokens(t, func(c *Config) { c.DomainVerification = false })
	if _, err := noDV.Mint(MintRequest{RoomPattern: "a.*"}); err == nil || !strings.Contains(err.Error(), "domain verification") {
		t.Errorf("pattern without domain verification: %v", err)
	}
}

func TestMintSize(t *testing.T) {
	tk := newTokens(t, nil)
	for name, u := range map[string]User{
		"name":   {Name: strings.Repeat("n", MaxUserName+1)},
		"id":     {ID: strings.Repeat("i", MaxUserID+1)},
		"email":  {Email: strings.Repeat("e", MaxUserEmail+1)},
		"avatar": {Avatar: strings.Repeat("a", MaxUserAvatar+1)},
	} {
		if _, err := tk.Mint(MintRequest{Room: "r", User: u}); err == nil || !strings.Contains(err.Error(), "context.user."+name) {
			t.Errorf("%s over the limit: %v", name, err)
		}
	}
	// Every field at its limit, escaped to the maximum, a long room: the
	// token would not fit in a URL, and mint says so.
	esc := strings.Repeat("<", MaxUserName)
	_, err := tk.Mint(MintRequest{Room: strings.Repeat("ä", 170), User: User{ID: esc, Name: esc, Email: strings.Repeat("<", MaxUserEmail),
		Avatar: strings.Repeat("<", MaxUserAvatar)}})
	if err == nil || !strings.Contains(err.Error(), "bytes reach Prosody") {
		t.Errorf("oversized token: %v", err)
	}
	tok, err := tk.Mint(MintRequest{Room: "weekly-sync", User: User{ID: strings.Repeat("i", MaxUserID), Name: strings.Repeat("n", MaxUserName),
		Email: strings.Repeat("e", MaxUserEmail), Avatar: strings.Repeat("a", 1024)}})
	if err != nil || len(tok) > MaxTokenBytes || CheckSize(tok) != nil {
		t.Errorf("ordinary large token: %d bytes, %v", len(tok), err)
	}
	if CheckSize(strings.Repeat("a", MaxTokenBytes+1)) == nil {
		t.Error("CheckSize accepts an oversized token")
	}
}

func TestLuaNumber(t *testing.T) {
	for f, want := range map[float64]string{5: "5.0", 0: "0.0", -3: "-3.0", 1.5: "1.5", 1e15: "1e+15", 7200: "7200.0", 1800000000: "1800000000.0"} {
		if got := luaNumber(f); got != want {
			t.Errorf("luaNumber(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestParseFeatures(t *testing.T) {
	f, err := ParseFeatures("screen-sharing=false, recording=true,lobby")
	if err != nil || len(f) != 3 || f["screen-sharing"] || !f["recording"] || !f["lobby"] {
		t.Fatalf("ParseFeatures = %v, %v", f, err)
	}
	if _, err := ParseFeatures("screensharing=false"); err == nil || !strings.Contains(err.Error(), "screen-sharing") {
		t.Errorf("unknown feature: %v", err)
	}
	if _, err := ParseFeatures("recording=maybe"); err == nil {
		t.Error("bad value accepted")
	}
}

func TestFromDeployment(t *testing.T) {
	d := &spec.Deployment{Domain: "meet.example.com", Auth: spec.Auth{Mode: spec.AuthJWT, JWT: &spec.JWT{
		AppID: "my-app", AppSecret: spec.NewSecret(testSecret), Algorithm: "HS256", Issuers: []string{"my-app"},
		Audiences: []string{"my-app"}, Lifetime: 90 * time.Minute, DomainVerification: true}}}
	cfg, err := FromDeployment(d)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AppID != "my-app" || cfg.Lifetime != 90*time.Minute || !cfg.DomainVerification || cfg.Secret.Reveal() != testSecret {
		t.Errorf("cfg = %+v", cfg)
	}
	if s := fmt.Sprintf("%+v %#v", cfg, cfg); strings.Contains(s, testSecret) {
		t.Error("config prints the secret")
	}
	if _, err := FromDeployment(&spec.Deployment{Domain: "x", Auth: spec.Auth{Mode: spec.AuthAnonymous}}); err == nil {
		t.Error("anonymous deployment accepted")
	}
}

func FuzzVerify(f *testing.F) {
	tk := newTokens(f, nil)
	good, _ := tk.Mint(MintRequest{Room: "weekly-sync", User: User{Name: "x"}})
	f.Add(good, "weekly-sync", "")
	f.Add(good, "Weekly Sync", "acme")
	for _, tc := range rejectionCases() {
		f.Add(tc.tok, "weekly-sync", "")
	}
	f.Add("a.b.c", "", "")
	f.Add("..", "r", "t")
	f.Add("a\\b\\c", "r", "")
	f.Fuzz(func(t *testing.T, tok, roomName, tenant string) {
		c, err := tk.Verify(tok, &Target{Room: roomName, Tenant: tenant})
		if err != nil {
			var rej *Rejection
			if !errors.As(err, &rej) || rej.Reason == "" || rej.Fix == "" {
				t.Fatalf("error %v is not a complete rejection", err)
			}
			if strings.Contains(rej.Reason+rej.Fix, testSecret) {
				t.Fatal("rejection leaks the secret")
			}
			return
		}
		// Anything accepted must carry a valid signature: re-signing its
		// signed part with our key reproduces the signature.
		segs, signed, ok := splitToken(tok)
		if !ok {
			t.Fatalf("accepted a token that does not split: %q", tok)
		}
		sig, _ := fromURL64(segs[2])
		m := hmac.New(sha256.New, []byte(testSecret))
		m.Write([]byte(signed))
		if !hmac.Equal(sig, m.Sum(nil)) {
			t.Fatalf("accepted a token with a bad signature: %q", tok)
		}
		if c == nil || c.Payload() == nil {
			t.Fatal("accepted without claims")
		}
	})
}

func BenchmarkMint(b *testing.B) {
	tk := newTokens(b, func(c *Config) { c.Now = time.Now })
	r := MintRequest{Room: "weekly-sync", User: User{ID: "u-123", Name: "Ada Lovelace", Email: "ada@example.com", Moderator: true},
		Features: map[string]bool{"screen-sharing": true, "recording": false}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.Mint(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	tk := newTokens(b, func(c *Config) { c.Now = time.Now })
	tok, err := tk.Mint(MintRequest{Room: "weekly-sync", User: User{ID: "u-123", Name: "Ada Lovelace", Email: "ada@example.com", Moderator: true},
		Features: map[string]bool{"screen-sharing": true, "recording": false}})
	if err != nil {
		b.Fatal(err)
	}
	target := &Target{Room: "weekly-sync"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.Verify(tok, target); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMintServiceToken: the agent's own token for Prosody carries only the
// claims Prosody's verification reads, and verifies for its room.
func TestMintServiceToken(t *testing.T) {
	tk := newTokens(t, nil)
	tok, err := tk.Mint(MintRequest{Room: "Weekly Sync", Service: true, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	p := decodePart(t, strings.Split(tok, ".")[1])
	want := map[string]any{"iss": "my-app", "aud": "my-app", "sub": "meet.example.com", "room": "weekly%20sync", "exp": float64(testNow + 60)}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("claims %v, want %v", p, want)
	}
	if _, err := tk.Verify(tok, &Target{Room: "Weekly Sync"}); err != nil {
		t.Errorf("verify: %v", err)
	}
	if _, err := tk.Mint(MintRequest{Room: "x", Service: true, User: User{ID: "u"}}); err == nil {
		t.Error("a service token with a user was minted")
	}
}
