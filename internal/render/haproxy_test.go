package render

import (
	"context"
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
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/membership"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
	"github.com/jitsi-agent/jitsi-agent/templates"
)

const installHAProxy = "apt-get install haproxy"

// testPKI is a CA and a leaf for meet.example.com signed by it, as files.
type testPKI struct {
	dir              string
	caFile           string // the CA certificate (tls.shard_ca)
	certFile         string // leaf chain; its key is certFile + ".key" (HAProxy's convention)
	serverTLS        *tls.Config
	clientRoots      *x509.CertPool
	leafPEM, leafKey []byte
}

func newTestPKI(t testing.TB, domain string) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "jitsi-agent test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{dir: dir, caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, domain+".pem")}
	p.leafPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	p.leafKey = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	for f, b := range map[string][]byte{
		p.caFile:            pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		p.certFile:          p.leafPEM,
		p.certFile + ".key": p.leafKey,
	} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pair, err := tls.X509KeyPair(p.leafPEM, p.leafKey)
	if err != nil {
		t.Fatal(err)
	}
	p.serverTLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	p.clientRoots = x509.NewCertPool()
	p.clientRoots.AddCert(ca)
	return p
}

// frontConfig renders the front host's haproxy.cfg.
func frontConfig(t testing.TB, d *spec.Deployment, v *membership.View) string {
	t.Helper()
	set, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: userSources, Members: v})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range set.Files {
		if f.Path == "/etc/haproxy/haproxy.cfg" {
			return string(f.Content)
		}
	}
	t.Fatal("no haproxy.cfg rendered for the front")
	return ""
}

// localize points a rendered front config at the test's files: the
// certificate, and the shard CA when it is the system store. Nothing else
// is changed.
func localize(cfg string, p *testPKI, domain string) string {
	cfg = strings.ReplaceAll(cfg, "crt "+files.FrontCert(domain)+" ", "crt "+p.certFile+" ")
	return strings.ReplaceAll(cfg, "ca-file /etc/haproxy/shard-ca.pem ", "ca-file "+p.caFile+" ")
}

var resolveWarning = regexp.MustCompile(`could not resolve address`)

// haproxyCheck runs haproxy -c on cfg: it must be valid and warn about
// nothing but unresolvable test host names.
func haproxyCheck(t testing.TB, haproxy, cfg string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(haproxy, "-c", "-f", f).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c refused the rendered front config: %v\n%s\n--- config:\n%s", err, out, cfg)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "[WARNING]") && !resolveWarning.MatchString(l) {
			t.Errorf("haproxy -c warns: %s\n--- config:\n%s", l, cfg)
		}
	}
}

// TestHAProxyAcceptsGoldenFronts: haproxy -c accepts every rendered front
// configuration of the golden matrix.
func TestHAProxyAcceptsGoldenFronts(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy", installHAProxy)
	p := newTestPKI(t, "meet.example.com")
	n := 0
	for _, c := range matrix {
		_, set := renderCombo(t, c)
		for _, f := range set.Files {
			if f.Path == "/etc/haproxy/haproxy.cfg" {
				n++
				t.Run(c.name, func(t *testing.T) { haproxyCheck(t, haproxy, localize(string(f.Content), p, "meet.example.com")) })
			}
		}
	}
	if n < 2 {
		t.Fatalf("the matrix renders %d front configs", n)
	}
}

// randomView is a fleet of 1-8 shards, each with an nginx (healthy or
// not), 0-3 bridges and maybe a coturn, plus the front.
func randomView(r *mrand.Rand) (*membership.View, int) {
	ms := []membership.Member{{Host: "front1", Address: "192.0.2.10", Roles: []string{spec.Front}, Healthy: true}}
	shards := 1 + r.IntN(8)
	for s := range shards {
		name := fmt.Sprintf("%s%d", []string{"eu", "us", "shard_", "a.b-", "X"}[r.IntN(5)], s)
		addr := fmt.Sprintf("10.%d.0.1", s)
		if r.IntN(3) == 0 {
			addr = fmt.Sprintf("2001:db8:%d::1", s)
		}
		ms = append(ms, membership.Member{Host: "sig-" + name, Shard: name, Address: addr,
			Roles: []string{spec.Prosody, spec.Jicofo, spec.Nginx}, Healthy: r.IntN(4) != 0})
		if r.IntN(3) == 0 {
			ms = append(ms, membership.Member{Host: "web2-" + name, Shard: name, Address: fmt.Sprintf("web2.%d.example.net", s), Roles: []string{spec.Nginx}, Healthy: true})
		}
		for b := range r.IntN(4) {
			ms = append(ms, membership.Member{Host: fmt.Sprintf("jvb-%s-%d", name, b), Shard: name, Address: fmt.Sprintf("10.%d.1.%d", s, b+1), Roles: []string{spec.JVB}, Healthy: r.IntN(5) != 0})
		}
	}
	v, err := membership.New(ms)
	if err != nil {
		panic(err)
	}
	return v, shards
}

