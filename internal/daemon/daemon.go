package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/jitsi-agent/jitsi-agent/internal/metrics"
	"github.com/jitsi-agent/jitsi-agent/internal/sdnotify"
	"github.com/jitsi-agent/jitsi-agent/internal/watch"
)

// Defaults.
const (
	DefaultApplyTimeout = 10 * time.Minute
	DefaultRetryMin     = 10 * time.Second
	DefaultRetryMax     = 5 * time.Minute
)

// Config is the daemon's configuration (from flags and the spec's watch and
// metrics blocks).
type Config struct {
	// SpecPaths are always watched (the spec file(s)), even before the first
	// successful load.
	SpecPaths []string
	// Quiet, Max: debounce (defaults 200ms / 2s). Rescan: periodic full
	// re-apply (default 5m; negative disables).
	Quiet, Max, Rescan time.Duration
	// MetricsAddr is the loopback HTTP listener (/metrics, /healthz,
	// /status); "" = none. Ignored when Deps.Listener is set.
	MetricsAddr string
	// SocketPath is the unix status socket (same routes); "" = none.
	SocketPath string
	// ApplyTimeout bounds one apply (default 10m). A stop request waits for
	// the running apply, so this also bounds the stop delay.
	ApplyTimeout time.Duration
	// RetryMin/RetryMax: backoff for retrying a failed apply (not an invalid
	// spec, which waits for a change). Defaults 10s / 5m.
	RetryMin, RetryMax time.Duration
	Version, Commit    string
	BuildDate          string // RFC 3339; the build_info metric's build_date label
}

// Deps are the daemon's collaborators. Only Applier is required.
type Deps struct {
	Applier Applier
	// Log defaults to a discarding logger.
	Log logrus.FieldLogger
	// Redact hides registered secret values in strings the daemon serves
	// or logs (logging.Redactor.Redact). AddSecrets registers the values
	// from Outcome.Redact (logging.Redactor.Add). Both optional.
	Redact     func(string) string
	AddSecrets func(values ...string)
	// Notifier defaults to sdnotify.New().
	Notifier Notifier
	// Metrics defaults to metrics.New with Certs/Deferred wired in.
	Metrics  *metrics.Metrics
	Clock    watch.Clock
	Deferred DeferredSource
	Certs    CertSource
	// Live reports the live services; /healthz and /status include them.
	Live LiveSource
	// Signals: nil makes Run subscribe to SIGHUP, SIGTERM and SIGINT itself.
	Signals <-chan os.Signal
	// Triggers asks for a full re-apply from outside the file system (e.g.
	// a certificate was issued); debounced like a file event. Optional.
	Triggers <-chan string
	// Listener replaces Config.MetricsAddr (tests pass 127.0.0.1:0).
	Listener net.Listener
	// WatchdogInterval: 0 reads WATCHDOG_USEC; negative disables.
	WatchdogInterval time.Duration
}

type daemon struct {
	cfg     Config
	deps    Deps
	log     logrus.FieldLogger
	notify  Notifier
	metrics *metrics.Metrics
	clock   watch.Clock
	watcher *watch.Watcher

	retry     watch.Timer
	retryNext time.Duration
	wdC       <-chan time.Time // watchdog timer (nil = off)
	wdRearm   func()
	watching  watch.Paths // the set last given to the watcher

	// notifiedReady: READY=1 was sent (after the first apply, whatever
	// its result: systemd must not wait for a spec someone has to fix).
	notifiedReady bool

	mu sync.Mutex
	st Status

	rollbacks chan rollbackCall // from the socket's POST /rollback

	// The running pre-check (see Prechecker); nil when none.
	precheckCancel context.CancelFunc
	precheckDone   chan struct{}
}

// precheckWait bounds how long an apply waits for a running pre-check
// before cancelling it (the apply then runs every check itself).
const precheckWait = time.Second

// startPrecheck starts the applier's pre-check when the pending burst
// holds a change no pre-check has seen (watch.Watcher.Unseen: the events
// of the daemon's own writes, and further events of a change already
// marked, start none). At most one runs: while one runs, later changes
// wait for it to end (precheckEnded starts the next one if they are still
// unseen) instead of restarting it at every event.
func (d *daemon) startPrecheck(ctx context.Context) {
	pc, ok := d.deps.Applier.(Prechecker)
	if !ok || d.precheckDone != nil || !d.watcher.Unseen() {
		return
	}
	d.watcher.Mark() // what it reads from now on counts as seen
	pctx, cancel := context.WithTimeout(ctx, d.cfg.ApplyTimeout)
	done := make(chan struct{})
	d.precheckCancel, d.precheckDone = cancel, done
	d.mu.Lock()
	d.st.Prechecks++
	d.mu.Unlock()
	go func() {
		defer close(done)
		pc.Precheck(pctx)
	}()
}

