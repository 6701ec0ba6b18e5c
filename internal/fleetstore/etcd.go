package fleetstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The store speaks etcd v3's JSON gateway (POST /v3/kv/range, /v3/kv/txn,
// /v3/watch, /v3/lease/...), which every etcd since 3.4 serves on its
// client port, over the same mutual-TLS listener as gRPC. The official Go
// client (go.etcd.io/etcd/client/v3) works against Debian's 3.4 too, but
// it brings gRPC and protobuf, whose package initialisation doubled every
// start of the binary (cmd/jitsi-agent TestStartupStaysLean); the tests
// check this store against that client.

// Config opens an etcd store.
type Config struct {
	// Endpoints are the members' client URLs (https://host:2379).
	Endpoints []string
	// Prefix is prepended to every key (default "/jitsi-agent/").
	Prefix string
	// TLS is the client configuration (CA and client certificate); nil
	// for plain http endpoints.
	TLS *tls.Config
	// DialTimeout bounds connecting to one member (default 5s). Opening
	// never fails because the cluster is down: calls fail, watches wait.
	DialTimeout time.Duration
	// RequestTimeout bounds one unary request (default 10s).
	RequestTimeout time.Duration
	// Username and Password sign in to etcd's auth (each host its own
	// user, allowed to write only its registration: see GrantHost). Empty:
	// auth off.
	Username, Password string
}

// DefaultPrefix is where the fleet lives in etcd.
const DefaultPrefix = "/jitsi-agent/"

// maxResponse bounds one unary answer (a list of every generation).
const maxResponse = 64 << 20

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
	eps     []string
	prefix  string
	http    *http.Client // unary requests (bounded)
	stream  *http.Client // watches (no overall timeout)
	timeout time.Duration

	user, password string

	mu    sync.Mutex
	next  int    // the endpoint that answered last
	token string // etcd auth token (when signed in)
}

// Open prepares the store. It does not contact the cluster: a host must
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
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 10 * time.Second}).DialContext,
		TLSClientConfig:     cfg.TLS,
		TLSHandshakeTimeout: cfg.DialTimeout,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     time.Minute,
	}
	eps := make([]string, len(cfg.Endpoints))
	for i, e := range cfg.Endpoints {
		eps[i] = strings.TrimRight(e, "/")
	}
	return &Etcd{eps: eps, prefix: cfg.Prefix, timeout: cfg.RequestTimeout, user: cfg.Username, password: cfg.Password,
		http: &http.Client{Transport: tr, Timeout: cfg.RequestTimeout}, stream: &http.Client{Transport: tr}}, nil
}

// Close implements Store.
func (e *Etcd) Close() error {
	e.http.CloseIdleConnections()
	return nil
}

// num is an int64 the gateway writes as a JSON string.
type num int64

func (n *num) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		u, uerr := strconv.ParseUint(s, 10, 64)
		if uerr != nil {
			return err
		}
		v = int64(u)
	}
	*n = num(v)
	return nil
}

func (n num) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(n), 10) + `"`), nil
}

type header struct {
	Revision num `json:"revision"`
	MemberID num `json:"member_id"`
}

type gwKV struct {
	Key       []byte `json:"key"`
	Value     []byte `json:"value"`
	CreateRev num    `json:"create_revision"`
	ModRev    num    `json:"mod_revision"`
}

// gwError is the gateway's error body.
type gwError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Code    int    `json:"code"`
}

func (e *Etcd) kv(k gwKV) KV {
	return KV{Key: strings.TrimPrefix(string(k.Key), e.prefix), Value: k.Value, CreateRev: int64(k.CreateRev), ModRev: int64(k.ModRev)}
}

// endpoints returns the endpoints, the one that answered last first.
func (e *Etcd) endpoints() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.eps))
	for i := range e.eps {
		out = append(out, e.eps[(e.next+i)%len(e.eps)])
	}
	return out
}

func (e *Etcd) good(ep string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, x := range e.eps {
		if x == ep {
			e.next = i
		}
	}
}

