package agent

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/apply"
	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// acmeEntry writes what autocert stores after an issuance for name into
// the cache dir, valid until notAfter, and returns the leaf's PEM.
func acmeEntry(t *testing.T, dir, name string, notAfter time.Time) []byte {
	t.Helper()
	entry, der := testenv.ACMECacheEntry(t, name, notAfter)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), entry, 0o600); err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// A certificate renewed while a rollback is held is deployed (swapped, and
// nginx and Prosody reloaded as the files table says) without releasing
// the hold: the rolled-back configuration stays, and the spec's change
// still waits for the next edit.
func TestRenewalDeployedWhileRollbackHeld(t *testing.T) {
	f := newFixture(t)
	write := func(max int) {
		t.Helper()
		s := fmt.Sprintf(testSpec, max) + "tls {\n  acme {\n    email = \"ops@example.com\"\n  }\n}\n"
		if err := os.WriteFile(f.spec, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(50)
	d := f.load()
	cache := certs.CacheDir(d, f.root)
	nginxCert, prosodyCert := d.TLS.Certificate, "/etc/prosody/certs/meet.example.com.crt"
	a := NewDaemon(DaemonConfig{Spec: f.spec, Root: f.root, Env: f.env, NoJoinAPI: true})
	defer a.Close()
	ctx := context.Background()
	if _, err := a.Apply(ctx, daemon.Request{Reason: daemon.ReasonStartup, Initial: true}); err != nil {
		t.Fatal(err)
	}
	first := acmeEntry(t, cache, "meet.example.com", time.Now().Add(30*24*time.Hour))
	if _, err := a.Apply(ctx, daemon.Request{Reason: "certificate"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(f.file(nginxCert), first) {
		t.Fatal("the first issuance was not deployed")
	}
	write(40)
	if _, err := a.Apply(ctx, daemon.Request{Reason: "change"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Rollback(ctx, apply.Previous); err != nil {
		t.Fatal(err)
	}
	held := f.file(prosodyConf)
	if !bytes.Contains(held, []byte("muc_max_occupants = 50")) {
		t.Fatal("the rollback did not put the previous Prosody config back")
	}
	f.units.take()

	// Nothing renewed: the held pass changes nothing.
	out, err := a.Apply(ctx, daemon.Request{Reason: "rescan"})
	if err != nil || out.Held == "" || len(out.Written) != 0 {
		t.Fatalf("held pass without a renewal: %+v %v", out, err)
	}
	// Renewed (same name, later expiry): deployed and reloaded, still held.
	renewed := acmeEntry(t, cache, "meet.example.com", time.Now().Add(90*24*time.Hour))
	out, err = a.Apply(ctx, daemon.Request{Reason: "certificate"})
	if err != nil {
		t.Fatalf("renewal while held: %v", err)
	}
	if out.Held == "" {
		t.Fatal("the renewal released the hold")
	}
	for _, p := range []string{nginxCert, prosodyCert} {
		if !bytes.HasPrefix(f.file(p), renewed) {
			t.Errorf("%s: the renewed certificate is not deployed", p)
		}
	}
	if got := f.units.take(); !slices.Equal(got, []string{"reload prosody.service", "reload nginx.service"}) {
		t.Errorf("units after the renewal: %v, want prosody and nginx reloaded", got)
	}
	if !bytes.Equal(f.file(prosodyConf), held) {
		t.Fatal("the renewal deployed the spec's change the rollback holds back")
	}
	for _, w := range out.Written {
		if !strings.Contains(w, "/certs/") && !strings.HasSuffix(w, ".crt") && !strings.HasSuffix(w, ".key") {
			t.Errorf("the held renewal wrote %s", w)
		}
	}
	// The hold is still there: the next pass is held too, and an edit of
	// the spec releases it.
	if out, err := a.Apply(ctx, daemon.Request{Reason: "rescan"}); err != nil || out.Held == "" || len(out.Written) != 0 {
		t.Fatalf("after the renewal: %+v %v", out, err)
	}
	write(41)
	if out, err := a.Apply(ctx, daemon.Request{Reason: "change"}); err != nil || out.Held != "" {
		t.Fatalf("an edit after the renewal: %+v %v", out, err)
	}
	if !bytes.Contains(f.file(prosodyConf), []byte("muc_max_occupants = 41")) || !bytes.HasPrefix(f.file(nginxCert), renewed) {
		t.Fatal("the released hold did not apply the spec with the renewed certificate")
	}
}
