package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/jitsi-agent/jitsi-agent/internal/certs/pebbletest"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pebbletest.Cleanup()
	os.Exit(code)
}

const testDomain = "meet.test.example"

// testDeployment is a minimal validated-looking Deployment.
func testDeployment(acme *spec.ACME) *spec.Deployment {
	return &spec.Deployment{
		Domain:   testDomain,
		StateDir: "/var/lib/jitsi-agent",
		TLS: spec.TLS{
			Certificate: "/etc/jitsi/meet/" + testDomain + ".crt",
			Key:         "/etc/jitsi/meet/" + testDomain + ".key",
			ACME:        acme,
		},
		TURN: spec.TURN{Enabled: true},
		Web:  spec.Web{HTTPPort: 80, HTTPSPort: 443},
		Services: map[string]spec.Service{
			spec.Nginx:   {Component: spec.Nginx, Unit: "nginx.service"},
			spec.Prosody: {Component: spec.Prosody, Unit: "prosody.service"},
			spec.Coturn:  {Component: spec.Coturn, Unit: "coturn.service"},
		},
	}
}

// writeFiles stands in for apply: it writes the files under root.
func writeFiles(t testing.TB, root string, files []render.File) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(root, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, f.Content, f.Mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
}

// counter counts ACME requests by kind.
type counter struct {
	base http.RoundTripper
	mu   sync.Mutex
	all  int
	byP  map[string]int
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.all++
	if c.byP == nil {
		c.byP = map[string]int{}
	}
	key := r.Method + " " + r.URL.Path
	if strings.HasPrefix(r.URL.Path, "/chalZ/") {
		key = r.Method + " /chalZ/"
	}
	c.byP[key]++
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.all
}

func (c *counter) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byP[key]
}

// fakeClock is a manual clock; After records the requested delays and
// fires only when the test says so.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	waits  []time.Duration
	timers chan chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, timers: make(chan chan time.Time, 16)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Set(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

func (f *fakeClock) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.mu.Unlock()
	ch := make(chan time.Time, 1)
	f.timers <- ch
	return ch
}

func quietLog() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetLevel(logrus.WarnLevel)
	return l
}

// handshake connects to addr with SNI name and returns the leaf and the
// presented chain.
func handshake(t testing.TB, addr, name string) []*x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates
}
