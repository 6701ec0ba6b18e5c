package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/certs/pebbletest"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

type mgrOpts struct {
	listen    string
	bootstrap string
	clock     Clock
	root      string // deployment root (cache, state, deployed files)
	d         *spec.Deployment
}

// newManager builds a Manager for d (ACME settings from d) with the test's
// transport; it returns the request counter.
func newManager(t testing.TB, base http.RoundTripper, o mgrOpts) (*Manager, *counter) {
	t.Helper()
	cfg, err := ConfigFor(o.d, o.root)
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{base: base}
	cfg.HTTPClient = &http.Client{Transport: c}
	cfg.Listen, cfg.BootstrapAddr = o.listen, o.bootstrap
	cfg.Clock = o.clock
	cfg.Log = quietLog()
	cfg.AttemptTimeout = 90 * time.Second
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, c
}

func drainEvents(m *Manager) []Event {
	var out []Event
	for {
		select {
		case e := <-m.Events():
			out = append(out, e)
		default:
			return out
		}
	}
}

func verifyChain(t testing.TB, b *Bundle, roots *x509.CertPool) {
	t.Helper()
	certs, _, err := parseChain(b.ChainPEM)
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: b.Slot.Name, Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("%s: chain does not verify against Pebble's root: %v", b.Slot, err)
	}
	if len(certs) < 2 {
		t.Errorf("%s: chain has no intermediate", b.Slot)
	}
}

