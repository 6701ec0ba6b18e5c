// Package daemon is the long-running mode behind `jitsi-agent run`: an
// initial apply, then re-applies on every debounced change of the spec, its
// inputs or the managed outputs, on SIGHUP and on a periodic rescan. It never
// exits on a bad change: the last good files stay, the daemon reports itself
// degraded (sd_notify STATUS, metrics, /healthz, /status) and recovers on the
// next good change.
//
// The real pipeline (spec -> render -> plan/apply -> systemd) sits behind the
// Applier interface, so this package depends on none of it.
package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/deferred"
	"github.com/jitsi-agent/jitsi-agent/internal/metrics"
	"github.com/jitsi-agent/jitsi-agent/internal/watch"
)

// Applier runs one complete cycle: load and validate the spec, render,
// plan against the host, apply (stage, validate, swap, record) and reload
// the affected units. Drift policy (restore vs report, per file) is the
// applier's business; it reports what it found in the Outcome.
//
// Contract:
//   - On success, return a nil error. Outcome.Watch must list everything to
//     watch from now on.
//   - When the spec does not load or validate, return InvalidSpec(err) where
//     err's text is the located diagnostic summary ("site.hcl:3,5-9: ...").
//     The daemon then waits for a file change before trying again.
//   - Any other error means the apply failed and the last good files are in
//     place (the applier rolls back); the daemon retries with backoff,
//     unless the error is wrapped with NoRetry (then it waits for a change).
//   - Outcome fields may be filled on failure too (Watch, Redact, Written).
//   - Errors and Outcome strings must not contain secret values; the daemon
//     redacts registered values again before logging or serving them.
//   - Apply must honour ctx (it carries the apply timeout).
type Applier interface {
	Apply(ctx context.Context, req Request) (Outcome, error)
}

// Prechecker is an optional Applier extension: Precheck does, ahead of an
// apply, read-only work whose results that apply can reuse (the agent runs
// the slow validators on what it would write and keeps their verdicts).
// The daemon calls it when a burst of changes starts, never for the
// events of its own writes; one runs at a time: a change made while it
// runs starts the next one when it ends (not at every event), and only if
// the change is still unseen (watch.Watcher.Unseen). Before the apply at
// the end of the burst the daemon waits briefly for it, then cancels it.
// Precheck must change nothing the apply depends on and must honour ctx.
type Prechecker interface {
	Precheck(ctx context.Context)
}

// ApplierFunc adapts a function to Applier.
type ApplierFunc func(ctx context.Context, req Request) (Outcome, error)

// Apply implements Applier.
func (f ApplierFunc) Apply(ctx context.Context, req Request) (Outcome, error) { return f(ctx, req) }

// Request says why an apply runs.
type Request struct {
	// Reason: ReasonStartup, ReasonSIGHUP, ReasonRetry, or the watch
	// trigger's reasons joined by "," (e.g. "change", "rescan",
	// "..data,change").
	Reason string
	// Full is set when everything must be re-read (always true except for a
	// plain change of known paths; appliers may ignore it and always
	// re-read everything, which is simplest and correct).
	Full bool
	// Paths are the changed paths (host paths), when known.
	Paths []string
	// Initial is true for the first apply after start.
	Initial bool
	// WatchNow, when the applier calls it before writing anything, starts
	// watching p (plus the spec paths) at once: a hand edit made while the
	// apply runs is not missed (the first apply may take minutes).
	WatchNow func(p watch.Paths)
	// Wrote, when the applier calls it right after replacing files (before
	// reloading units), marks them as the daemon's own writes. Later
	// changes to them, even during the same apply, count as edits.
	// Paths passed here are not settled again when the apply returns.
	Wrote func(paths ...string)

	rollbackTo *int // a rollback asked over the socket (Rollbacker)
}

// Reasons the daemon itself gives.
const (
	ReasonStartup = "startup"
	ReasonSIGHUP  = "SIGHUP"
	ReasonRetry   = "retry"
	// ReasonRollback: `jitsi-agent rollback` asked over the socket.
	ReasonRollback = "rollback"
)

// Drift policies as reported in Drift.Policy.
const (
	DriftRestore = "restore"
	DriftReport  = "report"
)

