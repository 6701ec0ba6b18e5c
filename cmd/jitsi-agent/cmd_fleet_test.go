package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/fleet"
	"github.com/jitsi-agent/jitsi-agent/internal/fleetstore"
	"github.com/jitsi-agent/jitsi-agent/internal/fleetstore/etcdtest"
)

const fleetCLISpec = `domain = "meet.example.com"
cluster_secret = env("JITSI_AGENT_CLUSTER_SECRET")
auth "anonymous" {}
template "marker" {
  source      = "marker.tmpl"
  destination = "/etc/fleet-marker.txt"
}
host "signal1" {
  address = "127.0.0.1"
  roles   = ["prosody", "jicofo", "nginx"]
}
host "jvb1" {
  address = "127.0.0.2"
  roles   = ["jvb"]
}
`

// The fleet commands end to end: keygen, push, two agents as separate
// processes (`run --etcd`, each with its own --root) over TLS with client
// certificates, `fleet status` (exit 0 converged, 2 after a host is
// killed and its lease expires), an unchanged re-push, and rollback.
func TestFleetCommands(t *testing.T) {
	c := etcdtest.Start(t)
	bin := agentBinary(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "fleet.key")
	if code, out, errOut := runCLI(t, "fleet", "keygen", key); code != 0 || !strings.Contains(out, "Wrote fleet key") {
		t.Fatalf("keygen: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "fleet", "keygen", key); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("keygen over an existing key: %d %s", code, errOut)
	}
	specPath := filepath.Join(dir, "fleet.hcl")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// signal1's Prosody c2s, as jvb1 dials it from `fleet doctor --host
	// jvb1`: a listener of the test (agents run with --root, no services).
	c2s, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c2s.Close()
	go func() {
		for {
			conn, err := c2s.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	c2sAddr := c2s.Addr().String()
	write(specPath, fleetCLISpec+fmt.Sprintf("prosody { c2s_port = %d }\n", c2s.Addr().(*net.TCPAddr).Port))
	write(filepath.Join(dir, "marker.tmpl"), "gen one on {{.Host}}\n")
	etcd := []string{"--etcd", strings.Join(c.Endpoints(), ","), "--etcd-ca", c.CA, "--etcd-cert", c.ClientCert, "--etcd-key", c.ClientKey}

	// A spec that is invalid for one host publishes nothing.
	bad := filepath.Join(dir, "bad.hcl")
	write(bad, strings.Replace(fleetCLISpec, `roles   = ["jvb"]`, `roles   = ["jvbb"]`, 1))
	code, _, errOut := runCLI(t, append([]string{"fleet", "push", bad, "--fleet-key", key}, etcd...)...)
	if code != 1 || !strings.Contains(errOut, "bad.hcl:") || !strings.Contains(errOut, "nothing was published") {
		t.Fatalf("bad push: %d %s", code, errOut)
	}

	type proc struct {
		cmd  *exec.Cmd
		logs *lockedBuffer
		root string
	}
	procs := map[string]*proc{}
	for _, h := range []string{"signal1", "jvb1"} {
		p := &proc{root: filepath.Join(dir, h), logs: &lockedBuffer{}}
		args := append([]string{"run", "--host", h, "--root", p.root, "--socket", "off", "--metrics", "off", "--no-acme",
			"--fleet-key", key, "--lease-ttl", "2s", "--log-level", "debug"}, etcd...)
		p.cmd = exec.Command(bin, args...)
		p.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=", "WATCHDOG_USEC=")
		p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[h] = p
		t.Cleanup(func() {
			_ = p.cmd.Process.Kill() // our own child, by PID
			_ = p.cmd.Wait()
			if t.Failed() {
				t.Logf("%s log:\n%s", h, p.logs.String())
			}
		})
	}

	code, out, errOut := runCLI(t, append([]string{"fleet", "push", specPath, "--fleet-key", key}, etcd...)...)
	if code != 0 || !strings.Contains(out, "Published generation 1") {
		t.Fatalf("push: %d %s %s", code, out, errOut)
	}
	for h, p := range procs {
		waitFile(t, filepath.Join(p.root, "etc/fleet-marker.txt"), "gen one on "+h+"\n")
	}
	status := func() (int, fleet.Report) {
		code, out, errOut := runCLI(t, append([]string{"fleet", "status", "--json"}, etcd...)...)
		var rep fleet.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("status --json: %d %v: %s %s", code, err, out, errOut)
		}
		return code, rep
	}
	waitCond(t, "fleet status exit 0", func() bool { code, _ := status(); return code == 0 })
	_, rep := status()
	if len(rep.Hosts) != 2 || rep.Generation != 1 || rep.Rollout != "converged" {
		t.Fatalf("status: %+v", rep)
	}
	code, out, _ = runCLI(t, append([]string{"fleet", "status"}, etcd...)...)
	if code != 0 || !strings.Contains(out, "jvb1") || !strings.Contains(out, "healthy") {
		t.Fatalf("status text: %d\n%s", code, out)
	}

	code, out, _ = runCLI(t, append([]string{"fleet", "doctor", "--ascii", "--host", "jvb1", "--fleet-key", key}, etcd...)...)
	if code != 0 || !strings.Contains(out, "3 members answer") || !strings.Contains(out, "opens the current generation") || !strings.Contains(out, "jvb1 is registered") ||
		!strings.Contains(out, c2sAddr+" (prosody on signal1) answers") {
		t.Fatalf("fleet doctor: %d\n%s", code, out)
	}
	// signal1's c2s goes down: jvb1's doctor names the peer, address and service.
	c2s.Close()
	code, out, _ = runCLI(t, append([]string{"fleet", "doctor", "--ascii", "--host", "jvb1", "--fleet-key", key}, etcd...)...)
	if code != 1 || !strings.Contains(out, c2sAddr+" (prosody on signal1) is unreachable from jvb1") || !strings.Contains(out, "firewall") {
		t.Fatalf("fleet doctor with signal1's c2s down: %d\n%s", code, out)
	}
	otherKey := filepath.Join(dir, "other.key")
	runCLI(t, "fleet", "keygen", otherKey)
	if code, out, _ := runCLI(t, append([]string{"fleet", "doctor", "--ascii", "--fleet-key", otherKey}, etcd...)...); code != 1 || !strings.Contains(out, "is sealed with key") {
		t.Fatalf("fleet doctor with another key: %d\n%s", code, out)
	}

	// Same inputs: nothing published.
	code, out, _ = runCLI(t, append([]string{"fleet", "push", specPath, "--fleet-key", key}, etcd...)...)
	if code != 0 || !strings.Contains(out, "already has these inputs") {
		t.Fatalf("re-push: %d %s", code, out)
	}
	// Generation 1 has nothing to roll back to.
	if code, _, errOut := runCLI(t, append([]string{"fleet", "rollback"}, etcd...)...); code != 1 || !strings.Contains(errOut, "no previous generation") {
		t.Fatalf("rollback of the first generation: %d %s", code, errOut)
	}

	// A second generation, then rollback: the files follow.
	write(filepath.Join(dir, "marker.tmpl"), "gen two on {{.Host}}\n")
	if code, out, errOut := runCLI(t, append([]string{"fleet", "push", specPath, "--fleet-key", key}, etcd...)...); code != 0 || !strings.Contains(out, "Published generation 2") {
		t.Fatalf("push 2: %d %s %s", code, out, errOut)
	}
	for h, p := range procs {
		waitFile(t, filepath.Join(p.root, "etc/fleet-marker.txt"), "gen two on "+h+"\n")
	}
	if code, out, errOut := runCLI(t, append([]string{"fleet", "rollback"}, etcd...)...); code != 0 || !strings.Contains(out, "Generation 1 is current again") {
		t.Fatalf("rollback: %d %s %s", code, out, errOut)
	}
	for h, p := range procs {
		waitFile(t, filepath.Join(p.root, "etc/fleet-marker.txt"), "gen one on "+h+"\n")
	}

	// A killed bridge leaves when its lease expires: status says so (exit 2).
	_ = procs["jvb1"].cmd.Process.Kill()
	_ = procs["jvb1"].cmd.Wait()
	waitCond(t, "jvb1 down in fleet status and doctor", func() bool {
		code, out, _ := runCLI(t, append([]string{"fleet", "doctor", "--ascii"}, etcd...)...)
		if code != 1 || !strings.Contains(out, "not registered (no live lease)") {
			return false
		}
		code, rep := status()
		for _, h := range rep.Hosts {
			if h.Name == "jvb1" {
				return code == 2 && !h.Registered && h.State == "down"
			}
		}
		return false
	})
}

func waitFile(t *testing.T, p, want string) {
	t.Helper()
	waitCond(t, p+" = "+strings.TrimSpace(want), func() bool {
		b, err := os.ReadFile(p)
		return err == nil && string(b) == want
	})
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkFleetIdleAgent: one `run --etcd` agent process, converged and
// idle, watched for 20 s per iteration: CPU time (from /proc), resident
// memory (VmRSS) and the bytes it exchanges with etcd (through a counting
// proxy). Targets: ~0 CPU, <= 40 MB RSS, traffic no more than its lease
// keepalives (one renewal per TTL/3).
func BenchmarkFleetIdleAgent(b *testing.B) {
	c := etcdtest.Start(b)
	bin := agentBinary(b)
	dir := b.TempDir()
	key := filepath.Join(dir, "fleet.key")
	if _, err := fleet.WriteNewKey(key); err != nil {
		b.Fatal(err)
	}
	specPath := filepath.Join(dir, "fleet.hcl")
	os.WriteFile(specPath, []byte(fleetCLISpec), 0o600)
	os.WriteFile(filepath.Join(dir, "marker.tmpl"), []byte("idle on {{.Host}}\n"), 0o600)
	tlsArgs := []string{"--etcd-ca", c.CA, "--etcd-cert", c.ClientCert, "--etcd-key", c.ClientKey}
	var out, errOut strings.Builder
	if code := run(append([]string{"fleet", "push", specPath, "--fleet-key", key, "--etcd", strings.Join(c.Endpoints(), ",")}, tlsArgs...), strings.NewReader(""), &out, &errOut); code != 0 {
		b.Fatalf("push: %s", errOut.String())
	}
	link := c.NewLink(b)
	root := filepath.Join(dir, "jvb1")
	cmd := exec.Command(bin, append([]string{"run", "--host", "jvb1", "--root", root, "--socket", "off", "--metrics", "off", "--no-acme",
		"--fleet-key", key, "--etcd", strings.Join(link.Endpoints(), ",")}, tlsArgs...)...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=", "WATCHDOG_USEC=")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill() // our own child, by PID
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if data, err := os.ReadFile(filepath.Join(root, "etc/fleet-marker.txt")); err == nil && string(data) == "idle on jvb1\n" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("agent did not converge")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // let the first-pass work settle before measuring idleness
	const window = 20 * time.Second
	var cpu, rss, traffic []float64
	for b.Loop() {
		c0, n0 := procCPU(b, cmd.Process.Pid), link.Bytes()
		time.Sleep(window)
		c1, n1 := procCPU(b, cmd.Process.Pid), link.Bytes()
		cpu = append(cpu, float64(c1-c0)/float64(window/time.Second))
		traffic = append(traffic, float64(n1-n0)/float64(window/time.Second))
		rss = append(rss, procRSS(b, cmd.Process.Pid))
	}
	med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(med(cpu), "cpu-ms/s")
	b.ReportMetric(med(rss), "rss-MB")
	b.ReportMetric(med(traffic), "etcd-bytes/s")
}

// procCPU is a process's user+system CPU time in milliseconds.
func procCPU(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return (ut + st) * 10 // USER_HZ = 100
}

// procRSS is a process's resident set in MB.
func procRSS(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// With etcd auth on: `fleet grant` (as root) creates a host user and a
// pusher; the pusher publishes, the host's agent process signs in with its
// password file and converges; a host user cannot push.
func TestFleetAuth(t *testing.T) {
	c := etcdtest.Start(t)
	bin := agentBinary(t)
	dir := t.TempDir()
	crt, ckey, err := c.IssueClient("") // no common name: etcd refuses it on the gateway once auth is on
	if err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) string {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rootPW := write(filepath.Join(dir, "root.pw"), "root-password-for-this-test\n")
	hostPW := write(filepath.Join(dir, "jvb1.pw"), "jvb1-password-for-this-test\n")
	opsPW := write(filepath.Join(dir, "ops.pw"), "ops-password-for-this-test\n")
	tlsCfg, err := etcdtest.ClientTLS(c.CA, crt, ckey)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := fleetstore.Open(fleetstore.Config{Endpoints: c.Endpoints(), TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.EnableAuth(ctx, "root-password-for-this-test"); err != nil { // what etcdctl user add root && auth enable do
		t.Fatal(err)
	}
	etcd := []string{"--etcd", strings.Join(c.Endpoints(), ","), "--etcd-ca", c.CA, "--etcd-cert", crt, "--etcd-key", ckey}
	asRoot := append([]string{"--etcd-user", "root", "--etcd-password-file", rootPW}, etcd...)
	if code, out, errOut := runCLI(t, append([]string{"fleet", "grant", "--host", "jvb1", "--password-file", hostPW}, asRoot...)...); code != 0 || !strings.Contains(out, "write only hosts/jvb1") {
		t.Fatalf("grant host: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, append([]string{"fleet", "grant", "--pusher", "ops", "--password-file", opsPW}, asRoot...)...); code != 0 {
		t.Fatalf("grant pusher: %d %s", code, errOut)
	}
	key := filepath.Join(dir, "fleet.key")
	runCLI(t, "fleet", "keygen", key)
	specPath := write(filepath.Join(dir, "fleet.hcl"), fleetCLISpec)
	write(filepath.Join(dir, "marker.tmpl"), "authed on {{.Host}}\n")
	asHost := append([]string{"--etcd-user", fleetstore.HostUser("jvb1"), "--etcd-password-file", hostPW}, etcd...)
	if code, _, errOut := runCLI(t, append([]string{"fleet", "push", specPath, "--fleet-key", key}, asHost...)...); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("a host user pushed: %d %s", code, errOut)
	}
	asOps := append([]string{"--etcd-user", "ops", "--etcd-password-file", opsPW}, etcd...)
	if code, out, errOut := runCLI(t, append([]string{"fleet", "push", specPath, "--fleet-key", key, "--timeout", "20s"}, asOps...)...); code != 0 {
		t.Fatalf("push: %d %s %s", code, out, errOut)
	}
	root := filepath.Join(dir, "jvb1")
	logs := &lockedBuffer{}
	cmd := exec.Command(bin, append([]string{"run", "--host", "jvb1", "--root", root, "--socket", "off", "--metrics", "off", "--no-acme",
		"--fleet-key", key, "--lease-ttl", "2s", "--etcd-password-file", hostPW}, etcd...)...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=", "WATCHDOG_USEC=")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // our own child, by PID
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("jvb1 log:\n%s", logs.String())
		}
	})
	waitFile(t, filepath.Join(root, "etc/fleet-marker.txt"), "authed on jvb1\n")
	waitCond(t, "jvb1 registered", func() bool {
		code, out, _ := runCLI(t, append([]string{"fleet", "status", "--json"}, asOps...)...)
		return code == 2 && strings.Contains(out, `"registered": true`) // signal1 is not running: not converged
	})
}
