package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/fleet"
	"github.com/jitsi-agent/jitsi-agent/internal/fleetstore"
	"github.com/jitsi-agent/jitsi-agent/internal/fleetstore/etcdtest"
	"github.com/jitsi-agent/jitsi-agent/internal/secrets"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

const testSpec = `domain = "meet.example.com"
cluster_secret = env("JITSI_AGENT_CLUSTER_SECRET")
auth "anonymous" {}
videobridge { websockets = true }
template "marker" {
  source      = "marker.tmpl"
  destination = "/etc/fleet-marker.txt"
  %s
}
host "signal1" {
  address = "10.0.0.1"
  roles   = ["prosody", "jicofo", "nginx"]
}
host "jvb1" {
  address = "10.0.0.11"
  roles   = ["jvb"]
}
host "jvb2" {
  address = "10.0.0.12"
  roles   = ["jvb"]
}
host "turn1" {
  address = "10.0.0.20"
  roles   = ["coturn"]
}
`

// fixture is a fleet: a real 3-member etcd cluster over TLS, a fleet key,
// a spec directory and in-process agents, each with its own root.
type fixture struct {
	t       *testing.T
	cluster *etcdtest.Cluster
	key     fleet.Key
	dir     string
	admin   *fleetstore.Etcd
	agents  map[string]*testAgent
}

type testAgent struct {
	host   string
	root   string
	link   *etcdtest.Link
	runner *fleet.Runner
	cancel context.CancelFunc
	done   chan error
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, cluster: etcdtest.Start(t), dir: t.TempDir(), agents: map[string]*testAgent{}}
	var err error
	if f.key, err = fleet.WriteNewKey(filepath.Join(t.TempDir(), "fleet.key")); err != nil {
		t.Fatal(err)
	}
	f.admin = f.open(f.cluster.Endpoints())
	return f
}

func (f *fixture) open(endpoints []string) *fleetstore.Etcd {
	st, err := fleetstore.Open(fleetstore.Config{Endpoints: endpoints, TLS: f.cluster.TLS()})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { st.Close() })
	return st
}

// writeSpec writes the spec (with extra template attributes) and the
// marker template with content.
func (f *fixture) writeSpec(templateExtra, marker string) string {
	p := filepath.Join(f.dir, "fleet.hcl")
	if err := os.WriteFile(p, fmt.Appendf(nil, testSpec, templateExtra), 0o600); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "marker.tmpl"), []byte(marker+" on {{.Host}}\n"), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// push publishes the spec as it is in f.dir.
func (f *fixture) push(ctx context.Context, st fleetstore.Store) fleet.PushResult {
	f.t.Helper()
	b, plans, err := fleet.Build(filepath.Join(f.dir, "fleet.hcl"), spec.Options{}, 1)
	if err != nil {
		f.t.Fatalf("build: %v", err)
	}
	res, err := fleet.Push(ctx, st, f.key, b, plans, fleet.Generation{MaxUnavailable: 1, Version: "test"})
	if err != nil {
		f.t.Fatalf("push: %v", err)
	}
	return res
}

// start runs an agent for host in root (a new one when root is "").
func (f *fixture) start(host, root string) *testAgent { return f.startLinked(host, root, false) }

// startLinked starts an agent whose link to etcd is cut from the start
// when cut is set.
func (f *fixture) startLinked(host, root string, cut bool) *testAgent {
	f.t.Helper()
	if root == "" {
		root = f.t.TempDir()
	}
	a := &testAgent{host: host, root: root, link: f.cluster.NewLink(f.t), done: make(chan error, 1)}
	a.link.Cut(cut)
	st := f.open(a.link.Endpoints())
	d := agent.NewDaemon(agent.DaemonConfig{Root: root, NoJoinAPI: true})
	a.runner = fleet.NewRunner(fleet.RunnerConfig{Store: st, Key: f.key, Host: host, Version: "test", Root: root, Daemon: d,
		LeaseTTL: 2 * time.Second, HealthEvery: 200 * time.Millisecond, Log: testLog(f.t, host)})
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() {
		defer d.Close()
		a.done <- fleet.RunHost(ctx, a.runner, daemon.Config{Quiet: 10 * time.Millisecond, Max: 100 * time.Millisecond, Rescan: -1},
			daemon.Deps{Notifier: nopNotifier{}, Signals: make(chan os.Signal), WatchdogInterval: -1})
	}()
	f.agents[host] = a
	f.t.Cleanup(a.stop)
	return a
}

