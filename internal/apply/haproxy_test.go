package apply

import (
	"context"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// The rendered front passes haproxy -c in staging (its certificate is not
// on the host yet: a throwaway pair stands in), and a broken one is refused
// with HAProxy's message, naming the file, before anything is swapped.
func TestHAProxyCheck(t *testing.T) {
	testenv.LookPath(t, "haproxy", "apt-get install haproxy")
	e := newEnv(t)
	e.opts.NoTools = false
	set := goldenSet(t, "front-two-shards")
	localOwners(set)
	res := e.apply(set)
	if !res.Changed() {
		t.Fatal("nothing applied")
	}
	e.assertConverged(set)
	for _, n := range res.Notices {
		if strings.Contains(n, "not installed") {
			t.Fatalf("tool missing: %s", n)
		}
	}
	before := e.snapshot()
	bad := goldenSet(t, "front-two-shards")
	localOwners(bad)
	for i := range bad.Files {
		if bad.Files[i].Path == HAProxyConfig {
			bad.Files[i].Content = []byte(strings.Replace(string(bad.Files[i].Content), "hash-type consistent", "hash-type bogus", 1))
		}
	}
	_, err := Apply(context.Background(), bad, e.opts)
	if err == nil || !strings.Contains(err.Error(), "haproxy -c") || !strings.Contains(err.Error(), "'hash-type' only supports") ||
		!strings.Contains(err.Error(), HAProxyConfig) {
		t.Fatalf("want a haproxy -c failure naming the file, got %v", err)
	}
	after := e.snapshot()
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("%s changed by a failed apply", k)
		}
	}
	e.assertNoTemps()
}

// A certificate deployed in the same apply is what haproxy -c loads: a
// broken one is refused.
func TestHAProxyCheckUsesTheDesiredCertificate(t *testing.T) {
	testenv.LookPath(t, "haproxy", "apt-get install haproxy")
	e := newEnv(t)
	e.opts.NoTools = false
	set := goldenSet(t, "front-two-shards")
	localOwners(set)
	set.Files = append(set.Files, render.File{Path: "/etc/haproxy/certs/meet.example.com.pem", Kind: render.KindFile,
		Content: []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"), Mode: 0o644, Component: "front"})
	localOwners(set)
	set.Sort()
	_, err := Apply(context.Background(), set, e.opts)
	if err == nil || !strings.Contains(err.Error(), "haproxy -c") {
		t.Fatalf("want haproxy -c to refuse the broken certificate, got %v", err)
	}
}
