// Package accounts creates the Prosody accounts Jicofo and the videobridge
// log in with (focus@auth.DOMAIN, jvb@auth.DOMAIN), idempotently: an
// unchanged apply runs nothing, a rotated password updates the account.
//
// The Manager decides; the Prosody interface does. ProsodyCtl is the real
// implementation: it reads Prosody's internal_hashed account file to check
// the password (SCRAM-SHA-1, no process started) and runs `prosodyctl
// adduser` / `prosodyctl passwd` with the password on stdin (never in argv).
package accounts

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Account is one XMPP account to ensure.
type Account struct {
	User     string
	Host     string
	Password spec.Secret
}

// JID is user@host.
func (a Account) JID() string { return a.User + "@" + a.Host }

// ForDeployment returns the built-in accounts the deployment has (the rows
// of files.Accounts whose condition holds: focus and jvb, Jibri's two when
// recording is on) with the stored passwords (Deployment.Secrets, filled by
// the secrets store).
func ForDeployment(d *spec.Deployment) []Account {
	var out []Account
	for _, a := range files.Accounts() {
		if d.Feature(a.When) {
			out = append(out, Account{User: a.Name, Host: d.AccountHost(a.Host), Password: d.Secrets.Password(a.Name)})
		}
	}
	return out
}

// StateFile is the file name of the account state in the state dir.
const StateFile = "prosody-accounts.json"

// StatePath is where a state dir keeps the account state.
func StatePath(stateDir string) string { return filepath.Join(stateDir, StateFile) }

// Status is what Prosody says about an account and a password.
type Status int

const (
	// StatusUnknown: the backend cannot tell (non-file storage, unreadable).
	StatusUnknown Status = iota
	StatusMissing
	StatusMatches
	StatusDiffers
)

func (s Status) String() string {
	return [...]string{"unknown", "missing", "matches", "differs"}[s]
}

// Prosody is the account backend.
type Prosody interface {
	// Check reports whether the account exists and has this password.
	Check(ctx context.Context, user, host string, password spec.Secret) (Status, error)
	// Create adds the account; ErrExists when it is already there.
	Create(ctx context.Context, user, host string, password spec.Secret) error
	// SetPassword changes the password; ErrNotFound when there is no account.
	SetPassword(ctx context.Context, user, host string, password spec.Secret) error
}

// Errors from Prosody implementations.
var (
	ErrExists   = errors.New("account already exists")
	ErrNotFound = errors.New("account does not exist")
)

// Action is what Ensure did to one account.
type Action string

const (
	Unchanged Action = "unchanged"
	Created   Action = "created"
	Updated   Action = "updated" // password set (rotated, or not verifiable)
)

// Result is one account's outcome.
type Result struct {
	JID    string `json:"jid"`
	Action Action `json:"action"`
}

// Components returns the components whose login changed in results
// (created or updated; the accounts table says which component logs in
// with which account): they must restart now, even under restart =
// "defer" (systemd.UrgentFor).
func Components(results []Result) []string {
	var out []string
	for _, r := range results {
		if r.Action == Unchanged {
			continue
		}
		for _, a := range files.Accounts() {
			if strings.HasPrefix(r.JID, a.Name+"@") && !slices.Contains(out, a.Component) {
				out = append(out, a.Component)
			}
		}
	}
	return out
}

// Manager ensures accounts.
type Manager struct {
	Prosody Prosody
	// StatePath is a JSON file (state dir, mode 0600) with a salted
	// PBKDF2 hash of the last password set per JID. It is only consulted
	// when Prosody cannot verify the password itself (StatusUnknown), so
	// that an unchanged apply still runs nothing. "" = no state.
	StatePath string
}

