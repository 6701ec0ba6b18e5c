package agent

import (
	"context"

	"github.com/jitsi-agent/jitsi-agent/internal/apply"
	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/input"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

// deployRenewals puts renewed certificates in place while a rollback is
// held. A certificate that renews the deployed one (certs.IsRenewal: the
// same names and key type, not expiring sooner) is not a change of the
// spec, so the hold does not keep it out: its files (and their keys) are
// swapped like any apply's, and the units the files table names for them
// (nginx, Prosody, coturn, the front) are reloaded. Every other change
// between the held generation and the spec stays out (apply.Options.Skip),
// the hold stays, and nothing else runs (no accounts, firewall, enabling
// or stopping of units). A unit that fails on the new certificate puts the
// previous files back.
func (a *Daemon) deployRenewals(ctx context.Context, d *spec.Deployment, req daemon.Request, out *daemon.Outcome) error {
	env := a.cfg.Env
	now := env.now()
	mat, err := certs.Load(d, a.root, now)
	if err != nil {
		return nil // nothing to deploy: the apply after the hold reports it
	}
	renewed := map[string]bool{}
	files := certs.Files(d, mat) // a certificate, then its key, per consumer
	for i := 0; i+1 < len(files); i += 2 {
		cert, key := files[i], files[i+1]
		cur, err := input.ReadFile(hostPath(a.root, cert.Path), 0)
		if err != nil || !key.Sensitive || !certs.IsRenewal(cur, cert.Content) {
			continue
		}
		renewed[cert.Path], renewed[key.Path] = true, true
	}
	if len(renewed) == 0 {
		return nil
	}
	a.mu.Lock()
	members := a.members
	a.mu.Unlock()
	set, err := desiredState(d, a.root, now, &a.templates, members)
	if err != nil {
		return nil
	}
	out.Redact = append(out.Redact, set.Redact...)
	opts := apply.Options{Root: a.root, StateDir: d.StateDir, Keep: d.Backups, Now: env.Now,
		Skip: func(c plan.Change) bool {
			return !renewed[c.Path] || c.Action != plan.ActionUpdate || c.HostChanged
		}}
	fr, err := apply.Apply(ctx, set, opts)
	if err != nil {
		return err
	}
	if !fr.Changed() {
		return nil
	}
	var paths []string
	for _, c := range fr.Changes {
		paths = append(paths, hostPath(a.root, c.Dest()))
	}
	if req.Wrote != nil {
		req.Wrote(paths...)
	}
	out.Written = append(out.Written, paths...)
	log := a.cfg.Log
	log.WithField("files", len(paths)).Info("certificates: renewal deployed while the rollback is held")
	settle := func() {
		if err := apply.Settle(opts, fr.Serial+1); err != nil {
			log.Infof("notice: %v", err)
		}
	}
	if env.Units == nil {
		settle()
		return nil
	}
	units, err := env.Units(ctx)
	if err != nil {
		return nil // files in place; the journal reloads them on the next apply
	}
	ro := env.Reload
	ro.Services = systemd.ServicesFor(d)
	ro.Redact = set.Redact
	ro.Log = log
	if env.Now != nil {
		ro.Now = env.Now
	}
	r := systemd.NewReloader(units, ro)
	rep, err := r.Reload(ctx, systemd.ChangesFromPlan(fr.Changes))
	so := &systemd.Outcome{Report: rep}
	if err != nil {
		err = systemd.RollBack(ctx, r, so, systemd.RestorerFunc(func(ctx context.Context) ([]string, error) {
			u, err := apply.Undo(ctx, fr.Serial, opts)
			if err != nil {
				return nil, err
			}
			var back []string
			for _, c := range u.Changes {
				back = append(back, hostPath(a.root, c.Dest()))
			}
			if req.Wrote != nil {
				req.Wrote(back...)
			}
			return back, nil
		}), err)
	}
	out.Reloaded = append(out.Reloaded, (&Result{Services: so}).Reloaded()...)
	if rep != nil {
		for _, u := range rep.Failed() {
			msg := string(u.Action) + " failed"
			if u.Err != nil {
				msg = u.Err.Error()
			}
			out.ReloadFailures = append(out.ReloadFailures, daemon.UnitFailure{Unit: u.Unit, Error: msg})
		}
	}
	if err == nil || IsCleanRollback(err) {
		settle()
	}
	return err
}