// precheckEnded clears the pre-check that just ended and starts another
// one if the burst changed since it began.
func (d *daemon) precheckEnded(ctx context.Context) {
	d.cancelPrecheck()
	d.startPrecheck(ctx)
}

// awaitPrecheck lets a running pre-check finish (bounded), so the apply
// finds its verdicts, then cancels what is left of it.
func (d *daemon) awaitPrecheck() {
	if d.precheckDone == nil {
		return
	}
	t := time.NewTimer(precheckWait)
	defer t.Stop()
	select {
	case <-d.precheckDone:
	case <-t.C:
	}
	d.cancelPrecheck()
}

// cancelPrecheck stops a running pre-check and waits for it.
func (d *daemon) cancelPrecheck() {
	if d.precheckDone == nil {
		return
	}
	d.precheckCancel()
	<-d.precheckDone
	d.precheckCancel, d.precheckDone = nil, nil
}

type rollbackCall struct {
	to    int
	reply chan error
}

// Run runs the daemon until ctx is done or SIGTERM/SIGINT arrives. It
// returns an error only when it cannot start (inotify, listeners); bad specs
// and failed applies never end it.
func Run(ctx context.Context, cfg Config, deps Deps) (err error) {
	if deps.Applier == nil {
		return errors.New("daemon: no Applier")
	}
	d := &daemon{cfg: cfg, deps: deps, rollbacks: make(chan rollbackCall)}
	d.setDefaults()

	d.watcher, err = watch.New(watch.Config{
		Quiet: cfg.Quiet, Max: cfg.Max, Rescan: cfg.Rescan, Clock: d.clock, Log: d.log,
	})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	if err := d.watcher.SetPaths(watch.Paths{Files: cfg.SpecPaths}); err != nil {
		d.log.WithError(err).Warn("cannot watch every spec directory yet; retrying")
	}
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	go func() { wdone <- d.watcher.Run(wctx) }()
	defer func() {
		wcancel()
		if werr := <-wdone; werr != nil {
			d.log.WithError(werr).Warn("watcher stopped")
		}
	}()

	servers, err := d.serve()
	if err != nil {
		return err
	}
	defer d.shutdownServers(servers)

	sigs := deps.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(ch)
		sigs = ch
	}

	if iv := d.watchdogInterval(); iv > 0 {
		t := d.clock.NewTimer(iv / 2)
		defer t.Stop()
		d.log.WithField("interval", iv.String()).Debug("systemd watchdog enabled")
		return d.loop(ctx, sigs, t.C(), func() { t.Reset(iv / 2) })
	}
	return d.loop(ctx, sigs, nil, func() {})
}

func (d *daemon) setDefaults() {
	c := &d.cfg
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = DefaultApplyTimeout
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(DefaultRetryMax, c.RetryMin)
	}
	d.log = d.deps.Log
	if d.log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		d.log = l
	}
	d.notify = d.deps.Notifier
	if d.notify == nil {
		d.notify = sdnotify.New()
	}
	d.clock = d.deps.Clock
	if d.clock == nil {
		d.clock = watch.Real()
	}
	d.metrics = d.deps.Metrics
	if d.metrics == nil {
		o := metrics.Options{Version: c.Version, Commit: c.Commit, BuildDate: c.BuildDate, Now: d.clock.Now}
		if d.deps.Certs != nil {
			o.Certificates = d.deps.Certs.Certificates
		}
		if d.deps.Deferred != nil {
			o.DeferredRestarts = func() int { return len(d.deps.Deferred.PendingRestarts()) }
		}
		if d.deps.Live != nil {
			o.Services = func() []metrics.ServiceInfo {
				var out []metrics.ServiceInfo
				for _, s := range d.deps.Live.Services() {
					out = append(out, metrics.ServiceInfo{Unit: s.Unit, Up: s.OK, Restarts: s.Restarts})
				}
				return out
			}
		}
		d.metrics = metrics.New(o)
	}
	d.retry = d.clock.NewTimer(time.Hour)
	d.retry.Stop()
	d.retryNext = c.RetryMin
	d.st = Status{State: StateStarting, PID: os.Getpid(), Version: c.Version, StartedAt: d.clock.Now()}
}

