package fleetstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Config opens an etcd store.
type Config struct {
	// Endpoints are the members' client URLs (https://host:2379).
	Endpoints []string
	// Prefix is prepended to every key (default "/jitsi-agent/").
	Prefix string
	// TLS is the client configuration (CA and client certificate); nil
	// for plain http endpoints.
	TLS *tls.Config
	// Username/Password for etcd auth when not using certificate CNs.
	Username, Password string
	// DialTimeout bounds the first connection (default 5s). Opening never
	// fails because the cluster is down: calls fail, watches wait.
	DialTimeout time.Duration
}

// DefaultPrefix is where the fleet lives in etcd.
const DefaultPrefix = "/jitsi-agent/"

// TLSFiles builds a client TLS configuration from PEM files (CA, client
// certificate and key); all empty returns nil.
func TLSFiles(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pemCA, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("etcd CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemCA) {
			return nil, fmt.Errorf("etcd CA %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("etcd client certificate: give both --etcd-cert and --etcd-key")
	}
	if certFile != "" {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg, nil
}

// Etcd is the Store on an etcd v3 cluster (3.4 or newer).
type Etcd struct {
	cli    *clientv3.Client
	prefix string
}

// Open connects to etcd. It does not wait for the cluster: a host must
// start (on its last good generation) while etcd is down.
func Open(cfg Config) (*Etcd, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("no etcd endpoints (give --etcd https://HOST:2379,...)")
	}
	for _, e := range cfg.Endpoints {
		if !strings.HasPrefix(e, "https://") && !strings.HasPrefix(e, "http://") {
			return nil, fmt.Errorf("etcd endpoint %q: want https://HOST:PORT", e)
		}
		if strings.HasPrefix(e, "https://") && cfg.TLS == nil {
			return nil, fmt.Errorf("etcd endpoint %q is https but no --etcd-ca/--etcd-cert/--etcd-key were given", e)
		}
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: cfg.Endpoints, TLS: cfg.TLS, Username: cfg.Username, Password: cfg.Password,
		DialTimeout: cfg.DialTimeout, DialKeepAliveTime: 10 * time.Second, DialKeepAliveTimeout: 5 * time.Second,
		// The client's own zap logs would bypass the agent's redacting
		// logger; errors reach the agent as return values instead.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	return &Etcd{cli: cli, prefix: cfg.Prefix}, nil
}

// Close implements Store.
func (e *Etcd) Close() error { return e.cli.Close() }

func (e *Etcd) kv(k *mvccpb.KeyValue) KV {
	return KV{Key: strings.TrimPrefix(string(k.Key), e.prefix), Value: k.Value, CreateRev: k.CreateRevision, ModRev: k.ModRevision}
}

// Get implements Store.
func (e *Etcd) Get(ctx context.Context, key string) (KV, bool, error) {
	r, err := e.cli.Get(ctx, e.prefix+key)
	if err != nil {
		return KV{}, false, fmt.Errorf("etcd get %s: %w", key, err)
	}
	if len(r.Kvs) == 0 {
		return KV{}, false, nil
	}
	return e.kv(r.Kvs[0]), true, nil
}

// List implements Store.
func (e *Etcd) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	r, err := e.cli.Get(ctx, e.prefix+prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, 0, fmt.Errorf("etcd list %s: %w", prefix, err)
	}
	out := make([]KV, 0, len(r.Kvs))
	for _, k := range r.Kvs {
		out = append(out, e.kv(k))
	}
	return out, r.Header.Revision, nil
}

// Txn implements Store.
func (e *Etcd) Txn(ctx context.Context, conds []Cond, ops []Op) (bool, error) {
	var cmps []clientv3.Cmp
	for _, c := range conds {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(e.prefix+c.Key), "=", c.ModRev))
	}
	var then []clientv3.Op
	for _, o := range ops {
		if o.Delete {
			then = append(then, clientv3.OpDelete(e.prefix+o.Key))
		} else {
			then = append(then, clientv3.OpPut(e.prefix+o.Key, string(o.Value)))
		}
	}
	r, err := e.cli.Txn(ctx).If(cmps...).Then(then...).Commit()
	if err != nil {
		return false, fmt.Errorf("etcd transaction: %w", err)
	}
	return r.Succeeded, nil
}

