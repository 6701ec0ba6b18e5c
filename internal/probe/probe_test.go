package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/ports"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

const domain = "meet.example.test"

func freePort(t testing.TB, proto string) int {
	t.Helper()
	if proto == ports.UDP {
		return testenv.FreePort(t, testenv.UDP)
	}
	return testenv.FreePort(t, testenv.TCP)
}

// tempDir is a directory the services' unprivileged workers can read.
func tempDir(t testing.TB) string {
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// start runs a real server in the foreground; it is stopped by PID (TERM,
// then KILL) when the test ends.
func start(t testing.TB, dir, name string, args ...string) {
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
		if t.Failed() {
			out, _ := os.ReadFile(log.Name())
			t.Logf("%s output:\n%s", name, out)
		}
	})
}

func writeCert(t testing.TB, dir, name string, hosts ...string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: hosts[0]}, DNSNames: hosts,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	crt, kp := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o644); err != nil {
		t.Fatal(err)
	}
	return crt, kp
}

func deployment(guests bool) *spec.Deployment {
	return &spec.Deployment{Domain: domain, Auth: spec.Auth{Mode: spec.AuthAnonymous, Guests: guests}}
}

// waitOK polls the component's probes (the service is starting).
func waitOK(t *testing.T, p *Prober, component string) []Result {
	t.Helper()
	rs, err := p.Wait(context.Background(), component, 20*time.Second)
	if err != nil {
		t.Fatalf("%s probes never passed: %v", component, err)
	}
	return rs
}

// startNginx runs a real nginx serving js as config.js over TLS for
// domain on a free loopback port.
func startNginx(t testing.TB, js []byte) int {
	nginx := testenv.LookPath(t, "nginx", "apt-get install nginx-light")
	testenv.Root(t, "nginx's master binds and switches its workers' user")
	dir := tempDir(t)
	crt, key := writeCert(t, dir, "site", domain)
	if err := os.WriteFile(filepath.Join(dir, "config.js"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t, ports.TCP)
	conf := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen 127.0.0.1:%[2]d ssl;
        server_name %[3]s;
        ssl_certificate %[4]s;
        ssl_certificate_key %[5]s;
        location = /config.js { alias %[1]s/config.js; }
    }
}
`, dir, port, domain, crt, key)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, dir, nginx, "-c", filepath.Join(dir, "nginx.conf"), "-p", dir)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error.log:\n%s", b)
		}
	})
	return port
}

func TestNginxServesConfigJS(t *testing.T) {
	js := []byte("var config = { hosts: { domain: '" + domain + "' } };\n")
	port := startNginx(t, js)
	set := ports.Set{{ID: ports.NginxHTTPS, Proto: ports.TCP, Port: port}}

	p := New(deployment(false), Options{Ports: set, ConfigJS: js})
	rs := waitOK(t, p, spec.Nginx)
	if len(rs) != 1 || rs[0].Check != CheckConfigJS || !strings.Contains(rs[0].Target, "https://"+domain+":"+strconv.Itoa(port)+"/config.js") {
		t.Errorf("results: %+v", rs)
	}

	// Another config.js than the rendered one: the reload did not take.
	stale := New(deployment(false), Options{Ports: set, ConfigJS: []byte("var config = {};\n")})
	if err := Failed(stale.Run(context.Background(), spec.Nginx)); err == nil || !strings.Contains(err.Error(), "differs from the rendered file") {
		t.Errorf("stale config.js: %v", err)
	}
	// Nothing on the configured port (nginx could not bind it). Wait
	// retries: a short interval in a window long enough that a stalled
	// machine still makes a second attempt.
	moved := New(deployment(false), Options{Ports: ports.Set{{ID: ports.NginxHTTPS, Proto: ports.TCP, Port: freePort(t, ports.TCP)}}, ConfigJS: js, Interval: 20 * time.Millisecond})
	rs, err := moved.Wait(context.Background(), spec.Nginx, 2*time.Second)
	if err == nil || !IsProbeError(err) || rs[0].Attempts < 2 || !strings.Contains(err.Error(), "nginx does not answer") {
		t.Errorf("closed port: %v (%+v)", err, rs)
	}
}

func TestProsodyBOSHAndStartTLS(t *testing.T) {
	prosody := testenv.LookPath(t, "prosody", "apt-get install prosody")
	dir := tempDir(t)
	crt, key := writeCert(t, dir, "auth", "auth."+domain)
	pp := testenv.FreePorts(t, testenv.TCP, 2)
	c2s, httpPort := pp[0], pp[1]
	cfg := fmt.Sprintf(`pidfile = %[1]q
data_path = %[2]q
run_as_root = true
daemonize = false
log = { info = %[3]q }
c2s_ports = { %[4]d }
c2s_interfaces = { "127.0.0.1" }
http_ports = { %[5]d }
http_interfaces = { "127.0.0.1" }
https_ports = { }
s2s_ports = { }
modules_enabled = { "saslauth"; "tls"; "bosh"; "disco" }
consider_bosh_secure = true
VirtualHost %[6]q
    authentication = "anonymous"
