// Package luamod finds the Lua modules Jitsi's Prosody token plugin needs
// and the links that make the pure-Lua ones loadable for the Lua version
// Prosody runs on. It reads only a few files under a root (no spec, no
// render): the no-op stamp fingerprints its answer at every start.
package luamod

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// Jitsi's token modules (mod_auth_token, mod_token_verification through
// token/util.lib.lua and luajwtjitsi) need basexx, cjson, luaossl and
// inspect. Debian 12's Prosody runs on Lua 5.4, but lua-basexx installs only
// for Lua 5.1/5.2 and lua-inspect only up to 5.3, so Prosody fails with
// "module 'basexx' not found".
//
// The agent makes them loadable the least invasive way: a symbolic link in
// /usr/local/share/lua/VERSION/ (the admin's part of Lua's default search
// path, which no Debian package writes) to the pure-Lua file Debian installed
// for an older version. Prosody's running process and prosodyctl both see it
// at the next require, with no restart, no environment variable and no change
// to a file a package owns. C modules (cjson, openssl) cannot be shared
// between Lua versions; for those the fix is their package, which Debian
// builds for 5.4.

// LuaModule is one Lua module the token modules need.
type LuaModule struct {
	Name    string // require name
	Package string // Debian package
	Pure    bool   // a single .lua file that works on every Lua version
}

// TokenLuaModules are the modules the jitsi-meet-tokens Depends name.
func TokenLuaModules() []LuaModule {
	return []LuaModule{
		{"basexx", "lua-basexx", true},
		{"cjson", "lua-cjson", false},
		{"openssl", "lua-luaossl", false},
		{"inspect", "lua-inspect", true},
	}
}

// ProsodyBin is Prosody's launcher; its shebang names the interpreter.
const ProsodyBin = "/usr/bin/prosody"

// Interpreter returns the Lua interpreter Prosody runs on, read from the
// shebang of /usr/bin/prosody under root ("#!/usr/bin/env lua5.4" ->
// "lua5.4"); "" when Prosody is not installed or the line is unusual.
func Interpreter(root string) string {
	f, err := os.Open(filepath.Join(root, ProsodyBin))
	if err != nil {
		return ""
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	if !strings.HasPrefix(line, "#!") {
		return ""
	}
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if len(fields) == 0 {
		return ""
	}
	interp := fields[0]
	if filepath.Base(interp) == "env" {
		interp = ""
		for _, a := range fields[1:] {
			if !strings.HasPrefix(a, "-") {
				interp = a
				break
			}
		}
	}
	return interp
}

// LuaVersion returns "5.4" for "lua5.4" or "/usr/bin/lua5.4" ("" if unknown).
func LuaVersion(interp string) string {
	b := filepath.Base(interp)
	if v, ok := strings.CutPrefix(b, "lua"); ok && len(v) == 3 && v[1] == '.' && v[0] >= '5' {
		return v
	}
	return ""
}

// LuaLinkDir is where the agent links pure-Lua modules for version v.
func LuaLinkDir(v string) string { return "/usr/local/share/lua/" + v }

// PureSource returns where Debian installed the pure-Lua module m for
// another Lua version (newest first), "" when nowhere.
func PureSource(root, v string, m LuaModule) string {
	for _, other := range []string{"5.4", "5.3", "5.2", "5.1"} {
		if other == v {
			continue
		}
		p := "/usr/share/lua/" + other + "/" + m.Name + ".lua"
		if fi, err := os.Stat(filepath.Join(root, p)); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// installedFor reports whether a package (not our link) installed m for v.
func installedFor(root, v string, m LuaModule) bool {
	for _, p := range []string{
		"/usr/share/lua/" + v + "/" + m.Name + ".lua",
		"/usr/share/lua/" + v + "/" + m.Name + "/init.lua",
		"/usr/local/lib/lua/" + v + "/" + m.Name + ".lua",
	} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			return true
		}
	}
	// A regular file in the admin's directory (luarocks, by hand) counts;
	// a symlink there is the agent's own and is re-declared.
	if fi, err := os.Lstat(filepath.Join(root, LuaLinkDir(v), m.Name+".lua")); err == nil && fi.Mode().IsRegular() {
		return true
	}
	return false
}

// Link is one symbolic link Links declares: Path (as under /) -> Target.
type Link struct {
	Path, Target string
}

// Links returns the links that make the pure-Lua token modules loadable
// for the Lua version Prosody runs on (read under root). Nothing when
// Prosody is absent, its version is unknown, or every module is installed.
// A module with no source for any version gets no link: doctor reports it
// with the package to install.
func Links(root string) []Link {
	v := LuaVersion(Interpreter(root))
	if v == "" {
		return nil
	}
	var out []Link
	for _, m := range TokenLuaModules() {
		if !m.Pure || installedFor(root, v, m) {
			continue
		}
		src := PureSource(root, v, m)
		if src == "" {
			continue
		}
		out = append(out, Link{Path: LuaLinkDir(v) + "/" + m.Name + ".lua", Target: src})
	}
	return out
}
