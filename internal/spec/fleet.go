package spec

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
)

// MinClusterSecretLength is the shortest cluster_secret accepted.
const MinClusterSecretLength = 32

var bridgeID = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`) })

// resolveFleet checks that the hosts of a multi-host spec fit together:
// one Prosody and one Jicofo, every host another must reach has an
// address, and the shared secrets come from the spec (cluster_secret), not
// from each host's state directory. A single-host spec is left alone.
func (r *resolver) resolveFleet(d *Deployment) {
	raw := r.raw
	if sec, inline, ok := r.secret(raw.ClusterSecret, "cluster_secret"); ok {
		d.ClusterSecret = sec
		v := sec.Reveal()
		switch {
		case strings.TrimSpace(v) != v:
			r.errf(at(raw.Body, "cluster_secret"), "Cluster secret has surrounding white space", "The secret starts or ends with white space (often a trailing newline from a file). Wrap it: trimspace(file(\"...\")).")
		case len(v) < MinClusterSecretLength:
			r.errf(at(raw.Body, "cluster_secret"), "Cluster secret too short", "cluster_secret must be at least %d characters (it has %d): every shared password is derived from it. Generate one with: %s", MinClusterSecretLength, len(v), GenerateSecretHint)
		default:
			if why := WeakSecret(v); why != "" {
				r.errf(at(raw.Body, "cluster_secret"), "Weak cluster secret", "cluster_secret can be guessed: %s. Generate one with: %s", why, GenerateSecretHint)
			}
		}
		if inline {
			r.warnf(at(raw.Body, "cluster_secret"), "Secret written inline", "cluster_secret is a literal in the spec; use env() or file().")
		}
	}
	if !d.MultiHost() {
		return
	}
	hostAt := func(name string) *rawHost {
		for i := range raw.Hosts {
			if raw.Hosts[i].Name == name {
				return &raw.Hosts[i]
			}
		}
		return nil
	}
	imported := boolOr(raw.ImportedSecrets, false)
	if imported && !d.ClusterSecret.IsZero() {
		r.errf(at(raw.Body, "imported_secrets"), "Two sources of shared secrets", "cluster_secret derives every shared secret; imported_secrets = true says they are in each host's state directory. Keep one (drop imported_secrets once every host uses cluster_secret).")
	}
	if imported && d.MultiHost() {
		r.warnf(at(raw.Body, "imported_secrets"), "Shared secrets kept by hand", "imported_secrets = true: every host uses the passwords and TURN secret in its own state directory (STATE_DIR/secrets); they must be equal on every host. A new host would generate different ones: copy them, or move to cluster_secret.")
	}
	if d.ClusterSecret.IsZero() && !imported {
		rg := raw.Body.MissingItemRange()
		if len(raw.Hosts) > 0 {
			rg = raw.Hosts[0].DefRange
		}
		r.errf(&rg, "Shared secrets not set", "The spec has %d hosts; each would generate its own jvb/focus passwords and TURN secret, so the bridges could not log in to Prosody and coturn would refuse Prosody's credentials. Add cluster_secret = trimspace(file(\"/etc/jitsi-agent/cluster.secret\")) (or env(\"JITSI_CLUSTER_SECRET\")) with the same value on every host; generate it once with: %s", len(d.Hosts), GenerateSecretHint)
	}
	one := func(c, why string, required bool) {
		hs := d.HostsWith(c)
		switch {
		case len(hs) == 0 && required:
			rg := raw.Hosts[0].DefRange
			r.errf(&rg, "No host runs "+c, "No host block has %q in its roles; %s. Add it to exactly one host's roles.", c, why)
		case len(hs) > 1:
			h := hostAt(hs[1].Name)
			r.errf(at(h.Body, "roles"), "More than one host runs "+c, "Hosts %q and %q both run %s; a static spec is one shard with one %s (%s). Keep it on one host.", hs[0].Name, hs[1].Name, c, c, why)
		}
	}
	one(Prosody, "it is the XMPP server every other component logs in to", true)
	one(Jicofo, "it allocates the bridges of every conference", true)
	if d.TURN.Enabled {
		one(Coturn, "Prosody hands out credentials for one TURN server (turn.host)", false)
	}
	if len(d.HostsWith(JVB)) == 0 {
		rg := raw.Hosts[0].DefRange
		r.errf(&rg, "No host runs jvb", "No host block has \"jvb\" in its roles; conferences need a videobridge. Add it to at least one host's roles.")
	}
	if len(d.HostsWith(Nginx)) == 0 {
		rg := raw.Hosts[0].DefRange
		r.errf(&rg, "No host runs nginx", "No host block has \"nginx\" in its roles; browsers reach the deployment through it. Add it to a host's roles.")
	}
	needAddress := func(h Host, why string) {
		if h.Address != "" {
			return
		}
		rh := hostAt(h.Name)
		rg := rh.DefRange
		r.errf(&rg, "Host address missing", "host %q has no address, but %s. Add address = \"10.0.0.5\" (or a DNS name) to the host block: the address the other hosts reach it at.", h.Name, why)
	}
	if ps := d.HostsWith(Prosody); len(ps) == 1 {
		for _, h := range d.Hosts {
			if h.Name != ps[0].Name && (h.HasRole(Jicofo) || h.HasRole(JVB) || h.HasRole(Jibri)) {
				needAddress(ps[0], fmt.Sprintf("host %q runs %s and logs in to its Prosody (c2s port)", h.Name, strings.Join(loginRoles(h), ", ")))
				break
			}
		}
	}
	if d.Videobridge.Websockets {
		for _, b := range d.HostsWith(JVB) {
			if !bridgeID().MatchString(b.Name) {
				rh := hostAt(b.Name)
				r.errf(rh.DefRange.Ptr(), "Invalid bridge name", "host %q runs a videobridge with websockets; its name is the colibri-ws server id in URLs (/colibri-ws/NAME/...): use letters, digits, '.', '_' and '-' only.", b.Name)
			}
			for _, n := range d.HostsWith(Nginx) {
				if n.Name != b.Name {
					needAddress(b, fmt.Sprintf("nginx on host %q proxies its colibri websockets (videobridge.websockets = true)", n.Name))
					break
				}
			}
		}
	}
	if d.TURN.Enabled && (r.raw.TURN == nil || r.raw.TURN.Host == nil) {
		if cs := d.HostsWith(Coturn); len(cs) == 1 && !cs[0].HasRole(Nginx) {
			needAddress(cs[0], fmt.Sprintf("it runs coturn away from the web front and turn.host is not set (clients would be sent to %s)", d.Domain))
		}
	}
}

func loginRoles(h Host) []string {
	var out []string
	for _, c := range []string{Jicofo, JVB, Jibri} {
		if h.HasRole(c) {
			out = append(out, c)
		}
	}
	return out
}

// validAddress accepts an IP address or a host name (one label or more:
// "xmpp1" resolves through /etc/hosts or the search domain).
func validAddress(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !dnsLabel().MatchString(l) {
			return false
		}
	}
	return true
}
