package systemtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// frontSpec is two shards behind a front; the shards' nginx are
// 10.99.0.2 and 10.99.0.3, stand-ins the test serves in a network
// namespace of their own behind a veth pair (a front and a shard on one
// host would both want web.https_port).
func frontSpec(withB bool) string {
	s := `domain = "meet.test"
cluster_secret = "4e9d2b7a1c6f30e8d5b94a17c2e6f08b3d71a5c9"
auth "anonymous" {}
turn { enabled = false }
tls { shard_ca = "/etc/jitsi-agent/shard-ca.pem" }
host "front1" {
  address = "127.0.0.1"
  roles   = ["front"]
}
host "signal-a" {
  shard   = "a"
  address = "10.99.0.2"
  roles   = ["prosody", "jicofo", "nginx", "jvb"]
}
`
	if withB {
		s += `host "signal-b" {
  shard   = "b"
  address = "10.99.0.3"
  roles   = ["prosody", "jicofo", "nginx", "jvb"]
}
`
	}
	return s
}

// shardCert is a CA and a certificate for meet.test it signed.
func shardCert(t *testing.T) (caPEM []byte, pair tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shard CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "meet.test"}, DNSNames: []string{"meet.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafT, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pair = tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), pair
}

// listenIn listens on addr inside the network namespace at nsPath.
func listenIn(t *testing.T, nsPath, addr string) net.Listener {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread stays in the box's namespace and is retired with the
		// goroutine (locked at exit); the socket keeps its namespace.
		runtime.LockOSThread()
		ns, err := os.Open(nsPath)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, err}
			return
		}
		ln, err := net.Listen("tcp", addr)
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen on %s in the box: %v", addr, r.err)
	}
	return r.ln
}

// TestFrontInBox: on a host with the front role the agent renders
// HAProxy's configuration and the certificate copy, Debian's real
// haproxy.service starts with them and pins each room to one of two
// stand-in shards it health-checks over TLS (verified with tls.shard_ca);
// removing a shard from the spec reloads HAProxy (same main PID) and its
// rooms go to the remaining shard.
func TestFrontInBox(t *testing.T) {
	testenv.LookPath(t, "haproxy", "apt-get install haproxy")
	caPEM, pair := shardCert(t)
	e := Boot(t, Options{Domain: "meet.test", Spec: frontSpec(true), NoStart: true,
		Files: map[string]string{"/etc/jitsi-agent/shard-ca.pem": string(caPEM)}})
	// The shards' network: a namespace inside the box, reached over a veth.
	e.MustRun("sh", "-ec", `ip netns add shards
ip link add jtf0 type veth peer name jtf1 netns shards
ip addr add 10.99.0.1/24 dev jtf0
ip link set jtf0 up
ip -n shards addr add 10.99.0.2/24 dev jtf1
ip -n shards addr add 10.99.0.3/24 dev jtf1
ip -n shards link set jtf1 up
ip -n shards link set lo up`)
	shardsNS := e.Path("/run/netns/shards")
	hits := map[string]*atomic.Int64{"a": {}, "b": {}}
	for name, addr := range map[string]string{"a": "10.99.0.2:443", "b": "10.99.0.3:443"} {
		ln := listenIn(t, shardsNS, addr)
		srv := &http.Server{
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
			ReadHeaderTimeout: 10 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/http-bind" && r.URL.Query().Get("room") == "" {
					return // the front's health check
				}
				hits[name].Add(1)
				w.Header().Set("X-Shard", name)
			}),
		}
		go srv.ServeTLS(ln, "", "")
		t.Cleanup(func() { srv.Close() })
	}

	out, code := e.Agent("apply", "-host", "front1", SpecPath)
	if code != 0 {
		t.Fatalf("apply on the front exited %d:\n%s", code, out)
	}
	if got := strings.TrimSpace(e.MustRun("systemctl", "is-active", "haproxy.service")); got != "active" {
		t.Fatalf("haproxy.service %s after apply", got)
	}
	for _, f := range []string{"/etc/haproxy/haproxy.cfg", "/etc/haproxy/certs/meet.test.pem", "/etc/haproxy/certs/meet.test.pem.key"} {
		if len(e.ReadFile(f)) == 0 {
			t.Fatalf("%s empty", f)
		}
	}
	c := e.HTTPClient()
	shardOf := func(path string) string {
		t.Helper()
		resp, err := c.Get("https://127.0.0.1" + path)
		if err != nil {
			t.Fatalf("GET %s through the front: %v", path, err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s through the front: %s", path, resp.Status)
		}
		return resp.Header.Get("X-Shard")
	}
	home := map[string]string{}
	for i := range 30 {
		room := fmt.Sprintf("boxroom%d", i)
		home[room] = shardOf("/http-bind?room=" + room)
		if again := shardOf("/" + room); again != home[room] {
			t.Fatalf("room %s: BOSH on %s, meeting link on %s", room, home[room], again)
		}
	}
	if hits["a"].Load() == 0 || hits["b"].Load() == 0 {
		t.Fatalf("rooms did not spread over both shards: a=%d b=%d", hits["a"].Load(), hits["b"].Load())
	}

	pid := e.MainPID("haproxy.service")
	e.SetSpec(frontSpec(false))
	out, code = e.Agent("apply", "-host", "front1", SpecPath)
	if code != 0 {
		t.Fatalf("apply without shard b exited %d:\n%s", code, out)
	}
	if got := e.MainPID("haproxy.service"); got != pid {
		t.Fatalf("haproxy restarted (main PID %d -> %d), want a reload", pid, got)
	}
	if strings.Contains(string(e.ReadFile("/etc/haproxy/haproxy.cfg")), "10.99.0.3") {
		t.Fatal("shard b still in the front's configuration")
	}
	// The reload is asynchronous (the old worker finishes its
	// connections): wait until a room of b's is answered by a.
	var moved string
	for room, s := range home {
		if s == "b" {
			moved = room
			break
		}
	}
	e.WaitFor(30*time.Second, "shard b's rooms go to shard a after the reload", func() bool { return shardOf("/http-bind?room="+moved) == "a" })
	before := hits["b"].Load()
	for room := range home {
		if got := shardOf("/http-bind?room=" + room); got != "a" {
			t.Fatalf("room %s went to %s after shard b left", room, got)
		}
	}
	if hits["b"].Load() != before {
		t.Fatal("the removed shard still got requests")
	}
}
