package token

import (
	"bufio"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"hash"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// TestAgainstProsodyLibraries runs every case through testdata/prosody_verify.lua
// under Lua 5.4 with lua-cjson, lua-basexx and lua-luaossl (what Prosody's
// token code uses) and requires the same verdict as Verify: same JSON, base64url
// and HMAC judgement, same reason strings, same number formatting.
func TestAgainstProsodyLibraries(t *testing.T) {
	lua := testenv.LookPath(t, "lua5.4", "apt-get install lua5.4 lua-cjson lua-basexx lua-luaossl")
	testenv.File(t, "/usr/share/lua/5.1/basexx.lua", "apt-get install lua-basexx")

	now := time.Now().Unix()
	mk := func(over map[string]any) string {
		p := map[string]any{"iss": "my-app", "aud": "my-app", "sub": "meet.example.com", "room": "weekly-sync",
			"iat": now - 60, "nbf": now - 60, "exp": now + 3600}
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
	type luaCase struct {
		alg string
		tok string
		mod func(*Config)
	}
	var cases []luaCase
	add := func(alg, header, payload string, h func() hash.Hash, key string) {
		cases = append(cases, luaCase{alg: alg, tok: craft(header, payload, h, key)})
	}
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		tk := newTokens(t, func(c *Config) { c.Algorithm = alg; c.Now = time.Now })
		for _, r := range []MintRequest{
			{Room: "Weekly Sync", User: User{ID: "u1", Name: "Zoë \"Q\" <x>", Email: "z@example.com", Moderator: true}},
			{Room: "täst", Features: map[string]bool{"screen-sharing": false}},
			{Room: "*", Tenant: "acme"},
		} {
			tok, err := tk.Mint(r)
			if err != nil {
				t.Fatal(err)
			}
			cases = append(cases, luaCase{alg: alg, tok: tok})
		}
	}
	add("HS256", hdr, mk(nil), sha256.New, testSecret)
	add("HS256", `{"alg":"HS256","typ":"jwt"}`, mk(nil), sha256.New, testSecret)
	add("HS256", `{"alg":"HS256"}`, mk(nil), sha256.New, testSecret)
	add("HS256", `{"alg":"RS256","typ":"JWT"}`, mk(nil), sha256.New, testSecret)
	add("HS256", `{"alg":"none","typ":"JWT"}`, mk(nil), sha256.New, testSecret)
	add("HS256", `{"alg":"HS512","typ":"JWT"}`, mk(nil), sha512.New, testSecret)
	add("HS256", hdr, mk(nil), sha256.New, "wrong-secret-wrong-secret-wrong!!")
	add("HS256", hdr, mk(map[string]any{"exp": now - 100, "iat": now - 7300}), sha256.New, testSecret)
	add("HS256", hdr, mk(map[string]any{"exp": now - 100, "iat": nil}), sha256.New, testSecret)
	add("HS256", hdr, mk(map[string]any{"exp": "123"}), sha256.New, testSecret)
	add("HS256", hdr, mk(map[string]any{"exp": false}), sha256.New, testSecret)
	add("HS256", hdr, mk(map[string]any{"nbf": "x"}), sha256.New, testSecret)
	add("HS256", hdr, mk(map[string]any{"nbf": now + 600}), sha256.New, testSecret)
	add("HS256", hdr, mk(map[string]any{"iss": "other"}), sha256.New, testSecret)
	add("HS256", hdr, mk(map[string]any{"iss": nil}), sha256.New, testSecret)
	add("HS256", hdr, mk(map[string]any{"iss": 5}), sha256.New, testSecret)
	add("HS256", hdr, mk(map[string]any{"aud": nil}), sha256.New, testSecret)
	add("HS256", hdr, mk(map[string]any{"aud": []string{"my-app"}}), sha256.New, testSecret)
	add("HS256", hdr, mk(map[string]any{"aud": "jitsi"}), sha256.New, testSecret)
	add("HS256", hdr, mk(map[string]any{"sub": nil}), sha256.New, testSecret)
	add("HS256", hdr, mk(map[string]any{"room": nil}), sha256.New, testSecret)
	add("HS256", hdr, `{"iss":"my-app","iss":"other","aud":"my-app","sub":"s","room":"r"}`, sha256.New, testSecret)
	add("HS256", hdr, `{"ISS":"my-app","aud":"my-app","sub":"s","room":"r"}`, sha256.New, testSecret)
	add("HS256", hdr, `{"iss":"my\u002dapp","aud":"my-app","sub":"s","room":"r"}`, sha256.New, testSecret)
	cases = append(cases, luaCase{alg: "HS256", tok: "abc.def"}, luaCase{alg: "HS256", tok: "a.b.c.d"},
		luaCase{alg: "HS256", tok: strings.Replace(craft(hdr, mk(nil), sha256.New, testSecret), ".", "..", 1)},
		luaCase{alg: "HS256", tok: craft(hdr, mk(nil), sha256.New, testSecret) + "="})

	var in strings.Builder
	for _, c := range cases {
		in.WriteString(testSecret + "\t" + c.alg + "\tmy-app\tmy-app\t" + c.tok + "\n")
	}
	cmd := exec.Command(lua, "testdata/prosody_verify.lua")
	cmd.Env = append(os.Environ(), "LUA_PATH=/usr/share/lua/5.4/?.lua;/usr/share/lua/5.1/?.lua;;")
	cmd.Stdin = strings.NewReader(in.String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lua: %v: %s", err, stderr.String())
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	digits := regexp.MustCompile(`\d+`)
	for i, c := range cases {
		if !sc.Scan() {
			t.Fatalf("lua printed %d verdicts for %d cases", i, len(cases))
		}
		luaVerdict := sc.Text()
		tk := newTokens(t, func(cfg *Config) { cfg.Algorithm = c.alg; cfg.Now = time.Now })
		goVerdict := "ok"
		if _, err := tk.Verify(c.tok, nil); err != nil {
			var rej *Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("case %d: %v", i, err)
			}
			goVerdict = rej.Reason
		}
		if os.Getenv("SHOW_LUA") != "" {
			t.Logf("%d: go=%q lua=%q", i, goVerdict, luaVerdict)
		}
		// a second may pass between the two checks: compare the shape of numbers
		if digits.ReplaceAllString(goVerdict, "N") != digits.ReplaceAllString(luaVerdict, "N") {
			t.Errorf("case %d (%s): Go says %q, Prosody's libraries say %q", i, c.tok, goVerdict, luaVerdict)
		}
	}
}
