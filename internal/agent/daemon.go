package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/jitsi-agent/jitsi-agent/internal/apply"
	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/deferred"
	"github.com/jitsi-agent/jitsi-agent/internal/firewall"
	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/joinapi"
	"github.com/jitsi-agent/jitsi-agent/internal/membership"
	"github.com/jitsi-agent/jitsi-agent/internal/metrics"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
	"github.com/jitsi-agent/jitsi-agent/internal/watch"
)

// FirewallDriftPath names the live nftables table in drift reports.
const FirewallDriftPath = "nft:table inet jitsi_agent"

// DaemonConfig configures a Daemon.
type DaemonConfig struct {
	// Spec is the spec file (absolute).
	Spec string
	// Load are the spec options (host, variables).
	Load spec.Options
	// Root is the directory treated as / ("" = /).
	Root string
	// Env is the side effects. Env.Units nil keeps units untouched;
	// Env.ACME nil never runs the certificate manager.
	Env Env
	// Log receives the daemon's log lines.
	Log logrus.FieldLogger
	// JoinAPI serves the app's join endpoint while the spec has token_api
	// (default on; tests of the core turn it off).
	NoJoinAPI bool
	// SuperviseEvery is how often the live services are checked between
	// applies (a stopped or failed enabled unit is started again, running
	// ones are probed; `run` uses DefaultSuperviseEvery); 0 = never.
	SuperviseEvery time.Duration
	// FirewallPoll is how often the live firewall table is compared with
	// the rendered one between passes (default 15 s): nothing notifies a
	// change of the kernel's ruleset, so it is polled (one nft call).
	FirewallPoll time.Duration
}

// Daemon is the real pipeline behind `jitsi-agent run`: spec -> render ->
// Apply, one complete pass per call (daemon.Applier). It also keeps the
// spec's background services running (the ACME manager, the join endpoint),
// remembers a set that failed so a rescan does not re-break the services,
// and reports deferred restarts and certificates.
type Daemon struct {
	cfg      DaemonConfig
	root     string
	triggers chan string

	// The ACME manager runs while the spec has tls.acme; it is replaced when
	// those settings change. Renewals land in its cache directory, which is
	// watched, so a renewal re-applies and reloads nginx/Prosody/coturn.
	acme background
	// The join endpoint runs while the spec has token_api.
	joinAPI background
	// supervise keeps the services in their desired state between applies;
	// applyMu keeps it from acting while an apply runs.
	supervise background
	sup       supervisor
	applyMu   sync.Mutex
	// fwWatch polls the live firewall table while the spec has one.
	fwWatch background

	// templates keeps the parsed templates between applies.
	templates render.Cache
	// verdicts keeps prosodyctl's acceptances between applies (and from
	// the pre-checks): a file staged again byte for byte is not re-run.
	verdicts *apply.Verdicts
	// prechecked is the digest of the set the last complete pre-check
	// checked (guarded by applyMu): the same set again is not re-checked.
	prechecked string

	unitsWarned bool
	hold        *hold  // a rollback asked over the socket, kept until the spec changes
	failedSet   string // digest of a set whose units failed and was rolled back
	failedErr   error
	lastWarning string
	notices     map[string]bool
	// lastFirewallHold is the last reason the firewall was held (logged
	// once).
	lastFirewallHold string

	mu         sync.Mutex
	deferredAt string           // deferred-restarts file, known after the first load
	lastGood   *spec.Deployment // for the certificate report
	members    *membership.View // live membership (fleet mode); nil = the spec's hosts
	certsAt    time.Time
	certsCache []metrics.CertInfo
}

// NewDaemon returns the daemon's applier. Close it when done.
func NewDaemon(cfg DaemonConfig) *Daemon {
	root := cfg.Root
	if root == "" {
		root = "/"
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.Out = nilWriter{}
		cfg.Log = l
	}
	return &Daemon{cfg: cfg, root: root, triggers: make(chan string, 1), verdicts: apply.NewVerdicts()}
}

type nilWriter struct{}

func (nilWriter) Write(p []byte) (int, error) { return len(p), nil }

