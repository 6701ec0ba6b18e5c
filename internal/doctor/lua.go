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

	"github.com/jitsi-agent/jitsi-agent/internal/luamod"
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

// prosodyBin is Prosody's launcher, whose shebang names its interpreter.
const prosodyBin = luamod.ProsodyBin

// prosodyLua returns the Lua interpreter Prosody runs on: the one the
// shebang of /usr/bin/prosody names (luamod.Interpreter, the same reading
// apply's Lua links use), else the first Lua on PATH.
func (c *checker) prosodyLua() (interp, how string) {
	if interp := luamod.Interpreter(c.hostPath("/")); interp != "" {
		return interp, "from " + prosodyBin
	}
	for _, cand := range []string{"lua5.4", "lua5.3", "lua5.2", "lua5.1"} {
		if p, err := c.env.Exec.LookPath(cand); err == nil {
			return p, "no " + prosodyBin + " shebang to read; first Lua on PATH"
		}
	}
	return "", ""
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
	mods := luamod.TokenLuaModules()
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = fmt.Sprintf("%q", m.Name)
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
	ver := luamod.LuaVersion(interp)
	var missing, fixes []string
	for _, m := range mods {
		if status[m.Name] == "ok" {
			continue
		}
		missing = append(missing, m.Name+" ("+m.Package+")")
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
	for _, m := range luamod.TokenLuaModules() {
		p = append(p, m.Package)
	}
	return strings.Join(p, " ")
}

// luaFix names the package, and for pure-Lua modules that Debian installs
// only for older Lua versions (lua-basexx: 5.1/5.2, lua-inspect: up to
// 5.3) the link that makes them visible to Prosody's interpreter.
func (c *checker) luaFix(m luamod.LuaModule, ver string) string {
	fix := "apt-get install " + m.Package
	if !m.Pure || ver == "" {
		return fix
	}
	if src := luamod.PureSource(c.hostPath("/"), ver, m); src != "" {
		dst := luamod.LuaLinkDir(ver) + "/" + m.Name + ".lua"
		return fmt.Sprintf("%s is not installed for Lua %s (only %s); 'jitsi-agent apply' links it as %s (or by hand: 'mkdir -p %s && ln -s %s %s')",
			m.Package, ver, src, dst, luamod.LuaLinkDir(ver), src, dst)
	}
	return fix + " (for Lua " + ver + "; if the package has no " + ver + " build, 'luarocks --lua-version " + ver + " install " + m.Name + "')"
}
