// Package fleetstore is the fleet's coordination store: a small interface
// (get, list, compare-and-swap transactions, prefix watch, leased
// registrations) and its implementation on etcd v3. Keys are relative to a
// prefix the store was opened with; nothing else in the agent talks to etcd.
package fleetstore

import (
	"context"
	"errors"
	"strings"
	"time"
)

// KV is one key with its value and revisions.
type KV struct {
	Key   string // relative to the store's prefix
	Value []byte
	// CreateRev and ModRev are the store revisions that created and last
	// modified the key; a compare on ModRev 0 means "does not exist".
	CreateRev, ModRev int64
}

// Cond is a compare of a transaction: Key's ModRev must equal ModRev (0:
// the key must not exist).
type Cond struct {
	Key    string
	ModRev int64
}

// Op is a write of a transaction: Put Value at Key, or delete Key.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
}

// Event is one change seen by a watch.
type Event struct {
	KV      KV
	Deleted bool
}

// WatchResponse is one batch of changes at revision Rev. Err set means the
// watch ended (e.g. the revision it resumed from was compacted): list again
// and watch from there.
type WatchResponse struct {
	Events []Event
	Rev    int64
	Err    error
}

// Store is the fleet's view of etcd.
type Store interface {
	// Get returns the key, or ok false when it does not exist.
	Get(ctx context.Context, key string) (kv KV, ok bool, err error)
	// List returns every key under prefix, sorted, and the store revision
	// the answer is from (watch from rev+1 to miss nothing).
	List(ctx context.Context, prefix string) (kvs []KV, rev int64, err error)
	// Txn applies ops if every cond holds, atomically; ok false means a
	// cond did not hold and nothing was written.
	Txn(ctx context.Context, conds []Cond, ops []Op) (ok bool, err error)
	// Watch streams the changes under prefix from revision fromRev until
	// ctx ends (the channel is then closed). The implementation resumes by
	// itself after a lost connection.
	Watch(ctx context.Context, prefix string, fromRev int64) <-chan WatchResponse
	// Register keeps key = value alive under a lease of ttl: the key
	// disappears ttl after this process stops renewing it (crash,
	// partition). See Registration.
	Register(ctx context.Context, key string, ttl time.Duration) (*Registration, error)
	// Close releases the connection.
	Close() error
}

// ErrClosed is returned by a closed registration.
var ErrClosed = errors.New("fleetstore: registration closed")

// Permanent reports whether a store error will not go away by retrying
// (refused credentials or permissions, a request etcd rejects as invalid).
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	m := err.Error()
	for _, s := range []string{"permission denied", "authentication failed", "sign-in as", "invalid argument", "HTTP 400"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}
