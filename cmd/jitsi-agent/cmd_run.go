package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/jitsi-agent/jitsi-agent/internal/apply"
	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/joinapi"
	"github.com/jitsi-agent/jitsi-agent/internal/logging"
	"github.com/jitsi-agent/jitsi-agent/internal/metrics"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
	"github.com/jitsi-agent/jitsi-agent/internal/watch"
)

func runRun(c *cli.Call) int {
	stderr := c.Stderr
	root, noReload, noACME, socket, metricsAddr := c.String("root"), c.Bool("no-reload"), c.Bool("no-acme"), c.String("socket"), c.String("metrics")
	specOpts, err := specOptions(c)
	if err != nil {
		fmt.Fprintf(stderr, "jitsi-agent: %v\n", err)
		return exitError
	}
	host := specOpts.Host
	pos := c.Args
	specPath, err := filepath.Abs(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "jitsi-agent: %v\n", err)
		return exitError
	}
	rootDir, err := hostRoot(root)
	if err != nil {
		fmt.Fprintf(stderr, "jitsi-agent: %v\n", err)
		return exitError
	}
	log, red, err := logging.New(logging.Options{Level: c.String("log-level"), Format: c.String("log-format"), Out: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "jitsi-agent: %v\n", err)
		return exitError
	}

	bv := buildVersion()
	cfg := daemon.Config{SpecPaths: []string{specPath}, Version: bv.Version, Commit: bv.Commit}
	// The daemon's own settings come from the spec as it is at start; a
	// spec that does not load yet starts the daemon with the defaults (it
	// then reports itself degraded until the spec is fixed). Changing
	// watch/metrics settings takes a restart.
	if res := spec.Load(specPath, specOpts); !res.HasErrors() {
		d := res.Deployment
		red.Add(res.Redactions()...)
		red.Add(d.SecretValues()...)
		cfg.Quiet, cfg.Max, cfg.Rescan = d.Watch.Quiet, d.Watch.Max, d.Watch.Rescan
		cfg.MetricsAddr = d.Metrics.Listen
	}
	switch metricsAddr {
	case "":
	case "off":
		cfg.MetricsAddr = ""
	default:
		cfg.MetricsAddr = metricsAddr
	}
	switch socket {
	case "":
		cfg.SocketPath = daemon.DefaultSocketPath(rootDir)
	case "off":
	default:
		cfg.SocketPath = socket
	}

	a := &runApplier{spec: specPath, host: host, specOpts: specOpts, root: rootDir, noReload: noReload || rootDir != "/", noACME: noACME, log: log,
		triggers: make(chan string, 1)}
	defer a.close()
	if a.noReload {
		log.Info("unit reloads are off (--no-reload or --root): files are kept in shape, services are not touched")
	}
	err = daemon.Run(context.Background(), cfg, daemon.Deps{
		Applier: a, Log: log, Redact: red.Redact, AddSecrets: red.Add, Deferred: a, Certs: a, Triggers: a.triggers,
	})
	if err != nil {
		log.WithError(err).Error("cannot run")
		return exitError
	}
	return exitOK
}

// runApplier is the real pipeline behind the daemon: spec -> render ->
// plan/apply -> systemd, one complete pass per call.
type runApplier struct {
	spec, host, root string
	specOpts         spec.Options
	noReload         bool
	noACME           bool
	log              logrus.FieldLogger

	// The ACME manager runs while the spec has tls.acme; it is replaced when
	// those settings change. Renewals land in its cache directory, which is
	// watched, so a renewal re-applies and reloads nginx/Prosody/coturn.
	acme background
	// triggers asks the daemon for a re-apply (a certificate was stored).
	triggers chan string
	// The join endpoint runs while the spec has token_api.
	joinAPI background

	bus         *systemd.DBus
	busWarned   bool
	failedSet   string // digest of a set whose units failed and was rolled back
	failedErr   error
	mu          sync.Mutex
	deferredAt  string // deferred-restarts file, known after the first load
	lastWarning string
	notices     map[string]bool
	lastGood    *spec.Deployment // for the certificate report
	certsAt     time.Time
	certsCache  []metrics.CertInfo
}