// TestIssuanceBootstrapAndZeroRequests: a fresh host (nothing on the HTTP
// port) gets ECDSA and RSA certificates for two names over HTTP-01 served by
// the Manager itself, with exactly one order per certificate (no tls-alpn-01
// detour); the chain verifies against Pebble's root; a second start makes
// zero ACME requests, and so does a start that lost its cache but finds
// the deployed files it issued.
func TestIssuanceBootstrapAndZeroRequests(t *testing.T) {
	httpPort := pebbletest.FreePort(t)
	srv := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort})
	root := t.TempDir()
	d := testDeployment(&spec.ACME{DirectoryURL: srv.DirectoryURL, RSA: true, ExtraNames: []string{"alt.test.example"}})
	bootstrap := "127.0.0.1:" + strconv.Itoa(httpPort)
	m, cnt := newManager(t, srv.Transport(), mgrOpts{root: root, d: d, bootstrap: bootstrap})
	if err := m.ObtainOnce(context.Background()); err != nil {
		t.Fatalf("ObtainOnce: %v", err)
	}
	if n := cnt.count("POST /order-plz"); n != 4 {
		t.Errorf("new orders = %d, want 4 (one per certificate, no failed tls-alpn-01 order)", n)
	}
	if n := cnt.count("POST /chalZ/"); n > 4 {
		t.Errorf("challenge responses = %d, want <= 4", n)
	}
	// The bootstrap listener is gone.
	ln, err := net.Listen("tcp", bootstrap)
	if err != nil {
		t.Errorf("bootstrap listener still bound: %v", err)
	} else {
		ln.Close()
	}
	if ev := drainEvents(m); len(ev) != 4 {
		t.Errorf("events = %d, want 4", len(ev))
	}
	st := m.Status()
	if len(st.Certificates) != 4 {
		t.Fatalf("status = %+v", st)
	}
	for _, c := range st.Certificates {
		if c.Serial == "" || c.LastError != "" || c.RenewAt.IsZero() || !c.RenewAt.Before(c.NotAfter) ||
			c.ExpirySeconds(time.Now()) <= 0 || c.LastSuccess.IsZero() {
			t.Errorf("status %+v", c)
		}
	}
	onDisk, err := ReadState(StatePath(d, root))
	if err != nil || onDisk == nil || len(onDisk.Certificates) != 4 || onDisk.DirectoryURL != srv.DirectoryURL {
		t.Fatalf("state file: %+v %v", onDisk, err)
	}

	mat, err := Load(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := srv.Roots(t)
	for _, b := range mat.Bundles {
		if b.Source != "acme" || b.Placeholder {
			t.Errorf("%s: source %s", b.Slot, b.Source)
		}
		if keyTypeOf(b.Leaf) != b.Slot.Key {
			t.Errorf("%s: key type %s", b.Slot, keyTypeOf(b.Leaf))
		}
		if want, _ := st.Lookup(b.Slot); b.Leaf.SerialNumber.Text(16) != want.Serial {
			t.Errorf("%s: deployed serial differs from status", b.Slot)
		}
		verifyChain(t, b, roots)
	}
	files := Files(d, mat)
	writeFiles(t, root, files)

	rep, err := BuildReport(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rep.Certificates {
		want, _ := st.Lookup(Slot{e.Name, e.KeyType})
		if !e.Deployed || e.Placeholder || e.Warn() || e.Issuer == "" || e.Serial != want.Serial ||
			!e.NextRenewal.Equal(want.RenewAt) || e.LastError != "" {
			t.Errorf("report entry %+v", e)
		}
	}
	// Restart with the cache: zero requests, timers armed from the cache.
	m2, cnt2 := newManager(t, srv.Transport(), mgrOpts{root: root, d: d, bootstrap: bootstrap})
	if err := m2.ObtainOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := cnt2.total(); n != 0 {
		t.Errorf("restart with a valid cache: %d ACME requests, want 0", n)
	}
	if ev := drainEvents(m2); len(ev) != 0 {
		t.Errorf("restart emitted %d events", len(ev))
	}
	// Cache lost, deployed files and state file intact: re-import, zero requests.
	m2.Close()
	if err := os.RemoveAll(CacheDir(d, root)); err != nil {
		t.Fatal(err)
	}
	m3, cnt3 := newManager(t, srv.Transport(), mgrOpts{root: root, d: d, bootstrap: bootstrap})
	if err := m3.ObtainOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := cnt3.total(); n != 0 {
		t.Errorf("lost cache, deployed certificate: %d ACME requests, want 0", n)
	}
	mat3, err := Load(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range Files(d, mat3) {
		if !bytes.Equal(f.Content, files[i].Content) {
			t.Errorf("%s changed after re-import", f.Path)
		}
	}
}

// TestRenewalShortLived: with 12-second certificates autocert's timer
// (armed by ObtainOnce) renews after about 8 s; the cache wrapper sees the
// Put, an Event arrives, and the next render deploys the new certificate.
func TestRenewalShortLived(t *testing.T) {
	root := t.TempDir()
	d := testDeployment(nil)
	// The Manager's loopback listener is what Pebble validates against.
	port := pebbletest.FreePort(t)
	srv := pebbletest.Start(t, pebbletest.Options{HTTPPort: port, ValidityPeriod: 12})
	d.TLS.ACME = &spec.ACME{DirectoryURL: srv.DirectoryURL}
	m, _ := newManager(t, srv.Transport(), mgrOpts{root: root, d: d, listen: "127.0.0.1:" + strconv.Itoa(port)})
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	if err := m.ObtainOnce(context.Background()); err != nil {
		t.Fatalf("ObtainOnce: %v", err)
	}
	var first Event
	select {
	case first = <-m.Events():
	case <-time.After(10 * time.Second):
		t.Fatal("no issuance event")
	}
	mat1, err := Load(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-m.Events():
		if ev.Serial == first.Serial || ev.Slot != first.Slot {
			t.Fatalf("renewal event %+v after %+v", ev, first)
		}
		if st, _ := m.Status().Lookup(ev.Slot); st.Serial != ev.Serial || st.LastSuccess.IsZero() {
			t.Errorf("status after renewal: %+v", st)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no renewal event within 60 s")
	}
	mat2, err := Load(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f1, f2 := Files(d, mat1), Files(d, mat2)
	if bytes.Equal(f1[0].Content, f2[0].Content) {
		t.Error("renewed certificate not deployed: chain unchanged")
	}
	verifyChain(t, mat2.Bundles[0], srv.Roots(t))
}

// TestCADown: the CA goes away. A due renewal that does not happen is
// reported (old certificate kept); a Manager whose CA is unreachable records
// the error, schedules a backoff and never loops tightly; the deployed real
// certificate stays deployed.
func TestCADown(t *testing.T) {
	httpPort := pebbletest.FreePort(t)
	srv := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort})
	root := t.TempDir()
	d := testDeployment(&spec.ACME{DirectoryURL: srv.DirectoryURL})
	clk := newFakeClock(time.Now())
	m, _ := newManager(t, srv.Transport(), mgrOpts{root: root, d: d, bootstrap: "127.0.0.1:" + strconv.Itoa(httpPort), clock: clk})
	if err := m.ObtainOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	mat, err := Load(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, root, Files(d, mat))
	issued := mat.Bundles[0]
	srv.Stop()

	// Past the renewal window by the Manager's clock: overdue is an error.
	clk.Set(issued.Leaf.NotAfter.Add(-time.Hour))
	err = m.ObtainOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "renewal overdue") {
		t.Fatalf("overdue renewal: err = %v", err)
	}
	st, _ := m.Status().Lookup(issued.Slot)
	if st.Failures != 1 || st.NextAttempt.Sub(clk.Now()) < time.Minute || st.Serial != issued.Leaf.SerialNumber.Text(16) {
		t.Errorf("status after overdue check: %+v", st)
	}

	// A Manager whose CA is down and whose cache is empty (e.g. new directory).
	dead := "https://127.0.0.1:" + strconv.Itoa(pebbletest.FreePort(t)) + "/dir"
	d2 := testDeployment(&spec.ACME{DirectoryURL: dead})
	clk2 := newFakeClock(time.Now())
	m2, cnt := newManager(t, srv.Transport(), mgrOpts{root: root, d: d2, clock: clk2})
	err = m2.ObtainOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("CA down: err = %v", err)
	}
	st2, _ := m2.Status().Lookup(issued.Slot)
	if !strings.Contains(st2.LastError, "unreachable") || st2.Failures != 1 {
		t.Errorf("status: %+v", st2)
	}
	if w := st2.NextAttempt.Sub(clk2.Now()); w < time.Minute || w > 75*time.Second {
		t.Errorf("first retry in %s, want 1m..1m15s", w)
	}
	onDisk, _ := ReadState(StatePath(d2, root))
	if c, _ := onDisk.Lookup(issued.Slot); c.LastError == "" || c.NextAttempt.IsZero() {
		t.Errorf("state file lacks the error: %+v", c)
	}
	// The real certificate stays deployed (not replaced by a placeholder).
	mat2, err := Load(d2, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if b := mat2.Bundles[0]; b.Placeholder || !bytes.Equal(b.ChainPEM, issued.ChainPEM) {
		t.Errorf("deployed certificate replaced while the CA is down (source %s)", b.Source)
	}

	// Run backs off: 2nd, 3rd, 4th failure wait longer each time, and no
	// attempt happens before the clock fires.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m2.Run(ctx) }()
	var prev time.Duration
	for i := range 3 {
		var fire chan time.Time
		select {
		case fire = <-clk2.timers:
		case <-time.After(30 * time.Second):
			t.Fatalf("Run did not schedule retry %d", i)
		}
		clk2.mu.Lock()
		w := clk2.waits[len(clk2.waits)-1]
		clk2.mu.Unlock()
		if w < time.Minute || w <= prev || w > time.Hour {
			t.Errorf("retry %d: wait %s after %s", i, w, prev)
		}
		prev = w
		before := cnt.total()
		time.Sleep(50 * time.Millisecond)
		if cnt.total() != before {
			t.Errorf("requests while waiting for the backoff")
		}
		clk2.Set(clk2.Now().Add(w))
		fire <- clk2.Now()
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// TestChallengeFailing: the HTTP port answers with a wrong key
// authorization. One validation fails (no second attempt over another
// challenge type), the error is recorded with the CA's detail, and the
// deployed placeholder stays.
func TestChallengeFailing(t *testing.T) {
	wrong := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("not-the-key-authorization"))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go wrong.Serve(ln)
	t.Cleanup(func() { wrong.Close() })
	srv := pebbletest.Start(t, pebbletest.Options{HTTPPort: ln.Addr().(*net.TCPAddr).Port})
	root := t.TempDir()
	d := testDeployment(&spec.ACME{DirectoryURL: srv.DirectoryURL})
	mat, err := Load(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	placeholder := Files(d, mat)
	writeFiles(t, root, placeholder)

	clk := newFakeClock(time.Now())
	m, cnt := newManager(t, srv.Transport(), mgrOpts{root: root, d: d, clock: clk})
	err = m.ObtainOnce(context.Background())
	if err == nil {
		t.Fatal("want an error")
	}
	if n := cnt.count("POST /chalZ/"); n != 1 {
		t.Errorf("challenge responses = %d, want 1", n)
	}
	st, _ := m.Status().Lookup(Slot{testDomain, ECDSA})
	if !strings.Contains(st.LastError, "http-01 failed") || !strings.Contains(st.LastError, "unauthorized") ||
		st.NextAttempt.IsZero() || st.Serial != "" {
		t.Errorf("status: %+v", st)
	}
	mat2, err := Load(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range Files(d, mat2) {
		if !bytes.Equal(f.Content, placeholder[i].Content) {
			t.Errorf("%s changed after a failed challenge", f.Path)
		}
	}
	rep, err := BuildReport(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if e := rep.Certificates[0]; !e.Placeholder || !e.Warn() || e.LastError != st.LastError || !e.NextRenewal.IsZero() {
		t.Errorf("report entry %+v", e)
	}
}
