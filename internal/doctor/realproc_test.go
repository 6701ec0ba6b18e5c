package doctor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// freePort returns a free loopback port (testenv.FreePort).
func freePort(t *testing.T, proto string) int {
	t.Helper()
	if proto == "udp" {
		return testenv.FreePort(t, testenv.TCPUDP) // coturn listens on both
	}
	return testenv.FreePort(t, testenv.TCP)
}

// startDaemon runs a real server in the foreground and kills it (by PID)
// when the test ends.
func startDaemon(t *testing.T, dir, name string, args ...string) *exec.Cmd {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, filepath.Base(name)+".out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = log, log, dir
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		// SIGTERM first: nginx's master then stops its workers (a SIGKILL
		// would orphan them).
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
	return cmd
}

// waitPort polls the real socket table until want passes (bounded).
func waitPort(t *testing.T, want portWant, dir string) Result {
	t.Helper()
	var r Result
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		socks, err := ProcSockets{}.Listening(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if r = evalPort(want, socks); r.Status == Pass {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "out.log"))
	t.Fatalf("%s never passed in 60 s: %s (%s)\n%s", want.id, r.Seen, r.Fix, out)
	return r
}

// TestRealDaemonsMatch starts the real Prosody, nginx and coturn on
// loopback high ports and checks that the port check recognises each one
// as itself (and not as the others) through /proc.
func TestRealDaemonsMatch(t *testing.T) {
	testenv.Root(t, "reading other processes' /proc/PID/fd")
	t.Run("prosody", func(t *testing.T) {
		prosody := testenv.LookPath(t, "prosody", "apt-get install prosody")
		dir := t.TempDir()
		port := freePort(t, "tcp")
		cfg := fmt.Sprintf(`pidfile = %q
data_path = %q
run_as_root = true
daemonize = false
c2s_ports = { %d }
c2s_interfaces = { "127.0.0.1" }
http_ports = { }
https_ports = { }
s2s_ports = { }
component_ports = { }
log = { info = %q }
modules_enabled = { "saslauth" }
VirtualHost "localhost"
`, filepath.Join(dir, "prosody.pid"), dir, port, filepath.Join(dir, "out.log"))
		p := filepath.Join(dir, "prosody.cfg.lua")
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		startDaemon(t, dir, prosody, "--config", p, "-F")
		r := waitPort(t, portWant{id: "port.xmpp", title: "x", proto: "tcp", port: port, service: "prosody", match: isProsody,
			loopbackOnly: true, startFix: "start prosody"}, dir)
		t.Logf("prosody: %s", r.Seen)
		socks, _ := ProcSockets{}.Listening(context.Background())
		for _, m := range []func(Proc) bool{isNginx, isCoturn, isJVB} {
			if evalPort(portWant{id: "x", proto: "tcp", port: port, service: "other", match: m, startFix: "x"}, socks).Status != Fail {
				t.Error("prosody matched another service")
			}
		}
	})
	t.Run("nginx", func(t *testing.T) {
		nginx := testenv.LookPath(t, "nginx", "apt-get install nginx-light")
		dir := t.TempDir()
		port := freePort(t, "tcp")
		conf := fmt.Sprintf(`daemon off;
pid %s/nginx.pid;
error_log %s/out.log;
worker_processes 2;
events {}
http {
    access_log off;
    client_body_temp_path %s;
    proxy_temp_path %s;
    fastcgi_temp_path %s;
    uwsgi_temp_path %s;
    scgi_temp_path %s;
    server { listen 127.0.0.1:%d; return 204; }
}
`, dir, dir, dir, dir, dir, dir, dir, port)
		p := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		startDaemon(t, dir, nginx, "-c", p, "-p", dir)
		r := waitPort(t, portWant{id: "port.https", title: "x", proto: "tcp", port: port, service: "nginx", match: isNginx, startFix: "start nginx"}, dir)
		t.Logf("nginx: %s", r.Seen)
	})
	t.Run("coturn", func(t *testing.T) {
		turn := testenv.LookPath(t, "turnserver", "apt-get install coturn")
		dir := t.TempDir()
		port := freePort(t, "udp")
		startDaemon(t, dir, turn, "-n", "--listening-ip", "127.0.0.1", "--listening-port", strconv.Itoa(port),
			"--no-tls", "--no-dtls", "--no-cli", "--log-file", filepath.Join(dir, "out.log"), "--pidfile", filepath.Join(dir, "turn.pid"))
		r := waitPort(t, portWant{id: "port.turn", title: "x", proto: "udp", port: port, service: "coturn", match: isCoturn, startFix: "start coturn"}, dir)
		t.Logf("coturn: %s", r.Seen)
	})
}