// Certificates implements daemon.CertSource from the deployed certificate
// files (certs.BuildReport), cached for a minute: scrapes must not read key
// material every few seconds.
func (a *runApplier) Certificates() []metrics.CertInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	if a.lastGood == nil || (!a.certsAt.IsZero() && now.Sub(a.certsAt) < time.Minute) {
		return a.certsCache
	}
	a.certsAt = now
	rep, err := certs.BuildReport(a.lastGood, a.root, now)
	if err != nil {
		a.log.WithError(err).Debug("certificate report")
	}
	a.certsCache = a.certsCache[:0:0]
	for _, e := range rep.Certificates {
		if e.Deployed && !e.NotAfter.IsZero() {
			a.certsCache = append(a.certsCache, metrics.CertInfo{Name: e.Name + "/" + string(e.KeyType), NotAfter: e.NotAfter})
		}
	}
	return a.certsCache
}

func (a *runApplier) close() {
	a.acme.stop()
	a.joinAPI.stop()
	if a.bus != nil {
		a.bus.Close()
	}
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

// ensureACME starts, keeps or replaces the certificate manager to match d.
func (a *runApplier) ensureACME(d *spec.Deployment) {
	key := ""
	if d.TLS.ACME != nil && !a.noACME {
		key = fmt.Sprintf("%s|%s|%v|%+v", d.Domain, d.TLS.Certificate, d.Host.Roles, *d.TLS.ACME)
	}
	a.acme.ensure(key, func(ctx context.Context) {
		cfg, err := certs.ConfigFor(d, a.root)
		if err != nil {
			a.log.WithError(err).Warn("certificates: not managed")
			return
		}
		cfg.BootstrapAddr = "" // nginx owns port 80 now; it proxies the challenge to cfg's loopback listener
		m, err := certs.New(cfg)
		if err != nil {
			a.log.WithError(err).Warn("certificates: not managed")
			return
		}
		defer m.Close()
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-m.Events():
					if !ok {
						return
					}
					a.log.WithFields(logrus.Fields{"name": ev.Slot.Name, "not_after": ev.NotAfter}).Info("certificates: stored; redeploying")
					select { // the cache dir is watched too; this covers a cache dir created before its watch
					case a.triggers <- "certificate":
					default:
					}
				}
			}
		}()
		if err := m.Run(ctx); err != nil {
			a.log.WithError(err).Warn("certificates: manager stopped")
		}
	})
}

// ensureJoinAPI serves the app's join endpoint while the spec has
// token_api, restarting it when its settings or the JWT settings change.
func (a *runApplier) ensureJoinAPI(d *spec.Deployment) {
	key := ""
	if d.TokenAPI != nil && d.Auth.JWT != nil {
		h := sha256.New() // the key holds no secret in clear
		fmt.Fprintf(h, "%s|%s|%v|%+v|%v|%s|%s", d.Domain, d.ServerURL(), d.Tenants, *d.TokenAPI, d.Auth.JWT.Lifetime, d.Auth.JWT.AppID, d.Auth.JWT.Algorithm)
		for _, v := range d.SecretValues() {
			h.Write([]byte(v))
		}
		fmt.Fprintf(h, "%v%v", d.Auth.JWT.Issuers, d.Auth.JWT.Audiences)
		key = fmt.Sprintf("%x", h.Sum(nil))
	}
	a.joinAPI.ensure(key, func(ctx context.Context) {
		srv, err := joinapi.ForDeployment(d, joinLogger{a.log})
		if err != nil {
			a.log.WithError(err).Error("join endpoint: not started")
			return
		}
		a.log.WithField("listen", d.TokenAPI.Listen).Info("join endpoint: serving /api/v1/live/streams/{stream_id}/join")
		if err := srv.ListenAndServe(ctx); err != nil {
			a.log.WithError(err).Error("join endpoint: stopped")
		}
	})
}

// joinLogger adapts logrus to the join endpoint's access log.
type joinLogger struct{ log logrus.FieldLogger }

func (l joinLogger) Printf(format string, args ...any) { l.log.Infof(format, args...) }

// PendingRestarts implements daemon.DeferredSource.
func (a *runApplier) PendingRestarts() []daemon.PendingRestart {
	a.mu.Lock()
	p := a.deferredAt
	a.mu.Unlock()
	if p == "" {
		return nil
	}
	ds, err := systemd.LoadDeferred(p)
	if err != nil {
		return nil
	}
	out := make([]daemon.PendingRestart, 0, len(ds))
	for _, d := range ds {
		out = append(out, daemon.PendingRestart{Unit: d.Unit, Reason: d.Reason, Since: d.Since})
	}
	return out
}

