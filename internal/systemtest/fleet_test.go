package systemtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// fleetUnit runs the agent in fleet mode under systemd (Type=notify: start
// returns after its first pass).
const fleetUnit = `[Unit]
Description=jitsi-agent (fleet mode)
After=network.target etcd-fleet.service

[Service]
Type=notify
EnvironmentFile=-/etc/jitsi-agent/env
ExecStart=` + AgentPath + ` run --etcd http://127.0.0.1:23790 --host box --fleet-key /etc/jitsi-agent/fleet.key --lease-ttl 3s
`

// TestFleetAgentInBox: fleet mode with the real services of a shard. etcd
// runs in the box (one member on the box's loopback; the TLS cluster is
// covered by internal/fleet); `fleet push` publishes the spec, the agent
// unit takes it and brings up Prosody, nginx and coturn; a second push
// moves nginx's HTTPS port: the agent applies it and reloads nginx, and
// config.js is served on the new port. `fleet status` reports the host
// converged, then the lease leaves when the agent stops.
func TestFleetAgentInBox(t *testing.T) {
	etcd := testenv.LookPath(t, "etcd", "apt-get install etcd-server etcd-client")
	spec := DefaultSpec("meet.test")
	e := Boot(t, Options{Spec: spec})
	e.MustRun("systemd-run", "--unit=etcd-fleet", "--property=Type=notify", etcd, "--data-dir", "/var/tmp/etcd-fleet",
		"--listen-client-urls", "http://127.0.0.1:23790", "--advertise-client-urls", "http://127.0.0.1:23790",
		"--listen-peer-urls", "http://127.0.0.1:23800", "--initial-advertise-peer-urls", "http://127.0.0.1:23800",
		"--initial-cluster", "default=http://127.0.0.1:23800", "--logger", "zap", "--log-level", "warn")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := e.Exec(context.Background(), "journalctl", "--no-pager", "-n", "80", "-u", "jitsi-agent-fleet", "-u", "etcd-fleet", "-o", "short-precise")
			t.Logf("box journal (fleet agent, etcd):\n%s", out)
			out, _ = e.Exec(context.Background(), AgentPath, "fleet", "status", "--etcd", "http://127.0.0.1:23790")
			t.Logf("fleet status:\n%s", out)
		}
	})
	etcdArgs := []string{"--etcd", "http://127.0.0.1:23790"}
	if out, code := e.Agent("fleet", "keygen", "/etc/jitsi-agent/fleet.key"); code != 0 {
		t.Fatalf("keygen: %d %s", code, out)
	}
	push := func(what string) {
		t.Helper()
		out, code := e.Agent(append([]string{"fleet", "push", SpecPath, "--fleet-key", "/etc/jitsi-agent/fleet.key"}, etcdArgs...)...)
		if code != 0 || !strings.Contains(out, "Published generation") {
			t.Fatalf("push %s: %d %s", what, code, out)
		}
	}
	push("first")
	e.WriteFile("/etc/systemd/system/jitsi-agent-fleet.service", []byte(fleetUnit), 0o644)
	e.MustRun("systemctl", "daemon-reload")
	e.MustRun("systemctl", "start", "jitsi-agent-fleet.service")
	converged := func() bool {
		_, code := e.Agent(append([]string{"fleet", "status"}, etcdArgs...)...)
		return code == 0
	}
	e.WaitFor(3*time.Minute, "fleet status converged on generation 1", converged)
	for _, u := range []string{"prosody.service", "nginx.service", "coturn.service"} {
		if out, _ := e.Exec(context.Background(), "systemctl", "is-active", u); strings.TrimSpace(out) != "active" {
			t.Errorf("%s: %s", u, out)
		}
	}
	e.WaitFor(time.Minute, "config.js on 443", func() bool {
		code, body, err := getConfigJS(e, 443)
		return err == nil && code == 200 && strings.Contains(body, e.Domain)
	})

	// Generation 2: nginx moves to 8443; the agent reloads it.
	e.SetSpec(withWeb(spec, 8443))
	push("second")
	e.WaitFor(3*time.Minute, "config.js on 8443", func() bool {
		code, body, err := getConfigJS(e, 8443)
		return err == nil && code == 200 && strings.Contains(body, e.Domain)
	})
	e.WaitFor(time.Minute, "fleet status converged on generation 2", func() bool {
		out, code := e.Agent(append([]string{"fleet", "status", "--json"}, etcdArgs...)...)
		return code == 0 && strings.Contains(out, `"generation": 2`)
	})
	st, err := e.DaemonStatus()
	if err != nil || st.LastApply == nil || st.LastApply.Result != "success" {
		t.Fatalf("daemon status: %+v %v", st, err)
	}

	// A clean stop revokes the lease: the host leaves at once.
	e.MustRun("systemctl", "stop", "jitsi-agent-fleet.service")
	e.WaitFor(time.Minute, "the host to leave", func() bool {
		out, code := e.Agent(append([]string{"fleet", "status", "--json"}, etcdArgs...)...)
		return code == 2 && strings.Contains(out, `"registered": false`)
	})
}