func (a *testAgent) stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	<-a.done
	a.cancel = nil
}

type nopNotifier struct{}

func (nopNotifier) Ready(string) error     { return nil }
func (nopNotifier) Reloading(string) error { return nil }
func (nopNotifier) Stopping(string) error  { return nil }
func (nopNotifier) Status(string) error    { return nil }
func (nopNotifier) Watchdog() error        { return nil }

// waitAgent waits until the agent's own status satisfies cond.
func (a *testAgent) wait(t *testing.T, what string, cond func(fleet.Status) bool) fleet.Status {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		ch := a.runner.Changed()
		st := a.runner.Status()
		if cond(st) {
			return st
		}
		select {
		case <-ch:
		case <-time.After(time.Second): // health is re-read periodically
		case <-deadline:
			t.Fatalf("%s: timed out waiting for %s; status %+v", a.host, what, st)
		}
	}
}

func (a *testAgent) file(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(a.root, p))
	if err != nil {
		t.Fatalf("%s: %v", a.host, err)
	}
	return string(b)
}

func atGeneration(n int64) func(fleet.Status) bool {
	return func(s fleet.Status) bool { return s.Record.Generation == n && s.Record.Healthy }
}

// registrations reads hosts/ from the store.
func (f *fixture) registrations(ctx context.Context) map[string]fleet.HostRecord {
	f.t.Helper()
	kvs, _, err := f.admin.List(ctx, "hosts/")
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]fleet.HostRecord{}
	for _, kv := range kvs {
		var r fleet.HostRecord
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			f.t.Fatal(err)
		}
		out[r.Host] = r
	}
	return out
}

