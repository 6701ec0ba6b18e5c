// Package firewall renders, checks, applies, confirms and watches the
// deployment's nftables table (table inet jitsi_agent).
//
// The table is the agent's own: it is created, replaced and deleted as a
// whole, in one nft transaction, and no other table is ever flushed or edited,
// so a host's own rules (Docker, fail2ban, a cloud image's defaults) survive.
// Its input chain accepts replies to open connections, loopback, ICMP/ICMPv6,
// SSH (always) and the deployment's public ports, and drops everything else.
// It does not touch forwarding (containers) or output.
//
// Render is pure. Nft is the edge (the real nft binary, optionally run in a
// network namespace); Manager joins them: check with nft -c, snapshot the
// previous table, load atomically, read back, record, and for a confirmed
// apply hand the revert to a systemd timer that outlives the agent.
package firewall

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Family and Table name the agent's table.
const (
	Family = "inet"
	Table  = "jitsi_agent"
)

// maxComment is nft's comment limit (NFT_USERDATA_MAXLEN is 256 bytes; the
// comment attribute keeps 128).
const maxComment = 128

// Port is one allowed destination port (or range) on one protocol.
type Port struct {
	// Name identifies the port in the spec and in doctor ("https", "jvb",
	// "turn-relay", or a user-defined name).
	Name string
	// Proto is "tcp" or "udp".
	Proto string
	// From and To are the first and last port; To == From for one port.
	From, To int
	// Reason is written as the rule's comment.
	Reason string
	// Sources restricts who may connect (empty = anywhere, IPv4 and IPv6).
	Sources []netip.Prefix
}

// Label is "443/tcp" or "49152-65535/udp".
func (p Port) Label() string {
	if p.To > p.From {
		return fmt.Sprintf("%d-%d/%s", p.From, p.To, p.Proto)
	}
	return fmt.Sprintf("%d/%s", p.From, p.Proto)
}

// Contains reports whether the port (or range) covers n on proto.
func (p Port) Contains(proto string, n int) bool {
	return p.Proto == proto && n >= p.From && n <= max(p.From, p.To)
}

// Rules is everything the table allows.
type Rules struct {
	// SSH is always allowed; its Sources may restrict it.
	SSH Port
	// Ports are the deployment's public ports.
	Ports []Port
}

// Validate checks ports, protocols, names and prefixes.
func (r Rules) Validate() error {
	if r.SSH.Proto != "tcp" {
		return fmt.Errorf("ssh port: protocol %q, want tcp", r.SSH.Proto)
	}
	for _, p := range append([]Port{r.SSH}, r.Ports...) {
		if p.Proto != "tcp" && p.Proto != "udp" {
			return fmt.Errorf("port %q: protocol %q, want tcp or udp", p.Name, p.Proto)
		}
		to := max(p.From, p.To)
		if p.From < 1 || to > 65535 || p.To != 0 && p.To < p.From {
			return fmt.Errorf("port %q: %d-%d is not a port range within 1-65535", p.Name, p.From, p.To)
		}
		for _, s := range p.Sources {
			if !s.IsValid() {
				return fmt.Errorf("port %q: invalid source prefix", p.Name)
			}
		}
	}
	return nil
}

