package systemtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"

	"github.com/jitsi-agent/jitsi-agent/internal/certs"
)

// acmeDirectory is a directory URL nothing answers in the box: the
// daemon's ACME manager never obtains anything, the test plays the CA by
// writing autocert's cache entries.
const acmeDirectory = "https://127.0.0.1:14999/dir"

// servedLeaf is the certificate nginx serves for the domain.
func (e *Env) servedLeaf(ctx context.Context) []byte {
	c, err := e.Dial(ctx, "tcp", "127.0.0.1:443")
	if err != nil {
		return nil
	}
	defer c.Close()
	tc := tls.Client(c, &tls.Config{ServerName: e.Domain, InsecureSkipVerify: true}) //nolint:gosec // comparing the served leaf
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil
	}
	return tc.ConnectionState().PeerCertificates[0].Raw
}

// A certificate renewed while the daemon holds a rollback is deployed:
// nginx serves it and Prosody has it, while the rolled-back configuration
// stays and the hold stays.
func TestRenewalWhileRollbackHeld(t *testing.T) {
	spec := func(max string) string {
		s := strings.Replace(DefaultSpec("meet.test"), "max_participants = 10", "max_participants = "+max, 1)
		return s + "\ntls {\n  acme {\n    email     = \"ops@example.com\"\n    directory = \"" + acmeDirectory + "\"\n  }\n}\n"
	}
	cacheFile := filepath.Join(StateDir, "acme", certs.DirHash(acmeDirectory), "meet.test")
	first, firstLeaf := testenv.ACMECacheEntry(t, "meet.test", time.Now().Add(30*24*time.Hour))
	e := Boot(t, Options{Spec: spec("10"), Files: map[string]string{cacheFile: string(first)}})
	if out, code := e.Agent("apply", "-no-acme", SpecPath); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	ctx := ctxT(t, 3*time.Minute)
	if !bytes.Equal(e.servedLeaf(ctx), firstLeaf) {
		t.Fatal("nginx does not serve the issued certificate after the first apply")
	}
	e.StartDaemon()
	e.WaitApply(0, time.Minute)
	written := time.Now()
	e.SetSpec(spec("11"))
	st := e.WaitApplyAfter(written, time.Minute)
	if st.LastApply == nil || st.LastApply.Result != "success" {
		t.Fatalf("spec change: %+v", st.LastApply)
	}
	if out, code := e.Agent("rollback", SpecPath); code != 0 {
		t.Fatalf("rollback: exit %d\n%s", code, out)
	}
	held := string(e.ReadFile("/etc/prosody/conf.avail/meet.test.cfg.lua"))
	if !strings.Contains(held, "muc_max_occupants = 10") {
		t.Fatal("the rollback did not put max_participants 10 back")
	}
	prosodyPID := e.MainPID("prosody.service")
	if st, err := e.DaemonStatus(); err != nil || st.Held == "" {
		t.Fatalf("not held after the rollback: %+v %v", st, err)
	}

	// The CA renews (autocert writes its cache entry): the daemon deploys it.
	renewed, renewedLeaf := testenv.ACMECacheEntry(t, "meet.test", time.Now().Add(90*24*time.Hour))
	e.WriteFile(cacheFile, renewed, 0o600)
	e.WaitFor(time.Minute, "nginx serving the renewed certificate", func() bool {
		return bytes.Equal(e.servedLeaf(ctx), renewedLeaf)
	})
	block, _ := pem.Decode(e.ReadFile("/etc/prosody/certs/meet.test.crt"))
	if block == nil || !bytes.Equal(block.Bytes, renewedLeaf) {
		t.Error("Prosody's copy of the certificate is not the renewed one")
	}
	if got := string(e.ReadFile("/etc/prosody/conf.avail/meet.test.cfg.lua")); got != held {
		t.Error("the renewal applied the spec change the rollback holds back")
	}
	if pid := e.MainPID("prosody.service"); pid != prosodyPID {
		t.Errorf("Prosody restarted (%d -> %d); a certificate needs a reload only", prosodyPID, pid)
	}
	st, err := e.DaemonStatus()
	if err != nil || st.Held == "" || st.Degraded {
		t.Errorf("after the renewal: %+v %v, want still held and not degraded", st, err)
	}
}
