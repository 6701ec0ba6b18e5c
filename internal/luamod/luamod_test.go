package luamod

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// Debian 12's layout: Prosody on Lua 5.4, basexx only for 5.1/5.2, inspect
// up to 5.3, cjson and luaossl built for 5.4.
func TestLuaLinksDebian12(t *testing.T) {
	root := t.TempDir()
	testenv.WriteUnder(t, root, ProsodyBin, "#!/usr/bin/env lua5.4\n-- prosody\n")
	testenv.WriteUnder(t, root, "/usr/share/lua/5.1/basexx.lua", "return {}")
	testenv.WriteUnder(t, root, "/usr/share/lua/5.2/basexx.lua", "return {}")
	testenv.WriteUnder(t, root, "/usr/share/lua/5.3/inspect.lua", "return {}")
	testenv.WriteUnder(t, root, "/usr/share/lua/5.2/inspect.lua", "return {}")
	testenv.WriteUnder(t, root, "/usr/share/lua/5.4/openssl.lua", "return {}")
	got := Links(root)
	want := map[string]string{
		"/usr/local/share/lua/5.4/basexx.lua":  "/usr/share/lua/5.2/basexx.lua",
		"/usr/local/share/lua/5.4/inspect.lua": "/usr/share/lua/5.3/inspect.lua",
	}
	if len(got) != len(want) {
		t.Fatalf("links: %+v", got)
	}
	for _, f := range got {
		if want[f.Path] != f.Target {
			t.Errorf("link %s -> %s, want -> %s", f.Path, f.Target, want[f.Path])
		}
	}
	// Our own link, once created, does not count as installed: the link
	// stays in the desired set (no flapping between applies).
	if err := os.MkdirAll(filepath.Join(root, "/usr/local/share/lua/5.4"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/share/lua/5.2/basexx.lua", filepath.Join(root, "/usr/local/share/lua/5.4/basexx.lua")); err != nil {
		t.Fatal(err)
	}
	if again := Links(root); len(again) != 2 {
		t.Errorf("after linking: %+v", again)
	}
	// A package that installs for 5.4 makes the link unnecessary.
	testenv.WriteUnder(t, root, "/usr/share/lua/5.4/inspect.lua", "return {}")
	if again := Links(root); len(again) != 1 || again[0].Path != "/usr/local/share/lua/5.4/basexx.lua" {
		t.Errorf("with inspect for 5.4: %+v", again)
	}
}

func TestLuaLinksNoProsody(t *testing.T) {
	root := t.TempDir()
	testenv.WriteUnder(t, root, "/usr/share/lua/5.2/basexx.lua", "return {}")
	if got := Links(root); got != nil {
		t.Errorf("no prosody: %+v", got)
	}
	testenv.WriteUnder(t, root, ProsodyBin, "#!/bin/sh\n")
	if got := Links(root); got != nil {
		t.Errorf("unknown interpreter: %+v", got)
	}
}

func TestInterpreter(t *testing.T) {
	for line, want := range map[string]string{
		"#!/usr/bin/env lua5.4\n":    "lua5.4",
		"#!/usr/bin/env -S lua5.3\n": "lua5.3",
		"#!/usr/bin/lua5.2\n":        "/usr/bin/lua5.2",
		"-- no shebang\n":            "",
	} {
		root := t.TempDir()
		testenv.WriteUnder(t, root, ProsodyBin, line)
		if got := Interpreter(root); got != want {
			t.Errorf("%q: %q, want %q", line, got, want)
		}
	}
	for interp, want := range map[string]string{"/usr/bin/lua5.4": "5.4", "lua5.1": "5.1", "lua": "", "luajit": "", "lua5": "", "lua4.0": ""} {
		if v := LuaVersion(interp); v != want {
			t.Errorf("LuaVersion(%q) = %q, want %q", interp, v, want)
		}
	}
}

// Against the real interpreter: the links LuaLinks computes for this host,
// created in a private directory put first on LUA_PATH, make every pure
// module loadable by Prosody's own Lua.
func TestLuaLinksRealInterpreter(t *testing.T) {
	interp := Interpreter("/")
	if interp == "" {
		testenv.Unavailable(t, "Prosody is not installed", "apt-get install prosody")
	}
	lua := testenv.LookPath(t, filepath.Base(interp), "apt-get install "+filepath.Base(interp))
	testenv.File(t, "/usr/share/lua/5.2/basexx.lua", "apt-get install lua-basexx")
	dir := t.TempDir()
	links := Links("/")
	for _, f := range links {
		if err := os.Symlink(f.Target, filepath.Join(dir, filepath.Base(f.Path))); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(lua, "-e", `for _, m in ipairs({"basexx", "inspect", "cjson", "openssl"}) do require(m) end print("ok")`)
	cmd.Env = append(os.Environ(), "LUA_PATH="+dir+"/?.lua;;")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("%s with %d link(s): %v\n%s", lua, len(links), err, out)
	}
}
