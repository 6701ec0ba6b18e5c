package apply

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/prosody"
)

// Prosody virtual host files (conf.avail/conf.d *.cfg.lua) are checked with
// `prosodyctl --config MAIN check config`, MAIN being a throwaway main
// config (pid, data and log in a temporary directory, no listening ports)
// that Includes a copy of the staged file. prosodyctl drops privileges to
// the prosody user, so when running as root the temporary directory is
// handed to that user (mode 0700: the copy may hold secrets).

func isProsodyVhost(p string) bool {
	return (strings.HasPrefix(p, "/etc/prosody/conf.avail/") || strings.HasPrefix(p, "/etc/prosody/conf.d/")) &&
		strings.HasSuffix(p, ".cfg.lua") && !strings.Contains(strings.TrimPrefix(strings.TrimPrefix(p, "/etc/prosody/conf.avail/"), "/etc/prosody/conf.d/"), "/")
}

func (t *txn) prosodyChecks(ctx context.Context, all []staged) []Failure {
	var vhosts []staged
	for _, s := range all {
		if s.runs(files.ProsodyCtl) {
			vhosts = append(vhosts, s)
		}
	}
	if len(vhosts) == 0 {
		return nil
	}
	fails := t.prosodyModuleChecks(vhosts)
	tool := findTool("prosodyctl")
	if tool == "" {
		t.r.notice("prosodyctl not installed: %d Prosody file(s) checked for Lua syntax only", len(vhosts))
		return fails
	}
	for _, s := range vhosts {
		// The verdict is keyed by the bytes prosodyctl is given: the
		// staged file as read now.
		content, err := os.ReadFile(s.real)
		if err != nil {
			fails = append(fails, Failure{s.op.path, "prosodyctl check config", fmt.Sprintf("prosody check: %v\n", err)})
			continue
		}
		key := verdictKey("prosodyctl check config", tool, s.op.dest, content)
		if t.r.o.Verdicts.accepted(key) {
			t.r.hook("check", s.op.dest)
			continue
		}
		out, err := t.prosodyCheck(ctx, tool, s, content)
		if err != nil {
			fails = append(fails, Failure{s.op.path, "prosodyctl check config", out + "(" + err.Error() + ")"})
		} else {
			t.r.o.Verdicts.accept(key)
		}
		t.r.hook("check", s.op.dest)
	}
	return fails
}

// prosodyCheck checks content, the staged file s as read by the caller.
func (t *txn) prosodyCheck(ctx context.Context, tool string, s staged, content []byte) (string, error) {
	dir, err := t.r.prosodyTemp()
	if err != nil {
		return "", fmt.Errorf("prosody check: %w", err)
	}
	defer os.RemoveAll(dir)
	vhost := filepath.Join(dir, "vhost.cfg.lua")
	main := filepath.Join(dir, "main.cfg.lua")
	mainText := fmt.Sprintf(`pidfile = %q
data_path = %q
certificates = %q
log = { error = %q }
c2s_ports = { }
s2s_ports = { }
http_ports = { }
https_ports = { }
component_ports = { }
Include %q
`, filepath.Join(dir, "prosody.pid"), filepath.Join(dir, "data"), dir, filepath.Join(dir, "prosody.err"), vhost)
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		return "", fmt.Errorf("prosody check: %w", err)
	}
	if err := os.WriteFile(vhost, content, 0o600); err != nil {
		return "", fmt.Errorf("prosody check: %w", err)
	}
	if err := os.WriteFile(main, []byte(mainText), 0o600); err != nil {
		return "", fmt.Errorf("prosody check: %w", err)
	}
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("prosody"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			for _, p := range []string{dir, filepath.Join(dir, "data"), vhost, main} {
				if err := os.Chown(p, uid, gid); err != nil {
					return "", fmt.Errorf("prosody check: %w", err)
				}
			}
		}
	}
	out, err := t.exec(ctx, dir, tool, "--config", main, "check", "config")
	msg := strings.ReplaceAll(string(out), vhost, s.op.dest+" (staged)")
	msg = strings.ReplaceAll(msg, dir, "<check dir>")
	// Exit status 1: the file could not be loaded (syntax or runtime
	// error). Other statuses are warnings, which a synthetic main config
	// cannot judge fairly (e.g. "mod_tls is not enabled"): not failures.
	var ee *exec.ExitError
	if err == nil || (errors.As(err, &ee) && ee.ExitCode() != 1) {
		return "", nil
	}
	// Keep the useful part: prosodyctl surrounds errors with banners.
	var keep []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimRight(l, " ")
		if l == "" || strings.Trim(l, "*") == "" || strings.Contains(l, "lua-unbound") || strings.Contains(l, "Good luck") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n") + "\n", err
}

// prosodyModuleChecks: every module a staged Prosody file loads must exist
// in Prosody's own module directory or the file's plugin_paths (Jitsi's
// plugins come from the jitsi-meet-prosody package); otherwise Prosody
// would start without it and, e.g., let everyone in without a token.
func (t *txn) prosodyModuleChecks(vhosts []staged) []Failure {
	var fails []Failure
	for _, s := range vhosts {
		content, err := os.ReadFile(s.real)
		if err != nil {
			continue // the syntax check reports unreadable files
		}
		m, err := prosody.ModelOf(content)
		if err != nil {
			continue
		}
		paths := prosody.PluginPaths(content)
		for _, mm := range prosody.MissingModules(t.r.o.Root, m, paths) {
			fails = append(fails, Failure{s.op.path, "prosody modules",
				fmt.Sprintf("module %q (enabled on %s) is in neither %s nor plugin_paths %v; install jitsi-meet-prosody (it puts Jitsi's plugins in /usr/share/jitsi-meet/prosody-plugins) or fix plugin_paths\n",
					mm.Module, strings.Join(mm.Hosts, ", "), prosody.CoreModulesDir, paths)})
		}
	}
	return fails
}
