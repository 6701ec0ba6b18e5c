package systemd

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/deferred"
)

// Restorer puts back the files of the last apply (the apply package's
// backup) and returns the restored paths.
type Restorer interface {
	RestoreLast(ctx context.Context) ([]string, error)
}

// RestorerFunc adapts a function to Restorer.
type RestorerFunc func(ctx context.Context) ([]string, error)

// RestoreLast implements Restorer.
func (f RestorerFunc) RestoreLast(ctx context.Context) ([]string, error) { return f(ctx) }

// Outcome is the full story of an apply's service side.
type Outcome struct {
	// Report is the first pass over the changed units.
	Report *Report
	// RolledBack is true when the first pass failed and files were restored.
	RolledBack bool
	// Restored are the paths the restorer put back.
	Restored []string
	// Rollback is the reload pass after the restore (nil without rollback).
	Rollback *Report
}

// RollbackError is returned when a unit failed and the previous files were
// restored: Cause is the failure (an *ApplyError with the unit's state and
// journal), RestoreErr / ReloadErr say whether the rollback itself worked.
// The command exits non-zero in every case.
type RollbackError struct {
	Cause      error
	Restored   []string
	RestoreErr error
	ReloadErr  error
}

func (e *RollbackError) Error() string {
	var b strings.Builder
	b.WriteString(e.Cause.Error())
	switch {
	case e.RestoreErr != nil:
		fmt.Fprintf(&b, "\nrollback FAILED: restoring the previous files: %v", e.RestoreErr)
	case e.ReloadErr != nil:
		fmt.Fprintf(&b, "\nrolled back %d file(s), but reloading the previous files failed too: %v", len(e.Restored), e.ReloadErr)
	default:
		fmt.Fprintf(&b, "\nrolled back %d file(s) to the previous apply; the services run the previous files again", len(e.Restored))
	}
	return b.String()
}

func (e *RollbackError) Unwrap() []error {
	out := []error{e.Cause}
	if e.RestoreErr != nil {
		out = append(out, e.RestoreErr)
	}
	if e.ReloadErr != nil {
		out = append(out, e.ReloadErr)
	}
	return out
}

// ReloadOrRollback is the apply -> reload -> (restore -> reload) sequence:
//
//  1. r.Apply(changes): reload/restart/start, verify (active + health).
//  2. On a unit failure: restorer.RestoreLast, forget the deferred
//     restarts recorded by this apply (the restored files are what the
//     units run), and reload again exactly the units step 1 touched.
//  3. Return a *RollbackError (the caller exits non-zero).
//
// A failure that is not about a unit (e.g. the deferred-restart file could
// not be written) is returned as is without a rollback. A nil restorer
// skips the rollback and returns the unit failure.
func ReloadOrRollback(ctx context.Context, r *Reloader, changes []Change, restorer Restorer) (*Outcome, error) {
	rep, err := r.Apply(ctx, changes)
	out := &Outcome{Report: rep}
	if err == nil {
		return out, nil
	}
	var ae *ApplyError
	if !errors.As(err, &ae) || len(ae.Units) == 0 || rep == nil || restorer == nil {
		return out, err
	}
	return out, RollBack(ctx, r, out, restorer, err)
}

// RollBack is the second half of ReloadOrRollback for a failure found after
// the reload pass succeeded (a live probe: the units run, but not the
// change): restore the files, forget the deferred restarts this pass
// recorded, reload again the units the pass touched. It fills out and
// returns the *RollbackError (cause is kept as its Cause).
func RollBack(ctx context.Context, r *Reloader, out *Outcome, restorer Restorer, cause error) error {
	rep := out.Report
	if rep == nil {
		rep = &Report{}
	}
	rerr := &RollbackError{Cause: cause}
	restored, xerr := restorer.RestoreLast(ctx)
	out.Restored, rerr.Restored = restored, restored
	if xerr != nil {
		rerr.RestoreErr = xerr
		return rerr
	}
	out.RolledBack = true
	if len(rep.NewlyDeferred) > 0 && r.o.DeferredPath != "" {
		var units []string
		for _, d := range rep.NewlyDeferred {
			units = append(units, d.Unit)
		}
		if derr := deferred.Update(r.o.DeferredPath, nil, units); derr != nil {
			rerr.ReloadErr = derr
		}
	}
	if acted := rep.Acted(); len(acted) > 0 {
		rb, lerr := r.Reload(ctx, acted)
		out.Rollback = rb
		if lerr != nil {
			rerr.ReloadErr = errors.Join(rerr.ReloadErr, lerr)
		}
	}
	return rerr
}