// rolloutOrder records, from the store's watch, the order in which hosts
// first report generation n applied.
func (f *fixture) rolloutOrder(ctx context.Context, n int64) func(want int) []string {
	_, rev, err := f.admin.List(ctx, "hosts/")
	if err != nil {
		f.t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	seen := map[string]bool{}
	wctx, cancel := context.WithCancel(ctx)
	w := f.admin.Watch(wctx, "hosts/", rev+1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := range w {
			for _, ev := range r.Events {
				var h fleet.HostRecord
				if ev.Deleted || json.Unmarshal(ev.KV.Value, &h) != nil {
					continue
				}
				mu.Lock()
				if h.Generation == n && !seen[h.Host] {
					seen[h.Host] = true
					order = append(order, h.Host)
				}
				mu.Unlock()
			}
		}
	}()
	// The returned func waits (bounded) until want hosts were seen: a
	// List may show the last registration before this watch delivers it.
	return func(want int) []string {
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			n := len(order)
			mu.Unlock()
			if n >= want || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return order
	}
}

var passwordRE = regexp.MustCompile(`PASSWORD = "([^"]+)"`)

// Push: every host converges on the same generation with the same shared
// secrets (the cluster secret one agent created), then a second push rolls
// out signalling host first, then the bridges one at a time.
func TestPushConverges(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f.writeSpec("", "v1")
	for _, h := range []string{"signal1", "turn1", "jvb1", "jvb2"} {
		f.start(h, "")
	}
	if res := f.push(ctx, f.admin); res.Generation != 1 {
		t.Fatalf("first push: %+v", res)
	}
	for _, a := range f.agents {
		a.wait(t, "generation 1", atGeneration(1))
		if got := a.file(t, "/etc/fleet-marker.txt"); got != "v1 on "+a.host+"\n" {
			t.Errorf("%s: marker %q", a.host, got)
		}
	}
	// One cluster secret, created by one agent, sealed in the store.
	sec, _, err := fleet.EnsureClusterSecret(ctx, f.admin, f.key)
	if err != nil {
		t.Fatal(err)
	}
	kv, _, _ := f.admin.Get(ctx, "secrets/cluster")
	if strings.Contains(string(kv.Value), sec) {
		t.Fatal("cluster secret stored in clear")
	}
	want, err := secrets.Derive(sec)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"jvb1", "jvb2"} {
		conf := f.agents[h].file(t, "/etc/jitsi/videobridge/jvb.conf")
		m := passwordRE.FindStringSubmatch(conf)
		if m == nil || m[1] != want.Password("jvb").Reveal() {
			t.Errorf("%s: jvb.conf password is not the fleet's derived one", h)
		}
	}
	// TURN: the credentials Prosody hands out are minted with the secret
	// the TURN host's coturn checks.
	prosodyTURN := regexp.MustCompile(`external_service_secret = "([^"]+)"`).FindStringSubmatch(f.agents["signal1"].file(t, "/etc/prosody/conf.avail/meet.example.com.cfg.lua"))
	coturnTURN := regexp.MustCompile(`static-auth-secret=(\S+)`).FindStringSubmatch(f.agents["turn1"].file(t, "/etc/coturn/turnserver.conf"))
	if prosodyTURN == nil || coturnTURN == nil || prosodyTURN[1] != coturnTURN[1] || coturnTURN[1] != want.TURNSecret.Reveal() {
		t.Errorf("TURN secrets differ: prosody %v, coturn %v", prosodyTURN != nil, coturnTURN != nil)
	}
	// Nothing in the store carries a secret in clear.
	all, _, err := f.admin.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range all {
		for _, s := range []string{sec, want.Password("jvb").Reveal(), want.Password("focus").Reveal(), want.TURNSecret.Reveal(), "v1 on"} {
			if strings.Contains(string(kv.Value), s) {
				t.Errorf("store key %s holds a secret or input in clear", kv.Key)
			}
		}
	}
	waitFor(t, "three registrations, all ok", func() bool {
		regs := f.registrations(ctx)
		return len(regs) == 4 && regs["jvb1"].Address == "10.0.0.11" && regs["signal1"].State == "ok" && regs["jvb2"].State == "ok" && regs["turn1"].State == "ok"
	})

	// Same inputs: nothing new is published.
	if res := f.push(ctx, f.admin); !res.Unchanged || res.Generation != 1 {
		t.Fatalf("re-push of the same spec: %+v", res)
	}

	order := f.rolloutOrder(ctx, 2)
	f.writeSpec("", "v2")
	if res := f.push(ctx, f.admin); res.Generation != 2 || res.Previous != 1 {
		t.Fatalf("second push: %+v", res)
	}
	for _, a := range f.agents {
		a.wait(t, "generation 2", atGeneration(2))
		if got := a.file(t, "/etc/fleet-marker.txt"); got != "v2 on "+a.host+"\n" {
			t.Errorf("%s: marker %q", a.host, got)
		}
	}
	waitFor(t, "every registration on generation 2", func() bool {
		regs := f.registrations(ctx)
		return regs["signal1"].Generation == 2 && regs["turn1"].Generation == 2 && regs["jvb1"].Generation == 2 && regs["jvb2"].Generation == 2
	})
	if got := strings.Join(order(4), ","); got != "signal1,turn1,jvb1,jvb2" {
		t.Errorf("rollout order %s, want signal1,turn1,jvb1,jvb2", got)
	}
}

