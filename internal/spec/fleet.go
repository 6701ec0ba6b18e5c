package spec

import (
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
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
	r.resolveShards(d, hostAt)
}

// shardRoles are the components that belong to one shard: its Prosody,
// Jicofo, bridges, Jibris and the nginx that serves it.
var shardRoles = []string{Prosody, Jicofo, JVB, Jibri, Nginx}

// shardHosts groups the hosts that run a shard role by shard, shards in
// order of first appearance, hosts in file order.
func shardHosts(d *Deployment) (names []string, by map[string][]Host) {
	by = map[string][]Host{}
	for _, h := range d.Hosts {
		if !slices.ContainsFunc(shardRoles, h.HasRole) {
			continue
		}
		s := h.ShardName()
		if _, ok := by[s]; !ok {
			names = append(names, s)
		}
		by[s] = append(by[s], h)
	}
	return names, by
}

// resolveShards checks every shard (one Prosody, one Jicofo, bridges, an
// nginx), the front that routes rooms between them, and the addresses the
// hosts of a shard and the front need.
func (r *resolver) resolveShards(d *Deployment, hostAt func(string) *rawHost) {
	names, by := shardHosts(d)
	sharded := len(names) > 1
	// shardAt points at a host's shard attribute, else its block.
	shardAt := func(h Host) *hcl.Range {
		rh := hostAt(h.Name)
		if has(rh.Body, "shard") {
			return at(rh.Body, "shard")
		}
		return rh.DefRange.Ptr()
	}
	first := raw0(r.raw)
	if len(names) == 0 {
		r.errf(first, "No host runs prosody", "No host block runs a shard's components (prosody, jicofo, jvb, nginx); add a host with roles = [\"prosody\", \"jicofo\", \"nginx\"] and one with \"jvb\".")
	}
	for _, s := range names {
		hs := by[s]
		where := ""
		if sharded {
			where = fmt.Sprintf(" in shard %q", s)
		}
		with := func(c string) []Host {
			var out []Host
			for _, h := range hs {
				if h.HasRole(c) {
					out = append(out, h)
				}
			}
			return out
		}
		one := func(c, why string, max int) {
			got := with(c)
			switch {
			case len(got) == 0:
				n := "exactly one host's"
				if max == 0 {
					n = "at least one host's"
				}
				r.errf(shardAt(hs[0]), "No host runs "+c+where, "No host%s has %q in its roles; %s. Add it to %s roles%s.", where, c, why, n, inShard(s, sharded))
			case max > 0 && len(got) > max:
				h := hostAt(got[1].Name)
				r.errf(at(h.Body, "roles"), "More than one host runs "+c+where, "Hosts %q and %q both run %s%s; a shard has exactly one %s (%s). Keep it on one host, or give one host a shard of its own (shard = \"NAME\" in its block, with its own jicofo, bridges and nginx; a host with the \"front\" role then routes each room to one shard).", got[0].Name, got[1].Name, c, where, c, why)
			}
		}
		one(Prosody, "it is the XMPP server every other component of the shard logs in to", 1)
		one(Jicofo, "it allocates the bridges of every conference of the shard", 1)
		one(JVB, "conferences need a videobridge", 0)
		one(Nginx, "browsers reach the shard through it", 0)
		if d.TURN.Enabled {
			if cs := with(Coturn); len(cs) > 1 {
				h := hostAt(cs[1].Name)
				r.errf(at(h.Body, "roles"), "More than one host runs coturn"+where, "Hosts %q and %q both run coturn%s; Prosody hands out credentials for one TURN server per shard (turn.host). Keep it on one host.", cs[0].Name, cs[1].Name, where)
			}
		}
		// The shard's Prosody is dialled by the shard's jicofo, bridges
		// and Jibris on other hosts.
		if ps := with(Prosody); len(ps) == 1 {
			for _, h := range hs {
				if h.Name != ps[0].Name && (h.HasRole(Jicofo) || h.HasRole(JVB) || h.HasRole(Jibri)) {
					r.needAddress(hostAt, ps[0], fmt.Sprintf("host %q runs %s and logs in to its Prosody (c2s port)", h.Name, strings.Join(loginRoles(h), ", ")))
					break
				}
			}
		}
		if d.Videobridge.Websockets {
			for _, b := range with(JVB) {
				for _, n := range with(Nginx) {
					if n.Name != b.Name {
						r.needAddress(hostAt, b, fmt.Sprintf("nginx on host %q proxies its colibri websockets (videobridge.websockets = true)", n.Name))
						break
					}
				}
			}
		}
	}
	if d.Videobridge.Websockets {
		for _, b := range d.HostsWith(JVB) {
			if !bridgeID().MatchString(b.Name) {
				rh := hostAt(b.Name)
				r.errf(rh.DefRange.Ptr(), "Invalid bridge name", "host %q runs a videobridge with websockets; its name is the colibri-ws server id in URLs (/colibri-ws/NAME/...): use letters, digits, '.', '_' and '-' only.", b.Name)
			}
		}
	}

	fronts := d.HostsWith(Front)
	if sharded && len(fronts) == 0 {
		r.errf(shardAt(by[names[1]][0]), "Shards without a front", "The spec has %d shards (%s) sharing the domain %s; browsers reach one address, so a front must route each room to its shard. Add a host block with roles = [\"front\"] and its address (HAProxy on that host pins every room to one shard).", len(names), quoteList(names), d.Domain)
	}
	for _, f := range fronts {
		if f.HasRole(Nginx) {
			rh := hostAt(f.Name)
			r.errf(at(rh.Body, "roles"), "Front and nginx on one host", "host %q runs both the front (HAProxy) and nginx; both listen on the HTTPS port (web.https_port). Put the front on a host of its own, or drop \"nginx\" from its roles.", f.Name)
		}
	}
	if len(fronts) > 0 {
		for _, s := range names {
			for _, n := range by[s] {
				if n.HasRole(Nginx) && !n.HasRole(Front) {
					r.needAddress(hostAt, n, fmt.Sprintf("the front on host %q sends the rooms of shard %q to its nginx", fronts[0].Name, s))
				}
			}
		}
	}
	if d.TURN.Enabled && (r.raw.TURN == nil || r.raw.TURN.Host == nil) {
		for _, c := range d.HostsWith(Coturn) {
			switch {
			case len(fronts) > 0:
				r.needAddress(hostAt, c, fmt.Sprintf("it runs coturn, turn.host is not set, and %s points at the front (clients would be sent to HAProxy for TURN)", d.Domain))
			case !c.HasRole(Nginx):
				r.needAddress(hostAt, c, fmt.Sprintf("it runs coturn away from the web front and turn.host is not set (clients would be sent to %s)", d.Domain))
			}
		}
	}
}

// needAddress reports a host without an address that others must reach.
func (r *resolver) needAddress(hostAt func(string) *rawHost, h Host, why string) {
	if h.Address != "" {
		return
	}
	for _, d := range r.diags {
		if d.Summary == "Host address missing" && strings.Contains(d.Detail, fmt.Sprintf("host %q has no address", h.Name)) {
			return // once per host
		}
	}
	rg := hostAt(h.Name).DefRange
	r.errf(&rg, "Host address missing", "host %q has no address, but %s. Add address = \"10.0.0.5\" (or a DNS name) to the host block: the address the other hosts reach it at.", h.Name, why)
}

func inShard(s string, sharded bool) string {
	if !sharded {
		return ""
	}
	return fmt.Sprintf(" (a host block with shard = %q)", s)
}

func raw0(raw *rawSpec) *hcl.Range {
	if len(raw.Hosts) > 0 {
		return raw.Hosts[0].DefRange.Ptr()
	}
	rg := raw.Body.MissingItemRange()
	return &rg
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