var serverLine = regexp.MustCompile(`(?m)^    server (\S+) (\S+) id (\d+)$`)

// TestHAProxyAcceptsGeneratedShardSets: a property over generated fleets:
// haproxy -c accepts the front config, every shard has exactly one server
// in the hash backend and a backend of its own, every bridge's colibri-ws
// path goes to its shard.
func TestHAProxyAcceptsGeneratedShardSets(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy", installHAProxy)
	p := newTestPKI(t, "meet.example.com")
	r := mrand.New(mrand.NewPCG(17, 4))
	for i := range 25 {
		v, shards := randomView(r)
		d := newDeployment(sharded("front1"))
		d.Host = spec.Host{Name: "front1", Address: "192.0.2.10", Roles: []string{spec.Front}}
		d.Videobridge.Websockets = i%5 != 0
		if i%3 == 0 {
			d.Web.HTTPSPort = 8443
			d.TLS.ACME = &spec.ACME{Listen: "127.0.0.1:8402"}
		}
		cfg := frontConfig(t, d, v)
		haproxyCheck(t, haproxy, localize(cfg, p, "meet.example.com"))
		servers := serverLine.FindAllStringSubmatch(cfg, -1)
		if len(servers) != shards {
			t.Fatalf("fleet %d (%s): %d servers for %d shards:\n%s", i, v, len(servers), shards, cfg)
		}
		for _, m := range v.Select("", spec.Nginx) {
			if !strings.Contains(cfg, "\nbackend shard-"+m.Shard+"\n") {
				t.Fatalf("fleet %d: no backend for shard %s", i, m.Shard)
			}
		}
		for _, b := range v.Select("", spec.JVB) {
			line := fmt.Sprintf("use_backend shard-%s if { path_beg /colibri-ws/%s/ }", b.Shard, b.Host)
			if strings.Contains(cfg, line) != d.Videobridge.Websockets {
				t.Fatalf("fleet %d: colibri route %q present=%t with websockets=%t", i, line, !d.Videobridge.Websockets, d.Videobridge.Websockets)
			}
		}
	}
}

// TestFrontMembershipFollowsView: a shard whose nginx leaves the view
// leaves the front; an unhealthy nginx is replaced by a healthy one of the
// same shard; server ids do not depend on the other shards.
func TestFrontMembershipFollowsView(t *testing.T) {
	d := newDeployment(sharded("front1"))
	v, err := membership.FromDeployment(d)
	if err != nil {
		t.Fatal(err)
	}
	static := frontConfig(t, d, nil)
	if got := frontConfig(t, d, v); got != static {
		t.Fatalf("the spec's own view renders a different front:\n%s\n---\n%s", got, static)
	}
	ids := map[string]string{}
	for _, m := range serverLine.FindAllStringSubmatch(static, -1) {
		ids[m[1]] = m[3]
	}
	without := frontConfig(t, d, v.Without("signal-a"))
	if strings.Contains(without, "server a ") || strings.Contains(without, "shard-a") {
		t.Fatalf("shard a is still in the front after its nginx left:\n%s", without)
	}
	for _, m := range serverLine.FindAllStringSubmatch(without, -1) {
		if ids[m[1]] != m[3] {
			t.Fatalf("server %s changed id %s -> %s when another shard left", m[1], ids[m[1]], m[3])
		}
	}
	ms := v.Members()
	for i := range ms {
		if ms[i].Host == "signal-b" {
			ms[i].Healthy = false
		}
	}
	ms = append(ms, membership.Member{Host: "web-b2", Shard: "b", Address: "10.0.1.2", Roles: []string{spec.Nginx}, Healthy: true})
	v2, err := membership.New(ms)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := frontConfig(t, d, v2); !strings.Contains(cfg, "server b 10.0.1.2:443 id ") {
		t.Fatalf("shard b not moved to its healthy nginx:\n%s", cfg)
	}
}