// Triggers asks the daemon for a re-apply (a certificate was stored):
// daemon.Deps.Triggers.
func (a *Daemon) Triggers() <-chan string { return a.triggers }

// Close stops the background services.
func (a *Daemon) Close() {
	a.supervise.stop()
	a.acme.stop()
	a.joinAPI.stop()
	a.fwWatch.stop()
}

// SetSource replaces the spec the next pass loads (fleet mode: each
// generation comes from the store with its own file and environment
// readers).
func (a *Daemon) SetSource(path string, opts spec.Options) {
	a.mu.Lock()
	a.cfg.Spec, a.cfg.Load = path, opts
	a.mu.Unlock()
}

// SetMembers sets the live membership the next passes render from (fleet
// mode: the registrations in the store); nil renders from the spec's host
// blocks.
func (a *Daemon) SetMembers(v *membership.View) {
	a.mu.Lock()
	a.members = v
	a.mu.Unlock()
}

// Services implements daemon.LiveSource: the managed units as the
// supervisor last saw them (state, restarts, live probes).
func (a *Daemon) Services() []daemon.ServiceStatus { return a.sup.snapshot() }

// ensureSupervisor starts the live-service loop once units are managed.
func (a *Daemon) ensureSupervisor() {
	every := a.cfg.SuperviseEvery
	if every <= 0 || a.cfg.Env.Units == nil {
		return
	}
	log := a.cfg.Log
	a.supervise.ensure("on", func(ctx context.Context) {
		t := time.NewTimer(min(every, 2*time.Second))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if a.applyMu.TryLock() {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				a.sup.once(cctx, a.cfg.Env, log.Infof, log.Warnf)
				cancel()
				a.applyMu.Unlock()
			}
			t.Reset(every)
		}
	})
}

// Certificates implements daemon.CertSource from the deployed certificate
// files (certs.BuildReport), cached for a minute: scrapes must not read key
// material every few seconds.
func (a *Daemon) Certificates() []metrics.CertInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Env.now()
	if a.lastGood == nil || (!a.certsAt.IsZero() && now.Sub(a.certsAt) < time.Minute) {
		return a.certsCache
	}
	a.certsAt = now
	rep, err := certs.BuildReport(a.lastGood, a.root, now)
	if err != nil {
		a.cfg.Log.WithError(err).Debug("certificate report")
	}
	a.certsCache = a.certsCache[:0:0]
	for _, e := range rep.Certificates {
		if e.Deployed && !e.NotAfter.IsZero() {
			a.certsCache = append(a.certsCache, metrics.CertInfo{Name: e.Name + "/" + string(e.KeyType), NotAfter: e.NotAfter})
		}
	}
	return a.certsCache
}

// PendingRestarts implements daemon.DeferredSource.
func (a *Daemon) PendingRestarts() []deferred.Restart {
	a.mu.Lock()
	p := a.deferredAt
	a.mu.Unlock()
	if p == "" {
		return nil
	}
	ds, err := deferred.Load(p)
	if err != nil {
		return nil
	}
	return ds
}

// Precheck implements daemon.Prechecker: at the start of a burst of changes
// it loads and renders the spec as it is now and runs prosodyctl on the
// Prosody files the next apply would write (apply.Precheck: scratch copies,
// nothing staged or recorded, no lock: a CLI apply does not wait for it),
// keeping the acceptances in the verdict cache the apply consults. A set
// whose digest equals the last pre-checked one is not checked again. It never runs beside an apply (applyMu; it steps
// aside if one runs) nor while a rollback is held, and reports nothing: a
// spec that does not load, render or pass is left to the apply, which
// checks every file it has no acceptance for.
func (a *Daemon) Precheck(ctx context.Context) {
	if !a.applyMu.TryLock() {
		return
	}
	defer a.applyMu.Unlock()
	if a.hold != nil {
		return
	}
	a.mu.Lock()
	specPath, load, members := a.cfg.Spec, a.cfg.Load, a.members
	a.mu.Unlock()
	res := spec.Load(specPath, load)
	if res.HasErrors() || ctx.Err() != nil {
		return
	}
	d := res.Deployment
	set, err := desiredState(d, a.root, a.cfg.Env.now(), &a.templates, members)
	if err != nil || ctx.Err() != nil {
		return
	}
	digest := SetDigest(set)
	if digest == a.prechecked {
		return // these very files were pre-checked already
	}
	t0 := time.Now()
	err = apply.Precheck(ctx, set, apply.Options{Root: a.root, StateDir: d.StateDir, Verdicts: a.verdicts})
	if err == nil && ctx.Err() == nil {
		a.prechecked = digest
	}
	a.cfg.Log.WithError(err).WithField("ms", time.Since(t0).Milliseconds()).Debug("pre-check")
}