// call POSTs one request. A member that cannot be reached (the request was
// never sent) is skipped for the next; any other failure is returned, as
// the write may have landed.
func (e *Etcd) call(ctx context.Context, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if e.user != "" && !e.signedIn() {
		// Signed in before the first request: without a token etcd may
		// take the gateway's own certificate for the user and answer
		// "permission denied", which is no sign-in error.
		if err := e.signIn(ctx); err != nil {
			return err
		}
	}
	err = e.callOnce(ctx, path, body, resp)
	if e.user != "" && isAuthError(err) {
		// Signed out (first call, or the token expired): sign in, retry once.
		if aerr := e.signIn(ctx); aerr != nil {
			return aerr
		}
		err = e.callOnce(ctx, path, body, resp)
	}
	return err
}

// isAuthError: the request was refused for want of a valid token.
func isAuthError(err error) bool {
	if err == nil {
		return false
	}
	m := err.Error()
	return strings.Contains(m, "invalid auth token") || strings.Contains(m, "user name is empty") || strings.Contains(m, "user name not found")
}

// signIn gets a token for the configured user.
func (e *Etcd) signIn(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"name": e.user, "password": e.password})
	var r struct {
		Token string `json:"token"`
	}
	var last error
	for _, ep := range e.endpoints() {
		if last = e.post(ctx, ep, "/v3/auth/authenticate", body, &r, false); last == nil {
			e.mu.Lock()
			e.token = r.Token
			e.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("etcd sign-in as %q: %w", e.user, last)
}

func (e *Etcd) callOnce(ctx context.Context, path string, body []byte, resp any) error {
	var last error
	for _, ep := range e.endpoints() {
		err := e.post(ctx, ep, path, body, resp, true)
		if err == nil {
			e.good(ep)
			return nil
		}
		last = err
		var op *net.OpError
		if !(errors.As(err, &op) && op.Op == "dial") || ctx.Err() != nil {
			return err
		}
	}
	return last
}

func (e *Etcd) post(ctx context.Context, ep, path string, body []byte, resp any, auth bool) error {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, ep+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	if auth {
		e.setToken(r)
	}
	res, err := e.http.Do(r)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponse+1))
	if err != nil {
		return err
	}
	if len(data) > maxResponse {
		return fmt.Errorf("%s: answer larger than %d bytes", path, maxResponse)
	}
	if res.StatusCode != http.StatusOK {
		var ge gwError
		if json.Unmarshal(data, &ge) == nil && (ge.Error != "" || ge.Message != "") {
			return fmt.Errorf("%s: %s", ep, firstOf(ge.Message, ge.Error))
		}
		if len(data) > 200 {
			data = data[:200]
		}
		return fmt.Errorf("%s%s: HTTP %s: %s", ep, path, res.Status, bytes.TrimSpace(data))
	}
	if err := json.Unmarshal(data, resp); err != nil {
		return fmt.Errorf("%s%s: %w", ep, path, err)
	}
	return nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (e *Etcd) signedIn() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.token != ""
}

func (e *Etcd) setToken(r *http.Request) {
	e.mu.Lock()
	t := e.token
	e.mu.Unlock()
	if t != "" {
		r.Header.Set("Authorization", t)
	}
}

// prefixEnd is etcd's range end for every key starting with p.
func prefixEnd(p string) []byte {
	end := []byte(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0}
}

type rangeResp struct {
	Header header `json:"header"`
	KVs    []gwKV `json:"kvs"`
}

// Get implements Store.
func (e *Etcd) Get(ctx context.Context, key string) (KV, bool, error) {
	var r rangeResp
	if err := e.call(ctx, "/v3/kv/range", map[string]any{"key": []byte(e.prefix + key)}, &r); err != nil {
		return KV{}, false, fmt.Errorf("etcd get %s: %w", key, err)
	}
	if len(r.KVs) == 0 {
		return KV{}, false, nil
	}
	return e.kv(r.KVs[0]), true, nil
}

// List implements Store.
func (e *Etcd) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	var r rangeResp
	req := map[string]any{"key": []byte(e.prefix + prefix), "range_end": prefixEnd(e.prefix + prefix), "sort_order": "ASCEND", "sort_target": "KEY"}
	if err := e.call(ctx, "/v3/kv/range", req, &r); err != nil {
		return nil, 0, fmt.Errorf("etcd list %s: %w", prefix, err)
	}
	out := make([]KV, 0, len(r.KVs))
	for _, k := range r.KVs {
		out = append(out, e.kv(k))
	}
	return out, int64(r.Header.Revision), nil
}

