package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/fleetstore"
	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/membership"
	"github.com/jitsi-agent/jitsi-agent/internal/watch"
)

// DefaultLeaseTTL is how long a host stays registered after its agent
// stops renewing (crash, partition).
const DefaultLeaseTTL = 10 * time.Second

// CacheDir is where a host keeps its last good generation (sealed, as the
// store had it) so it starts and serves without the store.
const CacheDir = "var/lib/jitsi-agent/fleet"

// RunnerConfig configures a host's fleet agent.
type RunnerConfig struct {
	Store   fleetstore.Store
	Key     Key
	Host    string
	Version string
	// Root is the host's root directory ("" = /): the cache lives under it.
	Root string
	// Daemon is the agent core that loads, renders and applies.
	Daemon *agent.Daemon
	Log    logrus.FieldLogger
	// LeaseTTL defaults to DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Redact hides secret values in the errors the host registers.
	Redact func(string) string
	// HealthEvery is how often live service health is re-read for the
	// registration (in memory; written only when it changes). Default 5s.
	HealthEvery time.Duration
}

// candidate is a generation ready to apply.
type candidate struct {
	gen    *Generation
	bundle *Bundle
	secret string
}

// Runner is one host's fleet agent: it watches the store, picks the
// generation the rollout lets it take, hands it to the agent core (it is
// the daemon's Applier) and registers the host's state under a lease.
type Runner struct {
	cfg      RunnerConfig
	triggers chan string

	mu         sync.Mutex
	cur        *Current
	gens       map[int64]*Generation
	hosts      map[string]*HostRecord
	secret     string
	secretBox  []byte
	next       *candidate // what the next pass applies
	applied    *candidate // last generation applied without error
	target     int64
	waiting    string
	lastErr    string
	drift      []string
	applying   bool
	storeErr   error
	staleSince time.Time // zero: not stale
	lastStale  time.Time
	started    time.Time
	reg        *fleetstore.Registration
	regAlive   bool
	regErr     error
	cacheOnce  sync.Once
	members    *membership.View
	badMembers map[string]bool
	// validMembers caches which registrations passed the membership
	// checks (by name and membership fields).
	validMembers map[string]bool
	// membersDirty: a registration changed in what the membership view
	// holds; membersPlan: the plan the view was built with.
	membersDirty bool
	membersPlan  string
	resync       chan struct{} // list again (after the store came back)
	changed      chan struct{} // closed at each state change (tests, benchmarks)
}

// NewRunner returns a host's fleet agent; Run starts it.
func NewRunner(cfg RunnerConfig) *Runner {
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.HealthEvery == 0 {
		cfg.HealthEvery = 5 * time.Second
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.Out = nilWriter{}
		cfg.Log = l
	}
	if cfg.Redact == nil {
		cfg.Redact = func(s string) string { return s }
	}
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	return &Runner{cfg: cfg, triggers: make(chan string, 1), gens: map[int64]*Generation{}, hosts: map[string]*HostRecord{},
		started: time.Now().UTC(), changed: make(chan struct{}), badMembers: map[string]bool{}, validMembers: map[string]bool{}, resync: make(chan struct{}, 1)}
}

type nilWriter struct{}

func (nilWriter) Write(p []byte) (int, error) { return len(p), nil }

// Triggers asks the daemon for a pass (a new generation may be applied, or
// the core stored a certificate): daemon.Deps.Triggers.
func (r *Runner) Triggers() <-chan string { return r.triggers }

func (r *Runner) trigger(why string) {
	select {
	case r.triggers <- why:
	default:
	}
}

// Status is the host's fleet state as the agent sees it.
type Status struct {
	Record HostRecord
	Stale  bool
}

// Status returns the host's current fleet state.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Status{Record: r.recordLocked(), Stale: !r.staleSince.IsZero()}
}

// Changed is closed at the next change of Status.
func (r *Runner) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// changedLocked publishes the state (registration) and wakes waiters.
func (r *Runner) changedLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
	if r.reg != nil {
		rec := r.recordLocked()
		b, _ := json.Marshal(&rec)
		r.reg.Set(b)
	}
}