// Apply implements daemon.Applier.
func (a *Daemon) Apply(ctx context.Context, req daemon.Request) (daemon.Outcome, error) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	var out daemon.Outcome
	log := a.cfg.Log
	t0 := time.Now()
	a.mu.Lock()
	specPath, load := a.cfg.Spec, a.cfg.Load
	a.mu.Unlock()
	res := spec.Load(specPath, load)
	tLoad := time.Since(t0)
	out.Redact = res.Redactions()
	out.Watch = WatchPaths(res, nil, a.root)
	if res.HasErrors() {
		return out, daemon.InvalidSpec(errors.New(res.Summary()))
	}
	if ho, ok := a.held(res); ok {
		// The hold keeps the spec's changes out, not certificate renewals.
		ho.Redact = append(ho.Redact, res.Deployment.SecretValues()...)
		err := a.deployRenewals(ctx, res.Deployment, req, &ho)
		return ho, err
	}
	a.warnOnce(res)
	d := res.Deployment
	a.ensureACME(d)
	a.ensureJoinAPI(d)
	out.Redact = append(out.Redact, d.SecretValues()...)
	a.mu.Lock()
	a.deferredAt = deferred.Path(StateDir(d, a.root))
	if a.lastGood == nil || !reflect.DeepEqual(a.lastGood.TLS, d.TLS) {
		a.certsAt = time.Time{} // re-read at the next scrape
	}
	a.lastGood = d
	a.mu.Unlock()

	t1 := time.Now()
	a.mu.Lock()
	members := a.members
	a.mu.Unlock()
	set, err := desiredState(d, a.root, a.cfg.Env.now(), &a.templates, members)
	tRender := time.Since(t1)
	if err != nil {
		var se *SecretsError
		if errors.As(err, &se) {
			return out, err // I/O on the state dir: worth a retry
		}
		return out, daemon.InvalidSpec(err)
	}
	out.Redact = append(out.Redact, set.Redact...)
	out.Watch = WatchPaths(res, set, a.root)
	if req.WatchNow != nil {
		req.WatchNow(existingWatch(out.Watch)) // before anything is written
	}

	digest := SetDigest(set)
	if a.failedSet != "" && digest == a.failedSet && req.Reason != daemon.ReasonSIGHUP {
		// Do not re-break the services every rescan with the configuration
		// that just failed; a change (or SIGHUP) tries again.
		return out, daemon.NoRetry(fmt.Errorf("not re-applying the configuration that failed: %w", a.failedErr))
	}

	env := a.cfg.Env
	if env.Units != nil {
		units := env.Units
		env.Units = func(ctx context.Context) (systemd.Units, error) {
			u, err := units(ctx)
			if err != nil {
				if !a.unitsWarned {
					log.WithError(err).Warn("systemd is not available: files are applied, units are not reloaded")
					a.unitsWarned = true
				}
				return nil, err
			}
			a.unitsWarned = false
			return u, nil
		}
	}
	t2 := time.Now()
	r, err := Apply(ctx, env, d, set, ApplyOptions{Root: a.root, Always: req.Initial, Wrote: req.Wrote, Daemon: true,
		Log: log, Verdicts: a.verdicts})
	log.WithFields(logrus.Fields{
		"load_ms": tLoad.Milliseconds(), "render_ms": tRender.Milliseconds(), "apply_ms": time.Since(t2).Milliseconds(),
	}).Debug("pipeline timings")
	// Drift in files whose policy is "report" is never overwritten: those
	// files are held back (and reported); every other change goes through.
	for _, c := range r.Held {
		out.Drift = append(out.Drift, daemon.Drift{Path: hostPath(a.root, c.Path), Policy: spec.DriftReport})
	}
	// Polled from now on (not during the pass: the table may be missing
	// until it is loaded).
	a.ensureFirewallWatch(d, set)
	if fw := r.Firewall; fw != nil {
		// The live table drifts like a file: edited by hand or flushed
		// (systemctl restart nftables), it is restored or reported.
		switch {
		case fw.State == firewall.Edited || fw.State == firewall.Missing:
			out.Drift = append(out.Drift, daemon.Drift{Path: FirewallDriftPath, Policy: d.Drift, Restored: fw.Action == firewall.ActionApplied})
		case fw.Action == firewall.ActionHeld && fw.Reason != a.lastFirewallHold:
			log.Warnf("firewall: not restored: %s", fw.Reason)
		}
		a.lastFirewallHold = fw.Reason
	}
	if r.Files == nil {
		var ce *apply.CheckError
		if errors.As(err, &ce) {
			return out, daemon.NoRetry(err) // the staged files are invalid: same input, same result
		}
		return out, err
	}
	for _, c := range r.Files.Changes {
		out.Written = append(out.Written, hostPath(a.root, c.Dest()))
		if c.Reason == plan.ReasonDrift {
			out.Drift = append(out.Drift, daemon.Drift{Path: hostPath(a.root, c.Path), Policy: DriftPolicy(d, c.File), Restored: true})
		}
	}
	a.logNotices(r.Files.Notices, r.Files.Changed())
	if so := r.Services; so != nil {
		out.Written = append(out.Written, so.Restored...)
		out.Reloaded = r.Reloaded()
		if so.Report != nil {
			for _, u := range so.Report.Failed() {
				msg := string(u.Action) + " failed"
				if u.Err != nil {
					msg = u.Err.Error()
				}
				out.ReloadFailures = append(out.ReloadFailures, daemon.UnitFailure{Unit: u.Unit, Error: msg})
			}
		}
	}
	if err != nil {
		if IsCleanRollback(err) {
			a.failedSet, a.failedErr = digest, err
			return out, daemon.NoRetry(err)
		}
		return out, err
	}
	a.failedSet = ""
	a.sup.use(d, set)
	a.ensureSupervisor()
	return out, nil
}

