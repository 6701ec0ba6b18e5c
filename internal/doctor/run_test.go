package doctor

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/journal"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// healthyHost wires every dependency to a healthy answer: real files under
// a temp root (certificate from a local CA, rendered Prosody vhost), real
// HTTP health servers on loopback, fakes for the rest.
func healthyHost(t *testing.T) (*spec.Deployment, Env, string) {
	t.Helper()
	ca := newTestCA(t)
	root := t.TempDir()
	key := ecKey(t)
	now := time.Now()
	leaf := ca.leaf(t, key, now.Add(-time.Hour), now.Add(60*24*time.Hour), testDomain)
	writeTLS(t, root, pemCerts(leaf, ca.inter), pemKey(t, key), 0o640)
	writeVhost(t, root, goodTokenLines, tokenVerification)
	testenv.WriteUnder(t, root, prosodyBin, "#!/usr/bin/env lua5.4\n")
	installProsodyModules(t, root)
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(health.Close)
	d := testDeployment()
	installInternalCerts(t, d, root)
	d.Videobridge.HealthURL = health.URL + "/jvb"
	d.Jicofo.HealthURL = health.URL + "/jicofo"
	d.Firewall.Enabled, d.Firewall.SSHPort = true, 22
	env := Env{
		Firewall: fakeFirewall{live: liveFor(t, d)},
		Planner:  fakePlanner{},
		Services: fakeServices{"prosody.service": "active", "jicofo.service": "active",
			"jitsi-videobridge2.service": "active", "nginx.service": "active", "coturn.service": "active"},
		Tokens:     fakeTokens{},
		Resolver:   fakeResolver{addrs: []string{"192.0.2.10"}},
		LocalAddrs: localAddrs("127.0.0.1/8", "192.0.2.10/24"),
		Sockets:    fakeSockets{socks: append(healthySockets(), sock("tcp", "::", 22, Proc{PID: 5, Comm: "sshd"}))},
		Exec:       fakeCommander{out: allLuaOK},
		Clock:      fakeClock{st: ClockStatus{Synchronised: true}},
		System:     fakeSystem{cpus: 4, mem: 8 << 30, nofile: 65000},
		Roots:      func() (*x509.CertPool, error) { return ca.pool, nil },
		Journal:    journal.Recorded{"prosody.service": {"2026-11-27T10:03:00+0000 meet prosody[812]: c2s55d1 info Client connected"}},
		Probes:     fakeProbes{},
	}
	return d, env, root
}

func TestRunHealthyHost(t *testing.T) {
	d, env, root := healthyHost(t)
	rep := Run(context.Background(), d, env, Options{Root: root, Spec: SpecInfo{Path: "meet.hcl", Valid: true}})
	for _, r := range rep.Results {
		if r.Status != Pass && !(r.Status == Skip && (r.ID == "cert.renewal" || r.ID == "prosody.live")) {
			t.Errorf("%s: %s: %s (fix: %s)", r.ID, r.Status, r.Seen, r.Fix)
		}
	}
	if rep.ExitCode() != 0 {
		t.Errorf("exit %d", rep.ExitCode())
	}
	// Every check family is represented, in a stable order.
	var ids []string
	for _, r := range rep.Results {
		ids = append(ids, r.ID)
	}
	want := []string{"spec.valid", "plan.clean", "dns.domain", "port.https", "port.http", "port.jvb", "port.turn", "port.turns",
		"port.xmpp", "port.bosh", "port.prosody-extra",
		"firewall.table", "firewall.port.ssh", "firewall.port.http", "firewall.port.https", "firewall.port.turns", "firewall.port.turn",
		"firewall.port.jvb", "firewall.port.turn-relay", "cert.present", "cert.domain", "cert.chain", "cert.expiry", "cert.renewal", "service.prosody",
		"service.jicofo", "service.jvb", "service.nginx", "service.coturn", "health.jvb", "health.jicofo",
		"live.nginx.config.js", "live.prosody.bosh", "live.prosody.c2s-starttls", "live.coturn.stun",
		"prosody.lua-deps", "prosody.plugins", "prosody.internal-certs", "prosody.trust", "prosody.live", "token.config", "token.hs256", "token.verify", "clock.ntp", "resources.cpu",
		"resources.memory", "resources.nofile", "journal"}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Errorf("ids:\n got %v\nwant %v", ids, want)
	}
	// IDs are unique.
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("duplicate id %s", id)
		}
		seen[id] = true
	}
}

func TestRunWarningsAndFailuresExitCodes(t *testing.T) {
	d, env, root := healthyHost(t)
	env.Clock = fakeClock{st: ClockStatus{}}
	rep := Run(context.Background(), d, env, Options{Root: root, Spec: SpecInfo{Path: "meet.hcl", Valid: true}})
	if rep.ExitCode() != 2 || rep.Worst() != Warn {
		t.Errorf("warn only: exit %d", rep.ExitCode())
	}
	assertAllFixes(t, rep)

	// Secret mismatch in the rendered file plus a dead service: exit 1, and
	// neither secret appears anywhere in the text or JSON output.
	writeVhost(t, root, strings.Replace(goodTokenLines, testSecret, "other-secret-in-file", 1), tokenVerification)
	env.Services = fakeServices{"prosody.service": "failed"}
	rep = Run(context.Background(), d, env, Options{Root: root, Spec: SpecInfo{Path: "meet.hcl", Valid: true}})
	if rep.ExitCode() != 1 {
		t.Errorf("failures: exit %d", rep.ExitCode())
	}
	assertAllFixes(t, rep)
	var text, js bytes.Buffer
	if err := rep.WriteText(&text, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{text.String(), js.String()} {
		for _, s := range []string{testSecret, "other-secret-in-file", "turn-secret-never-printed"} {
			if strings.Contains(out, s) {
				t.Errorf("output contains a secret:\n%s", out)
			}
		}
	}
	var parsed map[string]any
	if err := json.Unmarshal(js.Bytes(), &parsed); err != nil || parsed["exit_code"].(float64) != 1 {
		t.Errorf("json: %v %v", err, parsed["exit_code"])
	}
}

// TestRunRealHost runs the doctor with every real implementation against
// this machine (nothing injected but the Prosody file tree under a temp
// root). The outcome depends on the host; the test checks that it finishes,
// reports every check family, and names a fix for every problem.
func TestRunRealHost(t *testing.T) {
	d, _, root := healthyHost(t)
	d.Domain = "localhost" // resolves through /etc/hosts: no network
	t0 := time.Now()
	rep := Run(context.Background(), d, Env{}, Options{Root: root, Spec: SpecInfo{Path: "meet.hcl", Valid: true}})
	t.Logf("full run on this host: %s", time.Since(t0))
	assertAllFixes(t, rep)
	if len(rep.Results) < 20 {
		t.Errorf("only %d results", len(rep.Results))
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + buf.String())
}

// BenchmarkRunRealHost is a full doctor run with every real implementation
// (procfs socket scan, lua5.4 subprocess, adjtimex, /etc/hosts lookup,
// loopback health probes that are refused).
func BenchmarkRunRealHost(b *testing.B) {
	d := testDeployment()
	d.Domain = "localhost"
	root := b.TempDir()
	b.ResetTimer()
	for b.Loop() {
		Run(context.Background(), d, Env{}, Options{Root: root, Spec: SpecInfo{Path: "meet.hcl", Valid: true}})
	}
}
