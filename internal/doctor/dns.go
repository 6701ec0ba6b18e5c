package doctor

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Resolver looks up a host's addresses; *net.Resolver implements it.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

func (c *checker) checkDNS(ctx context.Context) Result {
	return c.checkName(ctx, "dns.domain", "Domain resolves to this host", c.d.Domain)
}

// checkDNSAll adds the TURN host name when it differs from the domain.
func (c *checker) checkDNSAll(ctx context.Context) []Result {
	out := []Result{c.checkDNS(ctx)}
	if h := c.d.TURN.Host; c.d.TURN.Enabled && c.runs("coturn") && h != "" && h != c.d.Domain {
		out = append(out, c.checkName(ctx, "dns.turn", "TURN host resolves to this host", h))
	}
	return out
}

func (c *checker) checkName(ctx context.Context, id, title, domain string) Result {
	addrs, err := c.env.Resolver.LookupIPAddr(ctx, domain)
	if err != nil || len(addrs) == 0 {
		seen := domain + " does not resolve"
		if err != nil {
			seen += ": " + err.Error()
		}
		return fail(id, title, seen, "create A (and AAAA, if the host has IPv6) records for "+domain+
			" pointing at this host's public address"+publicHint(c.d.Host.PublicIPs))
	}
	mine := map[netip.Addr]bool{}
	var mineList []string
	addMine := func(a netip.Addr) {
		a = a.Unmap()
		if !mine[a] {
			mine[a] = true
			mineList = append(mineList, a.String())
		}
	}
	for _, s := range c.d.Host.PublicIPs {
		if a, err := netip.ParseAddr(s); err == nil {
			addMine(a)
		}
	}
	local, lerr := c.env.LocalAddrs()
	for _, a := range local {
		if ip := addrIP(a); ip.IsValid() && !ip.IsLinkLocalUnicast() {
			addMine(ip)
		}
	}
	var match, other []string
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		switch {
		case ip.IsLoopback():
			// only loopback: an /etc/hosts entry, reported below
		case mine[ip]:
			match = append(match, ip.String())
		default:
			other = append(other, ip.String())
		}
	}
	seen := fmt.Sprintf("%s -> %s", domain, strings.Join(ipStrings(addrs), ", "))
	if lerr != nil {
		seen += fmt.Sprintf(" (local addresses unreadable: %v)", lerr)
	}
	switch {
	case len(match) == 0 && len(other) == 0:
		return warn(id, title, seen+"; only loopback (an /etc/hosts entry?)",
			"publish public A/AAAA records for "+domain+"; clients resolve it through public DNS, not this host's /etc/hosts")
	case len(match) == 0:
		return fail(id, title, seen+"; this host has "+joinMax(mineList, 6),
			"point "+domain+" at this host, or list the public address in host.public_ips if the host is behind NAT")
	case len(other) > 0:
		return warn(id, title, seen+"; "+strings.Join(other, ", ")+" is not this host",
			"remove or correct the stale record(s) "+strings.Join(other, ", ")+" for "+domain+
				" (clients that pick them cannot connect), or add them to host.public_ips if they do reach this host")
	}
	return pass(id, title, seen)
}

func publicHint(ips []string) string {
	if len(ips) == 0 {
		return ""
	}
	return " (" + strings.Join(ips, ", ") + ")"
}

func addrIP(a net.Addr) netip.Addr {
	var ip net.IP
	switch v := a.(type) {
	case *net.IPNet:
		ip = v.IP
	case *net.IPAddr:
		ip = v.IP
	default:
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			return p.Addr().Unmap()
		}
		if p, err := netip.ParseAddr(a.String()); err == nil {
			return p.Unmap()
		}
		return netip.Addr{}
	}
	r, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return r.Unmap()
}

func ipStrings(addrs []net.IPAddr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.IP.String())
	}
	return out
}
