package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestExitCodeMapping(t *testing.T) {
	cases := []struct {
		sts  []Status
		want int
	}{
		{nil, 0},
		{[]Status{Pass, Pass}, 0},
		{[]Status{Pass, Skip}, 0},
		{[]Status{Pass, Warn, Skip}, 2},
		{[]Status{Warn, Fail, Pass}, 1},
		{[]Status{Fail}, 1},
	}
	for _, c := range cases {
		r := &Report{}
		for i, s := range c.sts {
			r.Results = append(r.Results, Result{ID: string(rune('a' + i)), Status: s})
		}
		if got := r.ExitCode(); got != c.want {
			t.Errorf("%v: exit %d, want %d", c.sts, got, c.want)
		}
	}
}

func TestInvalidSpecReportsOnlySpec(t *testing.T) {
	rep := Run(context.Background(), nil, Env{}, Options{Spec: SpecInfo{Path: "bad.hcl"}})
	if len(rep.Results) != 1 {
		t.Fatalf("got %d results, want 1", len(rep.Results))
	}
	expect(t, rep.Results[0], Fail, "bad.hcl")
	if rep.ExitCode() != 1 {
		t.Errorf("exit %d, want 1", rep.ExitCode())
	}
}

func TestSpecWarnings(t *testing.T) {
	d := testDeployment()
	expect(t, checkSpec(d, SpecInfo{Path: "a.hcl", Valid: true}), Pass)
	expect(t, checkSpec(d, SpecInfo{Path: "a.hcl", Valid: true, Warnings: 2}), Warn, "2 warning")
	d.Auth.JWT.AppSecretInline = true
	expect(t, checkSpec(d, SpecInfo{Path: "a.hcl", Valid: true}), Warn, "inline")
}

type fakePlanner struct {
	s   PlanSummary
	err error
}

func (f fakePlanner) Summary(context.Context) (PlanSummary, error) { return f.s, f.err }

func TestPlanCheck(t *testing.T) {
	d := testDeployment()
	expect(t, newChecker(d, Env{}, "").checkPlan(context.Background()), Skip)
	expect(t, newChecker(d, Env{Planner: fakePlanner{}}, "").checkPlan(context.Background()), Pass)
	r := newChecker(d, Env{Planner: fakePlanner{s: PlanSummary{Changes: 2, Drift: 1,
		DriftPaths: []string{"/etc/jitsi/jicofo/jicofo.conf"}, PendingRestarts: []string{"prosody.service"}}}}, "").
		checkPlan(context.Background())
	expect(t, r, Warn, "2 pending change", "jicofo.conf", "prosody.service")
	if !strings.Contains(r.Fix, "jitsi-agent apply") || !strings.Contains(r.Fix, "restart prosody.service") {
		t.Errorf("fix %q", r.Fix)
	}
	expect(t, newChecker(d, Env{Planner: fakePlanner{err: errors.New("boom")}}, "").checkPlan(context.Background()), Fail, "boom")
	c := newChecker(d, Env{Planner: fakePlanner{}}, "")
	c.opts.RenderErr = errors.New("internal secrets: permission denied")
	expect(t, c.checkPlan(context.Background()), Fail, "permission denied")
}

func TestDNSCheck(t *testing.T) {
	d := testDeployment()
	local := localAddrs("127.0.0.1/8", "192.0.2.10/24", "2001:db8::10/64", "fe80::1/64")
	run := func(r Resolver, pub ...string) Result {
		d := testDeployment()
		d.Host.PublicIPs = pub
		return newChecker(d, Env{Resolver: r, LocalAddrs: local}, "").checkDNS(context.Background())
	}
	expect(t, run(fakeResolver{addrs: []string{"192.0.2.10"}}), Pass, "192.0.2.10")
	expect(t, run(fakeResolver{addrs: []string{"192.0.2.10", "2001:db8::10"}}), Pass)
	expect(t, run(fakeResolver{addrs: []string{"203.0.113.7"}}, "203.0.113.7"), Pass) // behind NAT
	expect(t, run(fakeResolver{addrs: []string{"198.51.100.1"}}), Fail, "198.51.100.1")
	expect(t, run(fakeResolver{addrs: []string{"192.0.2.10", "2001:db8::99"}}), Warn, "2001:db8::99 is not this host")
	expect(t, run(fakeResolver{addrs: []string{"127.0.1.1"}}), Warn, "loopback")
	expect(t, run(fakeResolver{err: &net.DNSError{Err: "no such host", Name: d.Domain, IsNotFound: true}}), Fail, "does not resolve")
	r := run(fakeResolver{})
	expect(t, r, Fail)
	if !strings.Contains(r.Fix, "A (and AAAA") {
		t.Errorf("fix %q", r.Fix)
	}
}

