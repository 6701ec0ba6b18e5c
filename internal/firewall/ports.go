package firewall

import (
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// builtinPorts lists the public ports this host's components bind, from
// the one port model (spec.Deployment.Ports, package ports); PublicPorts
// applies the firewall block's restrictions on top.
func builtinPorts(d *spec.Deployment) []Port {
	var ps []Port
	for _, b := range d.Ports().Public() {
		ps = append(ps, Port{Name: b.Name, Proto: b.Proto, From: b.Port, To: b.ToPort, Reason: b.Reason, Sources: b.Sources})
	}
	return ps
}

// PublicPorts is every port the table opens besides SSH: the built-in ones
// (minus closed ones, with their source restrictions) and the spec's extra
// ports.
func PublicPorts(d *spec.Deployment) []Port {
	fw := d.Firewall
	var out []Port
	for _, p := range builtinPorts(d) {
		if b, ok := fw.Port(p.Name); ok {
			if !b.Open {
				continue
			}
			if len(b.Sources) > 0 {
				p.Sources = b.Sources
			}
			if b.Reason != "" {
				p.Reason = b.Reason
			}
		}
		out = append(out, p)
	}
	for _, b := range fw.Ports {
		if b.Builtin || !b.Open {
			continue
		}
		out = append(out, Port{Name: b.Name, Proto: b.Protocol, From: b.Port, To: b.ToPort, Reason: b.Reason, Sources: b.Sources})
	}
	return out
}

// RulesFor is the table the spec asks for (call it only when
// d.Firewall.Enabled).
func RulesFor(d *spec.Deployment) Rules {
	ssh := d.Firewall.SSHPort
	if ssh == 0 {
		ssh = spec.DefaultSSHPort
	}
	return Rules{
		SSH: Port{Name: "ssh", Proto: "tcp", From: ssh, Sources: d.Firewall.SSHSources,
			Reason: "administration, always allowed so the firewall cannot lock you out"},
		Ports: PublicPorts(d),
	}
}