func (d *daemon) watchdogInterval() time.Duration {
	if d.deps.WatchdogInterval != 0 {
		return max(d.deps.WatchdogInterval, 0)
	}
	iv, err := sdnotify.WatchdogInterval()
	if err != nil {
		d.log.WithError(err).Warn("ignoring the systemd watchdog setting")
		return 0
	}
	return iv
}

func (d *daemon) loop(ctx context.Context, sigs <-chan os.Signal, wdC <-chan time.Time, rearmWD func()) error {
	d.wdC, d.wdRearm = wdC, rearmWD
	defer d.cancelPrecheck()
	d.sendStatus("applying the spec")
	d.apply(Request{Reason: ReasonStartup, Full: true, Initial: true})
	for {
		select {
		case <-ctx.Done():
			d.stop("shutting down")
			return nil
		case s := <-sigs:
			switch s {
			case syscall.SIGHUP:
				d.log.Info("SIGHUP: re-reading everything")
				d.apply(Request{Reason: ReasonSIGHUP, Full: true})
			default:
				d.log.WithField("signal", s.String()).Info("stopping")
				d.stop("stopping on " + s.String())
				return nil
			}
		case <-d.watcher.Activity():
			d.startPrecheck(ctx)
		case <-d.precheckDone: // nil (never ready) when none runs
			d.precheckEnded(ctx)
		case <-d.watcher.Ready():
			if t, ok := d.watcher.Take(); ok {
				d.apply(Request{Reason: strings.Join(t.Reasons, ","), Full: t.Full, Paths: t.Paths})
			}
		case reason := <-d.deps.Triggers:
			d.watcher.Inject(reason)
		case rb := <-d.rollbacks:
			to := rb.to
			d.log.WithField("to", to).Info("rollback asked over the socket")
			rb.reply <- d.apply(Request{Reason: ReasonRollback, Full: true, rollbackTo: &to})
		case <-d.retry.C():
			d.apply(Request{Reason: ReasonRetry, Full: true})
		case <-wdC:
			// Pinged only from here: a wedged loop stops the pings and
			// systemd restarts the service.
			d.ping()
			rearmWD()
		}
	}
}

func (d *daemon) ping() {
	if err := d.notify.Watchdog(); err != nil {
		d.log.WithError(err).Debug("watchdog ping")
	}
}

func (d *daemon) stop(why string) {
	d.mu.Lock()
	d.st.State = StateStopping
	d.mu.Unlock()
	if err := d.notify.Stopping(why); err != nil {
		d.log.WithError(err).Debug("sd_notify STOPPING")
	}
}

func (d *daemon) sendStatus(s string) {
	if err := d.notify.Status(s); err != nil {
		d.log.WithError(err).Debug("sd_notify STATUS")
	}
}

func (d *daemon) redact(s string) string {
	if d.deps.Redact != nil {
		return d.deps.Redact(s)
	}
	return s
}

