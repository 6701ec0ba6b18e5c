package fleetstore_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/jitsi-agent/jitsi-agent/internal/fleetstore"
	"github.com/jitsi-agent/jitsi-agent/internal/fleetstore/etcdtest"
)

func open(t *testing.T, endpoints []string, tlsCfg *tls.Config) *fleetstore.Etcd {
	t.Helper()
	s, err := fleetstore.Open(fleetstore.Config{Endpoints: endpoints, TLS: tlsCfg, Prefix: "/t/"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEtcdStore(t *testing.T) {
	c := etcdtest.Start(t)
	s := open(t, c.Endpoints(), c.TLS())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Create-once: the second create loses the compare-and-swap.
	ok, err := s.Txn(ctx, []fleetstore.Cond{{Key: "secret", ModRev: 0}}, []fleetstore.Op{{Key: "secret", Value: []byte("a")}})
	if err != nil || !ok {
		t.Fatalf("first create: %v %v", ok, err)
	}
	ok, err = s.Txn(ctx, []fleetstore.Cond{{Key: "secret", ModRev: 0}}, []fleetstore.Op{{Key: "secret", Value: []byte("b")}})
	if err != nil || ok {
		t.Fatalf("second create must lose: %v %v", ok, err)
	}
	kv, found, err := s.Get(ctx, "secret")
	if err != nil || !found || string(kv.Value) != "a" || kv.Key != "secret" {
		t.Fatalf("get: %+v %v %v", kv, found, err)
	}
	// Compare on the modification revision.
	ok, err = s.Txn(ctx, []fleetstore.Cond{{Key: "secret", ModRev: kv.ModRev}}, []fleetstore.Op{{Key: "secret", Value: []byte("c")}, {Key: "other", Value: []byte("x")}})
	if err != nil || !ok {
		t.Fatalf("cas: %v %v", ok, err)
	}
	ok, _ = s.Txn(ctx, []fleetstore.Cond{{Key: "secret", ModRev: kv.ModRev}}, []fleetstore.Op{{Key: "secret", Value: []byte("d")}})
	if ok {
		t.Fatal("stale modrev must lose")
	}

	kvs, rev, err := s.List(ctx, "")
	if err != nil || len(kvs) != 2 || kvs[0].Key != "other" || kvs[1].Key != "secret" || string(kvs[1].Value) != "c" {
		t.Fatalf("list: %+v %v", kvs, err)
	}

	// Watch from the listed revision sees the next change, and only under
	// its prefix.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	w := s.Watch(wctx, "hosts/", rev+1)
	if _, err := s.Txn(ctx, nil, []fleetstore.Op{{Key: "unrelated", Value: []byte("1")}, {Key: "hosts/a", Value: []byte("up")}}); err != nil {
		t.Fatal(err)
	}
	got := nextEvents(t, w)
	if len(got) != 1 || got[0].KV.Key != "hosts/a" || string(got[0].KV.Value) != "up" {
		t.Fatalf("watch: %+v", got)
	}

	// A registration lives while renewed and leaves at Close. The TTL is
	// long enough that a stalled test machine does not lose the lease (a
	// lost lease deletes the key and writes it again: events this part
	// does not expect); TestRegistrationPartition is about losing it.
	reg, err := s.Register(ctx, "hosts/b", 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	reg.Set([]byte("v1"))
	ev := nextEvents(t, w)
	if len(ev) != 1 || ev[0].KV.Key != "hosts/b" || string(ev[0].KV.Value) != "v1" {
		t.Fatalf("registration: %+v", ev)
	}
	waitFor(t, 10*time.Second, "registration alive", func() bool { a, _, _ := reg.Alive(); return a })
	reg.Set([]byte("v2"))
	if ev := nextEvents(t, w); len(ev) != 1 || string(ev[0].KV.Value) != "v2" {
		t.Fatalf("update: %+v", ev)
	}
	reg.Close()
	if ev := nextEvents(t, w); len(ev) != 1 || !ev[0].Deleted || ev[0].KV.Key != "hosts/b" {
		t.Fatalf("close must delete: %+v", ev)
	}
}

func nextEvents(t *testing.T, w <-chan fleetstore.WatchResponse) []fleetstore.Event {
	t.Helper()
	return collectEvents(t, w, 1)
}

// collectEvents reads watch responses until at least n events arrived. etcd
// may deliver changes made one after another in one response or in several,
// so a test that expects n events must not assume how they are batched.
func collectEvents(t *testing.T, w <-chan fleetstore.WatchResponse, n int) []fleetstore.Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	var got []fleetstore.Event
	for len(got) < n {
		select {
		case r, ok := <-w:
			if !ok {
				t.Fatalf("watch closed after %d of %d events: %+v", len(got), n, got)
			}
			if r.Err != nil {
				t.Fatalf("watch: %v", r.Err)
			}
			got = append(got, r.Events...)
		case <-timeout:
			t.Fatalf("watch: %d of %d events in 20s: %+v", len(got), n, got)
		}
	}
	return got
}

// A client cut off from every member loses its lease (the key leaves after
// the TTL, seen by another client), and registers again once it can reach
// the cluster.
func TestRegistrationPartition(t *testing.T) {
	c := etcdtest.Start(t)
	link := c.NewLink(t)
	agent := open(t, link.Endpoints(), c.TLS())
	observer := open(t, c.Endpoints(), c.TLS())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	reg, err := agent.Register(ctx, "hosts/jvb1", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	reg.Set([]byte("up"))
	present := func() bool {
		_, ok, err := observer.Get(ctx, "hosts/jvb1")
		return err == nil && ok
	}
	waitFor(t, 20*time.Second, "registered", present)

	link.Cut(true)
	waitFor(t, 30*time.Second, "lease expired", func() bool { return !present() })
	waitFor(t, 30*time.Second, "registration reports lost", func() bool { a, _, _ := reg.Alive(); return !a })

	link.Cut(false)
	waitFor(t, 30*time.Second, "registered again", present)
	waitFor(t, 30*time.Second, "alive again", func() bool { a, _, _ := reg.Alive(); return a })
}

// Killing the leader does not lose a write or a watch: the client moves to
// another member.
func TestLeaderKill(t *testing.T) {
	c := etcdtest.Start(t)
	s := open(t, c.Endpoints(), c.TLS())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, rev, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	w := s.Watch(ctx, "", rev+1)
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Kill(leader)
	if _, err := c.WaitLeaderExcept(ctx, leader); err != nil {
		t.Fatal(err)
	}
	// Writes are retried by the caller until one lands (the client may
	// still be on the dead member's connection for the first attempt).
	for i := 0; ; i++ {
		_, err := s.Txn(ctx, nil, []fleetstore.Op{{Key: "k", Value: []byte("after")}})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("write after leader kill: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// An attempt that failed on the client side may still have been
	// applied, so the write may show more than once (in one response or in
	// several); each event is that write.
	ev := nextEvents(t, w)
	for _, e := range ev {
		if e.Deleted || e.KV.Key != "k" || string(e.KV.Value) != "after" {
			t.Fatalf("watch after leader kill: %+v", ev)
		}
	}
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	// The restarted member rejoins and serves the write.
	one := open(t, []string{leader.ClientURL}, c.TLS())
	waitFor(t, 30*time.Second, "restarted member serves the data", func() bool {
		kv, ok, err := one.Get(ctx, "k")
		return err == nil && ok && string(kv.Value) == "after"
	})
}

// Without the client certificate the cluster refuses the connection.
func TestClientCertRequired(t *testing.T) {
	c := etcdtest.Start(t)
	cfg := c.TLS()
	cfg.Certificates = nil
	s := open(t, c.Endpoints(), cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, _, err := s.Get(ctx, "x")
	if err == nil {
		t.Fatal("a client without certificate was served")
	}
	if !strings.Contains(fmt.Sprint(err), "etcd get x") {
		t.Fatalf("error lacks context: %v", err)
	}
}

// The store speaks the JSON gateway; what it writes is what etcd's own Go
// client (the reference) reads, and the reverse, watches included.
func TestOfficialClientAgrees(t *testing.T) {
	c := etcdtest.Start(t)
	s := open(t, c.Endpoints(), c.TLS())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ref, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: c.TLS(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()

	bin := []byte{0, 1, 2, 0xff, '"', '\n'}
	if ok, err := s.Txn(ctx, []fleetstore.Cond{{Key: "a", ModRev: 0}}, []fleetstore.Op{{Key: "a", Value: bin}}); !ok || err != nil {
		t.Fatalf("txn: %v %v", ok, err)
	}
	r, err := ref.Get(ctx, "/t/a")
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != string(bin) {
		t.Fatalf("reference client reads %+v %v", r, err)
	}
	_, rev, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	w := s.Watch(ctx, "", rev+1)
	if _, err := ref.Put(ctx, "/t/b", "from-ref"); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.Put(ctx, "/u/outside", "x"); err != nil { // outside the prefix
		t.Fatal(err)
	}
	if _, err := ref.Delete(ctx, "/t/a"); err != nil {
		t.Fatal(err)
	}
	// The put and the delete, in order; the write outside the prefix is not
	// seen. etcd may send both in one response or in two.
	ev := collectEvents(t, w, 2)
	if len(ev) != 2 || ev[0].KV.Key != "b" || string(ev[0].KV.Value) != "from-ref" || ev[0].Deleted {
		t.Fatalf("watch put: %+v", ev)
	}
	if ev[1].KV.Key != "a" || !ev[1].Deleted {
		t.Fatalf("watch delete: %+v", ev)
	}
	kv, ok, err := s.Get(ctx, "b")
	if err != nil || !ok || string(kv.Value) != "from-ref" || kv.ModRev == 0 {
		t.Fatalf("get: %+v %v %v", kv, ok, err)
	}
	// A registration is a key on a lease the reference client sees.
	reg, err := s.Register(ctx, "hosts/x", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	reg.Set([]byte("up"))
	waitFor(t, 20*time.Second, "leased key", func() bool {
		r, err := ref.Get(ctx, "/t/hosts/x")
		return err == nil && len(r.Kvs) == 1 && r.Kvs[0].Lease != 0
	})
	// Renewed past its TTL.
	time.Sleep(4 * time.Second) // the lease must outlive its TTL: renewals, not the clock, keep it
	if r, err := ref.Get(ctx, "/t/hosts/x"); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("lease not renewed: %+v %v", r, err)
	}
	reg.Close()
	if r, err := ref.Get(ctx, "/t/hosts/x"); err != nil || len(r.Kvs) != 0 {
		t.Fatalf("revoked lease left the key: %+v %v", r, err)
	}
}

// With etcd's auth on, each host signs in as its own user: it reads the
// fleet and writes its registration and the cluster secret, nothing else.
func TestAuthRoles(t *testing.T) {
	c := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// etcd refuses gateway requests whose client certificate carries a
	// common name once auth is on (it would not be the user): the hosts'
	// certificates have none; the password names the user.
	crt, key, err := c.IssueClient("")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := etcdtest.ClientTLS(c.CA, crt, key)
	if err != nil {
		t.Fatal(err)
	}
	openAs := func(user, pw string) *fleetstore.Etcd {
		s, err := fleetstore.Open(fleetstore.Config{Endpoints: c.Endpoints(), TLS: tlsCfg, Prefix: "/t/", Username: user, Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	if err := openAs("", "").EnableAuth(ctx, "root-password-for-the-test"); err != nil {
		t.Fatal(err)
	}
	root := openAs("root", "root-password-for-the-test")
	for _, h := range []string{"jvb1", "jvb2"} {
		if err := root.GrantHost(ctx, h, h+"-password"); err != nil {
			t.Fatal(err)
		}
	}
	if err := root.GrantPusher(ctx, "pusher", "pusher-password"); err != nil {
		t.Fatal(err)
	}
	pusher := openAs("pusher", "pusher-password")
	if ok, err := pusher.Txn(ctx, nil, []fleetstore.Op{{Key: "current", Value: []byte("1")}}); !ok || err != nil {
		t.Fatalf("pusher write: %v %v", ok, err)
	}
	jvb1 := openAs(fleetstore.HostUser("jvb1"), "jvb1-password")
	if kvs, _, err := jvb1.List(ctx, ""); err != nil || len(kvs) != 1 {
		t.Fatalf("host read: %v %v", kvs, err)
	}
	reg, err := jvb1.Register(ctx, "hosts/jvb1", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	reg.Set([]byte("up"))
	waitFor(t, 20*time.Second, "own registration", func() bool { a, _, _ := reg.Alive(); return a })
	if ok, err := jvb1.Txn(ctx, []fleetstore.Cond{{Key: "secrets/cluster", ModRev: 0}}, []fleetstore.Op{{Key: "secrets/cluster", Value: []byte("box")}}); !ok || err != nil {
		t.Fatalf("cluster secret create: %v %v", ok, err)
	}
	for _, k := range []string{"hosts/jvb2", "current", "generations/00000000000000000002"} {
		if _, err := jvb1.Txn(ctx, nil, []fleetstore.Op{{Key: k, Value: []byte("x")}}); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("jvb1 wrote %s: %v", k, err)
		}
	}
	if _, _, err := openAs("", "").List(ctx, ""); err == nil {
		t.Error("an anonymous client read the fleet")
	}
	if _, _, err := openAs(fleetstore.HostUser("jvb1"), "wrong").List(ctx, ""); err == nil {
		t.Error("a wrong password was accepted")
	}
}