func TestDNSTurnHost(t *testing.T) {
	d := testDeployment()
	d.TURN.Host = "turn.example.test"
	res := fakeResolverMap{testDomain: {"192.0.2.10"}, "turn.example.test": {"198.51.100.9"}}
	rs := newChecker(d, Env{Resolver: res, LocalAddrs: localAddrs("192.0.2.10/24")}, "").checkDNSAll(context.Background())
	expect(t, byID(t, rs, "dns.domain"), Pass)
	expect(t, byID(t, rs, "dns.turn"), Fail, "turn.example.test -> 198.51.100.9")
	d.TURN.Host = testDomain
	if rs := newChecker(d, Env{Resolver: res, LocalAddrs: localAddrs("192.0.2.10/24")}, "").checkDNSAll(context.Background()); len(rs) != 1 {
		t.Errorf("same host checked twice: %v", rs)
	}
}

type fakeResolverMap map[string][]string

func (f fakeResolverMap) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return fakeResolver{addrs: f[host]}.LookupIPAddr(ctx, host)
}

// TestDNSRealResolver resolves "localhost" with the real resolver
// (/etc/hosts, no network) and the real interface list.
func TestDNSRealResolver(t *testing.T) {
	d := testDeployment()
	d.Domain = "localhost"
	r := newChecker(d, Env{}, "").checkDNS(context.Background())
	expect(t, r, Warn, "only loopback")
}

func TestTimeoutBecomesFailure(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	d := testDeployment()
	env := Env{Resolver: fakeResolver{block: block}, LocalAddrs: localAddrs(), Sockets: fakeSockets{},
		Exec: fakeCommander{out: allLuaOK}, Clock: fakeClock{st: ClockStatus{Synchronised: true}},
		System: fakeSystem{cpus: 4, mem: 8 << 30, nofile: 65000}, HTTP: okHTTP{}}
	rep := Run(context.Background(), d, env, Options{Spec: SpecInfo{Path: "x", Valid: true}, Timeout: 50 * time.Millisecond, Root: t.TempDir()})
	expect(t, byID(t, rep.Results, "dns.domain"), Fail, "did not finish within 50ms")
	assertAllFixes(t, rep)
}

func TestPanicBecomesFailure(t *testing.T) {
	rs := runGroup(context.Background(), checkGroup{"x.y", "X", func(context.Context) []Result { panic("oops") }}, time.Second)
	if len(rs) != 1 {
		t.Fatalf("%d results", len(rs))
	}
	expect(t, rs[0], Fail, "oops")
}

func TestOutputs(t *testing.T) {
	rep := &Report{Domain: testDomain, Host: "meet1", Started: time.Unix(1700000000, 0), Duration: 1234 * time.Millisecond,
		Results: []Result{
			pass("spec.valid", "Spec is valid", "a.hcl parsed"),
			warn("clock.ntp", "Clock is NTP-synchronised", "not synchronised", "enable NTP"),
			fail("port.https", "HTTPS port (nginx)", "nothing listens on 443/tcp", "start nginx"),
			skip("plan.clean", "Host matches the spec", "plan not available"),
		}}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, want := range []string{"meet.example.test (host meet1)", "✓ Spec is valid", "! Clock is NTP-synchronised",
		"✗ HTTPS port (nginx)", "    fix: start nginx", "    fix: enable NTP", "1 passed, 1 warning(s), 1 failed, 1 skipped", "Not ready"} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
	// Seen columns align: every check line has its Seen at the same rune offset.
	col := -1
	for _, line := range strings.Split(text, "\n") {
		for _, r := range rep.Results {
			if strings.Contains(line, r.Title) && strings.HasSuffix(line, r.Seen) {
				c := len([]rune(line)) - len([]rune(r.Seen))
				if col >= 0 && c != col {
					t.Errorf("misaligned line %q", line)
				}
				col = c
			}
		}
	}
	buf.Reset()
	if err := rep.WriteText(&buf, TextOptions{ASCII: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "  FAIL HTTPS port") || !strings.Contains(buf.String(), "       fix: start nginx") {
		t.Errorf("ascii output:\n%s", buf.String())
	}

	buf.Reset()
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Version  int    `json:"version"`
		Domain   string `json:"domain"`
		Status   string `json:"status"`
		ExitCode int    `json:"exit_code"`
		Summary  map[string]int
		Checks   []map[string]any
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("json: %v\n%s", err, buf.String())
	}
	if got.Version != JSONVersion || got.Domain != testDomain || got.Status != "fail" || got.ExitCode != 1 ||
		got.Summary["pass"] != 1 || got.Summary["warn"] != 1 || got.Summary["fail"] != 1 || got.Summary["skip"] != 1 || len(got.Checks) != 4 {
		t.Errorf("json: %+v", got)
	}
	if got.Checks[2]["id"] != "port.https" || got.Checks[2]["fix"] != "start nginx" || got.Checks[0]["fix"] != nil {
		t.Errorf("json checks: %v", got.Checks)
	}
}