// apply runs one apply (or rollback) and records its result everywhere.
func (d *daemon) apply(req Request) error {
	d.awaitPrecheck()
	d.mu.Lock()
	wasDegraded := d.st.Degraded
	d.mu.Unlock()
	// RELOADING=1 for re-applies caused by changes or SIGHUP, not for the
	// periodic rescan or retries (systemd would log a reload every 5 min).
	reloading := d.notifiedReady && req.Reason != ReasonRetry && req.Reason != watch.ReasonRescan
	if reloading {
		if err := d.notify.Reloading("re-applying (" + req.Reason + ")"); err != nil {
			d.log.WithError(err).Debug("sd_notify RELOADING")
		}
	}
	d.retry.Stop()

	start := d.clock.Now()
	// A stop request does not cancel a running apply half-way (files
	// swapped, units not reloaded); the timeout bounds it.
	actx, cancel := context.WithTimeout(context.Background(), d.cfg.ApplyTimeout)
	var early sync.Mutex // the applier runs in its own goroutine
	settled := map[string]bool{}
	done := false // a timed-out applier's late calls are ignored
	req.WatchNow = func(p watch.Paths) {
		early.Lock()
		defer early.Unlock()
		if done {
			return
		}
		p.Files = dedupe(append(append(slices.Clone(d.cfg.SpecPaths), p.Files...), d.watching.Files...))
		p.Dirs = dedupe(append(slices.Clone(p.Dirs), d.watching.Dirs...))
		if werr := d.watcher.SetPaths(p); werr != nil {
			d.log.WithError(werr).Debug("some directories cannot be watched yet")
		}
	}
	req.Wrote = func(paths ...string) {
		early.Lock()
		defer early.Unlock()
		if done {
			return
		}
		d.watcher.Settle(paths...)
		for _, p := range paths {
			settled[p] = true
		}
	}
	out, err := d.runApplier(actx, req, start)
	cancel()
	early.Lock()
	done = true
	early.Unlock()
	end := d.clock.Now()
	if len(out.Redact) > 0 && d.deps.AddSecrets != nil {
		d.deps.AddSecrets(out.Redact...)
	}

	rec := &ApplyRecord{
		Time: end, DurationSeconds: end.Sub(start).Seconds(), Reason: req.Reason,
		Written: out.Written, Reloaded: out.Reloaded, ReloadFailures: redactFailures(out.ReloadFailures, d.redact),
	}
	var degradedReason string
	switch {
	case err == nil:
		rec.Result = metrics.ResultSuccess
	case IsInvalidSpec(err):
		rec.Result = metrics.ResultInvalidSpec
		rec.Error = d.redact(err.Error())
		degradedReason = "invalid spec: " + rec.Error
	default:
		rec.Result = metrics.ResultError
		rec.Error = d.redact(err.Error())
		degradedReason = "apply failed: " + rec.Error
	}
	if err == nil && len(out.ReloadFailures) > 0 {
		var parts []string
		for _, f := range rec.ReloadFailures {
			parts = append(parts, f.Unit+": "+f.Error)
		}
		degradedReason = "reload failed: " + strings.Join(parts, "; ")
	}

	// Watch set: the spec paths always, plus what the applier reported. A
	// failed run may know less (a spec that does not parse names none of
	// the outputs), so it only adds to the last set: the managed files stay
	// watched while degraded.
	if len(out.Watch.Files) > 0 || len(out.Watch.Dirs) > 0 || err == nil {
		p := out.Watch
		p.Files = append(slices.Clone(d.cfg.SpecPaths), p.Files...)
		if err != nil {
			p.Files = append(p.Files, d.watching.Files...)
			p.Dirs = append(slices.Clone(p.Dirs), d.watching.Dirs...)
		}
		p.Files, p.Dirs = dedupe(p.Files), dedupe(p.Dirs)
		d.watching = p
		if werr := d.watcher.SetPaths(p); werr != nil {
			d.log.WithError(werr).Warn("some directories cannot be watched yet; retrying")
		}
	}
	if len(out.Written) > 0 {
		var rest []string
		for _, p := range out.Written {
			if !settled[p] {
				rest = append(rest, p)
			}
		}
		d.watcher.Settle(rest...)
	}

	d.metrics.ObserveApply(rec.Result, end)
	d.metrics.AddReloadFailures(len(out.ReloadFailures))
	// Drift found by a run that then failed (e.g. held back by a reported
	// hand edit) is still news.
	if err == nil || out.Drift != nil {
		d.metrics.SetDriftFiles(len(out.Drift))
	}
	d.metrics.SetDegraded(degradedReason != "")

	d.mu.Lock()
	d.st.Applies++
	d.st.LastApply = rec
	if err == nil {
		t := end
		d.st.LastSuccess = &t
		d.st.Ready = true
	}
	if err == nil || out.Drift != nil {
		d.st.Drift = out.Drift
	}
	d.st.Degraded = degradedReason != ""
	d.st.DegradedReason = degradedReason
	if err == nil {
		d.st.Held = out.Held
	}
	switch {
	case d.st.State == StateStopping:
	case !d.st.Ready:
		d.st.State = StateStarting
	case d.st.Degraded:
		d.st.State = StateDegraded
	default:
		d.st.State = StateOK
	}
	d.mu.Unlock()

	d.logApply(req, rec, out, err)
	if wasDegraded && degradedReason == "" {
		d.log.WithField("reason", req.Reason).Info("recovered: the last apply succeeded")
	}

	status := summary(rec, degradedReason)
	switch {
	case !d.notifiedReady || reloading:
		// The first apply (a broken spec too: the unit is up and says
		// why it is degraded, instead of hanging in "activating" until
		// systemd's start timeout), or the end of a reload (also a failed
		// one: the daemon still runs on the last good files).
		d.notifiedReady = true
		if nerr := d.notify.Ready(status); nerr != nil {
			d.log.WithError(nerr).Warn("sd_notify READY")
		}
	default:
		d.sendStatus(status)
	}

	// Retry failed applies and reload failures with backoff; an invalid
	// spec waits for the next change.
	if retryable(err) || (err == nil && len(out.ReloadFailures) > 0) {
		d.retry.Reset(d.retryNext)
		d.log.WithField("in", d.retryNext.String()).Info("will retry")
		d.retryNext = min(2*d.retryNext, d.cfg.RetryMax)
	} else {
		d.retryNext = d.cfg.RetryMin
	}
	return err
}