// Watch implements Store. The context requires a leader: a member cut off
// from the others ends the stream and the client moves to another member.
func (e *Etcd) Watch(ctx context.Context, prefix string, fromRev int64) <-chan WatchResponse {
	out := make(chan WatchResponse)
	wctx := clientv3.WithRequireLeader(ctx)
	wch := e.cli.Watch(wctx, e.prefix+prefix, clientv3.WithPrefix(), clientv3.WithRev(fromRev), clientv3.WithProgressNotify())
	go func() {
		defer close(out)
		for r := range wch {
			resp := WatchResponse{Rev: r.Header.Revision}
			if err := r.Err(); err != nil {
				if errors.Is(err, rpctypes.ErrCompacted) || r.CompactRevision != 0 {
					resp.Err = fmt.Errorf("etcd watch: revision %d compacted: %w", fromRev, err)
				} else {
					resp.Err = fmt.Errorf("etcd watch: %w", err)
				}
			}
			for _, ev := range r.Events {
				resp.Events = append(resp.Events, Event{KV: e.kv(ev.Kv), Deleted: ev.Type == clientv3.EventTypeDelete})
			}
			select {
			case out <- resp:
			case <-ctx.Done():
				return
			}
			if resp.Err != nil {
				return
			}
		}
		if ctx.Err() == nil {
			select {
			case out <- WatchResponse{Err: errors.New("etcd watch: stream ended")}:
			case <-ctx.Done():
			}
		}
	}()
	return out
}

// Register implements Store.
func (e *Etcd) Register(ctx context.Context, key string, ttl time.Duration) (*Registration, error) {
	if ttl < time.Second {
		return nil, fmt.Errorf("lease TTL %v: at least 1s", ttl)
	}
	return newRegistration(ctx, etcdLeases{e}, key, ttl), nil
}

// etcdLeases is the lease side of Etcd for Registration.
type etcdLeases struct{ e *Etcd }

func (l etcdLeases) grant(ctx context.Context, ttl time.Duration) (int64, error) {
	r, err := l.e.cli.Grant(ctx, int64((ttl+time.Second-1)/time.Second))
	if err != nil {
		return 0, fmt.Errorf("etcd lease grant: %w", err)
	}
	return int64(r.ID), nil
}

func (l etcdLeases) keepAlive(ctx context.Context, id int64) (<-chan struct{}, error) {
	ch, err := l.e.cli.KeepAlive(ctx, clientv3.LeaseID(id))
	if err != nil {
		return nil, fmt.Errorf("etcd lease keepalive: %w", err)
	}
	lost := make(chan struct{})
	go func() {
		for range ch { // drained until the lease is lost or ctx ends
		}
		close(lost)
	}()
	return lost, nil
}

func (l etcdLeases) put(ctx context.Context, key string, val []byte, id int64) error {
	_, err := l.e.cli.Put(ctx, l.e.prefix+key, string(val), clientv3.WithLease(clientv3.LeaseID(id)))
	if err != nil {
		return fmt.Errorf("etcd put %s: %w", key, err)
	}
	return nil
}

func (l etcdLeases) revoke(ctx context.Context, id int64) error {
	_, err := l.e.cli.Revoke(ctx, clientv3.LeaseID(id))
	return err
}

// Status asks every endpoint for its status: reachable members, the
// leader's id and the store revision (doctor, fleet status).
func (e *Etcd) Status(ctx context.Context) (reachable []string, leader uint64, rev int64, errs []error) {
	for _, ep := range e.cli.Endpoints() {
		st, err := e.cli.Status(ctx, ep)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
			continue
		}
		reachable = append(reachable, ep)
		if st.Leader != 0 {
			leader = st.Leader
		}
		rev = max(rev, st.Header.Revision)
	}
	return reachable, leader, rev, errs
}
