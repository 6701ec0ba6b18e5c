package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"

	"github.com/jitsi-agent/jitsi-agent/internal/accounts"
	"github.com/jitsi-agent/jitsi-agent/internal/apply"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

// serviceStep is what happens after the files are swapped: the Prosody
// accounts of focus and jvb are ensured, then the affected units are
// reloaded (or restarted, or started) in dependency order, and a unit that
// fails makes the whole apply roll back.
type serviceStep struct {
	d     *spec.Deployment
	set   *render.Set
	root  string
	opts  apply.Options
	res   *apply.Result // nil: no files changed in this run
	units systemd.Units
	logf  func(format string, args ...any)
	// restartDeferred also runs the restarts earlier applies deferred.
	restartDeferred bool
	// accounts: ensure the focus/jvb Prosody accounts (real hosts only).
	accounts bool
}

// ensureAccounts creates or updates focus@auth.DOMAIN and jvb@auth.DOMAIN
// and returns the components whose login changed (they must restart now).
func (s *serviceStep) ensureAccounts(ctx context.Context) ([]string, error) {
	if !s.accounts || !s.d.Host.HasRole(spec.Prosody) {
		return nil, nil
	}
	if _, err := exec.LookPath("prosodyctl"); err != nil {
		s.logf("notice: prosodyctl not found; the focus and jvb accounts were not created (install prosody, then apply again)")
		return nil, nil
	}
	m := &accounts.Manager{Prosody: accounts.ProsodyCtl{}, StatePath: accounts.StatePath(stateDir(s.d, s.root))}
	res, err := m.Ensure(ctx, accounts.ForDeployment(s.d))
	for _, r := range res {
		if r.Action != accounts.Unchanged {
			s.logf("account %s: %s", r.JID, r.Action)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("prosody accounts: %w", err)
	}
	return accounts.Components(res), nil
}

// run performs the service side. The returned outcome may be partial when
// err is set; a *systemd.RollbackError means the files were restored.
func (s *serviceStep) run(ctx context.Context) (*systemd.Outcome, error) {
	urgent, err := s.ensureAccounts(ctx)
	if err != nil {
		return nil, err
	}
	svcs := systemd.ServicesFor(s.d)
	r := systemd.NewReloader(s.units, systemd.Options{
		Services:     svcs,
		DeferredPath: systemd.DeferredPath(stateDir(s.d, s.root)),
		Redact:       s.set.Redact,
		Logf:         s.logf,
	})
	var changes []systemd.Change
	if s.res != nil {
		changes = systemd.ChangesFromPlan(s.res.Changes)
	}
	changes = append(changes, systemd.UrgentFor(svcs, urgent...)...)
	var restorer systemd.Restorer
	if s.res != nil && s.res.Changed() {
		serial := s.res.Serial
		restorer = systemd.RestorerFunc(func(ctx context.Context) ([]string, error) {
			u, err := apply.Undo(ctx, serial, s.opts)
			if err != nil {
				return nil, err
			}
			return u.Paths(), nil
		})
	}
	out, err := systemd.ReloadOrRollback(ctx, r, changes, restorer)
	if err != nil {
		return out, err
	}
	if s.restartDeferred {
		rep, err := r.RestartDeferred(ctx)
		if err != nil {
			return out, fmt.Errorf("deferred restarts: %w", err)
		}
		for _, u := range rep.Units {
			s.logf("%s %s: %s", u.Action, u.Unit, u.Result)
		}
	}
	return out, nil
}

// isRollback reports whether err says the files were put back.
func isRollback(err error) bool {
	var rbe *systemd.RollbackError
	return errors.As(err, &rbe)
}