// logNotices logs each new apply notice once (ownership skipped without
// root... repeat on every apply).
func (a *Daemon) logNotices(notices []string, changed bool) {
	seen := map[string]bool{}
	for _, n := range notices {
		seen[n] = true
		if !a.notices[n] {
			a.cfg.Log.WithField("notice", n).Info("apply")
		}
	}
	if len(notices) > 0 || changed {
		a.notices = seen
	}
}

// warnOnce logs the spec's warnings when they change.
func (a *Daemon) warnOnce(res *spec.Result) {
	var b strings.Builder
	for _, d := range res.Diags {
		b.WriteString(d.Error())
		b.WriteByte('\n')
	}
	if w := b.String(); w != "" && w != a.lastWarning {
		for _, d := range res.Diags {
			a.cfg.Log.Warn("spec: " + d.Error())
		}
	}
	a.lastWarning = b.String()
}

// ensureACME starts, keeps or replaces the certificate manager to match d.
func (a *Daemon) ensureACME(d *spec.Deployment) {
	key := ""
	if d.TLS.ACME != nil && a.cfg.Env.ACME != nil {
		key = fmt.Sprintf("%s|%s|%v|%+v", d.Domain, d.TLS.Certificate, d.Host.Roles, *d.TLS.ACME)
	}
	a.acme.ensure(key, func(ctx context.Context) {
		err := a.cfg.Env.ACME.Run(ctx, d, a.root, func(name string, notAfter time.Time) {
			a.cfg.Log.WithFields(logrus.Fields{"name": name, "not_after": notAfter}).Info("certificates: stored; redeploying")
			select { // the cache dir is watched too; this covers a cache dir created before its watch
			case a.triggers <- "certificate":
			default:
			}
		})
		if err != nil && ctx.Err() == nil {
			a.cfg.Log.WithError(err).Warn("certificates: not managed")
		}
	})
}

