package adopt

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/firewall"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// readFirewall reads the agent's own ruleset (a host jitsi-agent already
// manages); nil when there is none.
func readFirewall(h *hostFiles) error {
	b, err := readHostFile(h.root, files.FirewallPath)
	if err != nil || b == nil {
		return err
	}
	r, err := firewall.Parse(b)
	if err != nil {
		return fmt.Errorf("%s: %w", files.FirewallPath, err)
	}
	h.raw[files.FirewallPath] = b
	h.firewall = &r
	return nil
}

// deriveFirewall turns the ruleset into the firewall block: SSH, every
// port by name (built-in ones with their sources and reason, extra ones
// whole). refineFirewall later drops what equals the defaults.
func deriveFirewall(h *hostFiles, im *imported) {
	if h.firewall == nil {
		return
	}
	r := h.firewall
	fw := spec.Firewall{Enabled: true, SSHPort: r.SSH.From, SSHSources: r.SSH.Sources}
	for _, p := range r.Ports {
		fp := spec.FirewallPort{Name: p.Name, Open: true, Sources: p.Sources, Reason: p.Reason}
		if slices.Contains(spec.FirewallBuiltinPorts, p.Name) {
			fp.Builtin = true
		} else {
			fp.Port, fp.ToPort, fp.Protocol = p.From, p.To, p.Proto
		}
		fw.Ports = append(fw.Ports, fp)
	}
	im.d.Firewall = fw
}

// refineFirewall compares the built-in ports with the port model of the
// loaded spec d: a reason or sources equal to the model's are dropped, a
// built-in port the ruleset does not open is closed (open = false).
func refineFirewall(im *imported, d *spec.Deployment) {
	fw := &im.d.Firewall
	if !fw.Enabled {
		return
	}
	model := map[string]firewall.Port{}
	plain := *d
	plain.Firewall = spec.Firewall{} // the model's own ports, before the block's restrictions
	for _, p := range firewall.PublicPorts(&plain) {
		model[p.Name] = p
	}
	var out []spec.FirewallPort
	seen := map[string]bool{}
	for _, p := range fw.Ports {
		seen[p.Name] = true
		if !p.Builtin {
			out = append(out, p)
			continue
		}
		def, ok := model[p.Name]
		if !ok {
			continue // not a port this host opens by itself; the import report shows the difference
		}
		if p.Reason == def.Reason {
			p.Reason = ""
		}
		if samePrefixes(p.Sources, def.Sources) {
			p.Sources = nil
		}
		if p.Reason != "" || len(p.Sources) > 0 {
			out = append(out, p)
		}
	}
	for _, name := range spec.FirewallBuiltinPorts {
		if _, ok := model[name]; ok && !seen[name] {
			out = append(out, spec.FirewallPort{Name: name, Builtin: true, Open: false})
		}
	}
	fw.Ports = out
}

func samePrefixes(a, b []netip.Prefix) bool {
	return slices.Equal(firewallStrings(a), firewallStrings(b))
}

func firewallStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	slices.Sort(out)
	return out
}

// writeFirewall is the firewall block of the imported spec.
func writeFirewall(b *strings.Builder, fw spec.Firewall) {
	if !fw.Enabled {
		return
	}
	b.WriteString("\n# The host firewall jitsi-agent manages (table inet jitsi_agent).\nfirewall {\n")
	fmt.Fprintf(b, "ssh_port = %d\n", fw.SSHPort)
	if len(fw.SSHSources) > 0 {
		fmt.Fprintf(b, "ssh_sources = %s\n", hlist(firewallStrings(fw.SSHSources)))
	}
	for _, p := range fw.Ports {
		fmt.Fprintf(b, "\nport %s {\n", hq(p.Name))
		if !p.Builtin {
			fmt.Fprintf(b, "port = %d\n", p.Port)
			if p.ToPort != 0 {
				fmt.Fprintf(b, "to_port = %d\n", p.ToPort)
			}
			if p.Protocol != "tcp" {
				fmt.Fprintf(b, "protocol = %s\n", hq(p.Protocol))
			}
		}
		if !p.Open {
			b.WriteString("open = false\n")
		}
		if len(p.Sources) > 0 {
			fmt.Fprintf(b, "sources = %s\n", hlist(firewallStrings(p.Sources)))
		}
		if p.Reason != "" {
			fmt.Fprintf(b, "reason = %s\n", hq(p.Reason))
		}
		b.WriteString("}\n")
	}
	b.WriteString("}\n")
}
