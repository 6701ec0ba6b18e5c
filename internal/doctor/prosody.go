package doctor

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/prosody"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Prosody checks beyond its config file: Jitsi's plugins present for what
// the config loads, the internal certificates of auth.DOMAIN (and the guest
// and recorder hosts) and the trust jicofo/jvb need for them, and the
// running server serving what the config declares (a reload alone does not
// activate new hosts).

// SystemTrustBundle is Debian's bundle built by update-ca-certificates.
const SystemTrustBundle = "/etc/ssl/certs/ca-certificates.crt"

func (c *checker) checkProsody(ctx context.Context) []Result {
	if !c.runs(spec.Prosody) {
		return []Result{skip("prosody.plugins", "Jitsi's Prosody plugins", "this host does not run prosody")}
	}
	conf := ProsodyVhostPath(c.d.Domain)
	src, err := os.ReadFile(c.hostPath(conf))
	if err != nil {
		msg := "no " + conf + " yet (plan.clean says what apply will write)"
		return []Result{
			skip("prosody.plugins", "Jitsi's Prosody plugins", msg),
			skip("prosody.live", "Prosody serves the configured hosts", msg),
			c.checkInternalCerts(),
		}
	}
	m, err := prosody.ModelOf(src)
	if err != nil {
		return []Result{fail("prosody.plugins", "Jitsi's Prosody plugins", conf+": "+err.Error(), "run 'jitsi-agent apply' to rewrite it")}
	}
	out := []Result{c.checkPlugins(m, prosody.PluginPaths(src)), c.checkInternalCerts()}
	if r, ok := c.checkTrust(); ok {
		out = append(out, r)
	}
	return append(out, c.checkLive(ctx, m))
}

func (c *checker) checkPlugins(m *prosody.Model, paths []string) Result {
	const id, title = "prosody.plugins", "Jitsi's Prosody plugins"
	if _, err := os.Stat(c.hostPath(prosody.CoreModulesDir)); err != nil {
		return fail(id, title, "Prosody is not installed ("+prosody.CoreModulesDir+" missing)", "apt-get install prosody")
	}
	missing := prosody.MissingModules(c.opts.Root, m, paths)
	if len(missing) == 0 {
		return pass(id, title, fmt.Sprintf("every module the config loads is in %s or %s", prosody.CoreModulesDir, strings.Join(paths, ", ")))
	}
	var names []string
	for _, mm := range missing {
		names = append(names, mm.Module+" (on "+strings.Join(mm.Hosts, ", ")+")")
	}
	return fail(id, title, "Prosody cannot load "+strings.Join(names, "; ")+" from plugin_paths "+strings.Join(paths, ", "),
		"install jitsi-meet-prosody (it puts Jitsi's plugins in /usr/share/jitsi-meet/prosody-plugins), then 'jitsi-agent apply'")
}

// checkInternalCerts: each internal name has a certificate from the
// agent's CA, valid and not inside the renewal window.
func (c *checker) checkInternalCerts() Result {
	const id, title = "prosody.internal-certs", "Certificates of auth.DOMAIN and the other Prosody hosts"
	if !c.runs(spec.Prosody) {
		return skip(id, title, "this host does not run prosody")
	}
	caPEM, err := os.ReadFile(filepath.Join(certs.InternalCADir(c.d, c.opts.Root), "ca.crt"))
	if err != nil {
		return fail(id, title, "no internal CA in "+filepath.Join(c.d.StateDir, "internal-ca"),
			"run 'jitsi-agent apply': it creates the CA and issues the certificates jicofo and the videobridge need for STARTTLS on auth."+c.d.Domain)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	now := c.env.Now()
	var bad, soon, ok []string
	for _, name := range certs.InternalNames(c.d) {
		certPath, _ := certs.ProsodyCertPaths(name)
		b, err := os.ReadFile(c.hostPath(certPath))
		if err != nil {
			bad = append(bad, certPath+" is missing (Prosody offers no TLS for "+name+": \"No stream features to proceed with\")")
			continue
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			bad = append(bad, certPath+" holds no certificate")
			continue
		}
		leaf, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			bad = append(bad, certPath+": "+err.Error())
			continue
		}
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: now}); err != nil {
			bad = append(bad, certPath+": "+err.Error())
			continue
		}
		if leaf.NotAfter.Sub(now) < certs.InternalRenewBefore {
			soon = append(soon, fmt.Sprintf("%s expires %s", certPath, leaf.NotAfter.UTC().Format("2006-01-02")))
			continue
		}
		ok = append(ok, name)
	}
	switch {
	case len(bad) > 0:
		return fail(id, title, strings.Join(bad, "; "), "run 'jitsi-agent apply': it issues them from its internal CA")
	case len(soon) > 0:
		return warn(id, title, strings.Join(soon, "; ")+" (inside the renewal window)", "run 'jitsi-agent apply' (the daemon renews them on its periodic rescan)")
	}
	return pass(id, title, strings.Join(ok, ", ")+" signed by the agent's internal CA")
}

