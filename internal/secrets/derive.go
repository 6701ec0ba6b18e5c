package secrets

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"golang.org/x/crypto/hkdf"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// DeriveInfo is the HKDF info string of a derived secret: the prefix
// followed by the secret's file name, e.g. "jitsi-agent/v1/jvb_password".
const DeriveInfo = "jitsi-agent/v1/"

// Derive computes every internal secret from the spec's cluster_secret:
// HKDF-SHA256 (RFC 5869) with the cluster secret as input key material, no
// salt, and info DeriveInfo+NAME (NAME the stored file name: turn_secret, or
// an account's StateFile such as jvb_password); 20 bytes of output, written
// as 40 lower-case hex characters. Every host of a multi-host spec thus
// renders the same values without storing or exchanging them.
func Derive(cluster string) (spec.Secrets, error) {
	var out spec.Secrets
	if cluster == "" {
		return out, fmt.Errorf("derive secrets: empty cluster secret")
	}
	for _, it := range items(&out) {
		b := make([]byte, Length/2)
		if _, err := io.ReadFull(hkdf.New(sha256.New, []byte(cluster), nil, []byte(DeriveInfo+it.name)), b); err != nil {
			return spec.Secrets{}, fmt.Errorf("derive %s: %w", it.name, err)
		}
		it.set(spec.NewSecret(hex.EncodeToString(b)))
	}
	return out, nil
}
