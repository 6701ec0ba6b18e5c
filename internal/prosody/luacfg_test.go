package prosody

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/prosody/prosodytest"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

var renderedVhost = prosodytest.RenderedVhost

const (
	goodTokenLines    = prosodytest.GoodTokenLines
	tokenVerification = prosodytest.TokenVerification
)

const testDomain = "meet.example.test"

func TestParseProsodyConfigRendered(t *testing.T) {
	src := renderedVhost(goodTokenLines, tokenVerification)
	cfg, err := ParseConfig([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	str := func(host, key, want string) {
		t.Helper()
		v, ok := cfg.Lookup(host, key)
		if !ok || v.Kind != LuaString || v.Str != want {
			t.Errorf("%s/%s = %+v, want %q", host, key, v, want)
		}
	}
	str(testDomain, "app_id", "myapp")
	str(testDomain, "authentication", "token")
	str(testDomain, "muc_mapper_domain_base", testDomain) // global fallback
	str("guest."+testDomain, "app_id", "guest-should-not-leak")
	str("guest."+testDomain, "authentication", "jitsi-anonymous")
	str("auth."+testDomain, "authentication", "internal_hashed")
	if v, _ := cfg.Lookup(testDomain, "enable_domain_verification"); v.Kind != LuaBool || !v.Bool {
		t.Errorf("enable_domain_verification = %+v", v)
	}
	if v, _ := cfg.Lookup(testDomain, "asap_accepted_issuers"); v.Kind != LuaTable || !slices.Equal(v.List, []string{"myapp"}) || v.Complex {
		t.Errorf("issuers = %+v", v)
	}
	if v := cfg.Global["external_services"]; v.Kind != LuaTable || !v.Complex || len(v.List) != 0 {
		t.Errorf("external_services = %+v", v)
	}
	if v := cfg.Global["smacks_max_unacked_stanzas"]; v.Kind != LuaNumber || v.Str != "5" {
		t.Errorf("number = %+v", v)
	}
	if v := cfg.Global["ssl"]; v.Kind != LuaTable || !v.Complex {
		t.Errorf("ssl = %+v", v)
	}
	if _, ok := cfg.Global["https_ports"]; ok {
		t.Error("commented assignment was read")
	}
	if v := cfg.Global["app_id"]; v.Kind != LuaOther && v.Str != "" {
		t.Errorf("comment leaked an app_id: %+v", v)
	}
	muc := cfg.Section("conference." + testDomain)
	if muc == nil || muc.Type != "muc" || !slices.Contains(muc.Options["modules_enabled"].List, "token_verification") ||
		slices.Contains(muc.Options["modules_enabled"].List, "polls") {
		t.Errorf("conference section = %+v", muc)
	}
	if s := cfg.Section("focus." + testDomain); s == nil || s.Type != "client_proxy" || s.Options["target_address"].Str != "focus@auth."+testDomain {
		t.Errorf("focus section = %+v", s)
	}
	if got := len(cfg.Sections); got != 6 {
		t.Errorf("%d sections", got)
	}
}

// TestRenderedVhostIsLua makes sure the fixture above is valid Lua, so the
// scanner is tested on what Prosody itself would load.
func TestRenderedVhostIsLua(t *testing.T) {
	luac := testenv.LookPath(t, "luac5.4", "apt-get install lua5.4")
	p := filepath.Join(t.TempDir(), "v.cfg.lua")
	// Prosody's config DSL: VirtualHost "x" is a call; Lua accepts it as is.
	if err := os.WriteFile(p, []byte(renderedVhost(goodTokenLines, tokenVerification)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(luac, "-p", p).CombinedOutput(); err != nil {
		t.Fatalf("luac -p: %v: %s", err, out)
	}
}

func TestParseLuaSyntax(t *testing.T) {
	src := `-- comment
a = "double \"quoted\" \\ \n \x41\65\u{48}"
b = 'single \'q\''
c = [[long
string]]
d = [==[with ]] inside]==]
e = { "x", 'y'; [[z]], }
f = { "x", 2, nested = { "n" } }
g = "a" .. "b"
h = true and false
i = nil
j = -3.5e+2
Include "conf.d/*.cfg.lua"
k = function(x) if x then return 1 end for i = 1, 2 do end end
l = os.getenv("HOME")
m = 'after the function'
Component("comp.example" , "muc")
  n = "in component"
o = { "p" } -- trailing
q=0x1F
r = { "s", ["key"] = "v" }
t = "escaped newline\
continues"
u = "\z
      trimmed"
`
	cfg, err := ParseConfig([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Global
	want := map[string]string{"a": "double \"quoted\" \\ \n AAH", "b": "single 'q'", "c": "long\nstring",
		"d": "with ]] inside", "m": "after the function"}
	for k, w := range want {
		if g[k].Kind != LuaString || g[k].Str != w {
			t.Errorf("%s = %+v, want %q", k, g[k], w)
		}
	}
	if !slices.Equal(g["e"].List, []string{"x", "y", "z"}) || g["e"].Complex {
		t.Errorf("e = %+v", g["e"])
	}
	if !slices.Equal(g["f"].List, []string{"x"}) || !g["f"].Complex {
		t.Errorf("f = %+v", g["f"])
	}
	for _, k := range []string{"g", "h", "k", "l"} {
		if g[k].Kind != LuaOther {
			t.Errorf("%s = %+v, want an unevaluated expression", k, g[k])
		}
	}
	if g["i"].Kind != LuaNil || g["j"].Kind != LuaNumber || g["j"].Str != "-3.5e+2" {
		t.Errorf("i j = %+v %+v", g["i"], g["j"])
	}
	s := cfg.Section("comp.example")
	if s == nil {
		t.Fatal("no component section")
	}
	o := s.Options
	if o["q"].Kind != LuaNumber || o["t"].Str != "escaped newline\ncontinues" || o["u"].Str != "trimmed" {
		t.Errorf("q t u = %+v %+v %+v", o["q"], o["t"], o["u"])
	}
	if !slices.Equal(o["r"].List, []string{"s"}) || !o["r"].Complex {
		t.Errorf("r = %+v", o["r"])
	}
	if _, ok := g["n"]; ok {
		t.Error("component option leaked into the global section")
	}
	if s == nil || s.Type != "muc" || s.Options["n"].Str != "in component" || s.Options["o"].List[0] != "p" {
		t.Errorf("component = %+v", s)
	}
	if g["a"].Line != 2 || s.Options["n"].Line != 18 {
		t.Errorf("lines: a %d, n %d", g["a"].Line, s.Options["n"].Line)
	}

	for _, bad := range []string{`a = "unterminated`, "a = [[never closed", "--[[ open comment", "a = 'x\ny'"} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		} else if strings.Contains(err.Error(), "never") {
			t.Errorf("error echoes content: %v", err)
		}
	}
}