VirtualHost %[7]q
    authentication = "internal_hashed"
    ssl = { key = %[8]q; certificate = %[9]q; }
VirtualHost %[10]q
    authentication = "internal_hashed"
`, filepath.Join(dir, "prosody.pid"), dir, filepath.Join(dir, "prosody.log"), c2s, httpPort,
		domain, "auth."+domain, key, crt, "nocert."+domain)
	p := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, dir, prosody, "--config", p, "-F")
	set := ports.Set{
		{ID: ports.ProsodyC2S, Proto: ports.TCP, Port: c2s},
		{ID: ports.ProsodyHTTP, Proto: ports.TCP, Host: "127.0.0.1", Port: httpPort},
	}
	pr := New(deployment(false), Options{Ports: set})
	rs := waitOK(t, pr, spec.Prosody)
	if len(rs) != 2 {
		t.Fatalf("want BOSH + c2s checks, got %+v", rs)
	}

	// guest.DOMAIN is not a host of this Prosody: BOSH is refused.
	guests := New(deployment(true), Options{Ports: set})
	err := Failed(guests.Run(context.Background(), spec.Prosody))
	if err == nil || !strings.Contains(err.Error(), "refused a BOSH session for guest."+domain) {
		t.Errorf("guest host missing: %v", err)
	}
	// A host without a certificate of its own: no STARTTLS, or (with
	// Prosody's fallback certificate lookup) a handshake that fails.
	if err := c2sStartTLS(context.Background(), net.JoinHostPort("127.0.0.1", strconv.Itoa(c2s)), "nocert."+domain); err == nil ||
		!strings.Contains(err.Error(), "offers no STARTTLS") && !strings.Contains(err.Error(), "TLS handshake on c2s for nocert."+domain+" failed") {
		t.Errorf("host without a certificate: %v", err)
	}
	// A host Prosody does not serve: the stream error names the condition.
	if err := c2sStartTLS(context.Background(), net.JoinHostPort("127.0.0.1", strconv.Itoa(c2s)), "other.example"); err == nil || !strings.Contains(err.Error(), "host-unknown") {
		t.Errorf("unknown host: %v", err)
	}
}

// startCoturn runs a real coturn on a free loopback UDP port.
func startCoturn(t testing.TB) int {
	turn := testenv.LookPath(t, "turnserver", "apt-get install coturn")
	dir := tempDir(t)
	port := testenv.FreePort(t, testenv.TCPUDP) // coturn listens on both
	start(t, dir, turn, "-n", "--listening-ip", "127.0.0.1", "--listening-port", strconv.Itoa(port),
		"--use-auth-secret", "--static-auth-secret", "probe-test-secret-0123456789", "--realm", domain,
		"--no-tls", "--no-dtls", "--no-cli", "--log-file", filepath.Join(dir, "turn.log"), "--pidfile", filepath.Join(dir, "turn.pid"))
	return port
}

func TestCoturnAnswersSTUN(t *testing.T) {
	port := startCoturn(t)
	set := ports.Set{{ID: ports.CoturnTURN, Proto: ports.UDP, Port: port}}
	waitOK(t, New(deployment(false), Options{Ports: set}), spec.Coturn)

	closed := New(deployment(false), Options{Ports: ports.Set{{ID: ports.CoturnTURN, Proto: ports.UDP, Port: freePort(t, ports.UDP)}}, Timeout: time.Second})
	if err := Failed(closed.Run(context.Background(), spec.Coturn)); err == nil || !strings.Contains(err.Error(), "no STUN answer") {
		t.Errorf("nothing listening: %v", err)
	}
}

func TestChecksFollowThePortModel(t *testing.T) {
	d := deployment(true)
	d.Host = spec.Host{Name: "a", Roles: []string{spec.Nginx}}
	d.Web.HTTPSPort = 8443
	p := New(d, Options{})
	cs := p.Checks()
	if len(cs) != 1 || cs[0].Component != spec.Nginx || !strings.Contains(cs[0].Target, ":8443/config.js via 127.0.0.1:8443") {
		t.Errorf("a host running only nginx: %+v", cs)
	}
	if p.Has(spec.Prosody) || !p.Has(spec.Nginx) {
		t.Error("Has")
	}
}

// BenchmarkProbes: what one probe costs after a reload, against the real
// services on loopback.
func BenchmarkProbes(b *testing.B) {
	js := []byte("var config = {};\n")
	set := ports.Set{
		{ID: ports.NginxHTTPS, Proto: ports.TCP, Port: startNginx(b, js)},
		{ID: ports.CoturnTURN, Proto: ports.UDP, Port: startCoturn(b)},
	}
	p := New(deployment(false), Options{Ports: set, ConfigJS: js})
	for _, c := range []string{spec.Nginx, spec.Coturn} {
		if _, err := p.Wait(context.Background(), c, 20*time.Second); err != nil {
			b.Fatal(err)
		}
		b.Run(c, func(b *testing.B) {
			for b.Loop() {
				if err := Failed(p.Run(context.Background(), c)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
