package secrets

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	"golang.org/x/crypto/hkdf"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func TestDeriveIsHKDFPerName(t *testing.T) {
	const cluster = "3f9c2a7e51d84b06a9e3c17f28b5d40e6a1c9f83"
	a, err := Derive(cluster)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Derive(cluster)
	seen := map[string]bool{}
	if len(a.Passwords) != len(files.Accounts()) {
		t.Errorf("derived %d account passwords, the accounts table has %d rows", len(a.Passwords), len(files.Accounts()))
	}
	get := func(s spec.Secrets, i int) spec.Secret {
		if i == 0 {
			return s.TURNSecret
		}
		return s.Password(files.Accounts()[i-1].Name)
	}
	for i := range 1 + len(files.Accounts()) {
		v := get(a, i).Reveal()
		if len(v) != Length {
			t.Errorf("secret %d has %d characters, want %d", i, len(v), Length)
		}
		if v != get(b, i).Reveal() {
			t.Errorf("secret %d differs between two derivations", i)
		}
		if seen[v] {
			t.Errorf("secret %d repeats another", i)
		}
		seen[v] = true
	}
	// The documented construction, recomputed independently.
	want := make([]byte, 20)
	if _, err := io.ReadFull(hkdf.New(sha256.New, []byte(cluster), nil, []byte("jitsi-agent/v1/jvb_password")), want); err != nil {
		t.Fatal(err)
	}
	if got := a.Password("jvb").Reveal(); got != hex.EncodeToString(want) {
		t.Errorf("jvb password = %s, want HKDF-SHA256(info jitsi-agent/v1/jvb_password) = %x", got, want)
	}
	other, _ := Derive(cluster + "x")
	if other.TURNSecret.Reveal() == a.TURNSecret.Reveal() {
		t.Error("a different cluster secret derived the same TURN secret")
	}
	if _, err := Derive(""); err == nil {
		t.Error("empty cluster secret accepted")
	}
}