// ensureFirewallWatch polls the live table while the rendered set has a
// ruleset: a hand edit or a flush (systemctl restart nftables) triggers a
// pass, which restores or reports it like a file's drift.
func (a *Daemon) ensureFirewallWatch(d *spec.Deployment, set *render.Set) {
	key := ""
	var script []byte
	if f, ok := set.Lookup(firewall.Path); ok && a.cfg.Env.Firewall != nil {
		script = f.Content
		key = StateDir(d, a.root) + "|" + fsys.SHA256(script)
	}
	every := a.cfg.FirewallPoll
	if every <= 0 {
		every = 15 * time.Second
	}
	m := func() *firewall.Manager {
		if a.cfg.Env.Firewall == nil {
			return nil
		}
		return a.cfg.Env.Firewall.Manager(d, a.root)
	}()
	a.fwWatch.ensure(key, func(ctx context.Context) {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			st, err := m.Drift(ctx, script)
			if err != nil || st != firewall.Edited && st != firewall.Missing {
				continue
			}
			select {
			case a.triggers <- "firewall":
			default:
			}
		}
	})
}

// ensureJoinAPI serves the app's join endpoint while the spec has
// token_api, restarting it when its settings or the JWT settings change.
func (a *Daemon) ensureJoinAPI(d *spec.Deployment) {
	key := ""
	if d.TokenAPI != nil && d.Auth.JWT != nil && !a.cfg.NoJoinAPI {
		h := sha256.New() // the key holds no secret in clear
		fmt.Fprintf(h, "%s|%s|%v|%+v|%v|%s|%s", d.Domain, d.ServerURL(), d.Tenants, *d.TokenAPI, d.Auth.JWT.Lifetime, d.Auth.JWT.AppID, d.Auth.JWT.Algorithm)
		for _, v := range d.SecretValues() {
			h.Write([]byte(v))
		}
		fmt.Fprintf(h, "%v%v", d.Auth.JWT.Issuers, d.Auth.JWT.Audiences)
		key = fmt.Sprintf("%x", h.Sum(nil))
	}
	log := a.cfg.Log
	a.joinAPI.ensure(key, func(ctx context.Context) {
		srv, err := joinapi.ForDeployment(d, log)
		if err != nil {
			log.WithError(err).Error("join endpoint: not started")
			return
		}
		log.WithField("listen", d.TokenAPI.Listen).Info("join endpoint: serving /api/v1/live/streams/{stream_id}/join")
		if err := srv.ListenAndServe(ctx); err != nil {
			log.WithError(err).Error("join endpoint: stopped")
		}
	})
}

// background is a goroutine the daemon keeps running while the spec asks
// for it, restarted when its settings (key) change.
type background struct {
	key    string
	cancel context.CancelFunc
	done   chan struct{}
}

// ensure keeps the goroutine matching key ("" = none); start runs until ctx
// ends.
func (b *background) ensure(key string, start func(ctx context.Context)) {
	if key == b.key {
		return
	}
	b.stop()
	b.key = key
	if key == "" {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.cancel, b.done = cancel, done
	go func() {
		defer close(done)
		start(ctx)
	}()
}

func (b *background) stop() {
	if b.cancel != nil {
		b.cancel()
		<-b.done
		b.cancel, b.done = nil, nil
	}
	b.key = ""
}

// existingWatch keeps the watch paths whose directory exists already: they
// are what a hand edit can touch while the apply runs. Directories the
// apply itself creates are watched once it returns (watching their parents
// now would report our own mkdir as a change).
func existingWatch(p watch.Paths) watch.Paths {
	var out watch.Paths
	isDir := func(d string) bool {
		fi, err := os.Stat(d)
		return err == nil && fi.IsDir()
	}
	for _, f := range p.Files {
		if isDir(filepath.Dir(f)) {
			out.Files = append(out.Files, f)
		}
	}
	for _, d := range p.Dirs {
		if isDir(d) {
			out.Dirs = append(out.Dirs, d)
		}
	}
	return out
}