// checkTrust: jicofo and the videobridge verify auth.DOMAIN's certificate
// against the system trust store, which must hold the internal CA.
func (c *checker) checkTrust() (Result, bool) {
	const id, title = "prosody.trust", "jicofo and jvb trust auth.DOMAIN's certificate"
	if !c.runs(spec.Jicofo) && !c.runs(spec.JVB) {
		return Result{}, false
	}
	caPEM, err := os.ReadFile(filepath.Join(certs.InternalCADir(c.d, c.opts.Root), "ca.crt"))
	if err != nil {
		return Result{}, false // checkInternalCerts reports it
	}
	bundle, err := os.ReadFile(c.hostPath(SystemTrustBundle))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(id, title, err.Error(), "check "+SystemTrustBundle), true
	}
	if bytes.Contains(bundle, bytes.TrimSpace(caPEM)) {
		return pass(id, title, "the internal CA is in "+SystemTrustBundle), true
	}
	return fail(id, title, "the internal CA is not in "+SystemTrustBundle+": jicofo and jitsi-videobridge refuse auth."+c.d.Domain+"'s certificate when they log in",
		"run 'update-ca-certificates' (the CA is installed at "+certs.InternalTrustPath(c.d)+"), then restart jicofo and jitsi-videobridge2"), true
}

// doctorShell runs the admin shell through the doctor's Commander.
type doctorShell struct{ c Commander }

func (s doctorShell) Run(ctx context.Context, cmd string) (string, error) {
	out, err := s.c.CombinedOutput(ctx, "prosodyctl", "shell", cmd)
	return string(out), err
}

func (c *checker) checkLive(ctx context.Context, m *prosody.Model) Result {
	const id, title = "prosody.live", "Prosody serves the configured hosts"
	if _, err := c.env.Exec.LookPath("prosodyctl"); err != nil {
		return skip(id, title, "prosodyctl not installed")
	}
	if c.opts.Root != "/" {
		return skip(id, title, "--root is not /: the running server is not this tree's")
	}
	err := prosody.Verify(ctx, prosody.Admin{Shell: doctorShell{c.env.Exec}}, m)
	var ve *prosody.VerifyError
	switch {
	case err == nil:
		return pass(id, title, fmt.Sprintf("all %d hosts of the config are active with their modules", len(m.Names)))
	case errors.As(err, &ve):
		return fail(id, title, strings.Join(ve.Problems, "; "),
			"run 'jitsi-agent apply' (it activates hosts and loads modules through the admin shell), or 'systemctl restart prosody' (ends every session); if a module does not load, Prosody's log says why")
	default:
		return fail(id, title, "the admin shell did not answer: "+truncate(err.Error(), 200),
			"start Prosody ('systemctl start prosody') and keep mod_admin_shell enabled in /etc/prosody/prosody.cfg.lua")
	}
}
