package prosody

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Shell runs one mod_admin_shell command against the running Prosody and
// returns its output. An "Error:" answer is an error.
type Shell interface {
	Run(ctx context.Context, command string) (string, error)
}

// ProsodyCtl is the real Shell: `prosodyctl shell COMMAND`, which talks to
// the running server over its admin socket (mod_admin_shell, enabled in
// Debian's prosody.cfg.lua).
type ProsodyCtl struct {
	// Path of prosodyctl (default "prosodyctl").
	Path string
	// Config is passed as --config when set.
	Config string
	// Timeout bounds each command (default 30 s).
	Timeout time.Duration
}

// Run implements Shell.
func (p ProsodyCtl) Run(ctx context.Context, command string) (string, error) {
	bin := p.Path
	if bin == "" {
		bin = "prosodyctl"
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var args []string
	if p.Config != "" {
		args = append(args, "--config", p.Config)
	}
	args = append(args, "shell", command)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	text := cleanShell(out.String())
	if err != nil {
		if strings.Contains(text, "Unable to connect to server") {
			return text, fmt.Errorf("prosodyctl shell: %w: %s", ErrNotRunning, lastLines(text, 2))
		}
		return text, fmt.Errorf("prosodyctl shell %s: %w: %s", command, err, lastLines(text, 3))
	}
	return text, nil
}

// System is this host's admin shell: prosodyctl from PATH, or nil when
// Prosody is not installed (the live step is then skipped).
func System() Shell {
	p, err := exec.LookPath("prosodyctl")
	if err != nil {
		return nil
	}
	return ProsodyCtl{Path: p}
}

// ErrNotRunning: the admin shell could not reach Prosody.
var ErrNotRunning = errors.New("prosody is not running or mod_admin_shell is not enabled")

// cleanShell drops prosodyctl's dependency banner (lua-unbound...).
func cleanShell(s string) string {
	var keep []string
	banner := false
	for _, l := range strings.Split(s, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "****") {
			banner = !banner
			continue
		}
		if banner || t == "" {
			continue
		}
		keep = append(keep, strings.TrimRight(l, " "))
	}
	return strings.Join(keep, "\n")
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "; ")
}

// Admin drives a running Prosody through its admin shell.
type Admin struct {
	Shell Shell
}

func luaStr(s string) string { return strconv.Quote(s) }

func (a Admin) run(ctx context.Context, cmd string) (string, error) {
	out, err := a.Shell.Run(ctx, cmd)
	if err != nil {
		return out, err
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "Error:") {
			return out, fmt.Errorf("%s: %s", cmd, strings.TrimSpace(l))
		}
	}
	return out, nil
}

// ReloadConfig re-reads the config files (synchronously, unlike SIGHUP).
func (a Admin) ReloadConfig(ctx context.Context) error {
	_, err := a.run(ctx, "config:reload()")
	return err
}

// stateDump prints every active host with its loaded modules in one
// admin-shell call (raw Lua, "> ..."), one line each:
// "jitsi-agent-host HOST mod1,mod2,...". One call instead of one per host
// keeps a live change well under a second.
const stateDump = `> local mm = require "core.modulemanager"; for h in pairs(prosody.hosts) do local t = {}; for name in pairs(mm.get_modules(h)) do t[#t+1] = name end; table.sort(t); print("jitsi-agent-host " .. h .. " " .. table.concat(t, ",")) end`

// State returns every active host with the modules loaded on it.
func (a Admin) State(ctx context.Context) (map[string][]string, error) {
	out, err := a.run(ctx, stateDump)
	if err != nil {
		return nil, err
	}
	st := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "jitsi-agent-host" {
			continue
		}
		var mods []string
		if len(f) > 2 {
			mods = strings.Split(f[2], ",")
		}
		st[f[1]] = mods
	}
	if len(st) == 0 {
		return nil, fmt.Errorf("the admin shell listed no hosts: %s", lastLines(out, 3))
	}
	return st, nil
}

// Hosts lists the active hosts.
func (a Admin) Hosts(ctx context.Context) ([]string, error) {
	out, err := a.run(ctx, "host:list()")
	if err != nil {
		return nil, err
	}
	// One line per host: "meet.example.com" for a VirtualHost,
	// "conference.meet.example.com (muc component)" for a Component.
	var hosts []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasSuffix(f[0], ":") || (len(f) > 1 && !strings.HasPrefix(f[1], "(")) {
			continue
		}
		hosts = append(hosts, f[0])
	}
	return hosts, nil
}

// Modules lists the modules loaded on host.
func (a Admin) Modules(ctx context.Context, host string) ([]string, error) {
	out, err := a.run(ctx, "module:list("+luaStr(host)+")")
	if err != nil {
		return nil, err
	}
	var mods []string
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "\t") {
			continue // "host:" header, "Result: nil"
		}
		if f := strings.Fields(l); len(f) > 0 {
			mods = append(mods, f[0])
		}
	}
	return mods, nil
}

// Activate starts serving host (it must be in the config).
func (a Admin) Activate(ctx context.Context, host string) error {
	_, err := a.run(ctx, "host:activate("+luaStr(host)+")")
	return err
}

// Deactivate stops serving host; its sessions end.
func (a Admin) Deactivate(ctx context.Context, host string) error {
	_, err := a.run(ctx, "host:deactivate("+luaStr(host)+")")
	return err
}

// LoadModule loads module on host.
func (a Admin) LoadModule(ctx context.Context, module, host string) error {
	out, err := a.run(ctx, "module:load("+luaStr(module)+", "+luaStr(host)+")")
	if err == nil && strings.Contains(out, "onto 0 hosts") {
		return fmt.Errorf("module:load(%s, %s): %s", module, host, lastLines(out, 2))
	}
	return err
}

// UnloadModule unloads module from host.
func (a Admin) UnloadModule(ctx context.Context, module, host string) error {
	_, err := a.run(ctx, "module:unload("+luaStr(module)+", "+luaStr(host)+")")
	return err
}

// ReloadModule reloads module on host (it re-reads its settings).
func (a Admin) ReloadModule(ctx context.Context, module, host string) error {
	_, err := a.run(ctx, "module:reload("+luaStr(module)+", "+luaStr(host)+")")
	return err
}