func (r *Runner) recordLocked() HostRecord {
	rec := HostRecord{Host: r.cfg.Host, Version: r.cfg.Version, Target: r.target, Waiting: r.waiting,
		LastError: r.lastErr, Drift: slices.Clone(r.drift), Started: r.started, LeaseTTL: r.cfg.LeaseTTL.Seconds()}
	plan := r.next
	if r.applied != nil {
		rec.Generation = r.applied.gen.Number
		plan = r.applied
	}
	if plan != nil {
		if p, ok := plan.gen.Host(r.cfg.Host); ok {
			rec.Roles, rec.Address, rec.Shard = p.Roles, p.Address, p.Shard
		}
	}
	if !r.lastStale.IsZero() {
		t := r.lastStale
		rec.StaleSince = &t
	}
	// Re-applying the running generation (a membership change, drift, a
	// rescan) is not a rollout step: the host stays healthy meanwhile.
	moving := r.applying && (r.applied == nil || r.next == nil || r.next.gen.Number != r.applied.gen.Number)
	rec.Healthy = r.lastErr == "" && r.applied != nil && !moving && r.servicesOK()
	switch {
	case moving:
		rec.State = "applying"
	case r.lastErr != "":
		rec.State = "failed"
	case r.waiting != "":
		rec.State = "waiting"
	case !rec.Healthy:
		rec.State = "degraded"
	default:
		rec.State = "ok"
	}
	return rec
}

func (r *Runner) servicesOK() bool {
	if r.cfg.Daemon == nil {
		return true
	}
	for _, s := range r.cfg.Daemon.Services() {
		if !s.OK {
			return false
		}
	}
	return true
}

