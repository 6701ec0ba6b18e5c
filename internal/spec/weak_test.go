package spec

import (
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestWeakSecret(t *testing.T) {
	for _, s := range []string{
		"__REPLACE_WITH_A_64_CHARACTER_SECRET_FROM_YOUR_SECRET_STORE__",
		strings.Repeat("a", 36),
		"changeme-changeme-changeme-changeme-changeme",
		"your-app-secret-goes-here-0000000000",
		"<your secret>",
		"${JITSI_APP_SECRET}",
		"012345678901234567890123456789012345",
		"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ",
		"abcabcabcabcabcabcabcabcabcabcabcabc",
		"xq7-xq7-xq7-xq7-xq7-xq7-xq7-xq7-xq7-",
		"secretpasswordsecretpasswordsecret12",
		"JitsiMeetSecretPassword2024Prosody!!",
		"ab12ab12ab13ab12ab12ab12ab12ab12ab12",
		"k9Xm2aaaaaaaaaP0qL7zR4tY8wE1uI5oB3nV",
		"k9Xm2-01234567-P0qL7zR4tY8wE1uI5oB3n",
		"example-app-secret-0f3a9c2e71b4d8a6",
		"cli-test-secret-0123456789abcdef0123456789",
	} {
		if WeakSecret(s) == "" {
			t.Errorf("%q passes", s)
		}
	}
	// Values from the usual generators (openssl rand -hex/-base64) pass.
	// The bytes come from a fixed-seed generator so that the test is the
	// same on every run: with fresh random bytes, about 6% of runs draw a
	// 24-character hex value made only of digits ((10/16)^24 per value,
	// 5,000 values), which the single-class rule refuses on purpose (such a
	// value is rare from a generator and common from a human).
	rng := rand.New(rand.NewChaCha8([32]byte([]byte("jitsi-agent TestWeakSecret seed!"))))
	for i := 0; i < 5000; i++ {
		b := make([]byte, 32)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		for _, s := range []string{hex.EncodeToString(b), hex.EncodeToString(b[:16]), hex.EncodeToString(b[:12]),
			base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b[:24])} {
			if r := WeakSecret(s); r != "" {
				t.Fatalf("random %q refused: %s", s, r)
			}
		}
	}
	// The refusal the fixed seed avoids: random hex that happens to be all
	// digits is refused like a typed one (regenerate it).
	if WeakSecret("830194572610385729164035") == "" {
		t.Error("an all-digit hex value passes")
	}
}

func BenchmarkWeakSecret(b *testing.B) {
	s := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	for b.Loop() {
		WeakSecret(s)
	}
}
