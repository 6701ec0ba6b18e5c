package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/firewall"
)

// FirewallInspector reads the agent's nftables table (firewall.Manager,
// bound to the rendered ruleset).
type FirewallInspector interface {
	Inspect(ctx context.Context) (firewall.Live, error)
}

// FirewallProber probes ports from a second network namespace
// (firewall.SelfTest); nil skips the self-test.
type FirewallProber func(ctx context.Context, ports []firewall.Port) ([]firewall.Probe, error)

// checkFirewall reports the table's state, then per public port (and SSH)
// whether the live table allows it and whether something listens.
func (c *checker) checkFirewall(ctx context.Context) []Result {
	const id, title = "firewall.table", "Firewall table inet jitsi_agent"
	if !c.d.Firewall.Enabled {
		return []Result{skip(id, title, "the spec has no firewall block (or enabled = false): the host's firewall is left as it is")}
	}
	if c.env.Firewall == nil {
		return []Result{skip(id, title, "nftables is not inspected in this run")}
	}
	live, err := c.env.Firewall.Inspect(ctx)
	if err != nil {
		return []Result{fail(id, title, "cannot read the live ruleset: "+err.Error(),
			"run the doctor as root on the host; install nftables (apt-get install nftables)")}
	}
	out := []Result{tableResult(live)}
	if !live.Exists {
		return out
	}
	var socks []Socket
	sockErr := error(nil)
	if c.env.Sockets != nil {
		socks, sockErr = c.env.Sockets.Listening(ctx)
	}
	rules := firewall.RulesFor(c.d)
	all := append([]firewall.Port{rules.SSH}, rules.Ports...)
	for _, p := range all {
		out = append(out, portResult(p, live, socks, sockErr))
	}
	if c.env.FirewallProbe != nil {
		out = append(out, c.selfTest(ctx, all)...)
	}
	return out
}

// selfTest reports what a client in a second network namespace sees.
func (c *checker) selfTest(ctx context.Context, ports []firewall.Port) []Result {
	var open []firewall.Port
	for _, p := range ports {
		if len(p.Sources) == 0 { // the probe's address is not in a restricted port's sources
			open = append(open, p)
		}
	}
	probes, err := c.env.FirewallProbe(ctx, open)
	if err != nil {
		return []Result{warn("firewall.selftest", "Self-test from a second network namespace", "could not run: "+err.Error(),
			"run the doctor as root with iproute2 installed, or leave out --self-test")}
	}
	var out []Result
	for _, p := range probes {
		id := "firewall.selftest." + p.Port.Name
		title := fmt.Sprintf("%s %s reachable from another network namespace", p.Port.Label(), p.Port.Name)
		switch p.Result {
		case firewall.ProbeServed:
			out = append(out, pass(id, title, "answered"))
		case firewall.ProbeRefused:
			out = append(out, warn(id, title, "the firewall lets it in, but nothing answers on a non-loopback address",
				"start the service that serves "+p.Port.Label()+" ("+p.Port.Reason+") and make it listen on all addresses"))
		case firewall.ProbeDropped:
			out = append(out, fail(id, title, "dropped on the way in",
				"'nft list ruleset' shows which table drops it: jitsi-agent's table opens it, so another table (or a cloud security group in front of the host, which this test does not cross) is in the way"))
		default:
			out = append(out, skip(id, title, "no reply to a STUN probe (the port may be open; this service does not answer probes)"))
		}
	}
	return out
}

func tableResult(live firewall.Live) Result {
	const id, title = "firewall.table", "Firewall table inet jitsi_agent"
	switch live.State {
	case firewall.InSync:
		return pass(id, title, "loaded, matches the spec (input policy "+live.Policy+")")
	case firewall.Missing:
		return fail(id, title, "not loaded: inbound traffic is not filtered by jitsi-agent",
			"run 'jitsi-agent apply SPEC' (the daemon restores it by itself); 'systemctl restart nftables' or 'nft flush ruleset' removes it")
	case firewall.Edited:
		return warn(id, title, "loaded, but edited since jitsi-agent loaded it",
			"run 'jitsi-agent apply SPEC' to put the spec's rules back (the daemon does it when drift = \"restore\"); open ports in the spec's firewall block instead of by hand")
	case firewall.Changed:
		return warn(id, title, "loaded, but the spec now asks for other rules",
			"run 'jitsi-agent plan SPEC', then 'jitsi-agent apply SPEC --confirm 2m' and 'jitsi-agent confirm SPEC'")
	case firewall.Unconfirmed:
		return warn(id, title, "a change applied with --confirm waits for confirmation; it is reverted at "+live.Deadline.Format("15:04:05 MST"),
			"check that you can still open a new SSH session, then run 'jitsi-agent confirm SPEC'")
	case firewall.Reverted:
		return warn(id, title, "the last change was applied with --confirm, not confirmed, and reverted: the previous rules are live",
			"if the change is right, apply it again ('jitsi-agent apply SPEC --confirm 2m') and confirm it from a new SSH session")
	}
	return warn(id, title, "state "+string(live.State), "run 'jitsi-agent apply SPEC'")
}

func portResult(p firewall.Port, live firewall.Live, socks []Socket, sockErr error) Result {
	id := "firewall.port." + p.Name
	title := fmt.Sprintf("%s %s: allowed and served", p.Label(), p.Name)
	open, srcs := live.Allows(p)
	var allowed string
	switch {
	case open:
		allowed = "allowed from anywhere"
	case len(srcs) > 0:
		var s []string
		for _, x := range srcs {
			s = append(s, x.String())
		}
		allowed = "allowed from " + strings.Join(s, ", ")
	default:
		return fail(id, title, "the live firewall does not allow "+p.Label(),
			"run 'jitsi-agent apply SPEC' (with --confirm over SSH); the spec's firewall block opens it")
	}
	if len(p.Sources) > 0 && open {
		return warn(id, title, allowed+", but the spec restricts it to "+prefixList(p),
			"run 'jitsi-agent apply SPEC' to restore the restriction")
	}
	if p.To > p.From {
		return pass(id, title, allowed+" (a relay range: ports are bound on demand)")
	}
	if sockErr != nil {
		return warn(id, title, allowed+"; cannot list listening sockets: "+sockErr.Error(), "run the doctor as root on the host")
	}
	var addrs []string
	for _, s := range socks {
		if s.Proto == p.Proto && s.Port == p.From && !s.Addr.IsLoopback() {
			addrs = append(addrs, s.Addr.String())
		}
	}
	if len(addrs) == 0 {
		return warn(id, title, allowed+", but nothing listens on a non-loopback address",
			"start the service that serves "+p.Label()+" ("+p.Reason+"); 'ss -lntup' shows what listens")
	}
	return pass(id, title, allowed+"; listening on "+strings.Join(addrs, ", "))
}

func prefixList(p firewall.Port) string {
	var s []string
	for _, x := range p.Sources {
		s = append(s, x.String())
	}
	return strings.Join(s, ", ")
}
