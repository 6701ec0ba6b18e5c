// Package systemd reloads, restarts and starts the services whose files an
// apply changed, through systemd's D-Bus API (never by exec'ing systemctl),
// verifies that they came back, defers disruptive restarts on request and
// drives the rollback when a service does not survive its new files.
//
// The core (Reloader, ReloadOrRollback) talks to small interfaces (Units,
// Journal, HTTPDoer, Restorer) so it is tested with fakes; DBus is the real
// Units implementation on top of github.com/coreos/go-systemd/v22/dbus.
//
// After apply.Apply wrote files (res) for deployment d, a command does:
//
//	conn, err := systemd.Connect(ctx, systemd.ConnectOptions{})
//	if err != nil { // errors.Is(err, systemd.ErrUnavailable): containers, no bus
//		fmt.Fprintln(stderr, systemd.UnavailableNotice(err, res.Units))
//		return // files stay written; nothing reloaded
//	}
//	defer conn.Close()
//	svcs := systemd.ServicesFor(d)
//	changes := systemd.ChangesFromPlan(res.Changes)
//	changes = append(changes, systemd.UrgentFor(svcs, accounts.Components(accountResults)...)...)
//	r := systemd.NewReloader(conn, systemd.Options{Services: svcs,
//		DeferredPath: deferred.Path(stateDir), Redact: set.Redact, Log: log})
//	out, err := systemd.ReloadOrRollback(ctx, r, changes, systemd.RestorerFunc(
//		func(ctx context.Context) ([]string, error) {
//			rb, err := apply.Rollback(ctx, apply.Previous, applyOpts)
//			if err != nil { return nil, err }
//			return rb.Paths(), nil
//		}))
//	// err != nil: print it (unit state + journal), exit 1.
//	// out.Report.Missing(): warn (unit not installed / typo in notify).
//
// apply --restart-deferred calls r.RestartDeferred(ctx); plan/status show
// deferred.Load(deferred.Path(stateDir)).
package systemd

import (
	"context"
	"errors"
	"fmt"
)

// Units is what the reloader needs from systemd. Every job method queues the
// job and waits for its result (or the ctx deadline); a result other than
// "done" is a *JobError.
type Units interface {
	// Properties returns the unit's current state. A unit systemd does not
	// know returns a state with LoadState "not-found" (not an error).
	Properties(ctx context.Context, unit string) (UnitState, error)
	Start(ctx context.Context, unit string) error
	Restart(ctx context.Context, unit string) error
	Reload(ctx context.Context, unit string) error
	// Enable enables the unit files (like systemctl enable, without --now)
	// and reloads the manager configuration.
	Enable(ctx context.Context, units ...string) error
	// Stop stops the unit (a job, like Start).
	Stop(ctx context.Context, unit string) error
	// Disable disables the unit files (like systemctl disable, without
	// --now) and reloads the manager configuration.
	Disable(ctx context.Context, units ...string) error
}

// UnitState is the subset of org.freedesktop.systemd1.Unit properties the
// reloader decides on.
type UnitState struct {
	Name          string `json:"name"`
	LoadState     string `json:"load_state"`      // loaded, not-found, masked, error, ...
	ActiveState   string `json:"active_state"`    // active, reloading, inactive, failed, activating, deactivating
	SubState      string `json:"sub_state"`       // running, exited, dead, ...
	UnitFileState string `json:"unit_file_state"` // enabled, disabled, static, masked, ...
	CanReload     bool   `json:"can_reload"`
}

// Known reports whether systemd has a unit file for the unit.
func (s UnitState) Known() bool { return s.LoadState != "" && s.LoadState != "not-found" }

// Running reports whether the unit is up (or just reloading).
func (s UnitState) Running() bool { return s.ActiveState == "active" || s.ActiveState == "reloading" }

// IsEnabled reports whether the unit starts at boot (or needs no enabling).
func (s UnitState) IsEnabled() bool {
	switch s.UnitFileState {
	case "enabled", "enabled-runtime", "static", "alias", "indirect", "generated", "transient", "linked", "linked-runtime":
		return true
	}
	return false
}

func (s UnitState) String() string {
	if s.SubState != "" {
		return fmt.Sprintf("%s (%s), load %s", s.ActiveState, s.SubState, s.LoadState)
	}
	return fmt.Sprintf("%s, load %s", s.ActiveState, s.LoadState)
}

// Errors. Test with errors.Is; the concrete errors carry the details.
var (
	// ErrUnavailable: there is no reachable systemd (no system bus, no
	// systemd on the bus, or the connection timed out). Callers print
	// UnavailableNotice and carry on without reloading.
	ErrUnavailable = errors.New("systemd is not available")
	// ErrNoSuchUnit: systemd does not know the unit.
	ErrNoSuchUnit = errors.New("no such unit")
	// ErrJobTimeout: the job was queued but no result arrived in time.
	ErrJobTimeout = errors.New("no job result in time")
	// ErrBusClosed: the D-Bus connection went away while waiting.
	ErrBusClosed = errors.New("D-Bus connection closed")
)

// UnavailableError is returned by Connect when systemd cannot be reached.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string {
	return "systemd is not available: " + e.Err.Error()
}
func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// UnavailableNotice is the message commands print when Connect failed: the
// files are in place, but no service picked them up.
func UnavailableNotice(err error, units []string) string {
	msg := "notice: " + err.Error() + "\n" +
		"notice: files were written, but no service was reloaded (containers, --root runs and hosts without systemd cannot be reloaded; use --no-reload to silence this)"
	if len(units) > 0 {
		msg += "\nnotice: reload or restart these units yourself:"
		for _, u := range units {
			msg += " " + u
		}
	}
	return msg
}

// JobError is a systemd job that finished with a result other than "done"
// ("failed", "timeout", "canceled", "dependency", "skipped"), or that never
// reported (Err is ErrJobTimeout or ErrBusClosed).
type JobError struct {
	Unit   string
	Op     string // start, restart, reload
	Result string // systemd's job result; "" when none arrived
	Err    error  // set when no result arrived
}

func (e *JobError) Error() string {
	if e.Result != "" {
		return fmt.Sprintf("%s %s: job %s", e.Op, e.Unit, e.Result)
	}
	return fmt.Sprintf("%s %s: %v", e.Op, e.Unit, e.Err)
}

func (e *JobError) Unwrap() error { return e.Err }