// Render returns the nft script that replaces the agent's table in one
// transaction: "table" creates it when absent (so "delete" cannot fail),
// "delete" removes it with everything in it, and the block recreates it.
// nft -f applies the whole file atomically or not at all.
func Render(r Rules) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("#!/usr/sbin/nft -f\n")
	b.WriteString("# Managed by jitsi-agent from the spec's firewall block. Do not edit: the daemon restores it.\n")
	b.WriteString("# Only this table is replaced (one transaction); other tables are never touched.\n")
	fmt.Fprintf(&b, "table %s %s\ndelete table %s %s\n", Family, Table, Family, Table)
	fmt.Fprintf(&b, "table %s %s {\n", Family, Table)
	b.WriteString("\tchain input {\n")
	b.WriteString("\t\ttype filter hook input priority filter; policy drop;\n")
	b.WriteString("\t\tct state established,related accept comment \"replies to connections already open (an apply never cuts a session)\"\n")
	b.WriteString("\t\tct state invalid drop comment \"packets conntrack cannot place\"\n")
	b.WriteString("\t\tiifname \"lo\" accept comment \"loopback: the services talk to each other\"\n")
	b.WriteString("\t\tmeta l4proto icmp accept comment \"ICMP: ping, path MTU discovery\"\n")
	b.WriteString("\t\tmeta l4proto ipv6-icmp accept comment \"ICMPv6: neighbour discovery, path MTU discovery\"\n")
	b.WriteString("\t\tip6 saddr fe80::/10 udp dport 546 accept comment \"DHCPv6 replies\"\n")
	writePort(&b, r.SSH)
	for _, p := range r.Ports {
		writePort(&b, p)
	}
	b.WriteString("\t}\n}\n")
	return b.Bytes(), nil
}

// DeleteScript removes the agent's table if it exists, in one transaction.
func DeleteScript() []byte {
	return fmt.Appendf(nil, "table %s %s\ndelete table %s %s\n", Family, Table, Family, Table)
}

// RestoreScript returns the script that puts back a table listed by
// "nft list table" (existed) or removes ours (it did not exist).
func RestoreScript(listed string, existed bool) []byte {
	if !existed {
		return DeleteScript()
	}
	var b bytes.Buffer
	b.WriteString("# The table as it was before the last apply (jitsi-agent).\n")
	b.Write(DeleteScript())
	b.WriteString(strings.TrimRight(listed, "\n"))
	b.WriteString("\n")
	return b.Bytes()
}

func writePort(b *bytes.Buffer, p Port) {
	dport := strconv.Itoa(p.From)
	if p.To > p.From {
		dport += "-" + strconv.Itoa(p.To)
	}
	comment := p.Label() + " " + p.Name
	if p.Reason != "" {
		comment += ": " + p.Reason
	}
	comment = quoteComment(comment)
	if len(p.Sources) == 0 {
		fmt.Fprintf(b, "\t\t%s dport %s accept comment %s\n", p.Proto, dport, comment)
		return
	}
	var v4, v6 []string
	for _, s := range sortedPrefixes(p.Sources) {
		if s.Addr().Is4() {
			v4 = append(v4, s.String())
		} else {
			v6 = append(v6, s.String())
		}
	}
	if len(v4) > 0 {
		fmt.Fprintf(b, "\t\tip saddr %s %s dport %s accept comment %s\n", set(v4), p.Proto, dport, comment)
	}
	if len(v6) > 0 {
		fmt.Fprintf(b, "\t\tip6 saddr %s %s dport %s accept comment %s\n", set(v6), p.Proto, dport, comment)
	}
}

func set(xs []string) string {
	if len(xs) == 1 {
		return xs[0]
	}
	return "{ " + strings.Join(xs, ", ") + " }"
}

// sortedPrefixes masks, unmaps, de-duplicates and sorts prefixes so the same
// spec always renders the same bytes.
func sortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
	for _, p := range ps {
		a := p.Addr()
		bits := p.Bits()
		if a.Is4In6() && bits >= 96 {
			a, bits = a.Unmap(), bits-96
		}
		q := netip.PrefixFrom(a, bits).Masked()
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Addr().Compare(out[j].Addr()); c != 0 {
			return c < 0
		}
		return out[i].Bits() < out[j].Bits()
	})
	return out
}

// quoteComment makes s a safe nft string: printable, no quotes or
// backslashes, at most maxComment bytes.
func quoteComment(s string) string {
	s = oneLine(s)
	if len(s) > maxComment-2 {
		cut := maxComment - 2
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return `"` + s + `"`
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"' || r == '\\':
			return '\''
		case r < 0x20 || r == 0x7f:
			return ' '
		}
		return r
	}, s)
}