// Ensure creates missing accounts and sets differing passwords, in order.
// It stops at the first failure; the results so far are returned with it.
func (m *Manager) Ensure(ctx context.Context, accounts []Account) ([]Result, error) {
	st, err := loadState(m.StatePath)
	if err != nil {
		return nil, err
	}
	var out []Result
	dirty := false
	defer func() {
		if dirty {
			_ = saveState(m.StatePath, st) // best effort on the error paths; checked below on success
		}
	}()
	for _, a := range accounts {
		if a.User == "" || a.Host == "" {
			return out, fmt.Errorf("account %q: user and host are required", a.JID())
		}
		if a.Password.IsZero() {
			return out, fmt.Errorf("account %s: no password (the secrets store must fill it before apply)", a.JID())
		}
		status, err := m.Prosody.Check(ctx, a.User, a.Host, a.Password)
		if err != nil {
			return out, fmt.Errorf("checking account %s: %w", a.JID(), err)
		}
		var act Action
		switch status {
		case StatusMatches:
			act = Unchanged
		case StatusMissing:
			act, err = m.create(ctx, a)
		case StatusDiffers:
			act, err = m.update(ctx, a)
		default:
			if st.matches(a.JID(), a.Password) {
				act = Unchanged
			} else {
				act, err = m.update(ctx, a)
			}
		}
		if err != nil {
			return out, err
		}
		if act != Unchanged || !st.matches(a.JID(), a.Password) {
			if err := st.set(a.JID(), a.Password); err != nil {
				return out, err
			}
			dirty = true
		}
		out = append(out, Result{JID: a.JID(), Action: act})
	}
	if dirty {
		dirty = false
		if err := saveState(m.StatePath, st); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (m *Manager) create(ctx context.Context, a Account) (Action, error) {
	err := m.Prosody.Create(ctx, a.User, a.Host, a.Password)
	if errors.Is(err, ErrExists) {
		return m.update(ctx, a)
	}
	if err != nil {
		return "", fmt.Errorf("creating account %s: %w", a.JID(), err)
	}
	return Created, nil
}

func (m *Manager) update(ctx context.Context, a Account) (Action, error) {
	err := m.Prosody.SetPassword(ctx, a.User, a.Host, a.Password)
	if errors.Is(err, ErrNotFound) {
		if err := m.Prosody.Create(ctx, a.User, a.Host, a.Password); err != nil {
			return "", fmt.Errorf("creating account %s: %w", a.JID(), err)
		}
		return Created, nil
	}
	if err != nil {
		return "", fmt.Errorf("setting the password of %s: %w", a.JID(), err)
	}
	return Updated, nil
}

// state holds salted hashes of the last passwords set.
type state struct {
	Version  int                  `json:"version"`
	Accounts map[string]stateHash `json:"accounts"`
}

type stateHash struct {
	Salt string `json:"salt"`
	Iter int    `json:"iter"`
	Hash string `json:"hash"`
}

const stateIter = 4096

func hashPassword(pw spec.Secret, salt []byte, iter int) ([]byte, error) {
	return pbkdf2.Key(sha256.New, pw.Reveal(), salt, iter, 32)
}

func (s *state) matches(jid string, pw spec.Secret) bool {
	h, ok := s.Accounts[jid]
	if !ok {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(h.Salt)
	want, err2 := base64.StdEncoding.DecodeString(h.Hash)
	if err1 != nil || err2 != nil || h.Iter <= 0 {
		return false
	}
	got, err := hashPassword(pw, salt, h.Iter)
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}

func (s *state) set(jid string, pw spec.Secret) error {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return fmt.Errorf("salt: %w", err)
	}
	h, err := hashPassword(pw, salt, stateIter)
	if err != nil {
		return fmt.Errorf("hashing: %w", err)
	}
	s.Accounts[jid] = stateHash{Salt: base64.StdEncoding.EncodeToString(salt), Iter: stateIter, Hash: base64.StdEncoding.EncodeToString(h)}
	return nil
}

func loadState(path string) (*state, error) {
	st := &state{Version: 1, Accounts: map[string]stateHash{}}
	if path == "" {
		return st, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading account state: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("reading account state %s: %w", path, err)
	}
	if st.Accounts == nil {
		st.Accounts = map[string]stateHash{}
	}
	return st, nil
}

func saveState(path string, st *state) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding account state: %w", err)
	}
	if err := fsys.MkdirPrivate(filepath.Dir(path)); err != nil {
		return fmt.Errorf("saving account state: %w", err)
	}
	if err := fsys.WriteAtomic(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving account state: %w", err)
	}
	return nil
}

// redact removes a password from command output.
func redact(s string, pw spec.Secret) string {
	if pw.IsZero() {
		return s
	}
	return strings.ReplaceAll(s, pw.Reveal(), "(sensitive)")
}