// A generation that fails on the first host stops there: the bridges stay
// on the previous one; rollback brings the first host back.
func TestBadGenerationStopsRollout(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f.writeSpec("", "v1")
	for _, h := range []string{"signal1", "turn1", "jvb1", "jvb2"} {
		f.start(h, "")
	}
	f.push(ctx, f.admin)
	for _, a := range f.agents {
		a.wait(t, "generation 1", atGeneration(1))
	}
	// Valid everywhere, fails on apply (the template's check refuses it).
	f.writeSpec(`check = "/bin/false {{.Path}}"`, "v2")
	if res := f.push(ctx, f.admin); res.Generation != 2 {
		t.Fatalf("push: %+v", res)
	}
	st := f.agents["signal1"].wait(t, "generation 2 to fail", func(s fleet.Status) bool {
		return s.Record.Target == 2 && s.Record.LastError != ""
	})
	if st.Record.Generation != 1 || st.Record.Healthy {
		t.Fatalf("signal1 after the failure: %+v", st.Record)
	}
	if got := f.agents["signal1"].file(t, "/etc/fleet-marker.txt"); got != "v1 on signal1\n" {
		t.Errorf("signal1 kept %q, want the previous generation's file", got)
	}
	for _, h := range []string{"turn1", "jvb1", "jvb2"} {
		st := f.agents[h].wait(t, "the rollout to stop", func(s fleet.Status) bool {
			return strings.Contains(s.Record.Waiting, "signal1 failed generation 2")
		})
		if st.Record.Generation != 1 || !st.Record.Healthy {
			t.Errorf("%s left generation 1: %+v", h, st.Record)
		}
		if got := f.agents[h].file(t, "/etc/fleet-marker.txt"); got != "v1 on "+h+"\n" {
			t.Errorf("%s: marker %q", h, got)
		}
	}
	rep, err := fleet.BuildReport(ctx, f.admin, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Converged() || !strings.Contains(rep.Rollout, "stopped") {
		t.Errorf("report: converged=%v rollout=%q", rep.Converged(), rep.Rollout)
	}

	res, err := fleet.Rollback(ctx, f.admin, 0)
	if err != nil || res.Generation != 1 {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	for _, a := range f.agents {
		a.wait(t, "back on generation 1", func(s fleet.Status) bool {
			return s.Record.Generation == 1 && s.Record.Healthy && s.Record.LastError == "" && s.Record.Target == 1
		})
	}
	waitFor(t, "the report to converge after the rollback", func() bool {
		rep, err := fleet.BuildReport(ctx, f.admin, time.Now())
		return err == nil && rep.Converged() && rep.Rollout == "converged"
	})
}

// A host cut off from etcd keeps its generation and reports stale; the
// others move on; once it reaches the store again it catches up. An agent
// restarted without the store starts on its cached generation.
func TestPartitionedHostCatchesUp(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f.writeSpec("", "v1")
	for _, h := range []string{"signal1", "jvb1", "jvb2"} {
		f.start(h, "")
	}
	f.push(ctx, f.admin)
	for _, a := range f.agents {
		a.wait(t, "generation 1", atGeneration(1))
	}
	jvb2 := f.agents["jvb2"]
	jvb2.link.Cut(true)
	jvb2.wait(t, "stale", func(s fleet.Status) bool { return s.Stale })
	if sv := jvb2.runner.Services(); len(sv) == 0 || sv[len(sv)-1].OK || !strings.Contains(sv[len(sv)-1].Problem, "stale") {
		t.Errorf("the local status does not report stale: %+v", sv)
	}
	// Its lease expires: the rollout does not wait for it.
	waitFor(t, "jvb2's registration to expire", func() bool { _, ok := f.registrations(ctx)["jvb2"]; return !ok })
	f.writeSpec("", "v2")
	f.push(ctx, f.admin)
	f.agents["jvb1"].wait(t, "generation 2", atGeneration(2))
	if got := jvb2.file(t, "/etc/fleet-marker.txt"); got != "v1 on jvb2\n" {
		t.Errorf("partitioned host changed its files: %q", got)
	}
	if st := jvb2.runner.Status(); st.Record.Generation != 1 || !st.Stale {
		t.Errorf("partitioned host: %+v", st)
	}
	// Restarted while partitioned: it serves its cached generation.
	jvb2.stop()
	again := f.startLinked("jvb2", jvb2.root, true)
	again.wait(t, "cached generation applied", func(s fleet.Status) bool { return s.Record.Generation == 1 && s.Stale })

	again.link.Cut(false)
	st := again.wait(t, "catch up", func(s fleet.Status) bool { return atGeneration(2)(s) && !s.Stale })
	if st.Record.StaleSince == nil {
		t.Errorf("after reconnect: %+v", st)
	}
	if got := again.file(t, "/etc/fleet-marker.txt"); got != "v2 on jvb2\n" {
		t.Errorf("marker after catch-up: %q", got)
	}
}

// Killing the etcd leader while pushing: the push lands (retried on the
// new leader) and every host converges.
func TestLeaderKilledDuringPush(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f.writeSpec("", "v1")
	for _, h := range []string{"signal1", "jvb1", "jvb2"} {
		f.start(h, "")
	}
	f.push(ctx, f.admin)
	for _, a := range f.agents {
		a.wait(t, "generation 1", atGeneration(1))
	}
	leader, err := f.cluster.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.writeSpec("", "v2")
	pushed := make(chan fleet.PushResult, 1)
	go func() { pushed <- f.push(ctx, f.open(f.cluster.Endpoints())) }()
	f.cluster.Kill(leader)
	res := <-pushed
	if res.Generation != 2 {
		t.Fatalf("push during leader kill: %+v", res)
	}
	for _, a := range f.agents {
		a.wait(t, "generation 2", atGeneration(2))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testLog sends an agent's log lines to the test log.
func testLog(t *testing.T, host string) logrus.FieldLogger {
	l := logrus.New()
	l.Out = tlogWriter{t}
	l.Level = logrus.DebugLevel
	return l.WithField("host", host)
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Files that depend on the live fleet follow the registrations: the
// signalling host's nginx routes colibri-ws to each registered bridge; a
// bridge that joins gets its route, one whose lease expires (crashed, cut
// off) loses it.
func TestRoutesFollowBridges(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f.writeSpec("", "v1")
	signal := f.start("signal1", "")
	f.start("jvb1", "")
	f.push(ctx, f.admin)
	signal.wait(t, "generation 1", atGeneration(1))
	f.agents["jvb1"].wait(t, "generation 1", atGeneration(1))
	site := func() string {
		matches, _ := filepath.Glob(filepath.Join(signal.root, "etc/nginx/sites-available/*.conf"))
		if len(matches) != 1 {
			t.Fatalf("nginx site: %v", matches)
		}
		b, err := os.ReadFile(matches[0])
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	routes := func() string {
		var out []string
		for _, l := range strings.Split(site(), "\n") {
			if strings.Contains(l, "proxy_pass http://") && strings.Contains(l, "/colibri-ws/") {
				out = append(out, strings.TrimSpace(l))
			}
		}
		return strings.Join(out, "\n")
	}
	waitFor(t, "a route to jvb1 only", func() bool {
		r := routes()
		return strings.Contains(r, "10.0.0.11:9090/colibri-ws/jvb1/") && !strings.Contains(r, "jvb2")
	})
	jvb2 := f.start("jvb2", "")
	jvb2.wait(t, "generation 1", atGeneration(1))
	waitFor(t, "a route to jvb2", func() bool { return strings.Contains(routes(), "10.0.0.12:9090/colibri-ws/jvb2/") })

	// A crash: no clean revoke, the lease runs out.
	jvb2.link.Cut(true)
	jvb2.stop()
	waitFor(t, "jvb2's route to go", func() bool {
		r := routes()
		return !strings.Contains(r, "jvb2") && strings.Contains(r, "jvb1")
	})
	if st := signal.runner.Status(); st.Record.Generation != 1 || !st.Record.Healthy {
		t.Errorf("signal1 after the membership change: %+v", st.Record)
	}
}

// The front's HAProxy follows the registrations too: a shard whose
// signalling host registers joins the backends, one whose lease expires
// leaves them.
func TestFrontFollowsShards(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src := `domain = "meet.test"
cluster_secret = env("JITSI_AGENT_CLUSTER_SECRET")
auth "anonymous" {}
turn { enabled = false }
host "front1" {
  address = "10.98.0.1"
  roles   = ["front"]
}
host "signal-a" {
  shard   = "a"
  address = "10.99.0.2"
  roles   = ["prosody", "jicofo", "nginx", "jvb"]
}
host "signal-b" {
  shard   = "b"
  address = "10.99.0.3"
  roles   = ["prosody", "jicofo", "nginx", "jvb"]
}
`
	if err := os.WriteFile(filepath.Join(f.dir, "fleet.hcl"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	front := f.start("front1", "")
	f.start("signal-a", "")
	f.push(ctx, f.admin)
	front.wait(t, "generation 1", atGeneration(1))
	cfg := func() string {
		b, err := os.ReadFile(filepath.Join(front.root, "etc/haproxy/haproxy.cfg"))
		if err != nil {
			return ""
		}
		return string(b)
	}
	waitFor(t, "shard a only in the front", func() bool {
		c := cfg()
		return strings.Contains(c, "10.99.0.2") && !strings.Contains(c, "10.99.0.3")
	})
	b := f.start("signal-b", "")
	b.wait(t, "generation 1", atGeneration(1))
	waitFor(t, "shard b in the front", func() bool { return strings.Contains(cfg(), "10.99.0.3") })
	b.link.Cut(true) // crash: the lease runs out
	b.stop()
	waitFor(t, "shard b out of the front", func() bool {
		c := cfg()
		return !strings.Contains(c, "10.99.0.3") && strings.Contains(c, "10.99.0.2")
	})
}
