package firewall

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// ruleRe matches one port rule as Render writes it:
// [ip|ip6 saddr S] PROTO dport P[-Q] accept comment "LABEL NAME[: REASON]".
var ruleRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(?:(ip6?) saddr (\{ [^}]+ \}|\S+) )?(tcp|udp) dport (\d+)(?:-(\d+))? accept comment "(\S+) ([a-z0-9][a-z0-9_-]*)(?:: (.*))?"$`)
}) // compiled on first use, not at every start

// Parse reads back a ruleset Render wrote (jitsi-agent import adopts a host
// the agent already manages): SSH and the ports with their names, reasons
// and sources. The fixed rules (replies, loopback, ICMP, DHCPv6) are
// skipped; any other rule is an error naming its line.
func Parse(script []byte) (Rules, error) {
	var r Rules
	byName := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(script))
	n := 0
	inChain := false
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "chain input {":
			inChain = true
			continue
		case !inChain || line == "" || strings.HasPrefix(line, "#") || line == "}":
			continue
		case strings.HasPrefix(line, "type filter hook input"), strings.HasPrefix(line, "ct state "),
			strings.HasPrefix(line, `iifname "lo" accept`), strings.HasPrefix(line, "meta l4proto "),
			strings.HasPrefix(line, "ip6 saddr fe80::/10 udp dport 546 accept"):
			continue
		}
		m := ruleRe().FindStringSubmatch(line)
		if m == nil {
			return Rules{}, fmt.Errorf("line %d: not a rule jitsi-agent writes: %s", n, line)
		}
		from, _ := strconv.Atoi(m[4])
		to := 0
		if m[5] != "" {
			to, _ = strconv.Atoi(m[5])
		}
		p := Port{Name: m[7], Proto: m[3], From: from, To: to, Reason: m[8]}
		if m[1] != "" {
			for _, s := range strings.Split(strings.Trim(m[2], "{ }"), ",") {
				pr, err := netip.ParsePrefix(strings.TrimSpace(s))
				if err != nil {
					a, aerr := netip.ParseAddr(strings.TrimSpace(s))
					if aerr != nil {
						return Rules{}, fmt.Errorf("line %d: source %q: %w", n, s, err)
					}
					pr = netip.PrefixFrom(a, a.BitLen())
				}
				p.Sources = append(p.Sources, pr)
			}
		}
		if i, ok := byName[p.Name]; ok { // the IPv6 half of a restricted port
			if p.Name == "ssh" {
				r.SSH.Sources = append(r.SSH.Sources, p.Sources...)
			} else {
				r.Ports[i].Sources = append(r.Ports[i].Sources, p.Sources...)
			}
			continue
		}
		if p.Name == "ssh" && r.SSH.Name == "" {
			r.SSH = p
			byName[p.Name] = -1
			continue
		}
		byName[p.Name] = len(r.Ports)
		r.Ports = append(r.Ports, p)
	}
	if err := sc.Err(); err != nil {
		return Rules{}, err
	}
	if r.SSH.Name == "" {
		return Rules{}, fmt.Errorf("no SSH rule (a ruleset jitsi-agent writes always has one)")
	}
	return r, nil
}
