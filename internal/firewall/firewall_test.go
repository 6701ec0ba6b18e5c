package firewall

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func testRules(ssh int) Rules {
	return Rules{
		SSH: Port{Name: "ssh", Proto: "tcp", From: ssh, Reason: "administration (always allowed)"},
		Ports: []Port{
			{Name: "https", Proto: "tcp", From: 443, Reason: "nginx: web app, BOSH, websockets"},
			{Name: "jvb", Proto: "udp", From: 10000, Reason: "videobridge media"},
			{Name: "turn-relay", Proto: "udp", From: 49152, To: 49160, Reason: "coturn relay range"},
			{Name: "metrics", Proto: "tcp", From: 9137, Reason: "monitoring only",
				Sources: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16"), netip.MustParsePrefix("fd99::/64")}},
			{Name: "backend", Proto: "tcp", From: 8000, Reason: "app backend from the LAN",
				Sources: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")}},
		},
	}
}

func TestRender(t *testing.T) {
	r := testRules(22)
	r.Ports = append(r.Ports, Port{Name: `evil"name`, Proto: "tcp", From: 1234, Reason: "a\nb\\c " + strings.Repeat("x", 300)})
	out, err := Render(r)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"table inet jitsi_agent\ndelete table inet jitsi_agent\ntable inet jitsi_agent {\n",
		"type filter hook input priority filter; policy drop;",
		"ct state established,related accept",
		`tcp dport 22 accept comment "22/tcp ssh: administration (always allowed)"`,
		`tcp dport 443 accept comment "443/tcp https: nginx: web app, BOSH, websockets"`,
		`udp dport 10000 accept comment "10000/udp jvb: videobridge media"`,
		`udp dport 49152-49160 accept comment "49152-49160/udp turn-relay: coturn relay range"`,
		`ip saddr 10.99.0.0/16 tcp dport 9137 accept comment "9137/tcp metrics: monitoring only"`,
		`ip6 saddr fd99::/64 tcp dport 9137 accept`,
		`meta l4proto ipv6-icmp accept`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("rendered ruleset lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "flush") {
		t.Error("the ruleset must never flush")
	}
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, `comment "`); i >= 0 {
			c := line[i+len(`comment "`):]
			if !strings.HasSuffix(c, `"`) || strings.ContainsAny(strings.TrimSuffix(c, `"`), "\"\\") || len(c)-1 > maxComment-2 {
				t.Errorf("unsafe comment: %s", line)
			}
		}
	}
	again, _ := Render(r)
	if string(again) != s {
		t.Error("render is not deterministic")
	}
}

