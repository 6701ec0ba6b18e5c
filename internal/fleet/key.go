// Package fleet runs many hosts from one spec through a store (etcd):
// `fleet push` publishes a generation (the spec, its inputs and the values
// it read from the environment, sealed with the fleet key), each host's
// agent watches the store, takes the generation when the rolling rollout
// reaches it, applies it through the agent core and registers itself
// under a lease (roles, address, version, applied generation, health,
// drift, last error). The store never sees a secret in clear: the fleet
// key is a file on each host.
package fleet

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the fleet key's length in bytes (64 hex characters in its file).
const KeySize = chacha20poly1305.KeySize

// DefaultKeyFile is where hosts keep the fleet key.
const DefaultKeyFile = "/etc/jitsi-agent/fleet.key"

// Key is the fleet key: it seals every generation's inputs and the
// fleet's shared secrets (XChaCha20-Poly1305). Its ID (a digest, not the
// key) tells a host that a generation was sealed with another key.
type Key struct {
	k  [KeySize]byte
	ID string
}

func keyFrom(b []byte) Key {
	var k Key
	copy(k.k[:], b)
	sum := sha256.Sum256(append([]byte("jitsi-agent/fleet-key-id/v1\x00"), b...))
	k.ID = hex.EncodeToString(sum[:8])
	return k
}

// ReadKey reads a key file: 64 hex characters (surrounding white space
// ignored). The file must not be readable by group or others.
func ReadKey(path string) (Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Key{}, fmt.Errorf("fleet key: %w (create it once with 'jitsi-agent fleet keygen %s' and copy it to every host)", err, path)
	}
	if !fi.Mode().IsRegular() || fi.Size() > 4096 {
		return Key{}, fmt.Errorf("fleet key %s: not a small regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return Key{}, fmt.Errorf("fleet key %s: mode %v lets others read it; chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("fleet key: %w", err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != KeySize {
		return Key{}, fmt.Errorf("fleet key %s: want %d hex characters (generate one with 'jitsi-agent fleet keygen FILE')", path, 2*KeySize)
	}
	return keyFrom(raw), nil
}

// WriteNewKey writes a fresh random key to path (mode 0600); an existing
// file is never overwritten.
func WriteNewKey(path string) (Key, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return Key{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Key{}, fmt.Errorf("fleet key: %w", err)
	}
	_, err = fmt.Fprintln(f, hex.EncodeToString(raw))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return Key{}, fmt.Errorf("fleet key: %w", err)
	}
	return keyFrom(raw), nil
}

// Seal encrypts plain; context binds the box to where it is stored (a
// box copied to another key of the store does not open).
func (k Key) Seal(plain []byte, context string) []byte {
	aead, err := chacha20poly1305.NewX(k.k[:])
	if err != nil {
		panic(err) // the key size is fixed
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return aead.Seal(nonce, nonce, plain, []byte(context))
}

// ErrWrongKey means a box does not open with this key.
var ErrWrongKey = errors.New("does not open with this fleet key (another key sealed it, or it was altered)")

// Open decrypts a box made by Seal with the same key and context.
func (k Key) Open(box []byte, context string) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(k.k[:])
	if err != nil {
		return nil, err
	}
	if len(box) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrWrongKey
	}
	plain, err := aead.Open(nil, box[:aead.NonceSize()], box[aead.NonceSize():], []byte(context))
	if err != nil {
		return nil, ErrWrongKey
	}
	return plain, nil
}