// shardStandIn is one shard's nginx as the front sees it: HTTPS for the
// domain; GET /http-bind without a room is the health check (200, or 503
// while failing); every other request answers with the shard's name.
type shardStandIn struct {
	name    string
	failing atomic.Bool
	hits    atomic.Int64
	srv     *http.Server
}

func startStandIn(t *testing.T, name string, ln net.Listener, p *testPKI) *shardStandIn {
	t.Helper()
	s := &shardStandIn{name: name}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/http-bind" && r.URL.Query().Get("room") == "" {
				if s.failing.Load() {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
				return
			}
			s.hits.Add(1)
			w.Header().Set("X-Shard", name)
			io.WriteString(w, name)
		}),
		TLSConfig:         p.serverTLS.Clone(), // ServeTLS adds h2 to it
		ReadHeaderTimeout: 10 * time.Second,
	}
	go s.srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// listenSamePort binds one port on several loopback addresses (each shard
// is its own 127.0.0.N, all on web.https_port).
func listenSamePort(t *testing.T, addrs []string) []net.Listener {
	t.Helper()
	for range 50 {
		first, err := net.Listen("tcp", net.JoinHostPort(addrs[0], "0"))
		if err != nil {
			testenv.Unavailable(t, "cannot listen on "+addrs[0]+": "+err.Error(), "a kernel with the whole 127.0.0.0/8 on lo")
		}
		port := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		for _, a := range addrs[1:] {
			ln, err := net.Listen("tcp", net.JoinHostPort(a, fmt.Sprint(port)))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) == len(addrs) {
			return lns
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	t.Fatal("no port free on every loopback address")
	return nil
}

// runningFront is a real haproxy serving a rendered front config on
// listeners the test made (passed as file descriptors: no port race).
type runningFront struct {
	addr   string
	client *http.Client
}

var bindLine = regexp.MustCompile(`(?m)^    bind :::\d+ v4v6`)

func startFront(t *testing.T, haproxy, cfg string, p *testPKI) *runningFront {
	t.Helper()
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The test harness's only edits: listeners from the test (fd 3 and
	// 4), the test certificate, and no chroot/user switch or syslog.
	binds := 0
	cfg = bindLine.ReplaceAllStringFunc(cfg, func(string) string {
		binds++
		return fmt.Sprintf("    bind fd@%d", 2+binds)
	})
	if binds != 2 {
		t.Fatalf("expected 2 bind lines, found %d", binds)
	}
	var kept []string
	for _, l := range strings.Split(cfg, "\n") {
		switch strings.Fields(l + " x")[0] {
		case "chroot", "user", "group", "log":
			continue
		}
		kept = append(kept, l)
	}
	cfg = localize(strings.Join(kept, "\n"), p, "meet.example.com")
	dir := t.TempDir()
	f := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var fds []*os.File
	for _, ln := range []net.Listener{httpLn, httpsLn} {
		fd, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
	}
	cmd := exec.Command(haproxy, "-db", "-f", f)
	cmd.ExtraFiles = fds
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		fd.Close()
	}
	httpLn.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s\n--- config:\n%s", out.String(), cfg)
		}
	})
	addr := httpsLn.Addr().String()
	httpsLn.Close() // haproxy holds its own copy
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.clientRoots, ServerName: "meet.example.com"},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		},
		DisableKeepAlives: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &runningFront{addr: addr, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// shardOf asks the front for a path and returns the shard that answered.
func (f *runningFront) shardOf(t *testing.T, path string) string {
	t.Helper()
	resp, err := f.client.Get("https://meet.example.com" + path)
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

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRealHAProxyPinsRoomsToShards runs the rendered front in a real
// haproxy on loopback in front of three stand-in shards: the same room
// always lands on the same shard (through BOSH, websocket and the meeting
// link alike), rooms spread over the shards, colibri-ws follows the
// bridge's shard, a shard failing its health check drops out and only its
// rooms move, and a front re-rendered without a shard moves only that
// shard's rooms.
func TestRealHAProxyPinsRoomsToShards(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy", installHAProxy)
	p := newTestPKI(t, "meet.example.com")
	names := []string{"s1", "s2", "s3"}
	addrs := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	lns := listenSamePort(t, addrs)
	port := lns[0].Addr().(*net.TCPAddr).Port
	standIns := map[string]*shardStandIn{}
	ms := []membership.Member{{Host: "front1", Address: "127.0.0.1", Roles: []string{spec.Front}, Healthy: true}}
	for i, n := range names {
		standIns[n] = startStandIn(t, n, lns[i], p)
		ms = append(ms,
			membership.Member{Host: "signal-" + n, Shard: n, Address: addrs[i], Roles: []string{spec.Prosody, spec.Jicofo, spec.Nginx}, Healthy: true},
			membership.Member{Host: "jvb-" + n, Shard: n, Address: addrs[i], Roles: []string{spec.JVB}, Healthy: true})
	}
	view, err := membership.New(ms)
	if err != nil {
		t.Fatal(err)
	}
	d := newDeployment(sharded("front1"))
	d.Host = spec.Host{Name: "front1", Address: "127.0.0.1", Roles: []string{spec.Front}}
	d.Web.HTTPSPort = port
	d.TLS.ShardCA = "/etc/haproxy/shard-ca.pem" // localize points it at the test CA
	cfg := frontConfig(t, d, view)
	front := startFront(t, haproxy, cfg, p)

	rooms := make([]string, 60)
	for i := range rooms {
		rooms[i] = fmt.Sprintf("room%02d", i)
	}
	home := map[string]string{}
	count := map[string]int{}
	for _, room := range rooms {
		s := front.shardOf(t, "/http-bind?room="+room)
		home[room] = s
		count[s]++
		for _, path := range []string{
			"/http-bind?room=" + room,
			"/xmpp-websocket?room=" + strings.ToUpper(room),
			"/" + room,
			"/" + strings.ToUpper(room) + "?jwt=x",
			"/tenant1/" + room,
		} {
			if got := front.shardOf(t, path); got != s {
				t.Fatalf("room %s: %s went to %s, the room lives on %s", room, path, got, s)
			}
		}
	}
	for _, n := range names {
		if count[n] == 0 {
			t.Fatalf("no room landed on shard %s: %v", n, count)
		}
	}
	t.Logf("60 rooms over 3 shards: %v", count)
	for _, n := range names {
		if got := front.shardOf(t, "/colibri-ws/jvb-"+n+"/conf1/ep1?pwd=x"); got != n {
			t.Fatalf("colibri-ws of jvb-%s went to %s", n, got)
		}
	}

	// s2 fails its health check: its rooms move, the others stay.
	standIns["s2"].failing.Store(true)
	var moved string
	for _, room := range rooms {
		if home[room] == "s2" {
			moved = room
			break
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for front.shardOf(t, "/http-bind?room="+moved) == "s2" {
		if time.Now().After(deadline) {
			t.Fatal("shard s2 fails its health check but still gets its rooms after 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := standIns["s2"].hits.Load()
	for _, room := range rooms {
		got := front.shardOf(t, "/http-bind?room="+room)
		switch {
		case got == "s2":
			t.Fatalf("room %s still sent to the failed shard", room)
		case home[room] != "s2" && got != home[room]:
			t.Fatalf("room %s moved from healthy %s to %s", room, home[room], got)
		case home[room] == "s2":
			if again := front.shardOf(t, "/"+room); again != got {
				t.Fatalf("moved room %s is split: %s and %s", room, got, again)
			}
		}
	}
	if standIns["s2"].hits.Load() != before {
		t.Fatal("the failed shard still got requests")
	}

	// Re-rendered without s3 (its nginx left the view), a fresh front
	// sends s3's rooms elsewhere and keeps every s1/s2 room where it was.
	standIns["s2"].failing.Store(false)
	cfg2 := frontConfig(t, d, view.Without("signal-s3", "jvb-s3"))
	if strings.Contains(cfg2, "s3") {
		t.Fatalf("s3 still in the re-rendered front:\n%s", cfg2)
	}
	haproxyCheck(t, haproxy, localize(cfg2, p, "meet.example.com"))
	front2 := startFront(t, haproxy, cfg2, p)
	s3hits := standIns["s3"].hits.Load()
	for _, room := range rooms {
		got := front2.shardOf(t, "/http-bind?room="+room)
		if home[room] != "s3" && got != home[room] {
			t.Fatalf("room %s moved from %s to %s when s3 left", room, home[room], got)
		}
		if got == "s3" {
			t.Fatalf("room %s sent to the removed shard", room)
		}
	}
	if standIns["s3"].hits.Load() != s3hits {
		t.Fatal("the removed shard still got requests")
	}
}
