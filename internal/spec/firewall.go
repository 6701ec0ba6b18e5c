package spec

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
)

// DefaultSSHPort is always allowed through the firewall.
const DefaultSSHPort = 22

var portNameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`) }) // compiled on first use, not at every start

// resolveFirewall reads the firewall block. Without one the firewall is off:
// a spec written before the block existed keeps the host's firewall as it
// is. New specs (the examples, cloud-init) carry "firewall {}".
func (r *resolver) resolveFirewall(d *Deployment) {
	f := r.raw.Firewall
	if f == nil {
		return
	}
	fw := &d.Firewall
	fw.Enabled = boolOr(f.Enabled, true)
	fw.SSHPort = r.port(f.Body, "ssh_port", f.SSHPort, DefaultSSHPort)
	fw.SSHSources = r.prefixes(f.Body, "ssh_sources", f.SSHSources)
	if f.SSHSources != nil && len(f.SSHSources) == 0 {
		r.errf(at(f.Body, "ssh_sources"), "SSH closed to everyone", "ssh_sources = [] would lock everyone out; list the networks that may log in, or remove the attribute (SSH is then open to any address).")
	}
	seen := map[string]bool{}
	for _, p := range f.Ports {
		rng := p.DefRange
		if seen[p.Name] {
			r.errf(&rng, "Duplicate firewall port", "port %q is declared twice.", p.Name)
			continue
		}
		seen[p.Name] = true
		if p.Name == "ssh" {
			r.errf(&rng, "SSH is configured apart", "SSH is always allowed; set its port with ssh_port and restrict it with ssh_sources instead of a port \"ssh\" block.")
			continue
		}
		if !portNameRe().MatchString(p.Name) {
			r.errf(&rng, "Invalid port name", "%q: use 1-32 lower-case letters, digits, '-' or '_' (it becomes the rule's comment).", p.Name)
		}
		fp := FirewallPort{Name: p.Name, Builtin: slices.Contains(FirewallBuiltinPorts, p.Name), Open: boolOr(p.Open, true), Range: rng}
		fp.Sources = r.prefixes(p.Body, "sources", p.Sources)
		if p.Sources != nil && len(p.Sources) == 0 {
			r.errf(at(p.Body, "sources"), "Port closed to everyone", "sources = [] allows nobody; write open = false to close port %q, or remove sources to allow any address.", p.Name)
		}
		fp.Reason = strings.TrimSpace(strOr(p.Reason, ""))
		if fp.Builtin {
			for _, name := range []string{"port", "to_port", "protocol"} {
				if has(p.Body, name) {
					r.errf(at(p.Body, name), "Built-in port", "%q is one of the deployment's own ports (its number comes from the component's settings); a port %q block only takes sources, reason and open.", p.Name, p.Name)
				}
			}
			fw.Ports = append(fw.Ports, fp)
			continue
		}
		if p.Port == nil {
			hint := ""
			if s := closest(p.Name, FirewallBuiltinPorts); s != "" {
				hint = fmt.Sprintf(" Did you mean the built-in port %q?", s)
			}
			r.errf(&rng, "Port number missing", "port %q is not one of the built-in ports (%s), so it needs port = NUMBER (and protocol, default \"tcp\").%s", p.Name, quoteList(FirewallBuiltinPorts), hint)
			continue
		}
		fp.Port = r.port(p.Body, "port", p.Port, 0)
		fp.ToPort = intOr(p.ToPort, 0)
		if p.ToPort != nil && (fp.ToPort <= fp.Port || fp.ToPort > 65535) {
			r.errf(at(p.Body, "to_port"), "Invalid port range", "to_port is the last port of the range: greater than port (%d) and at most 65535.", fp.Port)
		}
		fp.Protocol = r.oneOf(p.Body, "protocol", p.Protocol, "tcp", "tcp", "udp")
		if !fp.Open {
			r.warnf(at(p.Body, "open"), "Port not opened", "open = false on port %q: the block has no effect (only built-in ports are opened without a block).", p.Name)
		}
		if fp.Port == fw.SSHPort && fp.Protocol == "tcp" {
			r.errf(at(p.Body, "port"), "Port is SSH", "port %d/tcp is the SSH port, which is always allowed; restrict it with ssh_sources.", fp.Port)
		}
		fw.Ports = append(fw.Ports, fp)
	}
	if !fw.Enabled {
		return
	}
	if d.Web.HTTPSPort == fw.SSHPort || d.Web.HTTPPort == fw.SSHPort && (d.TLS.ACME != nil || d.Web.HTTPRedirect) {
		r.errf(at(f.Body, "ssh_port"), "SSH port is a web port", "ssh_port = %d collides with nginx's ports; give the port sshd really listens on.", fw.SSHPort)
	}
}

// prefixes parses a list of CIDR prefixes or single addresses.
func (r *resolver) prefixes(body hcl.Body, name string, xs []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range xs {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			if m := p.Masked(); m != p {
				r.errf(at(body, name), "Address bits beyond the prefix", "%q has bits set beyond /%d; write %q.", s, p.Bits(), m.String())
				continue
			}
			out = append(out, p)
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		r.errf(at(body, name), "Invalid network", "%q is neither a CIDR prefix (\"10.0.0.0/8\", \"2001:db8::/32\") nor an IP address.", s)
	}
	return out
}