// Txn implements Store.
func (e *Etcd) Txn(ctx context.Context, conds []Cond, ops []Op) (bool, error) {
	cmps := []map[string]any{}
	for _, c := range conds {
		cmps = append(cmps, map[string]any{"target": "MOD", "result": "EQUAL", "key": []byte(e.prefix + c.Key), "mod_revision": num(c.ModRev)})
	}
	then := []map[string]any{}
	for _, o := range ops {
		if o.Delete {
			then = append(then, map[string]any{"request_delete_range": map[string]any{"key": []byte(e.prefix + o.Key)}})
		} else {
			then = append(then, map[string]any{"request_put": map[string]any{"key": []byte(e.prefix + o.Key), "value": o.Value}})
		}
	}
	var r struct {
		Succeeded bool `json:"succeeded"`
	}
	if err := e.call(ctx, "/v3/kv/txn", map[string]any{"compare": cmps, "success": then}, &r); err != nil {
		return false, fmt.Errorf("etcd transaction: %w", err)
	}
	return r.Succeeded, nil
}

type watchMsg struct {
	Result *struct {
		Header          header `json:"header"`
		Created         bool   `json:"created"`
		Canceled        bool   `json:"canceled"`
		CompactRevision num    `json:"compact_revision"`
		CancelReason    string `json:"cancel_reason"`
		Events          []struct {
			Type string `json:"type"`
			KV   gwKV   `json:"kv"`
		} `json:"events"`
	} `json:"result"`
	Error *gwError `json:"error"`
}

