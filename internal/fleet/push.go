package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/fleetstore"
)

// PushResult says what Push did.
type PushResult struct {
	Generation int64
	Previous   int64
	Unchanged  bool // the inputs equal the current generation's: nothing was published
}

// retry runs f until it succeeds or returns a permanent error, pausing
// between transport errors (a killed etcd leader, a member restarting),
// until ctx ends.
func retry(ctx context.Context, f func() (done bool, err error)) error {
	wait := 100 * time.Millisecond
	for {
		done, err := f()
		if done || fleetstore.Permanent(err) {
			return err
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func readCurrent(ctx context.Context, st fleetstore.Store) (*Current, int64, error) {
	kv, ok, err := st.Get(ctx, keyCurrent)
	if err != nil || !ok {
		return &Current{}, 0, err
	}
	c, err := decode[Current](kv.Value)
	if err != nil {
		return nil, 0, fmt.Errorf("store key %s: %w", keyCurrent, err)
	}
	return c, kv.ModRev, nil
}

// Push publishes the bundle as the next generation and makes it current,
// in one compare-and-swap transaction (a concurrent push makes it read
// again and take the next number). Transport errors are retried until ctx
// ends; a transaction whose answer was lost is recognised by its digest.
func Push(ctx context.Context, st fleetstore.Store, k Key, b *Bundle, hosts []HostPlan, meta Generation) (PushResult, error) {
	var res PushResult
	err := retry(ctx, func() (bool, error) {
		cur, modRev, err := readCurrent(ctx, st)
		if err != nil {
			return false, err
		}
		g := meta
		g.Number, g.Hosts, g.SpecName = cur.Latest+1, hosts, b.SpecName
		if g.Created.IsZero() {
			g.Created = time.Now().UTC()
		}
		if err := g.seal(k, b); err != nil {
			return true, err
		}
		if cur.Generation != 0 {
			if prev, err := getGeneration(ctx, st, cur.Generation); err == nil && prev.Digest == g.Digest && sameHosts(prev, &g) {
				res = PushResult{Generation: cur.Generation, Unchanged: true}
				return true, nil
			}
		}
		val, err := json.Marshal(&g)
		if err != nil {
			return true, err
		}
		next := Current{Generation: g.Number, Previous: cur.Generation, Latest: g.Number, At: g.Created, Reason: "push"}
		cval, _ := json.Marshal(&next)
		ops := []fleetstore.Op{{Key: generationKey(g.Number), Value: val}, {Key: keyCurrent, Value: cval}}
		if old := g.Number - KeepGenerations; old > 0 {
			ops = append(ops, fleetstore.Op{Key: generationKey(old), Delete: true})
		}
		ok, err := st.Txn(ctx, []fleetstore.Cond{{Key: keyCurrent, ModRev: modRev}, {Key: generationKey(g.Number), ModRev: 0}}, ops)
		if err != nil {
			// The answer may be lost while the write landed.
			if got, gerr := getGeneration(ctx, st, g.Number); gerr == nil && got.Digest == g.Digest {
				res = PushResult{Generation: g.Number, Previous: cur.Generation}
				return true, nil
			}
			return false, err
		}
		if !ok {
			return false, errors.New("another push or rollback changed the fleet at the same time")
		}
		res = PushResult{Generation: g.Number, Previous: cur.Generation}
		return true, nil
	})
	return res, err
}

func sameHosts(a, b *Generation) bool {
	if a.MaxUnavailable != b.MaxUnavailable || len(a.Hosts) != len(b.Hosts) {
		return false
	}
	for i := range a.Hosts {
		if a.Hosts[i].Name != b.Hosts[i].Name || a.Hosts[i].Wave != b.Hosts[i].Wave {
			return false
		}
	}
	return true
}

func getGeneration(ctx context.Context, st fleetstore.Store, n int64) (*Generation, error) {
	kv, ok, err := st.Get(ctx, generationKey(n))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("generation %d is not in the store (the store keeps the last %d)", n, KeepGenerations)
	}
	return decode[Generation](kv.Value)
}

// Rollback makes generation to current again (0: the previous one); the
// rollout takes it to the hosts like a push.
func Rollback(ctx context.Context, st fleetstore.Store, to int64) (PushResult, error) {
	var res PushResult
	err := retry(ctx, func() (bool, error) {
		cur, modRev, err := readCurrent(ctx, st)
		if err != nil {
			return false, err
		}
		if cur.Generation == 0 {
			return true, errors.New("nothing was pushed yet")
		}
		target := to
		if target == 0 {
			target = cur.Previous
		}
		if target == 0 {
			return true, fmt.Errorf("generation %d has no previous generation; give --to N", cur.Generation)
		}
		if target == cur.Generation {
			res = PushResult{Generation: target, Unchanged: true}
			return true, nil
		}
		if _, err := getGeneration(ctx, st, target); err != nil {
			return true, err
		}
		next := Current{Generation: target, Previous: cur.Generation, Latest: cur.Latest, At: time.Now().UTC(), Reason: "rollback"}
		cval, _ := json.Marshal(&next)
		ok, err := st.Txn(ctx, []fleetstore.Cond{{Key: keyCurrent, ModRev: modRev}}, []fleetstore.Op{{Key: keyCurrent, Value: cval}})
		if err != nil {
			return false, err
		}
		if !ok {
			return false, errors.New("another push or rollback changed the fleet at the same time")
		}
		res = PushResult{Generation: target, Previous: cur.Generation}
		return true, nil
	})
	return res, err
}

const clusterSecretContext = "jitsi-agent/fleet/secrets/cluster"

// EnsureClusterSecret returns the fleet's cluster secret, creating it
// (random, sealed with the fleet key) when no agent has yet: the create is
// a compare-and-swap on the key not existing, so racing agents all end up
// with the one that won. It also returns the sealed box (for the host's
// cache).
func EnsureClusterSecret(ctx context.Context, st fleetstore.Store, k Key) (secret string, box []byte, err error) {
	for range 3 {
		kv, ok, err := st.Get(ctx, keyClusterSecret)
		if err != nil {
			return "", nil, err
		}
		if ok {
			plain, err := k.Open(kv.Value, clusterSecretContext)
			if err != nil {
				return "", nil, fmt.Errorf("the fleet's cluster secret %w: every host needs the same fleet key", err)
			}
			return string(plain), kv.Value, nil
		}
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return "", nil, err
		}
		box := k.Seal([]byte(hex.EncodeToString(raw)), clusterSecretContext)
		if _, err := st.Txn(ctx, []fleetstore.Cond{{Key: keyClusterSecret, ModRev: 0}}, []fleetstore.Op{{Key: keyClusterSecret, Value: box}}); err != nil {
			return "", nil, err
		}
		// Won or lost, read what is there now.
	}
	return "", nil, errors.New("cluster secret: the store keeps changing it")
}
