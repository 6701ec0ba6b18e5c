package doctor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Commander runs programs; ExecCommander is the real one.
type Commander interface {
	LookPath(name string) (string, error)
	// CombinedOutput runs name with args and returns stdout+stderr.
	CombinedOutput(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecCommander runs programs with os/exec.
type ExecCommander struct{}

// LookPath implements Commander.
func (ExecCommander) LookPath(name string) (string, error) { return exec.LookPath(name) }

// CombinedOutput implements Commander; the context kills the process.
func (ExecCommander) CombinedOutput(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("run %s: %w", name, err)
	}
	return out, nil
}

// luaModule is one Lua module Prosody's token auth needs (jitsi-meet-prosody
// Depends: lua-basexx, lua-luaossl, lua-cjson, lua-inspect).
type luaModule struct {
	name, pkg string
	pure      bool // a single .lua file that works on every Lua version
}

var tokenLuaModules = []luaModule{
	{"basexx", "lua-basexx", true},
	{"cjson", "lua-cjson", false},
	{"openssl", "lua-luaossl", false},
	{"inspect", "lua-inspect", true},
}

const prosodyBin = "/usr/bin/prosody"

// prosodyLua returns the Lua interpreter Prosody runs on, read from the
// shebang of /usr/bin/prosody ("#!/usr/bin/env lua5.4", "#!/usr/bin/lua5.3").
func (c *checker) prosodyLua() (interp, how string) {
	f, err := os.Open(c.hostPath(prosodyBin))
	if err == nil {
		defer f.Close()
		line, _ := bufio.NewReader(f).ReadString('\n')
		if strings.HasPrefix(line, "#!") {
			fields := strings.Fields(strings.TrimPrefix(line, "#!"))
			if len(fields) > 0 {
				interp = fields[0]
				if filepath.Base(interp) == "env" {
					interp = ""
					for _, a := range fields[1:] {
						if !strings.HasPrefix(a, "-") {
							interp = a
							break
						}
					}
				}
				if interp != "" {
					return interp, "from " + prosodyBin
				}
			}
		}
	}
	for _, cand := range []string{"lua5.4", "lua5.3", "lua5.2", "lua5.1"} {
		if p, err := c.env.Exec.LookPath(cand); err == nil {
			return p, "no " + prosodyBin + " shebang to read; first Lua on PATH"
		}
	}
	return "", ""
}

// luaVersion returns "5.4" for "lua5.4" or "/usr/bin/lua5.4" ("" if unknown).
func luaVersion(interp string) string {
	b := filepath.Base(interp)
	if v, ok := strings.CutPrefix(b, "lua"); ok && len(v) == 3 && v[1] == '.' {
		return v
	}
	return ""
}

const luaProbe = `for _, m in ipairs({%s}) do
  local ok = pcall(require, m)
  io.write(m, "\t", ok and "ok" or "missing", "\n")
end`

func (c *checker) checkLuaDeps(ctx context.Context) Result {
	const id, title = "prosody.lua-deps", "Prosody Lua modules for token auth"
	if !c.runs(spec.Prosody) {
		return skip(id, title, "this host does not run prosody")
	}
	if c.d.Auth.Mode != spec.AuthJWT {
		return skip(id, title, "auth mode is "+c.d.Auth.Mode+", token modules not used")
	}
	interp, how := c.prosodyLua()
	if interp == "" {
		return fail(id, title, "no Lua interpreter found and "+prosodyBin+" is missing",
			"install Prosody: 'apt-get install prosody lua-basexx lua-cjson lua-luaossl lua-inspect'")
	}
	names := make([]string, len(tokenLuaModules))
	for i, m := range tokenLuaModules {
		names[i] = fmt.Sprintf("%q", m.name)
	}
	out, err := c.env.Exec.CombinedOutput(ctx, interp, "-e", fmt.Sprintf(luaProbe, strings.Join(names, ", ")))
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return fail(id, title, "Prosody's interpreter "+interp+" ("+how+") is not installed",
				"install it: 'apt-get install "+filepath.Base(interp)+"', or reinstall prosody")
		}
		return fail(id, title, fmt.Sprintf("running %s failed: %v: %s", interp, err, truncate(strings.TrimSpace(string(out)), 200)),
			"check that '"+interp+" -v' works; reinstall the Lua interpreter Prosody uses")
	}
	status := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m, st, ok := strings.Cut(sc.Text(), "\t"); ok {
			status[m] = st
		}
	}
	ver := luaVersion(interp)
	var missing, fixes []string
	for _, m := range tokenLuaModules {
		if status[m.name] == "ok" {
			continue
		}
		missing = append(missing, m.name+" ("+m.pkg+")")
		fixes = append(fixes, c.luaFix(m, ver))
	}
	seen := fmt.Sprintf("%s [%s]", filepath.Base(interp), how)
	if len(missing) > 0 {
		if len(status) == 0 {
			return fail(id, title, seen+" printed nothing for the module probe: "+truncate(strings.TrimSpace(string(out)), 200),
				"install "+pkgList()+" and check that '"+interp+" -e \"require \\\"cjson\\\"\"' works")
		}
		return fail(id, title, seen+" cannot load "+strings.Join(missing, ", ")+"; Prosody's token auth fails with \"module not found\"",
			strings.Join(fixes, "; "))
	}
	return pass(id, title, seen+" loads basexx, cjson, openssl, inspect")
}

func pkgList() string {
	var p []string
	for _, m := range tokenLuaModules {
		p = append(p, m.pkg)
	}
	return strings.Join(p, " ")
}

// luaFix names the package, and for pure-Lua modules that Debian installs
// only for older Lua versions (lua-basexx: 5.1/5.2, lua-inspect: up to
// 5.3) the link that makes them visible to Prosody's interpreter.
func (c *checker) luaFix(m luaModule, ver string) string {
	fix := "apt-get install " + m.pkg
	if !m.pure || ver == "" {
		return fix
	}
	for _, v := range []string{"5.4", "5.3", "5.2", "5.1"} {
		if v == ver {
			continue
		}
		src := "/usr/share/lua/" + v + "/" + m.name + ".lua"
		if _, err := os.Stat(c.hostPath(src)); err == nil {
			return fmt.Sprintf("%s is not installed for Lua %s (only %s); 'jitsi-agent apply' links it as /usr/local/share/lua/%s/%s.lua (or by hand: 'mkdir -p /usr/local/share/lua/%s && ln -s %s /usr/local/share/lua/%s/%s.lua')",
				m.pkg, ver, src, ver, m.name, ver, src, ver, m.name)
		}
	}
	return fix + " (for Lua " + ver + "; if the package has no " + ver + " build, 'luarocks --lua-version " + ver + " install " + m.name + "')"
}
