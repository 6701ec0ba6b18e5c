package doctor

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/firewall"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

type fakeFirewall struct {
	live firewall.Live
	err  error
}

func (f fakeFirewall) Inspect(context.Context) (firewall.Live, error) { return f.live, f.err }

func firewallDeployment() *spec.Deployment {
	d := testDeployment()
	d.Firewall.Enabled = true
	d.Firewall.SSHPort = 22
	return d
}

// liveFor is the live table exactly as the spec renders it.
func liveFor(t *testing.T, d *spec.Deployment) firewall.Live {
	t.Helper()
	r := firewall.RulesFor(d)
	return firewall.Live{Exists: true, State: firewall.InSync, Policy: "drop", Accepts: append([]firewall.Port{r.SSH}, r.Ports...)}
}

func TestFirewallHealthy(t *testing.T) {
	d := firewallDeployment()
	socks := append(healthySockets(), sock("tcp", "0.0.0.0", 22, Proc{PID: 5, Comm: "sshd"}))
	rs := newChecker(d, Env{Sockets: fakeSockets{socks: socks}, Firewall: fakeFirewall{live: liveFor(t, d)}}, "").checkFirewall(context.Background())
	expect(t, byID(t, rs, "firewall.table"), Pass, "matches the spec")
	for _, id := range []string{"ssh", "https", "http", "jvb", "turn", "turns"} {
		expect(t, byID(t, rs, "firewall.port."+id), Pass, "allowed from anywhere", "listening on")
	}
	expect(t, byID(t, rs, "firewall.port.turn-relay"), Pass, "relay range")
}

func TestFirewallProblems(t *testing.T) {
	ctx := context.Background()
	d := firewallDeployment()
	live := liveFor(t, d)
	// 10000/udp missing from the live table, nothing on 5349.
	var acc []firewall.Port
	for _, p := range live.Accepts {
		if p.Name != "jvb" {
			acc = append(acc, p)
		}
	}
	live.Accepts, live.State = acc, firewall.Edited
	var socks []Socket
	for _, s := range healthySockets() {
		if s.Port != 5349 {
			socks = append(socks, s)
		}
	}
	rs := newChecker(d, Env{Sockets: fakeSockets{socks: socks}, Firewall: fakeFirewall{live: live}}, "").checkFirewall(ctx)
	expect(t, byID(t, rs, "firewall.table"), Warn, "edited")
	expect(t, byID(t, rs, "firewall.port.jvb"), Fail, "does not allow 10000/udp")
	expect(t, byID(t, rs, "firewall.port.turns"), Warn, "nothing listens")

	// A restricted port that is open to everyone live.
	d.Firewall.Ports = append(d.Firewall.Ports, specFirewallPort("https", "203.0.113.0/24"))
	rs = newChecker(d, Env{Sockets: fakeSockets{socks: healthySockets()}, Firewall: fakeFirewall{live: liveFor(t, testDeploymentWithFirewall())}}, "").checkFirewall(ctx)
	expect(t, byID(t, rs, "firewall.port.https"), Warn, "restricts it to 203.0.113.0/24")

	for st, want := range map[firewall.DriftState]Status{firewall.Missing: Fail, firewall.Unconfirmed: Warn, firewall.Reverted: Warn, firewall.Changed: Warn} {
		l := firewall.Live{State: st, Exists: st != firewall.Missing, Deadline: time.Now()}
		rs = newChecker(d, Env{Sockets: fakeSockets{}, Firewall: fakeFirewall{live: l}}, "").checkFirewall(ctx)
		expect(t, byID(t, rs, "firewall.table"), want)
	}
	rs = newChecker(d, Env{Firewall: fakeFirewall{err: errors.New("nft: Operation not permitted")}}, "").checkFirewall(ctx)
	expect(t, byID(t, rs, "firewall.table"), Fail, "Operation not permitted")

	d.Firewall.Enabled = false
	rs = newChecker(d, Env{Firewall: fakeFirewall{live: live}}, "").checkFirewall(ctx)
	expect(t, byID(t, rs, "firewall.table"), Skip)
}

func testDeploymentWithFirewall() *spec.Deployment { return firewallDeployment() }

func specFirewallPort(name, src string) spec.FirewallPort {
	return spec.FirewallPort{Name: name, Builtin: true, Open: true, Sources: []netip.Prefix{netip.MustParsePrefix(src)}}
}

func TestFirewallSelfTestResults(t *testing.T) {
	d := firewallDeployment()
	d.Firewall.Ports = append(d.Firewall.Ports, spec.FirewallPort{Name: "https", Builtin: true, Open: true, Sources: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	var asked []string
	probe := func(_ context.Context, ports []firewall.Port) ([]firewall.Probe, error) {
		var out []firewall.Probe
		res := map[string]string{"ssh": firewall.ProbeServed, "http": firewall.ProbeRefused, "jvb": firewall.ProbeSilent, "turns": firewall.ProbeDropped}
		for _, p := range ports {
			asked = append(asked, p.Name)
			r := res[p.Name]
			if r == "" {
				r = firewall.ProbeServed
			}
			out = append(out, firewall.Probe{Port: p, Result: r})
		}
		return out, nil
	}
	rs := newChecker(d, Env{Sockets: fakeSockets{socks: healthySockets()}, Firewall: fakeFirewall{live: liveFor(t, d)}, FirewallProbe: probe}, "").checkFirewall(context.Background())
	expect(t, byID(t, rs, "firewall.selftest.ssh"), Pass)
	expect(t, byID(t, rs, "firewall.selftest.http"), Warn, "nothing answers")
	expect(t, byID(t, rs, "firewall.selftest.jvb"), Skip)
	expect(t, byID(t, rs, "firewall.selftest.turns"), Fail, "dropped")
	for _, n := range asked {
		if n == "https" {
			t.Error("a source-restricted port was probed from the self-test address")
		}
	}
	probeErr := func(context.Context, []firewall.Port) ([]firewall.Probe, error) {
		return nil, errors.New("ip: not found")
	}
	rs = newChecker(d, Env{Sockets: fakeSockets{}, Firewall: fakeFirewall{live: liveFor(t, d)}, FirewallProbe: probeErr}, "").checkFirewall(context.Background())
	expect(t, byID(t, rs, "firewall.selftest"), Warn, "ip: not found")
}