func TestRenderRejectsBadPorts(t *testing.T) {
	for name, p := range map[string]Port{
		"proto":    {Name: "x", Proto: "sctp", From: 1},
		"zero":     {Name: "x", Proto: "tcp", From: 0},
		"high":     {Name: "x", Proto: "udp", From: 65536},
		"backward": {Name: "x", Proto: "udp", From: 50000, To: 40000},
		"prefix":   {Name: "x", Proto: "tcp", From: 5, Sources: []netip.Prefix{{}}},
	} {
		r := testRules(22)
		r.Ports = append(r.Ports, p)
		if _, err := Render(r); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func newManager(t *testing.T, l *lab) *Manager {
	return &Manager{Nft: l.nft, Dir: filepath.Join(t.TempDir(), "firewall")}
}

func mustRender(t *testing.T, r Rules) []byte {
	t.Helper()
	b, err := Render(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// From the outside namespace the allowed ports connect (IPv4 and IPv6) and
// everything else is dropped; source restrictions hold.
func TestPortsFromOutside(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	for _, p := range []int{22, 443, 5222, 9137, 8000} {
		l.listenTCP(t, p)
	}
	for _, p := range []int{10000, 49155, 3478} {
		l.listenUDP(t, p)
	}
	// Before: no firewall, everything is open.
	if !l.tcpOpen(t, l.hostIP4, 5222, true) || !l.udpOpen(t, l.hostIP4, 3478, true) {
		t.Fatal("the lab is broken: ports are closed before any firewall")
	}
	m := newManager(t, l)
	res, err := m.Apply(ctx, mustRender(t, testRules(22)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed {
		t.Fatal("first apply reported no change")
	}
	for _, addr := range []string{l.hostIP4, l.hostIP6} {
		for _, c := range []struct {
			port int
			open bool
		}{{22, true}, {443, true}, {8000, addr == l.hostIP4}, {5222, false}, {9137, false}} {
			if got := l.tcpOpen(t, addr, c.port, c.open); got != c.open {
				t.Errorf("tcp %s:%d open=%v, want %v", addr, c.port, got, c.open)
			}
		}
		for _, c := range []struct {
			port int
			open bool
		}{{10000, true}, {49155, true}, {3478, false}} {
			if got := l.udpOpen(t, addr, c.port, c.open); got != c.open {
				t.Errorf("udp %s:%d open=%v, want %v", addr, c.port, got, c.open)
			}
		}
	}
	// A second apply of the same ruleset changes nothing.
	res, err = m.Apply(ctx, mustRender(t, testRules(22)), 0)
	if err != nil || res.Changed {
		t.Fatalf("second apply: changed=%v err=%v, want no change", res.Changed, err)
	}
	// Removing the firewall opens everything again.
	if ok, err := m.Remove(ctx); err != nil || !ok {
		t.Fatalf("remove: %v %v", ok, err)
	}
	if !l.tcpOpen(t, l.hostIP4, 5222, true) {
		t.Error("5222 still closed after the table was removed")
	}
}

// A host's own table (Docker, fail2ban...) survives apply, a re-apply and a
// rollback byte for byte.
func TestForeignTableSurvives(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	l.load(t, `table ip foreign {
	set banned { type ipv4_addr; elements = { 192.0.2.7 } }
	chain input { type filter hook input priority 10; policy accept; ip saddr @banned drop; }
}
table inet filter {
	chain input { type filter hook input priority 0; policy accept; }
}
`)
	listForeign := func() string {
		out, err := l.nft.run(ctx, nil, "list", "table", "ip", "foreign")
		if err != nil {
			t.Fatal(err)
		}
		out2, err := l.nft.run(ctx, nil, "list", "table", "inet", "filter")
		if err != nil {
			t.Fatal(err)
		}
		return string(out) + string(out2)
	}
	before := listForeign()
	m := newManager(t, l)
	res, err := m.Apply(ctx, mustRender(t, testRules(22)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := listForeign(); got != before {
		t.Fatalf("foreign tables changed by apply:\n%s\nwant:\n%s", got, before)
	}
	r2 := testRules(2222)
	if _, err := m.Apply(ctx, mustRender(t, r2), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Rollback(ctx, res.Restore); err != nil {
		t.Fatal(err)
	}
	if got := listForeign(); got != before {
		t.Fatalf("foreign tables changed by rollback:\n%s", got)
	}
	if _, ok, _ := l.nft.Table(ctx); ok {
		t.Fatal("rollback to 'no table' left table inet jitsi_agent")
	}
	if _, err := m.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if got := listForeign(); got != before {
		t.Fatalf("foreign tables changed by remove:\n%s", got)
	}
}

// A connection open before an apply survives it, even when the new ruleset
// no longer allows new connections to that port.
func TestEstablishedConnectionSurvivesApply(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	l.listenTCP(t, 2222)
	m := newManager(t, l)
	if _, err := m.Apply(ctx, mustRender(t, testRules(2222)), 0); err != nil {
		t.Fatal(err)
	}
	c, err := l.dialTCP(t, l.hostIP4, 2222, openTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c)
	// SSH moves to 22: 2222 is closed for new connections.
	if _, err := m.Apply(ctx, mustRender(t, testRules(22)), 0); err != nil {
		t.Fatal(err)
	}
	echo(t, c) // the session is still alive
	if l.tcpOpen(t, l.hostIP4, 2222, false) {
		t.Error("a new connection to 2222 got through after SSH moved to 22")
	}
	echo(t, c)
}

// A ruleset that nft -c rejects is never loaded: the live table is the one
// before, byte for byte.
func TestRejectedRulesetNeverApplied(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	m := newManager(t, l)
	if _, err := m.Apply(ctx, mustRender(t, testRules(22)), 0); err != nil {
		t.Fatal(err)
	}
	before := l.ruleset(t)
	for name, bad := range map[string]string{
		"syntax": string(DeleteScript()) + "table inet jitsi_agent { chain input { tcp dport 22 acept } }\n",
		"semantic": string(DeleteScript()) + "table inet jitsi_agent { chain input { type filter hook input priority filter; policy drop; " +
			"ip saddr @nosuchset accept } }\n",
		"empty-table-after-valid-part": string(DeleteScript()) + "table inet jitsi_agent { chain input { type filter hook input priority filter; policy accept; } }\n" +
			"add rule inet jitsi_agent nochain accept\n",
	} {
		_, err := m.Apply(ctx, []byte(bad), 0)
		if !errors.Is(err, ErrRejected) {
			t.Errorf("%s: err = %v, want ErrRejected", name, err)
		}
		if got := l.ruleset(t); got != before {
			t.Errorf("%s: ruleset changed although nft -c rejected it:\n%s", name, got)
		}
	}
	if st, err := m.Drift(ctx, mustRender(t, testRules(22))); err != nil || st != InSync {
		t.Errorf("drift after rejected applies: %s %v", st, err)
	}
}

func TestDrift(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	m := newManager(t, l)
	script := mustRender(t, testRules(22))
	if st, err := m.Drift(ctx, script); err != nil || st != Missing {
		t.Fatalf("before apply: %s %v, want missing", st, err)
	}
	if _, err := m.Apply(ctx, script, 0); err != nil {
		t.Fatal(err)
	}
	if st, err := m.Drift(ctx, script); err != nil || st != InSync {
		t.Fatalf("after apply: %s %v", st, err)
	}
	// Someone opens 5222 by hand.
	l.load(t, "add rule inet jitsi_agent input tcp dport 5222 accept\n")
	if st, err := m.Drift(ctx, script); err != nil || st != Edited {
		t.Fatalf("after a hand edit: %s %v, want edited", st, err)
	}
	if st, err := m.Drift(ctx, mustRender(t, testRules(2222))); err != nil || st != Changed {
		t.Fatalf("another spec: %s %v, want changed", st, err)
	}
	// Restoring is a plain apply.
	if res, err := m.Apply(ctx, script, 0); err != nil || !res.Changed {
		t.Fatalf("restore: %v %v", res.Changed, err)
	}
	if strings.Contains(l.ruleset(t), "5222") {
		t.Fatal("the hand-added rule survived the restore")
	}
	// Someone runs "nft flush ruleset" (systemctl restart nftables does).
	l.load(t, "flush ruleset\n")
	if st, err := m.Drift(ctx, script); err != nil || st != Missing {
		t.Fatalf("after flush: %s %v, want missing", st, err)
	}
}

// fakeTimer records what would be armed; fire runs it in the lab.
type fakeTimer struct {
	argv    []string
	after   time.Duration
	armed   bool
	disarms int
}

func (f *fakeTimer) Arm(_ context.Context, name string, after time.Duration, argv []string) error {
	f.argv, f.after, f.armed = argv, after, true
	return nil
}

func (f *fakeTimer) Disarm(context.Context, string) error {
	f.armed = false
	f.disarms++
	return nil
}

func (f *fakeTimer) fire(t *testing.T) {
	t.Helper()
	if !f.armed {
		t.Fatal("fire: not armed")
	}
	out, err := exec.Command(f.argv[0], f.argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("revert command %q: %v\n%s", f.argv, err, out)
	}
	f.armed = false
}

func TestConfirmFakeTimer(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	timer := &fakeTimer{}
	m := newManager(t, l)
	m.Timer = timer
	m.RevertArgv = l.nft.Argv
	old := mustRender(t, testRules(22))
	if _, err := m.Apply(ctx, old, 0); err != nil {
		t.Fatal(err)
	}
	oldLive := l.ruleset(t)

	// Confirmed in time: the new ruleset stays.
	next := mustRender(t, testRules(2222))
	res, err := m.Apply(ctx, next, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pending == nil || !timer.armed || timer.after != 2*time.Minute {
		t.Fatalf("confirmed apply did not arm the revert: %+v %+v", res, timer)
	}
	if st, _ := m.Drift(ctx, next); st != Unconfirmed {
		t.Fatalf("drift while waiting = %s, want unconfirmed", st)
	}
	if _, err := m.Confirm(ctx); err != nil {
		t.Fatal(err)
	}
	if timer.armed {
		t.Fatal("confirm left the timer armed")
	}
	if _, err := m.Confirm(ctx); !errors.Is(err, ErrNothingPending) {
		t.Fatalf("second confirm: %v, want ErrNothingPending", err)
	}
	if st, _ := m.Drift(ctx, next); st != InSync {
		t.Fatalf("after confirm: %s", st)
	}

	// Not confirmed: the timer fires and the table before comes back.
	if _, err := m.Apply(ctx, old, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, next, time.Minute); err != nil {
		t.Fatal(err)
	}
	if l.ruleset(t) == oldLive {
		t.Fatal("the new ruleset was not loaded")
	}
	timer.fire(t)
	if got := l.ruleset(t); got != oldLive {
		t.Fatalf("revert did not restore the previous table:\n%s\nwant:\n%s", got, oldLive)
	}
	if _, err := m.Confirm(ctx); !errors.Is(err, ErrReverted) {
		t.Fatalf("late confirm: %v, want ErrReverted", err)
	}
	if st, _ := m.Drift(ctx, next); st != Reverted {
		t.Fatalf("drift after revert = %s, want reverted (the daemon must not put it back)", st)
	}
	// An explicit apply clears the mark.
	if _, err := m.Apply(ctx, next, 0); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.Drift(ctx, next); st != InSync {
		t.Fatalf("after re-apply: %s", st)
	}
	if _, err := os.Stat(filepath.Join(m.Dir, revertedFile)); err == nil {
		t.Fatal("reverted mark left after an explicit apply")
	}
}

// Without a timer, --confirm is refused before anything changes.
func TestConfirmNeedsTimer(t *testing.T) {
	l := newLab(t)
	m := newManager(t, l)
	before := l.ruleset(t)
	if _, err := m.Apply(context.Background(), mustRender(t, testRules(22)), time.Minute); err == nil {
		t.Fatal("want an error")
	}
	if l.ruleset(t) != before {
		t.Fatal("ruleset changed")
	}
}

// Inspect reads back what the live table accepts, as doctor reports it.
func TestInspect(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	m := newManager(t, l)
	script := mustRender(t, testRules(22))
	if _, err := m.Apply(ctx, script, 0); err != nil {
		t.Fatal(err)
	}
	live, err := m.Inspect(ctx, script)
	if err != nil {
		t.Fatal(err)
	}
	if !live.Exists || live.State != InSync || live.Policy != "drop" {
		t.Fatalf("live: %+v", live)
	}
	for _, c := range []struct {
		p       Port
		open    bool
		sources string
	}{
		{Port{Proto: "tcp", From: 22}, true, ""},
		{Port{Proto: "tcp", From: 443}, true, ""},
		{Port{Proto: "udp", From: 443}, false, ""},
		{Port{Proto: "udp", From: 49152, To: 49160}, true, ""},
		{Port{Proto: "udp", From: 49152, To: 49161}, false, ""},
		{Port{Proto: "tcp", From: 9137}, false, "10.99.0.0/16 fd99::/64"},
		{Port{Proto: "tcp", From: 5222}, false, ""},
	} {
		open, srcs := live.Allows(c.p)
		var s []string
		for _, p := range srcs {
			s = append(s, p.String())
		}
		if open != c.open || strings.Join(s, " ") != c.sources {
			t.Errorf("%s: open=%v sources=%v, want %v %q", c.p.Label(), open, s, c.open, c.sources)
		}
	}
	// A hand-made rule with a port set and an address set is understood too;
	// a rule with other matches is not counted as opening anything.
	l.load(t, `add rule inet jitsi_agent input ip saddr { 192.0.2.1, 198.51.100.0/24 } tcp dport { 7000, 7100-7200 } accept
add rule inet jitsi_agent input iifname "eth9" tcp dport 5222 accept
`)
	live, err = m.Inspect(ctx, script)
	if err != nil {
		t.Fatal(err)
	}
	if live.State != Edited {
		t.Errorf("state %s, want edited", live.State)
	}
	if open, srcs := live.Allows(Port{Proto: "tcp", From: 7150}); open || len(srcs) != 2 {
		t.Errorf("7150: %v %v", open, srcs)
	}
	if open, srcs := live.Allows(Port{Proto: "tcp", From: 5222}); open || len(srcs) != 0 {
		t.Errorf("5222 via an interface rule: %v %v", open, srcs)
	}
}

// SelfTest probes from a namespace of its own, through a veth pair into the
// namespace under test: an allowed port with a listener is served, an
// allowed one without is refused, a closed one dropped; STUN gets through
// to a UDP responder.
func TestSelfTest(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	l.listenTCP(t, 443)
	l.listenTCP(t, 5222)
	l.listenUDP(t, 3478)  // closed by the firewall
	l.listenUDP(t, 49152) // echoes: the STUN transaction id comes back
	m := newManager(t, l)
	if _, err := m.Apply(ctx, mustRender(t, testRules(22)), 0); err != nil {
		t.Fatal(err)
	}
	ports := []Port{
		{Name: "https", Proto: "tcp", From: 443},
		{Name: "ssh", Proto: "tcp", From: 22},
		{Name: "xmpp", Proto: "tcp", From: 5222},
		{Name: "jvb", Proto: "udp", From: 10000},
		{Name: "turn", Proto: "udp", From: 3478},
		{Name: "turn-relay", Proto: "udp", From: 49152, To: 49160},
	}
	probes, err := SelfTest(ctx, l.host, ports, 3*time.Second) // per probe: long enough for a loaded machine to answer; only dropped and silent ports wait it out
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ProbeServed, ProbeRefused, ProbeDropped, ProbeRefused, ProbeSilent, ProbeServed}
	for i, p := range probes {
		if p.Result != want[i] {
			t.Errorf("%s: %s, want %s", p.Port.Label(), p.Result, want[i])
		}
	}
	if len(probes) != len(ports) {
		t.Fatalf("%d probes for %d ports", len(probes), len(ports))
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), "jitsi-agent-selftest") {
		t.Errorf("self-test namespace left behind: %s", out)
	}
}

// A front host opens HTTP and HTTPS to everyone (HAProxy); a shard's nginx
// behind a front is open to the front's address only.
func TestScriptFrontAndShard(t *testing.T) {
	hosts := []spec.Host{
		{Name: "front1", Address: "192.0.2.10", Roles: []string{spec.Front}, Shard: spec.DefaultShard},
		{Name: "signal-a", Address: "10.0.0.1", Shard: "a", Roles: []string{spec.Prosody, spec.Jicofo, spec.Nginx, spec.JVB}},
	}
	base := func(h spec.Host) *spec.Deployment {
		return &spec.Deployment{Host: h, Hosts: hosts, Firewall: spec.Firewall{Enabled: true, SSHPort: 22},
			Web: spec.Web{HTTPPort: 80, HTTPSPort: 443, HTTPRedirect: true}, Videobridge: spec.Videobridge{UDPPort: 10000}}
	}
	front, err := Script(base(hosts[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`tcp dport 443 accept comment "443/tcp https: front (HAProxy)`, `tcp dport 80 accept comment "80/tcp http: front (HAProxy)`} {
		if !strings.Contains(string(front), want) {
			t.Errorf("front ruleset lacks %q:\n%s", want, front)
		}
	}
	shard, err := Script(base(hosts[1]))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(shard), `ip saddr 192.0.2.10/32 tcp dport 443 accept`) || strings.Contains(string(shard), "\n\t\ttcp dport 443 accept") {
		t.Errorf("shard nginx must be open to the front only:\n%s", shard)
	}
}