// Apply implements daemon.Applier.
func (a *runApplier) Apply(ctx context.Context, req daemon.Request) (daemon.Outcome, error) {
	var out daemon.Outcome
	t0 := time.Now()
	res := spec.Load(a.spec, a.specOpts)
	tLoad := time.Since(t0)
	out.Redact = res.Redactions()
	out.Watch = watchPaths(res, nil, a.root)
	if res.HasErrors() {
		return out, daemon.InvalidSpec(errors.New(res.Summary()))
	}
	a.warnOnce(res)
	d := res.Deployment
	a.ensureACME(d)
	a.ensureJoinAPI(d)
	out.Redact = append(out.Redact, d.SecretValues()...)
	a.mu.Lock()
	a.deferredAt = systemd.DeferredPath(stateDir(d, a.root))
	if a.lastGood == nil || !reflect.DeepEqual(a.lastGood.TLS, d.TLS) {
		a.certsAt = time.Time{} // re-read at the next scrape
	}
	a.lastGood = d
	a.mu.Unlock()

	t1 := time.Now()
	set, err := desiredState(d, a.root)
	tRender := time.Since(t1)
	if err != nil {
		if strings.HasPrefix(err.Error(), "internal secrets") {
			return out, err // I/O on the state dir: worth a retry
		}
		return out, daemon.InvalidSpec(err)
	}
	out.Redact = append(out.Redact, set.Redact...)
	out.Watch = watchPaths(res, set, a.root)

	digest := setDigest(set)
	if a.failedSet != "" && digest == a.failedSet && req.Reason != daemon.ReasonSIGHUP {
		// Do not re-break the services every rescan with the configuration
		// that just failed; a change (or SIGHUP) tries again.
		return out, daemon.NoRetry(fmt.Errorf("not re-applying the configuration that failed: %w", a.failedErr))
	}

	opts := apply.Options{Root: a.root, StateDir: d.StateDir, Keep: d.Backups}
	// Drift in files whose policy is "report" is never overwritten: those
	// files are held back (and reported); every other change goes through.
	opts.Skip = func(c plan.Change) bool {
		if c.HostChanged && driftPolicy(d, c.File) == spec.DriftReport {
			out.Drift = append(out.Drift, daemon.Drift{Path: a.hostPath(c.Path), Policy: spec.DriftReport})
			return true
		}
		return false
	}

	t2 := time.Now()
	r, err := apply.Apply(ctx, set, opts)
	a.log.WithFields(logrus.Fields{
		"load_ms": tLoad.Milliseconds(), "render_ms": tRender.Milliseconds(), "apply_ms": time.Since(t2).Milliseconds(),
	}).Debug("pipeline timings")
	if err != nil {
		var ce *apply.CheckError
		if errors.As(err, &ce) {
			return out, daemon.NoRetry(err) // the staged files are invalid: same input, same result
		}
		return out, err
	}
	for _, c := range r.Changes {
		out.Written = append(out.Written, a.hostPath(c.Dest()))
		if c.Reason == plan.ReasonDrift {
			out.Drift = append(out.Drift, daemon.Drift{Path: a.hostPath(c.Path), Policy: driftPolicy(d, c.File), Restored: true})
		}
	}
	// Notices (ownership skipped without root...) repeat on every apply:
	// log each new one once.
	seen := map[string]bool{}
	for _, n := range r.Notices {
		seen[n] = true
		if !a.notices[n] {
			a.log.WithField("notice", n).Info("apply")
		}
	}
	if len(r.Notices) > 0 || r.Changed() {
		a.notices = seen
	}
	if !r.Changed() && !req.Initial {
		a.failedSet = ""
		return out, nil
	}
	// The initial pass also runs when nothing changed: it starts enabled
	// units that are stopped and ensures the Prosody accounts.
	units := a.units(ctx)
	if units == nil {
		return out, nil
	}
	step := &serviceStep{d: d, set: set, root: a.root, opts: opts, res: r, units: units, accounts: a.root == "/",
		logf: func(format string, args ...any) { a.log.Infof(format, args...) }}
	urgent, err := step.ensureAccounts(ctx)
	if err != nil {
		return out, err
	}
	rl := systemd.NewReloader(units, systemd.Options{
		Services:     systemd.ServicesFor(d),
		DeferredPath: systemd.DeferredPath(stateDir(d, a.root)),
		Redact:       set.Redact,
		Logf:         func(format string, args ...any) { a.log.Infof(format, args...) },
	})
	serial := r.Serial
	restorer := systemd.RestorerFunc(func(ctx context.Context) ([]string, error) {
		rb, err := apply.Undo(ctx, serial, opts)
		if err != nil {
			return nil, err
		}
		var paths []string
		for _, c := range rb.Changes {
			paths = append(paths, a.hostPath(c.Dest()))
		}
		return paths, nil
	})
	changes := append(systemd.ChangesFromPlan(r.Changes), systemd.UrgentFor(systemd.ServicesFor(d), urgent...)...)
	so, err := systemd.ReloadOrRollback(ctx, rl, changes, restorer)
	if so != nil {
		out.Written = append(out.Written, so.Restored...)
		if so.Report != nil {
			for _, u := range so.Report.Units {
				switch u.Action {
				case systemd.ActionReload, systemd.ActionRestart, systemd.ActionStart:
					if u.Result != systemd.ResultFailed {
						out.Reloaded = append(out.Reloaded, u.Unit)
					}
				}
			}
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
		var rbe *systemd.RollbackError
		if errors.As(err, &rbe) && rbe.RestoreErr == nil {
			a.failedSet, a.failedErr = digest, err
			return out, daemon.NoRetry(err)
		}
		return out, err
	}
	a.failedSet = ""
	return out, nil
}

// warnOnce logs the spec's warnings when they change.
func (a *runApplier) warnOnce(res *spec.Result) {
	var b strings.Builder
	for _, d := range res.Diags {
		b.WriteString(d.Error())
		b.WriteByte('\n')
	}
	if w := b.String(); w != "" && w != a.lastWarning {
		for _, d := range res.Diags {
			a.log.Warn("spec: " + d.Error())
		}
	}
	a.lastWarning = b.String()
}

// units returns the systemd connection, reconnecting when it dropped; nil
// when reloads are off or systemd is unavailable (files are still applied).
func (a *runApplier) units(ctx context.Context) systemd.Units {
	if a.noReload {
		return nil
	}
	if a.bus != nil && a.bus.Connected() {
		return a.bus
	}
	if a.bus != nil {
		a.bus.Close()
		a.bus = nil
	}
	bus, err := systemd.Connect(ctx, systemd.ConnectOptions{})
	if err != nil {
		if !a.busWarned {
			a.log.WithError(err).Warn("systemd is not available: files are applied, units are not reloaded")
			a.busWarned = true
		}
		return nil
	}
	a.busWarned = false
	a.bus = bus
	return bus
}

func (a *runApplier) hostPath(p string) string {
	if a.root == "/" {
		return p
	}
	return filepath.Join(a.root, p)
}

// driftPolicy is a file's drift policy: its own, else the deployment's.
func driftPolicy(d *spec.Deployment, f render.File) string {
	if f.Drift != "" {
		return f.Drift
	}
	if d.Drift != "" {
		return d.Drift
	}
	return spec.DriftRestore
}

// watchPaths is what the daemon watches: every spec input (directories such
// as the template override dir as directories) and every managed output.
func watchPaths(res *spec.Result, set *render.Set, root string) watch.Paths {
	var p watch.Paths
	for _, in := range res.Inputs {
		if fi, err := os.Stat(in); err == nil && fi.IsDir() {
			p.Dirs = append(p.Dirs, in)
		} else {
			p.Files = append(p.Files, in)
		}
	}
	if res.Deployment != nil && res.Deployment.TemplatesDir != "" && !slices.Contains(p.Dirs, res.Deployment.TemplatesDir) {
		p.Dirs = append(p.Dirs, res.Deployment.TemplatesDir)
	}
	if res.Deployment != nil && res.Deployment.TLS.ACME != nil {
		// A renewal is written to the ACME cache: watching it re-deploys the
		// new certificate and reloads the services that read it.
		p.Dirs = append(p.Dirs, certs.CacheDir(res.Deployment, root))
	}
	if set != nil {
		for _, f := range set.Files {
			if root == "/" {
				p.Files = append(p.Files, f.Path)
			} else {
				p.Files = append(p.Files, filepath.Join(root, f.Path))
			}
		}
	}
	return p
}

// setDigest identifies a desired set (paths, kinds, contents, modes, owners).
func setDigest(set *render.Set) string {
	files := append([]render.File(nil), set.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%o\x00%s\x00%s\x00%d\x00", f.Path, f.Kind, f.Target, f.Mode, f.Owner, f.Group, len(f.Content))
		h.Write(f.Content)
	}
	return hex.EncodeToString(h.Sum(nil))
}
