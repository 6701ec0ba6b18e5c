package certs

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/certs/pebbletest"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func benchManager(b *testing.B, base http.RoundTripper, d *spec.Deployment, root, bootstrap string) (*Manager, *counter) {
	cfg, err := ConfigFor(d, root)
	if err != nil {
		b.Fatal(err)
	}
	c := &counter{base: base}
	cfg.HTTPClient = &http.Client{Transport: c}
	cfg.Listen, cfg.BootstrapAddr, cfg.Log = "", bootstrap, quietLog()
	m, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return m, c
}

// BenchmarkIssuance: first ECDSA certificate on a fresh host (new account,
// order, HTTP-01 over the bootstrap listener, finalize) against local
// Pebble with PEBBLE_VA_NOSLEEP=1 and no Retry-After. Target < 3 s.
func BenchmarkIssuance(b *testing.B) {
	httpPort := pebbletest.FreePort(b)
	srv := pebbletest.Start(b, pebbletest.Options{HTTPPort: httpPort})
	bootstrap := "127.0.0.1:" + strconv.Itoa(httpPort)
	d := testDeployment(&spec.ACME{DirectoryURL: srv.DirectoryURL})
	for b.Loop() {
		b.StopTimer()
		m, _ := benchManager(b, srv.Transport(), d, b.TempDir(), bootstrap)
		b.StartTimer()
		if err := m.ObtainOnce(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		m.Close()
		b.StartTimer()
	}
}

// BenchmarkStartWithValidCertificate: a restart with a valid cached
// certificate; reports ACME requests per start (target 0).
func BenchmarkStartWithValidCertificate(b *testing.B) {
	httpPort := pebbletest.FreePort(b)
	srv := pebbletest.Start(b, pebbletest.Options{HTTPPort: httpPort})
	bootstrap := "127.0.0.1:" + strconv.Itoa(httpPort)
	d := testDeployment(&spec.ACME{DirectoryURL: srv.DirectoryURL, RSA: true})
	root := b.TempDir()
	m, _ := benchManager(b, srv.Transport(), d, root, bootstrap)
	if err := m.ObtainOnce(context.Background()); err != nil {
		b.Fatal(err)
	}
	m.Close()
	requests := 0
	for b.Loop() {
		m, c := benchManager(b, srv.Transport(), d, root, bootstrap)
		if err := m.ObtainOnce(context.Background()); err != nil {
			b.Fatal(err)
		}
		requests += c.total()
		m.Close()
	}
	b.ReportMetric(float64(requests)/float64(b.N), "acme-requests/op")
}