// runApplier runs the applier in a goroutine and keeps pinging the
// watchdog while it works, but only until the apply timeout: an apply that
// hangs past it (ignoring its ctx) stops the pings and systemd restarts the
// service. Long legitimate applies (JVM health checks) are not killed.
func (d *daemon) runApplier(ctx context.Context, req Request, start time.Time) (Outcome, error) {
	type result struct {
		out Outcome
		err error
	}
	ch := make(chan result, 1)
	go func() {
		if req.rollbackTo != nil {
			rb, ok := d.deps.Applier.(Rollbacker)
			if !ok {
				ch <- result{Outcome{}, NoRetry(errors.New("this daemon's applier cannot roll back"))}
				return
			}
			out, err := rb.Rollback(ctx, *req.rollbackTo)
			if err != nil {
				err = NoRetry(err) // a refused rollback is not retried
			}
			ch <- result{out, err}
			return
		}
		out, err := d.deps.Applier.Apply(ctx, req)
		ch <- result{out, err}
	}()
	warned := false
	for {
		select {
		case r := <-ch:
			return r.out, r.err
		case <-d.wdC:
			if d.clock.Now().Sub(start) < d.cfg.ApplyTimeout {
				d.ping()
			} else if !warned {
				warned = true
				d.log.WithField("timeout", d.cfg.ApplyTimeout.String()).Error("apply is stuck past its timeout; no more watchdog pings")
			}
			d.wdRearm()
		}
	}
}

func (d *daemon) logApply(req Request, rec *ApplyRecord, out Outcome, err error) {
	l := d.log.WithFields(logrus.Fields{
		"reason": req.Reason, "duration_ms": int64(rec.DurationSeconds * 1000),
	})
	for _, dr := range out.Drift {
		dl := d.log.WithFields(logrus.Fields{"file": dr.Path, "policy": dr.Policy})
		if dr.Restored {
			dl.Warn("managed file was changed on the host; restored")
		} else {
			dl.Warn("managed file was changed on the host; reported, left as is")
		}
	}
	for _, f := range rec.ReloadFailures {
		d.log.WithFields(logrus.Fields{"unit": f.Unit, "error": f.Error}).Error("unit reload failed")
	}
	switch {
	case IsInvalidSpec(err):
		l.Error("spec is invalid; keeping the last good files: " + rec.Error)
	case err != nil:
		l.WithField("error", rec.Error).Error("apply failed; keeping the last good files")
	case len(out.Written) > 0 || len(out.Reloaded) > 0:
		l = l.WithField("written", len(out.Written))
		if len(out.Reloaded) > 0 {
			l = l.WithField("reloaded", strings.Join(out.Reloaded, ","))
		}
		l.Info("applied")
	default:
		l.Debug("no changes")
	}
}

