package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

const allLuaOK = "basexx\tok\ncjson\tok\nopenssl\tok\ninspect\tok\n"

type fakeCommander struct {
	out   string
	err   error
	paths map[string]string
	got   *[]string // records the interpreter run
}

func (f fakeCommander) LookPath(name string) (string, error) {
	if p, ok := f.paths[name]; ok {
		return p, nil
	}
	return "", exec.ErrNotFound
}

func (f fakeCommander) CombinedOutput(_ context.Context, name string, args ...string) ([]byte, error) {
	if f.got != nil {
		*f.got = append(*f.got, name)
	}
	return []byte(f.out), f.err
}

func TestProsodyLuaDetection(t *testing.T) {
	d := testDeployment()
	cases := []struct{ shebang, want string }{
		{"#!/usr/bin/env lua5.4\n-- Prosody IM\n", "lua5.4"},
		{"#!/usr/bin/lua5.3\n", "/usr/bin/lua5.3"},
		{"#! /usr/bin/env -S lua5.2\n", "lua5.2"},
	}
	for _, c := range cases {
		root := t.TempDir()
		testenv.WriteUnder(t, root, prosodyBin, c.shebang)
		if got, _ := newChecker(d, Env{Exec: fakeCommander{}}, root).prosodyLua(); got != c.want {
			t.Errorf("%q: got %q, want %q", c.shebang, got, c.want)
		}
	}
	// No prosody script: first interpreter on PATH, newest first.
	root := t.TempDir()
	got, how := newChecker(d, Env{Exec: fakeCommander{paths: map[string]string{"lua5.3": "/usr/bin/lua5.3", "lua5.1": "/usr/bin/lua5.1"}}}, root).prosodyLua()
	if got != "/usr/bin/lua5.3" || !strings.Contains(how, "first Lua on PATH") {
		t.Errorf("fallback: %q %q", got, how)
	}
}

func TestLuaDepsInjected(t *testing.T) {
	d := testDeployment()
	root := t.TempDir()
	testenv.WriteUnder(t, root, prosodyBin, "#!/usr/bin/env lua5.4\n")
	// lua-basexx ships basexx.lua for 5.1/5.2 only (Debian bookworm).
	testenv.WriteUnder(t, root, "/usr/share/lua/5.2/basexx.lua", "return {}\n")
	run := func(f fakeCommander) Result {
		return newChecker(d, Env{Exec: f}, root).checkLuaDeps(context.Background())
	}
	var ran []string
	expect(t, run(fakeCommander{out: allLuaOK, got: &ran}), Pass, "lua5.4", "from /usr/bin/prosody")
	if len(ran) != 1 || ran[0] != "lua5.4" {
		t.Errorf("ran %v", ran)
	}
	r := run(fakeCommander{out: "basexx\tmissing\ncjson\tok\nopenssl\tmissing\ninspect\tok\n"})
	expect(t, r, Fail, "basexx (lua-basexx)", "openssl (lua-luaossl)")
	for _, want := range []string{"ln -s /usr/share/lua/5.2/basexx.lua /usr/local/share/lua/5.4/basexx.lua", "apt-get install lua-luaossl"} {
		if !strings.Contains(r.Fix, want) {
			t.Errorf("fix %q lacks %q", r.Fix, want)
		}
	}
	r = run(fakeCommander{out: "inspect\tmissing\n"})
	if !strings.Contains(r.Fix, "apt-get install lua-inspect") || !strings.Contains(r.Fix, "luarocks --lua-version 5.4 install inspect") {
		t.Errorf("fix %q", r.Fix)
	}
	expect(t, run(fakeCommander{err: fmt.Errorf("run lua5.4: %w", &exec.Error{Name: "lua5.4", Err: exec.ErrNotFound})}), Fail, "not installed")
	expect(t, run(fakeCommander{out: "segfault", err: errors.New("signal: segmentation fault")}), Fail, "segmentation fault")
	expect(t, run(fakeCommander{out: "garbage"}), Fail, "printed nothing")

	d.Auth.Mode = spec.AuthAnonymous
	expect(t, newChecker(d, Env{Exec: fakeCommander{}}, root).checkLuaDeps(context.Background()), Skip)
}

// TestLuaDepsReal runs the real lua5.4 against the real Debian modules.
// basexx and inspect are pure Lua; the test points LUA_PATH_5_4 at a
// directory that links them (as docker-jitsi-meet does), so the result does
// not depend on which Lua versions the host's packages were built for.
func TestLuaDepsReal(t *testing.T) {
	lua := testenv.LookPath(t, "lua5.4", "apt-get install lua5.4 lua-basexx lua-cjson lua-luaossl lua-inspect")
	find := func(mod, pkg string) string {
		for _, v := range []string{"5.4", "5.3", "5.2", "5.1"} {
			p := "/usr/share/lua/" + v + "/" + mod + ".lua"
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
		testenv.Unavailable(t, mod+".lua not installed", "apt-get install "+pkg)
		return ""
	}
	lib := t.TempDir()
	for _, m := range [][2]string{{"basexx", "lua-basexx"}, {"inspect", "lua-inspect"}} {
		if err := os.Symlink(find(m[0], m[1]), filepath.Join(lib, m[0]+".lua")); err != nil {
			t.Fatal(err)
		}
	}
	d := testDeployment()
	root := t.TempDir()
	testenv.WriteUnder(t, root, prosodyBin, "#!/usr/bin/env "+filepath.Base(lua)+"\n")
	t.Setenv("LUA_PATH_5_4", lib+"/?.lua;;")
	r := newChecker(d, Env{}, root).checkLuaDeps(context.Background())
	expect(t, r, Pass, "loads basexx, cjson, openssl, inspect")

	// An interpreter that finds nothing: every module missing, every
	// package named in the fix.
	empty := t.TempDir()
	t.Setenv("LUA_PATH_5_4", empty+"/?.lua")
	t.Setenv("LUA_CPATH_5_4", empty+"/?.so")
	r = newChecker(d, Env{}, root).checkLuaDeps(context.Background())
	expect(t, r, Fail, "cannot load basexx")
	for _, p := range []string{"lua-basexx", "lua-cjson", "lua-luaossl", "lua-inspect"} {
		if !strings.Contains(r.Fix, p) {
			t.Errorf("fix %q does not name %s", r.Fix, p)
		}
	}
}
