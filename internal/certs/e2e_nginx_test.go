package certs

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/certs/pebbletest"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// nginxConf is a minimal nginx with the challenge proxy the rendered site
// uses, on high loopback ports, everything in the temp dir.
func nginxConf(dir string, httpPort, httpsPort int, agent, cert, key string) string {
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;"
	}
	return fmt.Sprintf(`%[1]s
daemon off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[2]s/tmp-body;
    proxy_temp_path %[2]s/tmp-proxy;
    fastcgi_temp_path %[2]s/tmp-fastcgi;
    uwsgi_temp_path %[2]s/tmp-uwsgi;
    scgi_temp_path %[2]s/tmp-scgi;
    server {
        listen 127.0.0.1:%[3]d;
        server_name %[7]s;
        location ^~ /.well-known/acme-challenge/ {
            proxy_pass http://%[5]s;
            proxy_set_header Host $host;
        }
        location / { return 301 https://$host$request_uri; }
    }
    server {
        listen 127.0.0.1:%[4]d ssl;
        server_name %[7]s;
        ssl_certificate %[6]s;
        ssl_certificate_key %[8]s;
        location / { return 200 "ok\n"; }
    }
}
`, user, dir, httpPort, httpsPort, agent, cert, testDomain, key)
}

// TestEndToEndThroughNginx: nginx owns the HTTP port and serves the
// placeholder on HTTPS; Pebble validates HTTP-01 through nginx's proxy to
// the agent's loopback listener; the new certificate is deployed, nginx is
// reloaded (never stopped) and presents it.
func TestEndToEndThroughNginx(t *testing.T) {
	nginx := testenv.LookPath(t, "nginx", "apt-get install nginx-light")
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	pp := testenv.FreePorts(t, testenv.TCP, 2)
	httpPort, httpsPort := pp[0], pp[1]
	srv := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort})
	d := testDeployment(&spec.ACME{DirectoryURL: srv.DirectoryURL})
	// The bootstrap address is nginx's port: busy, so it is skipped.
	bootstrap := "127.0.0.1:" + strconv.Itoa(httpPort)
	m, cnt := newManager(t, srv.Transport(), mgrOpts{root: root, d: d, listen: "127.0.0.1:0", bootstrap: bootstrap})
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}

	mat, err := Load(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, root, Files(d, mat))
	placeholderSerial := mat.Bundles[0].Leaf.SerialNumber

	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(dir, httpPort, httpsPort, m.Addr().String(),
		filepath.Join(root, d.TLS.Certificate), filepath.Join(root, d.TLS.Key))), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(nginx, "-t", "-c", conf, "-p", dir).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(nginx, "-c", conf, "-p", dir)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error.log:\n%s", b)
		}
	})
	httpsAddr := "127.0.0.1:" + strconv.Itoa(httpsPort)
	waitFor(t, 10*time.Second, "nginx serving the placeholder", func() bool {
		c, err := net.DialTimeout("tcp", httpsAddr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if got := handshake(t, httpsAddr, testDomain)[0].SerialNumber; got.Cmp(placeholderSerial) != 0 {
		t.Fatalf("nginx presents serial %x, want the placeholder's", got)
	}
	if ln, err := net.Listen("tcp", bootstrap); err == nil {
		ln.Close()
		t.Fatal("nginx does not own the HTTP port")
	}

	if err := m.ObtainOnce(context.Background()); err != nil {
		t.Fatalf("ObtainOnce through nginx: %v", err)
	}
	if n := cnt.count("POST /order-plz"); n != 1 {
		t.Errorf("orders = %d, want 1", n)
	}
	var ev Event
	select {
	case ev = <-m.Events():
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	// What the daemon does on an event: render, apply, reload.
	mat2, err := Load(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, root, Files(d, mat2))
	if out, err := exec.Command(nginx, "-s", "reload", "-c", conf, "-p", dir).CombinedOutput(); err != nil {
		t.Fatalf("nginx -s reload: %v\n%s", err, out)
	}
	var chain []*x509.Certificate
	waitFor(t, 15*time.Second, "nginx presenting the new certificate", func() bool {
		chain = handshake(t, httpsAddr, testDomain)
		return chain[0].SerialNumber.Text(16) == ev.Serial
	})
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: testDomain, Roots: srv.Roots(t), Intermediates: inter}); err != nil {
		t.Errorf("presented chain does not verify against Pebble's root: %v", err)
	}
	if cmd.ProcessState != nil {
		t.Error("nginx exited during the test")
	}
}

func waitFor(t testing.TB, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