func dedupe(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

func summary(rec *ApplyRecord, degraded string) string {
	if degraded != "" {
		return "degraded: " + degraded
	}
	s := "ok: applied at " + rec.Time.UTC().Format(time.RFC3339)
	if n := len(rec.Written); n > 0 {
		s += fmt.Sprintf(", %d file(s) written", n)
	}
	return s
}

func redactFailures(in []UnitFailure, redact func(string) string) []UnitFailure {
	if len(in) == 0 {
		return nil
	}
	out := make([]UnitFailure, len(in))
	for i, f := range in {
		out[i] = UnitFailure{Unit: f.Unit, Error: redact(f.Error)}
	}
	return out
}

// snapshot returns the current status with the providers' data filled in.
func (d *daemon) snapshot() Status {
	d.mu.Lock()
	st := d.st
	st.Drift = slices.Clone(st.Drift)
	d.mu.Unlock()
	if d.deps.Deferred != nil {
		st.PendingRestarts = d.deps.Deferred.PendingRestarts()
	}
	if d.deps.Certs != nil {
		now := d.clock.Now()
		for _, c := range d.deps.Certs.Certificates() {
			st.Certificates = append(st.Certificates, CertStatus{Name: c.Name, NotAfter: c.NotAfter, ExpiresInSeconds: c.NotAfter.Sub(now).Seconds()})
		}
	}
	if d.deps.Live != nil {
		st.Services = d.deps.Live.Services()
		if st.State == StateOK {
			if ok, _ := st.Healthy(); !ok {
				st.State = StateDegraded
			}
		}
	}
	st.Watching = d.watcher.Watching()
	return st
}

func (d *daemon) health() (bool, string) {
	st := d.snapshot()
	return st.Healthy()
}

func (d *daemon) statusHandler(w http.ResponseWriter, r *http.Request) {
	st := d.snapshot()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}

// RollbackAnswer is what POST /rollback returns.
type RollbackAnswer struct {
	OK      bool   `json:"ok"`
	Held    string `json:"held,omitempty"`
	Error   string `json:"error,omitempty"`
	Written int    `json:"written"`
}

// rollbackHandler runs a rollback in the daemon's loop (so no apply runs
// between it and the hold) and answers with the outcome or the reason it
// was refused. Body: {"to": N} (-1 or absent: the one before the last).
func (d *daemon) rollbackHandler(w http.ResponseWriter, r *http.Request) {
	var body struct {
		To *int `json:"to"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		http.Error(w, "bad request body", http.StatusBadRequest)
		return
	}
	to := -1
	if body.To != nil {
		to = *body.To
	}
	call := rollbackCall{to: to, reply: make(chan error, 1)}
	select {
	case d.rollbacks <- call:
	case <-r.Context().Done():
		return
	}
	var err error
	select {
	case err = <-call.reply:
	case <-r.Context().Done():
		return
	}
	ans := RollbackAnswer{OK: err == nil}
	d.mu.Lock()
	ans.Held = d.st.Held
	if d.st.LastApply != nil {
		ans.Written = len(d.st.LastApply.Written)
	}
	d.mu.Unlock()
	code := http.StatusOK
	if err != nil {
		ans.Error = d.redact(err.Error())
		code = http.StatusConflict
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(ans)
}

type server struct {
	srv  *http.Server
	l    net.Listener
	unix string // socket path to remove
	done chan struct{}
}

func (d *daemon) serve() ([]*server, error) {
	mux := metrics.NewMux(d.metrics, d.health)
	mux.HandleFunc("GET /status", d.statusHandler)
	var ls []*server
	fail := func(err error) ([]*server, error) {
		d.shutdownServers(ls)
		return nil, fmt.Errorf("daemon: %w", err)
	}
	if l := d.deps.Listener; l != nil {
		ls = append(ls, &server{l: l})
	} else if d.cfg.MetricsAddr != "" {
		l, err := metrics.ListenLoopback(d.cfg.MetricsAddr)
		if err != nil {
			return fail(err)
		}
		ls = append(ls, &server{l: l})
	}
	if d.cfg.SocketPath != "" {
		l, err := listenUnix(d.cfg.SocketPath)
		if err != nil {
			return fail(err)
		}
		ls = append(ls, &server{l: l, unix: d.cfg.SocketPath})
	}
	for _, s := range ls {
		h := http.Handler(mux)
		if s.unix != "" {
			// Only the unix socket (0660, root) accepts a rollback.
			um := http.NewServeMux()
			um.Handle("/", mux)
			um.HandleFunc("POST /rollback", d.rollbackHandler)
			h = um
		}
		s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		s.done = make(chan struct{})
		go func(s *server) {
			defer close(s.done)
			if err := s.srv.Serve(s.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.WithError(err).WithField("addr", s.l.Addr().String()).Error("status listener stopped")
			}
		}(s)
		d.log.WithField("addr", s.l.Addr().String()).Info("serving /healthz, /metrics and /status")
	}
	return ls, nil
}

func (d *daemon) shutdownServers(ls []*server) {
	for _, s := range ls {
		if s.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.srv.Shutdown(ctx)
			cancel()
			<-s.done
		} else {
			s.l.Close()
		}
		if s.unix != "" {
			_ = os.Remove(s.unix)
		}
	}
}
