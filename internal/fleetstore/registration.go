package fleetstore

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// leases is what a Registration needs from the store.
type leases interface {
	grant(ctx context.Context, ttl time.Duration) (int64, error)
	// keepAlive renews the lease until ctx ends; the channel is closed when
	// the lease is lost (expired, revoked, or not renewed within its TTL).
	keepAlive(ctx context.Context, id int64, ttl time.Duration) (<-chan struct{}, error)
	put(ctx context.Context, key string, val []byte, id int64) error
	revoke(ctx context.Context, id int64) error
}

// Registration keeps one key alive under a lease: Set changes the value,
// and after a lost lease (store unreachable longer than the TTL) it grants
// a new one and writes the value again as soon as the store answers.
type Registration struct {
	key string
	ttl time.Duration
	l   leases

	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}

	mu      sync.Mutex
	value   []byte
	written []byte // the value under the current lease (nil: none)
	alive   bool
	since   time.Time // when alive last changed
	lastErr error
	changed chan struct{}
}

func newRegistration(ctx context.Context, l leases, key string, ttl time.Duration) *Registration {
	ctx, cancel := context.WithCancel(ctx)
	r := &Registration{key: key, ttl: ttl, l: l, cancel: cancel, done: make(chan struct{}),
		wake: make(chan struct{}, 1), since: time.Now(), changed: make(chan struct{})}
	go r.run(ctx)
	return r
}

// Set changes the registered value (written at once when the lease is
// alive, else when it is granted again).
func (r *Registration) Set(v []byte) {
	r.mu.Lock()
	r.value = bytes.Clone(v)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Alive reports whether the key is registered under a live lease, since
// when that is so, and the last store error.
func (r *Registration) Alive() (alive bool, since time.Time, lastErr error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.alive, r.since, r.lastErr
}

// Changed is closed at the next change of Alive.
func (r *Registration) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

func (r *Registration) setAlive(v bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastErr = err
	if v == r.alive {
		return
	}
	r.alive, r.since = v, time.Now()
	close(r.changed)
	r.changed = make(chan struct{})
}

// Close revokes the lease (the key disappears now, not after the TTL) and
// stops renewing it.
func (r *Registration) Close() {
	r.cancel()
	<-r.done
}

func (r *Registration) run(ctx context.Context) {
	defer close(r.done)
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := r.session(ctx)
		r.setAlive(false, err)
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, r.ttl/2, 5*time.Second)
	}
}

// session grants one lease and keeps the key on it until the lease is lost
// or ctx ends.
func (r *Registration) session(ctx context.Context) error {
	gctx, cancel := context.WithTimeout(ctx, r.ttl)
	id, err := r.l.grant(gctx, r.ttl)
	cancel()
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	defer func() {
		// Revoke on the way out (best effort): a clean stop leaves at once.
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = r.l.revoke(rctx, id)
		cancel()
	}()
	lost, err := r.l.keepAlive(sctx, id, r.ttl)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.written = nil
	r.mu.Unlock()
	for {
		r.mu.Lock()
		v, w := r.value, r.written
		r.mu.Unlock()
		if v != nil && (w == nil || !bytes.Equal(v, w)) {
			pctx, cancel := context.WithTimeout(sctx, r.ttl)
			err := r.l.put(pctx, r.key, v, id)
			cancel()
			if err != nil {
				return err
			}
			r.mu.Lock()
			r.written = v
			r.mu.Unlock()
			r.setAlive(true, nil)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-lost:
			return errLeaseLost
		case <-r.wake:
		}
	}
}

type leaseLost struct{}

func (leaseLost) Error() string { return "lease lost (store unreachable longer than the lease TTL)" }

var errLeaseLost error = leaseLost{}
