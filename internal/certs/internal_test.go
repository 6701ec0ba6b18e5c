package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

func TestInternalCertificates(t *testing.T) {
	root := t.TempDir()
	d := testDeployment(nil)
	d.Auth.Guests = true
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

	// Read-only (plan): an in-memory CA, nothing written.
	if _, err := LoadInternal(d, root, now, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(InternalCADir(d, root)); !os.IsNotExist(err) {
		t.Fatalf("a read-only load created the CA directory: %v", err)
	}

	in, err := LoadInternal(d, root, now, true)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(InternalCADir(d, root), "ca.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("CA key: %v %v", err, st)
	}
	files := InternalFiles(d, in)
	byPath := map[string]render.File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(byPath[InternalTrustPath(d)].Content)
	for _, name := range []string{"auth." + testDomain, "guest." + testDomain} {
		cp, kp := ProsodyCertPaths(name)
		c, k := byPath[cp], byPath[kp]
		if c.Group != "prosody" || c.Mode != 0o644 || k.Mode != 0o640 || !k.Sensitive || k.Units[0] != "prosody.service" {
			t.Errorf("%s: %+v / %+v", name, c, k)
		}
		blk, _ := pem.Decode(c.Content)
		leaf, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: now}); err != nil {
			t.Errorf("%s does not verify against the installed CA: %v", name, err)
		}
	}
	if _, ok := byPath["/etc/prosody/certs/"+testDomain+".crt"]; ok {
		t.Error("the public name must keep its own certificate")
	}
	writeFiles(t, root, files)

	// Deployed and valid: the same bytes again (plan stays clean).
	again, err := LoadInternal(d, root, now.Add(24*time.Hour), true)
	if err != nil {
		t.Fatal(err)
	}
	auth := "auth." + testDomain
	if !bytes.Equal(again.Leaves[auth].ChainPEM, in.Leaves[auth].ChainPEM) {
		t.Error("a valid deployed certificate was replaced")
	}
	// Within the renewal window: a new one from the same CA.
	later := now.Add(InternalLeafValidity - InternalRenewBefore + time.Hour)
	renewed, err := LoadInternal(d, root, later, true)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(renewed.Leaves[auth].ChainPEM, in.Leaves[auth].ChainPEM) || !renewed.Leaves[auth].Leaf.NotAfter.After(in.Leaves[auth].Leaf.NotAfter) {
		t.Error("a certificate inside the renewal window was not renewed")
	}
	if !bytes.Equal(renewed.CAPEM, in.CAPEM) {
		t.Error("renewal changed the CA (jicofo and jvb would stop trusting it)")
	}
	// A certificate from elsewhere (not our CA) is replaced.
	other := t.TempDir()
	d2 := testDeployment(nil)
	foreign, _ := LoadInternal(d2, other, now, true)
	cp, kp := ProsodyCertPaths(auth)
	writeFiles(t, root, []render.File{{Path: cp, Content: foreign.Leaves[auth].ChainPEM, Mode: 0o644}, {Path: kp, Content: foreign.Leaves[auth].KeyPEM, Mode: 0o600}})
	fixed, _ := LoadInternal(d, root, now, true)
	if bytes.Equal(fixed.Leaves[auth].ChainPEM, foreign.Leaves[auth].ChainPEM) {
		t.Error("a certificate not signed by this CA was kept")
	}
	// A corrupt CA is an error naming the fix.
	if err := os.WriteFile(filepath.Join(InternalCADir(d, root), "ca.crt"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadInternal(d, root, now, true); err == nil || !strings.Contains(err.Error(), "delete the directory") {
		t.Errorf("corrupt CA: %v", err)
	}
}