// Outcome is what one apply did.
type Outcome struct {
	// Written are the host paths (under --root) the apply wrote, replaced or
	// removed. The watcher settles them so the apply's own writes do not
	// trigger another apply.
	Written []string `json:"written,omitempty"`
	// Drift lists managed files found different from the last applied state.
	Drift []Drift `json:"drift,omitempty"`
	// Reloaded lists units reloaded or restarted.
	Reloaded []string `json:"reloaded,omitempty"`
	// ReloadFailures lists units whose reload/restart failed. The daemon
	// counts them, reports itself degraded and retries.
	ReloadFailures []UnitFailure `json:"reload_failures,omitempty"`
	// Watch is the complete set of paths to watch from now on: spec files,
	// every file the spec reads (file() arguments, secret files), managed
	// outputs (Files) and the template override directory (Dirs). The
	// daemon always adds its own Config.SpecPaths.
	Watch watch.Paths `json:"-"`
	// Redact lists secret values (render.Set.Redact /
	// spec.Deployment.SecretValues()) for the log redactor. Never logged.
	Redact []string `json:"-"`
	// Held, when set, says the applier is holding a rolled-back generation
	// and applied nothing ("rolled back to serial 3; held until the spec
	// changes"); shown in /status.
	Held string `json:"held,omitempty"`
}

// Rollbacker is implemented by appliers that can roll the managed files
// back to an earlier applied generation, reload the units, and hold that
// generation (no re-apply of the spec) until the spec or one of its inputs
// changes. `jitsi-agent rollback` asks a running daemon for this over the
// unix socket, so the daemon does not undo the rollback a second later.
type Rollbacker interface {
	// Rollback rolls back to serial to (-1: the one before the last). The
	// Outcome is recorded like an apply's; the error, when the rollback is
	// refused or fails, carries the reason.
	Rollback(ctx context.Context, to int) (Outcome, error)
}

// Drift is one drifted managed file.
type Drift struct {
	Path string `json:"path"`
	// Policy is DriftRestore or DriftReport.
	Policy string `json:"policy"`
	// Restored is true when the file was rewritten.
	Restored bool `json:"restored"`
}

// UnitFailure is a unit that failed to reload or restart.
type UnitFailure struct {
	Unit  string `json:"unit"`
	Error string `json:"error"`
}

// SpecError marks an invalid spec.
type SpecError struct{ Err error }

func (e *SpecError) Error() string { return e.Err.Error() }
func (e *SpecError) Unwrap() error { return e.Err }

// InvalidSpec wraps err as a SpecError.
func InvalidSpec(err error) error {
	if err == nil {
		return nil
	}
	return &SpecError{Err: err}
}

// IsInvalidSpec reports whether err is (or wraps) a SpecError.
func IsInvalidSpec(err error) bool {
	var se *SpecError
	return errors.As(err, &se)
}

// NoRetryError marks a failure that retrying cannot fix (e.g. a new
// configuration that made a unit fail and was rolled back): like an invalid
// spec, the daemon waits for a change (or SIGHUP) instead of retrying.
type NoRetryError struct{ Err error }

func (e *NoRetryError) Error() string { return e.Err.Error() }
func (e *NoRetryError) Unwrap() error { return e.Err }

// NoRetry wraps err as a NoRetryError.
func NoRetry(err error) error {
	if err == nil {
		return nil
	}
	return &NoRetryError{Err: err}
}

// retryable reports whether a failed apply should be retried with backoff.
func retryable(err error) bool {
	var nr *NoRetryError
	return err != nil && !IsInvalidSpec(err) && !errors.As(err, &nr)
}

// Notifier is the service-manager side (sdnotify.Notifier implements it).
type Notifier interface {
	Ready(status string) error
	Reloading(status string) error
	Stopping(status string) error
	Status(status string) error
	Watchdog() error
}

// DeferredSource lists pending deferred restarts (owned by the systemd
// package); optional.
type DeferredSource interface {
	PendingRestarts() []deferred.Restart
}

// CertSource lists certificates and their expiry (owned by the certs
// package); optional.
type CertSource interface {
	Certificates() []metrics.CertInfo
}

// ServiceStatus is one managed service as the live check last saw it
// (between applies the agent keeps each enabled unit running and probes it).
type ServiceStatus struct {
	Component string `json:"component"`
	Unit      string `json:"unit"`
	// State is systemd's view ("active (running), load loaded").
	State string `json:"state"`
	// OK: the unit runs and its live probes pass.
	OK bool `json:"ok"`
	// Problem says what is wrong when not OK.
	Problem string `json:"problem,omitempty"`
	// Restarts counts the times the agent started the unit again since the
	// daemon started; LastRestart is the latest.
	Restarts    int        `json:"restarts,omitempty"`
	LastRestart *time.Time `json:"last_restart,omitempty"`
	// NextAttempt is when the agent tries to start a failing unit again
	// (backoff), if it is down.
	NextAttempt *time.Time    `json:"next_attempt,omitempty"`
	CheckedAt   time.Time     `json:"checked_at"`
	Probes      []ProbeStatus `json:"probes,omitempty"`
}

// ProbeStatus is one live probe's last result.
type ProbeStatus struct {
	Check  string `json:"check"`
	Target string `json:"target"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
}

// LiveSource reports the live services (the agent's supervisor); optional.
type LiveSource interface {
	Services() []ServiceStatus
}
