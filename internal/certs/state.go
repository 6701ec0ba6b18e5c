package certs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
)

// State is what the Manager records in the state file (and Status returns).
// It holds no key material.
type State struct {
	DirectoryURL string       `json:"directory_url"`
	Updated      time.Time    `json:"updated"`
	Certificates []CertStatus `json:"certificates"`
}

// CertStatus is the status of one slot.
type CertStatus struct {
	Name    string  `json:"name"`
	KeyType KeyType `json:"key_type"`
	// From the current certificate (zero until one was obtained).
	Serial    string    `json:"serial,omitempty"`
	Issuer    string    `json:"issuer,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// RenewAt is when autocert's timer renews (without its jitter of at most
	// a tenth of the renewal window, capped at one hour).
	RenewAt     time.Time `json:"renew_at,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastError is the latest failure (cleared by the next success).
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// NextAttempt is when the Manager retries after a failure.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Failures counts consecutive failed attempts.
	Failures int `json:"failures,omitempty"`
}

// ExpirySeconds is the time left until NotAfter (negative once expired, 0
// when there is no certificate yet). This is the `cert expiry seconds` metric.
func (c CertStatus) ExpirySeconds(now time.Time) float64 {
	if c.NotAfter.IsZero() {
		return 0
	}
	return c.NotAfter.Sub(now).Seconds()
}

// Lookup returns the status of a slot.
func (s State) Lookup(sl Slot) (CertStatus, bool) {
	for _, c := range s.Certificates {
		if c.Name == sl.Name && c.KeyType == sl.Key {
			return c, true
		}
	}
	return CertStatus{}, false
}

func (s *State) put(c CertStatus) {
	for i := range s.Certificates {
		if s.Certificates[i].Name == c.Name && s.Certificates[i].KeyType == c.KeyType {
			s.Certificates[i] = c
			return
		}
	}
	s.Certificates = append(s.Certificates, c)
	sort.Slice(s.Certificates, func(i, j int) bool {
		a, b := s.Certificates[i], s.Certificates[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.KeyType < b.KeyType
	})
}

func (s *State) clone() State {
	c := *s
	c.Certificates = append([]CertStatus(nil), s.Certificates...)
	return c
}

// ReadState reads a state file. A missing file is (nil, nil).
func ReadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read certificate state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse certificate state %s: %w", path, err)
	}
	return &s, nil
}

// writeState writes the state file atomically (temp file, fsync, rename).
func writeState(path string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode certificate state: %w", err)
	}
	dir := filepath.Dir(path)
	if err := fsys.MkdirPrivate(dir); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := fsys.WriteAtomic(path, append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("write certificate state: %w", err)
	}
	return nil
}
