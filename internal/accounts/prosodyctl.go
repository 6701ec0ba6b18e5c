package accounts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// ProsodyCtl manages accounts with Debian's prosodyctl (Prosody 0.12):
// `prosodyctl adduser JID` and `prosodyctl passwd JID` read the password
// twice from stdin, so it never appears in a process listing. Neither needs
// a running Prosody with the default internal storage (prosodyctl writes
// the account file itself and Prosody reads it at the next login).
//
// Prosody 13 deprecates these in favour of `prosodyctl shell user create`,
// which needs the server running; adduser/passwd still exist there.
type ProsodyCtl struct {
	// Path of prosodyctl (default "prosodyctl" from PATH).
	Path string
	// Config is passed as --config ("" = Prosody's default,
	// /etc/prosody/prosody.cfg.lua).
	Config string
	// DataPath is Prosody's data_path, where internal storage keeps
	// <host>/accounts/<user>.dat (default /var/lib/prosody). Check reads
	// the account file there; with another storage backend it reports
	// StatusUnknown and the Manager falls back to its own state.
	DataPath string
	// Timeout bounds each prosodyctl run (default 30 s).
	Timeout time.Duration
}

var _ Prosody = ProsodyCtl{}

// encode is Prosody's datamanager path encoding: every byte that is not
// an ASCII letter or digit becomes %xx (lower-case hex).
func encode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

// AccountFile is where internal storage keeps the account.
func (p ProsodyCtl) AccountFile(user, host string) string {
	dp := p.DataPath
	if dp == "" {
		dp = "/var/lib/prosody"
	}
	return filepath.Join(dp, encode(host), "accounts", encode(user)+".dat")
}

var luaField = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`\[\s*"([A-Za-z_]+)"\s*\]\s*=\s*(?:"([^"\\]*)"|([0-9]+))`)
}) // compiled on first use, not at every start

// Check implements Prosody by reading the account file and checking the
// password against its SCRAM-SHA-1 stored key (internal_hashed) or its
// plain password (internal_plain).
func (p ProsodyCtl) Check(ctx context.Context, user, host string, password spec.Secret) (Status, error) {
	b, err := os.ReadFile(p.AccountFile(user, host))
	if errors.Is(err, fs.ErrNotExist) {
		// Either no account, or not file storage: the data dir for the
		// host tells them apart only partly, so missing it is "missing"
		// too (adduser then reports an existing account and the Manager
		// sets the password instead).
		return StatusMissing, nil
	}
	if err != nil {
		return StatusUnknown, nil // e.g. permissions: let the Manager decide
	}
	fields := map[string]string{}
	for _, m := range luaField().FindAllStringSubmatch(string(b), -1) {
		if m[2] != "" {
			fields[m[1]] = m[2]
		} else {
			fields[m[1]] = m[3]
		}
	}
	if plain, ok := fields["password"]; ok {
		if subtle.ConstantTimeCompare([]byte(plain), []byte(password.Reveal())) == 1 {
			return StatusMatches, nil
		}
		return StatusDiffers, nil
	}
	salt, stored := fields["salt"], fields["stored_key"]
	iter, err := strconv.Atoi(fields["iteration_count"])
	if salt == "" || stored == "" || err != nil || iter <= 0 || iter > 10_000_000 {
		return StatusUnknown, nil
	}
	want, err := hex.DecodeString(stored)
	if err != nil {
		return StatusUnknown, nil
	}
	got, err := scramStoredKey(password.Reveal(), salt, iter)
	if err != nil {
		return StatusUnknown, nil
	}
	if subtle.ConstantTimeCompare(got, want) == 1 {
		return StatusMatches, nil
	}
	return StatusDiffers, nil
}

// scramStoredKey is SCRAM-SHA-1's StoredKey = H(HMAC(SaltedPassword,
// "Client Key")) with SaltedPassword = PBKDF2-HMAC-SHA1(password, salt, i).
// (Prosody SASLpreps the password first; that is the identity for the
// ASCII passwords the secrets store generates.)
func scramStoredKey(password, salt string, iter int) ([]byte, error) {
	salted, err := pbkdf2.Key(sha1.New, password, []byte(salt), iter, sha1.Size)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha1.New, salted)
	mac.Write([]byte("Client Key"))
	sum := sha1.Sum(mac.Sum(nil))
	return sum[:], nil
}

// Create implements Prosody.
func (p ProsodyCtl) Create(ctx context.Context, user, host string, password spec.Secret) error {
	out, err := p.run(ctx, "adduser", user+"@"+host, password)
	if strings.Contains(out, "already exists") {
		return ErrExists
	}
	return err
}

// SetPassword implements Prosody.
func (p ProsodyCtl) SetPassword(ctx context.Context, user, host string, password spec.Secret) error {
	out, err := p.run(ctx, "passwd", user+"@"+host, password)
	if strings.Contains(out, "does not exist") {
		return ErrNotFound
	}
	return err
}

func (p ProsodyCtl) run(ctx context.Context, verb, jid string, password spec.Secret) (string, error) {
	pw := password.Reveal()
	if pw == "" || strings.ContainsAny(pw, "\r\n") {
		return "", fmt.Errorf("prosodyctl %s %s: the password must be non-empty and on one line", verb, jid)
	}
	bin := p.Path
	if bin == "" {
		bin = "prosodyctl"
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var args []string
	if p.Config != "" {
		args = append(args, "--config", p.Config)
	}
	args = append(args, verb, jid)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(pw + "\n" + pw + "\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	text := redact(out.String(), password)
	if err != nil {
		return text, fmt.Errorf("prosodyctl %s %s: %w: %s", verb, jid, err, summarize(text))
	}
	return text, nil
}

// summarize keeps prosodyctl's meaningful lines (no prompts, no banner).
func summarize(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.Contains(l, "password:") || strings.HasPrefix(l, "*") ||
			strings.Contains(l, "lua-unbound") || strings.Contains(l, "luarocks") || strings.Contains(l, "Debian/Ubuntu") {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) > 8 {
		keep = keep[len(keep)-8:]
	}
	return strings.Join(keep, "; ")
}

// Unavailable stands in for a Prosody that is not installed: the agent logs
// Reason as a notice and leaves the accounts alone. Its methods fail.
type Unavailable struct{ Reason string }

var errUnavailable = errors.New("prosodyctl is not available")

func (u Unavailable) Check(context.Context, string, string, spec.Secret) (Status, error) {
	return StatusUnknown, errUnavailable
}
func (u Unavailable) Create(context.Context, string, string, spec.Secret) error {
	return errUnavailable
}
func (u Unavailable) SetPassword(context.Context, string, string, spec.Secret) error {
	return errUnavailable
}

// System is this machine's account backend: prosodyctl from PATH, or
// Unavailable when Prosody is not installed.
func System() Prosody {
	if _, err := exec.LookPath("prosodyctl"); err != nil {
		return Unavailable{Reason: "prosodyctl not found; the focus and jvb accounts were not created (install prosody, then apply again)"}
	}
	return ProsodyCtl{}
}