// Services implements daemon.LiveSource: the core's services and one
// "fleet" entry, not OK while the host is stale (etcd unreachable), so
// `jitsi-agent status` and /healthz say so.
func (r *Runner) Services() []daemon.ServiceStatus {
	var out []daemon.ServiceStatus
	if r.cfg.Daemon != nil {
		out = r.cfg.Daemon.Services()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.recordLocked()
	st := daemon.ServiceStatus{Component: "fleet", Unit: "etcd", OK: r.staleSince.IsZero(),
		State: fmt.Sprintf("generation %d (target %d)", rec.Generation, rec.Target)}
	if rec.Waiting != "" {
		st.State += ", waiting for " + rec.Waiting
	}
	if !st.OK {
		st.Problem = fmt.Sprintf("etcd unreachable since %s; running generation %d (stale)", r.staleSince.Format(time.RFC3339), rec.Generation)
	}
	return append(out, st)
}

// Apply implements daemon.Applier: it points the core at the generation
// the rollout allows and applies it.
func (r *Runner) Apply(ctx context.Context, req daemon.Request) (daemon.Outcome, error) {
	r.mu.Lock()
	next := r.next
	if next != nil {
		r.applying = true
		r.changedLocked()
	}
	r.mu.Unlock()
	if next == nil {
		return daemon.Outcome{}, daemon.InvalidSpec(errors.New("fleet: no generation yet (waiting for 'jitsi-agent fleet push' and the store)"))
	}
	path, opts := next.bundle.Options(r.cfg.Host, next.secret)
	r.cfg.Daemon.SetSource(path, opts)
	out, err := r.cfg.Daemon.Apply(ctx, req)
	out.Watch = hostWatch(out.Watch)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.applying = false
	r.drift = r.drift[:0]
	for _, d := range out.Drift {
		if !d.Restored {
			r.drift = append(r.drift, d.Path)
		}
	}
	if err != nil {
		r.lastErr = r.cfg.Redact(err.Error())
		r.cfg.Log.WithField("generation", next.gen.Number).WithError(errors.New(r.lastErr)).Warn("fleet: generation not applied")
	} else {
		r.lastErr = ""
		if r.applied == nil || r.applied.gen.Number != next.gen.Number {
			r.cfg.Log.WithField("generation", next.gen.Number).Info("fleet: generation applied")
			if cerr := r.saveCache(next); cerr != nil {
				r.cfg.Log.WithError(cerr).Warn("fleet: cannot cache the generation (a restart without the store would wait for it)")
			}
		}
		r.applied = next
	}
	r.changedLocked()
	return out, err
}

// Rollback implements daemon.Rollbacker (the status socket's local
// rollback) through the core.
func (r *Runner) Rollback(ctx context.Context, to int) (daemon.Outcome, error) {
	out, err := r.cfg.Daemon.Rollback(ctx, to)
	out.Watch = hostWatch(out.Watch)
	return out, err
}

// hostWatch drops the generation's virtual paths from what the daemon
// watches: they are not on this host's disk; the store is watched instead.
func hostWatch(p watch.Paths) watch.Paths {
	var out watch.Paths
	in := func(s string) bool { return s == SpecDir || strings.HasPrefix(s, SpecDir+"/") }
	for _, f := range p.Files {
		if !in(f) {
			out.Files = append(out.Files, f)
		}
	}
	for _, d := range p.Dirs {
		if !in(d) {
			out.Dirs = append(out.Dirs, d)
		}
	}
	return out
}

// Run follows the store until ctx ends: list, watch, re-list after a
// broken watch; the host keeps its generation whatever the store does.
func (r *Runner) Run(ctx context.Context) error {
	r.useCache()
	reg, err := r.cfg.Store.Register(ctx, hostKey(r.cfg.Host), r.cfg.LeaseTTL)
	if err != nil {
		return err
	}
	defer reg.Close()
	r.mu.Lock()
	r.reg = reg
	r.changedLocked()
	r.mu.Unlock()

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(2)
	go func() { defer wg.Done(); r.followRegistration(ctx, reg) }()
	go func() { defer wg.Done(); r.followCore(ctx) }()

	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := r.sync(ctx)
		if ctx.Err() != nil {
			return nil
		}
		r.setStoreErr(err)
		if err == nil {
			backoff = 200 * time.Millisecond // a resync, not a failure
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		if err != nil {
			backoff = min(2*backoff, 2*time.Second)
		}
	}
	return nil
}

// followRegistration turns the lease's life into the stale flag.
func (r *Runner) followRegistration(ctx context.Context, reg *fleetstore.Registration) {
	for {
		ch := reg.Changed()
		alive, _, err := reg.Alive()
		r.mu.Lock()
		r.regAlive, r.regErr = alive, err
		r.updateStaleLocked()
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// updateStaleLocked: the host is stale while the store does not answer
// (a failed list or watch) or its lease is lost; it keeps serving its
// generation meanwhile.
func (r *Runner) updateStaleLocked() {
	stale := r.storeErr != nil || (!r.regAlive && r.regErr != nil)
	switch {
	case stale && r.staleSince.IsZero():
		r.staleSince = time.Now().UTC()
		r.lastStale = r.staleSince
		gen := int64(0)
		if r.applied != nil {
			gen = r.applied.gen.Number
		}
		err := r.storeErr
		if err == nil {
			err = r.regErr
		}
		r.cfg.Log.WithError(err).WithField("generation", gen).Warn("fleet: store unreachable; keeping the running generation (stale)")
		r.changedLocked()
	case !stale && !r.staleSince.IsZero() && r.regAlive:
		r.cfg.Log.WithField("stale_for", time.Since(r.staleSince).Round(time.Second).String()).Info("fleet: store reachable again; catching up")
		r.staleSince = time.Time{}
		select {
		case r.resync <- struct{}{}:
		default:
		}
		r.changedLocked()
	}
}

// followCore forwards the core's own triggers (a stored certificate) and
// re-reads live health for the registration.
func (r *Runner) followCore(ctx context.Context) {
	var core <-chan string
	if r.cfg.Daemon != nil {
		core = r.cfg.Daemon.Triggers()
	}
	t := time.NewTicker(r.cfg.HealthEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case why := <-core:
			r.trigger(why)
		case <-t.C:
			r.mu.Lock()
			if r.reg != nil {
				rec := r.recordLocked()
				b, _ := json.Marshal(&rec)
				r.reg.Set(b) // written only if it differs
			}
			r.mu.Unlock()
		}
	}
}

func (r *Runner) setStoreErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.storeErr = err
	r.updateStaleLocked()
}

// sync lists the fleet, then follows its changes until the watch breaks.
func (r *Runner) sync(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	kvs, rev, err := r.cfg.Store.List(lctx, "")
	cancel()
	if err != nil {
		return err
	}
	r.mu.Lock()
	haveSecret := r.secret != ""
	r.mu.Unlock()
	if !haveSecret {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		sec, box, err := EnsureClusterSecret(sctx, r.cfg.Store, r.cfg.Key)
		cancel()
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.secret, r.secretBox = sec, box
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.storeErr = nil
	r.updateStaleLocked()
	r.cur, r.gens, r.hosts = nil, map[int64]*Generation{}, map[string]*HostRecord{}
	r.membersDirty = true
	for _, kv := range kvs {
		r.applyKV(kv, false)
	}
	r.evaluateLocked()
	r.followMembersLocked()
	r.mu.Unlock()

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := r.cfg.Store.Watch(wctx, "", rev+1)
	for {
		var resp fleetstore.WatchResponse
		var ok bool
		select {
		case resp, ok = <-w:
		case <-r.resync:
			// The lease came back after a loss: list again rather than
			// trust a watch stream that may have died silently meanwhile.
			return nil
		}
		if !ok {
			return ctx.Err()
		}
		if resp.Err != nil {
			return resp.Err
		}
		if len(resp.Events) == 0 {
			continue
		}
		r.mu.Lock()
		for _, ev := range resp.Events {
			r.applyKV(ev.KV, ev.Deleted)
		}
		r.evaluateLocked()
		r.followMembersLocked()
		r.mu.Unlock()
	}
}

func (r *Runner) applyKV(kv fleetstore.KV, deleted bool) {
	switch {
	case kv.Key == keyCurrent:
		if deleted {
			r.cur = nil
			return
		}
		c, err := decode[Current](kv.Value)
		if err != nil {
			r.cfg.Log.WithError(err).Warn("fleet: unreadable current generation")
			return
		}
		r.cur = c
	case strings.HasPrefix(kv.Key, prefixGeneration):
		n, ok := parseGenerationKey(kv.Key)
		if !ok {
			return
		}
		if deleted {
			delete(r.gens, n)
			return
		}
		g, err := decode[Generation](kv.Value)
		if err != nil || g.Number != n {
			r.cfg.Log.WithField("generation", n).Warn("fleet: unreadable generation")
			return
		}
		r.gens[n] = g
	case strings.HasPrefix(kv.Key, prefixHost):
		name := strings.TrimPrefix(kv.Key, prefixHost)
		if deleted {
			delete(r.hosts, name)
			r.membersDirty = true
			return
		}
		h, err := decode[HostRecord](kv.Value)
		if err != nil {
			return
		}
		if old, ok := r.hosts[name]; !ok || memberKey(old) != memberKey(h) {
			r.membersDirty = true
		}
		r.hosts[name] = h
	}
}

// evaluateLocked picks the generation to run: the current one once the
// rollout reaches this host.
func (r *Runner) evaluateLocked() {
	before := fmt.Sprintf("%d|%s", r.target, r.waiting)
	defer func() {
		if fmt.Sprintf("%d|%s", r.target, r.waiting) != before {
			r.changedLocked()
		}
	}()
	if r.cur == nil || r.cur.Generation == 0 {
		r.waiting = "no generation pushed yet"
		return
	}
	g := r.gens[r.cur.Generation]
	if g == nil {
		r.waiting = fmt.Sprintf("generation %d is not in the store", r.cur.Generation)
		return
	}
	r.target = g.Number
	if r.applied != nil && r.applied.gen.Number == g.Number && r.applied.gen.Digest == g.Digest && r.next == r.applied {
		r.waiting = "" // already there (a rollback to what this host runs)
		return
	}
	ok, waiting := MayApply(g, r.cfg.Host, r.hosts)
	if !ok {
		r.waiting = waiting
		return
	}
	r.waiting = ""
	if r.next != nil && r.next.gen.Number == g.Number && r.next.gen.Digest == g.Digest && r.next.secret == r.secret {
		return
	}
	b, err := g.Open(r.cfg.Key)
	if err != nil {
		r.lastErr = err.Error()
		r.cfg.Log.WithError(err).Error("fleet: cannot open the generation")
		return
	}
	r.next = &candidate{gen: g, bundle: b, secret: r.secret}
	r.cfg.Log.WithField("generation", g.Number).Info("fleet: taking generation")
	r.trigger(fmt.Sprintf("fleet generation %d", g.Number))
}

// followMembersLocked renders from the live registrations: when the
// membership (host, shard, address, roles, health of every registered
// host, and this one) changes, the core gets the new view and a pass runs
// (nginx's colibri-ws routes follow the live bridges; a bridge whose lease
// expired leaves them).
func (r *Runner) followMembersLocked() {
	plan := r.next
	if r.applied != nil {
		plan = r.applied
	}
	// Rebuilt only when a registration's host, shard, address, roles or
	// health changed (or this host's plan): state and timestamps change
	// far more often, on every host, and are no membership.
	planKey := ""
	if plan != nil {
		planKey = fmt.Sprintf("%d/%s", plan.gen.Number, plan.gen.Digest)
	}
	if !r.membersDirty && planKey == r.membersPlan {
		return
	}
	r.membersDirty, r.membersPlan = false, planKey
	var ms []membership.Member
	self := false
	for name, h := range r.hosts {
		m := membership.Member{Host: name, Shard: h.Shard, Address: h.Address, Roles: h.Roles, Healthy: memberHealthy(h)}
		if name == r.cfg.Host {
			self = true
			m.Healthy = true
		}
		vkey := name + "|" + memberKey(h)
		if r.validMembers[vkey] {
			ms = append(ms, m)
			continue
		}
		if _, err := membership.New([]membership.Member{m}); err != nil {
			if !r.badMembers[name] {
				r.cfg.Log.WithField("member", name).WithError(err).Warn("fleet: registration not usable for rendering; left out")
				r.badMembers[name] = true
			}
			continue
		}
		delete(r.badMembers, name)
		if len(r.validMembers) > 4*len(r.hosts)+16 {
			clear(r.validMembers) // bounded: stale keys of changed members
		}
		r.validMembers[vkey] = true
		ms = append(ms, m)
	}
	if !self && plan != nil {
		if p, ok := plan.gen.Host(r.cfg.Host); ok {
			ms = append(ms, membership.Member{Host: p.Name, Shard: p.Shard, Address: p.Address, Roles: p.Roles, Healthy: true})
		}
	}
	v, err := membership.New(ms)
	if err != nil {
		r.cfg.Log.WithError(err).Warn("fleet: live membership not usable; rendering from the last one")
		return
	}
	if r.members != nil && r.members.Equal(v) {
		return
	}
	r.members = v
	if r.cfg.Daemon != nil {
		r.cfg.Daemon.SetMembers(v)
	}
	r.cfg.Log.WithField("members", v.String()).Debug("fleet: membership changed")
	if r.next != nil {
		r.trigger("fleet membership")
	}
}

// memberHealthy: a host applying a new generation is not unhealthy for
// the files that route to it.
func memberHealthy(h *HostRecord) bool { return h.Healthy || h.State == "applying" }

// memberKey is what of a registration the membership view holds.
func memberKey(h *HostRecord) string {
	return fmt.Sprintf("%s|%s|%s|%v", h.Shard, h.Address, strings.Join(h.Roles, ","), memberHealthy(h))
}

// cached is the cache file: the generation and the cluster secret, both
// sealed as the store had them.
type cached struct {
	Generation *Generation `json:"generation"`
	SecretBox  []byte      `json:"secret_box"`
}

func (r *Runner) cachePath() string {
	return filepath.Join(r.cfg.Root, CacheDir, "last-good.json")
}

func (r *Runner) saveCache(c *candidate) error {
	b, err := json.Marshal(cached{Generation: c.gen, SecretBox: r.secretBox})
	if err != nil {
		return err
	}
	p := r.cachePath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return fsys.WriteAtomic(p, b, 0o600)
}

// useCache loads the cached generation once (before the first pass).
func (r *Runner) useCache() {
	r.cacheOnce.Do(func() {
		if err := r.loadCache(); err != nil {
			r.cfg.Log.WithError(err).Warn("fleet: cached generation not used")
		}
	})
}

func (r *Runner) loadCache() error {
	b, err := os.ReadFile(r.cachePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var c cached
	if err := json.Unmarshal(b, &c); err != nil || c.Generation == nil {
		return fmt.Errorf("%s: unreadable", r.cachePath())
	}
	bundle, err := c.Generation.Open(r.cfg.Key)
	if err != nil {
		return err
	}
	secret := ""
	if len(c.SecretBox) > 0 {
		plain, err := r.cfg.Key.Open(c.SecretBox, clusterSecretContext)
		if err != nil {
			return fmt.Errorf("cached cluster secret %w", err)
		}
		secret = string(plain)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next = &candidate{gen: c.Generation, bundle: bundle, secret: secret}
	r.secret, r.secretBox = secret, c.SecretBox
	r.cfg.Log.WithField("generation", c.Generation.Number).Info("fleet: starting on the cached generation")
	r.trigger("cached generation")
	return nil
}

// RunHost runs a host's fleet agent: the runner following the store and
// the daemon loop applying what it picks, until ctx ends. deps.Applier and
// deps.Triggers are set here.
func RunHost(ctx context.Context, r *Runner, cfg daemon.Config, deps daemon.Deps) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deps.Applier, deps.Triggers = r, r.Triggers()
	r.useCache() // the daemon's first pass applies the cached generation
	errc := make(chan error, 1)
	go func() {
		err := r.Run(ctx)
		cancel() // the runner only ends with ctx or when it cannot register
		errc <- err
	}()
	derr := daemon.Run(ctx, cfg, deps)
	cancel()
	rerr := <-errc
	return errors.Join(derr, rerr)
}
