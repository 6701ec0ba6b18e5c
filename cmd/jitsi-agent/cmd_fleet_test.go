package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/fleet"
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
  address = "10.0.0.1"
  roles   = ["prosody", "jicofo", "nginx"]
}
host "jvb1" {
  address = "10.0.0.11"
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
	write(specPath, fleetCLISpec)
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
	if code != 0 || !strings.Contains(out, "3 members answer") || !strings.Contains(out, "opens the current generation") || !strings.Contains(out, "jvb1 is registered") {
		t.Fatalf("fleet doctor: %d\n%s", code, out)
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
