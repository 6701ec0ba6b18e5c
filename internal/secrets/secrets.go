// Package secrets keeps the internal secrets jitsi-agent generates once and
// reuses forever after: the built-in XMPP accounts' passwords (files.Accounts) and
// the TURN shared secret (when the spec does not give one). They live in a 0700 directory,
// one 0600 file each, written atomically.
package secrets

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// TURNSecret is the stored TURN secret's file name in the directory; each
// built-in account's password is stored as its files.Account.StateFile()
// ("focus_password", "jvb_password", ...).
const TURNSecret = "turn_secret"

type item struct {
	name string
	set  func(spec.Secret)
}

// items pairs each stored secret's file name with where its value goes:
// the TURN secret, then every row of the accounts table.
func items(s *spec.Secrets) []item {
	out := []item{{TURNSecret, func(v spec.Secret) { s.TURNSecret = v }}}
	for _, a := range files.Accounts() {
		out = append(out, item{a.StateFile(), func(v spec.Secret) { s.SetPassword(a.Name, v) }})
	}
	return out
}

// Length of generated secrets, in characters of [A-Za-z0-9].
const Length = 40

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// Dir returns the secrets directory inside a state directory.
func Dir(stateDir string) string { return filepath.Join(stateDir, "secrets") }

// Ensure loads the internal secrets from dir, generating (and storing) any
// that are missing. A secret file that exists but is empty or unreadable is an
// error, never silently replaced: the running services still use its value.
func Ensure(dir string) (spec.Secrets, error) {
	var out spec.Secrets
	if err := fsys.MkdirPrivate(filepath.Dir(dir)); err != nil { // the state directory
		return out, fmt.Errorf("create state directory %s: %w", filepath.Dir(dir), err)
	}
	if err := fsys.MkdirPrivate(dir); err != nil {
		return out, fmt.Errorf("create secrets directory %s: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return out, fmt.Errorf("secrets directory %s: %w", dir, err)
	}
	if st.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return out, fmt.Errorf("secrets directory %s has mode %04o and cannot be tightened to 0700: %w", dir, st.Mode().Perm(), err)
		}
	}
	for _, item := range items(&out) {
		v, err := loadOrCreate(dir, item.name)
		if err != nil {
			return spec.Secrets{}, err
		}
		item.set(spec.NewSecret(v))
	}
	return out, nil
}

// Load reads the secrets without creating anything (plan, doctor): missing
// secrets come back empty and are reported by ok=false.
func Load(dir string) (spec.Secrets, bool, error) {
	var out spec.Secrets
	ok := true
	for _, item := range items(&out) {
		b, err := os.ReadFile(filepath.Join(dir, item.name))
		if errors.Is(err, fs.ErrNotExist) {
			ok = false
			continue
		}
		if err != nil {
			return spec.Secrets{}, false, fmt.Errorf("read secret %s: %w", item.name, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return spec.Secrets{}, false, fmt.Errorf("secret file %s is empty; delete it to generate a new value (and re-apply)", filepath.Join(dir, item.name))
		}
		item.set(spec.NewSecret(v))
	}
	return out, ok, nil
}

func loadOrCreate(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty; delete it to generate a new value (and re-apply so every service gets it)", p)
		}
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return "", fmt.Errorf("secret file %s is readable by others and cannot be fixed: %w", p, err)
			}
		}
		return v, nil
	case errors.Is(err, fs.ErrNotExist):
		v, err := generate()
		if err != nil {
			return "", err
		}
		// First writer wins: link a complete temporary file into place
		// (never over an existing one), so two applies racing on a fresh
		// host both end up with the one value that was stored.
		tmp, err := fsys.Stage(p, []byte(v+"\n"), 0o600, -1, -1)
		if err != nil {
			return "", fmt.Errorf("store secret %s: %w", name, err)
		}
		defer os.Remove(tmp)
		if err := os.Link(tmp, p); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return loadOrCreate(dir, name) // another run stored it first
			}
			return "", fmt.Errorf("store secret %s: %w", name, err)
		}
		if err := fsys.SyncDir(dir); err != nil {
			return "", err
		}
		return v, nil
	default:
		return "", fmt.Errorf("read secret %s: %w", p, err)
	}
}

func generate() (string, error) {
	var b strings.Builder
	max := big.NewInt(int64(len(alphabet)))
	for i := 0; i < Length; i++ {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generate secret: %w", err)
		}
		b.WriteByte(alphabet[n.Int64()])
	}
	return b.String(), nil
}