// Watch implements Store. It reconnects by itself (to the next member,
// after a pause) from the revision after the last one it delivered; a
// compacted revision ends it with Err.
func (e *Etcd) Watch(ctx context.Context, prefix string, fromRev int64) <-chan WatchResponse {
	out := make(chan WatchResponse)
	go func() {
		defer close(out)
		next := fromRev
		backoff := 100 * time.Millisecond
		for i := 0; ctx.Err() == nil; i++ {
			if e.user != "" && !e.signedIn() {
				_ = e.signIn(ctx) // a failure shows as the watch's error
			}
			eps := e.endpoints()
			ep := eps[i%len(eps)]
			delivered, err := e.watchOnce(ctx, ep, prefix, &next, out)
			if ctx.Err() != nil {
				return
			}
			if e.user != "" && isAuthError(err) {
				_ = e.signIn(ctx) // an expired token; a failure shows at the next attempt
			}
			var fatal *compactedError
			if errors.As(err, &fatal) {
				select {
				case out <- WatchResponse{Err: err}:
				case <-ctx.Done():
				}
				return
			}
			if delivered {
				backoff = 100 * time.Millisecond
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}()
	return out
}

type compactedError struct{ rev int64 }

func (c *compactedError) Error() string {
	return fmt.Sprintf("etcd watch: revision compacted (oldest kept: %d)", c.rev)
}

// watchOnce follows one watch stream on one member until it breaks.
func (e *Etcd) watchOnce(ctx context.Context, ep, prefix string, next *int64, out chan<- WatchResponse) (delivered bool, err error) {
	body, _ := json.Marshal(map[string]any{"create_request": map[string]any{
		"key": []byte(e.prefix + prefix), "range_end": prefixEnd(e.prefix + prefix), "start_revision": num(*next), "progress_notify": true}})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r, err := http.NewRequestWithContext(wctx, http.MethodPost, ep+"/v3/watch", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	r.Header.Set("Content-Type", "application/json")
	// Served only by a member that has a leader: one cut off from the
	// others ends the stream and the watch moves on.
	r.Header.Set("Grpc-Metadata-hasleader", "true")
	e.setToken(r)
	res, err := e.stream.Do(r)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("etcd watch %s: HTTP %s", ep, res.Status)
	}
	// An idle stream carries a progress message every few minutes at
	// most; a dead connection is found by TCP keepalive, or by the
	// stale lease, which makes the runner list again.
	dec := json.NewDecoder(res.Body)
	for {
		var m watchMsg
		if err := dec.Decode(&m); err != nil {
			return delivered, fmt.Errorf("etcd watch %s: %w", ep, err)
		}
		if m.Error != nil {
			return delivered, fmt.Errorf("etcd watch %s: %s", ep, firstOf(m.Error.Message, m.Error.Error))
		}
		if m.Result == nil {
			continue
		}
		if m.Result.CompactRevision != 0 {
			return delivered, &compactedError{rev: int64(m.Result.CompactRevision)}
		}
		if m.Result.Canceled {
			return delivered, fmt.Errorf("etcd watch %s: canceled: %s", ep, m.Result.CancelReason)
		}
		if m.Result.Created && len(m.Result.Events) == 0 {
			continue
		}
		resp := WatchResponse{Rev: int64(m.Result.Header.Revision)}
		for _, ev := range m.Result.Events {
			resp.Events = append(resp.Events, Event{KV: e.kv(ev.KV), Deleted: ev.Type == "DELETE"})
			*next = max(*next, int64(ev.KV.ModRev)+1)
		}
		if len(resp.Events) == 0 {
			*next = max(*next, resp.Rev+1) // progress: nothing before it is missing
			continue
		}
		e.good(ep)
		select {
		case out <- resp:
			delivered = true
		case <-ctx.Done():
			return delivered, ctx.Err()
		}
	}
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
	var r struct {
		ID  num `json:"ID"`
		TTL num `json:"TTL"`
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	if err := l.e.call(ctx, "/v3/lease/grant", map[string]any{"TTL": num(secs)}, &r); err != nil {
		return 0, fmt.Errorf("etcd lease grant: %w", err)
	}
	if r.ID == 0 {
		return 0, errors.New("etcd lease grant: no lease in the answer")
	}
	return int64(r.ID), nil
}

// keepAlive renews the lease every third of its TTL; the lease counts as
// lost when the store says so (TTL 0) or no renewal succeeded for a TTL.
func (l etcdLeases) keepAlive(ctx context.Context, id int64, ttl time.Duration) (<-chan struct{}, error) {
	lost := make(chan struct{})
	go func() {
		defer close(lost)
		last := time.Now()
		t := time.NewTicker(max(ttl/3, 300*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var r struct {
				Result struct {
					TTL num `json:"TTL"`
				} `json:"result"`
			}
			rctx, cancel := context.WithTimeout(ctx, ttl/3)
			err := l.e.call(rctx, "/v3/lease/keepalive", map[string]any{"ID": num(id)}, &r)
			cancel()
			switch {
			case err == nil && r.Result.TTL <= 0:
				return // expired or revoked
			case err == nil:
				last = time.Now()
			case time.Since(last) >= ttl:
				return
			}
		}
	}()
	return lost, nil
}

func (l etcdLeases) put(ctx context.Context, key string, val []byte, id int64) error {
	var r struct{}
	if err := l.e.call(ctx, "/v3/kv/put", map[string]any{"key": []byte(l.e.prefix + key), "value": val, "lease": num(id)}, &r); err != nil {
		return fmt.Errorf("etcd put %s: %w", key, err)
	}
	return nil
}

func (l etcdLeases) revoke(ctx context.Context, id int64) error {
	var r struct{}
	return l.e.call(ctx, "/v3/lease/revoke", map[string]any{"ID": num(id)}, &r)
}

// MemberStatus is one member's answer to a status request.
type MemberStatus struct {
	Endpoint string
	Version  string
	Leader   bool
	Revision int64
	Err      error
}

// Status asks every member for its status (doctor).
func (e *Etcd) Status(ctx context.Context) []MemberStatus {
	var out []MemberStatus
	for _, ep := range e.eps {
		var r struct {
			Header  header `json:"header"`
			Version string `json:"version"`
			Leader  num    `json:"leader"`
		}
		body, _ := json.Marshal(map[string]any{})
		err := e.post(ctx, ep, "/v3/maintenance/status", body, &r, true)
		out = append(out, MemberStatus{Endpoint: ep, Version: r.Version, Leader: err == nil && r.Leader != 0 && r.Leader == r.Header.MemberID,
			Revision: int64(r.Header.Revision), Err: err})
	}
	return out
}
