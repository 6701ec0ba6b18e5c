package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/ports"
	"github.com/jitsi-agent/jitsi-agent/internal/probe"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// LiveProber runs the live probes of the deployment (package probe: nginx
// serves config.js, Prosody BOSH and c2s STARTTLS, coturn STUN) once.
type LiveProber interface {
	Run(ctx context.Context, components ...string) []probe.Result
}

// checkLive asks the running services what a client would: each probe
// that fails names the broken state and its fix.
func (c *checker) checkProbes(ctx context.Context) []Result {
	const group = "Services answer as the spec says (live probes)"
	if c.env.Probes == nil {
		return []Result{skip("live", group, "live probes run on the host itself (not with --root)")}
	}
	rs := c.env.Probes.Run(ctx)
	if len(rs) == 0 {
		return []Result{skip("live", group, "this host runs no probed component")}
	}
	model := c.d.Ports()
	out := make([]Result, 0, len(rs))
	for i, r := range rs {
		id := "live." + r.Component + "." + r.Check
		if i > 0 && rs[i-1].Component == r.Component && rs[i-1].Check == r.Check {
			id = fmt.Sprintf("%s.%d", id, i)
		}
		title := r.Component + " " + r.Check
		if r.OK {
			out = append(out, pass(id, title, r.Target))
			continue
		}
		out = append(out, fail(id, title, r.Target+": "+r.Error, c.liveFix(r, model)))
	}
	return out
}

// liveFix is the repair for a failed probe.
func (c *checker) liveFix(r probe.Result, model ports.Set) string {
	unit := func(comp, def string) string { return c.unit(comp, def) }
	switch r.Check {
	case probe.CheckConfigJS:
		port := model.Port(ports.NginxHTTPS)
		u := unit(spec.Nginx, "nginx.service")
		switch {
		case strings.Contains(r.Error, "differs from the rendered file"):
			return fmt.Sprintf("nginx serves an older configuration: 'nginx -t', then 'systemctl reload %s' (or 'jitsi-agent apply')", u)
		case strings.Contains(r.Error, "does not answer"):
			return fmt.Sprintf("nothing serves HTTPS on port %d: if nginx runs, its last reload could not bind the port and it kept the old configuration ('journalctl -u %s' shows 'bind() ... failed'; 'ss -ltnp sport = :%d' shows the holder); free the port or change web.https_port, then 'jitsi-agent apply'; if it is stopped, 'systemctl start %s'", port, u, port, u)
		}
		return fmt.Sprintf("nginx answers but not with config.js: check the site %s is enabled ('jitsi-agent apply' restores it) and 'journalctl -u %s'", "/etc/nginx/sites-enabled/"+c.d.Domain+".conf", u)
	case probe.CheckBOSH:
		u := unit(spec.Prosody, "prosody.service")
		if strings.Contains(r.Error, "refused a BOSH session") {
			return fmt.Sprintf("Prosody runs but does not serve the host (a reload does not activate new hosts): 'jitsi-agent apply' activates it, or 'systemctl restart %s' (ends running meetings)", u)
		}
		return fmt.Sprintf("Prosody's HTTP port %d does not answer: 'systemctl start %s'; 'prosodyctl check config' shows configuration errors", model.Port(ports.ProsodyHTTP), u)
	case probe.CheckC2STLS:
		if strings.Contains(r.Error, "offers no STARTTLS") || strings.Contains(r.Error, "TLS handshake") {
			return fmt.Sprintf("jicofo and the videobridge cannot log in without TLS on %s: 'jitsi-agent apply' issues its certificate (/etc/prosody/certs/%s.crt) and reloads Prosody", c.d.AuthDomain(), c.d.AuthDomain())
		}
		return fmt.Sprintf("Prosody's c2s port %d does not answer for %s: 'systemctl start %s'", model.Port(ports.ProsodyC2S), c.d.AuthDomain(), unit(spec.Prosody, "prosody.service"))
	case probe.CheckSTUN:
		u := unit(spec.Coturn, "coturn.service")
		return fmt.Sprintf("coturn does not answer STUN on udp/%d: 'systemctl start %s' (Debian also needs TURNSERVER_ENABLED=1 in /etc/default/coturn); 'journalctl -u %s' shows why it stopped", model.Port(ports.CoturnTURN), u, u)
	}
	return "see the component's journal"
}
