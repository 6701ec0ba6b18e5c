package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/jitsi-agent/jitsi-agent/internal/apply"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/prosody"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

// prosodyLive takes a Prosody change to the running server (see
// internal/prosody): a reload alone does not activate new hosts, load new
// modules or make modules re-read their settings, so after the unit is
// reloaded the admin shell runs the steps the change needs and checks that
// the live server matches the config; a change only a restart takes turns
// the reload into a restart under the service's restart policy.
type prosodyLive struct {
	admin prosody.Admin
	unit  string
	// touched: some Prosody file changed in this apply.
	touched bool
	// repair: also reconcile when nothing changed (the CLI's every apply
	// and the daemon's first: a host deactivated or a module unloaded by
	// hand is put back).
	repair   bool
	old, new *prosody.Model
	plan     prosody.Plan
	log      logrus.FieldLogger
}

// isProsodyConfig reports whether p is a rendered Prosody config file.
func isProsodyConfig(p string) bool {
	return strings.HasPrefix(p, "/etc/prosody/conf.avail/") && strings.HasSuffix(p, ".cfg.lua")
}

// newProsodyLive inspects the apply's changes; nil when Prosody is not
// managed here or prosodyctl is missing.
func newProsodyLive(d *spec.Deployment, set *render.Set, res *apply.Result, shell prosody.Shell, log logrus.FieldLogger) (*prosodyLive, error) {
	if len(d.Host.Roles) > 0 && !d.Host.HasRole(spec.Prosody) {
		return nil, nil
	}
	unit := "prosody.service"
	if s, ok := d.Services[spec.Prosody]; ok && s.Unit != "" {
		unit = s.Unit
	}
	pl := &prosodyLive{admin: prosody.Admin{Shell: shell}, unit: unit, log: log}
	for _, f := range set.Files {
		if f.Kind == render.KindFile && isProsodyConfig(f.Path) {
			m, err := prosody.ModelOf(f.Content)
			if err != nil {
				return nil, fmt.Errorf("prosody config %s: %w", f.Path, err)
			}
			pl.new = m
		}
	}
	if pl.new == nil || res == nil {
		return pl, nil
	}
	for _, c := range res.Changes {
		if c.Component == spec.Prosody && c.Action != plan.ActionUnmanage {
			pl.touched = true
		}
		if c.Kind != render.KindFile || !isProsodyConfig(c.Path) {
			continue
		}
		if res.BackupDir != "" {
			b, err := os.ReadFile(filepath.Join(res.BackupDir, "files", filepath.Clean("/"+c.Dest())))
			if err == nil {
				if m, err := prosody.ModelOf(b); err == nil {
					pl.old = m
				}
			}
		}
		pl.plan = prosody.Classify(pl.old, pl.new)
	}
	return pl, nil
}

// changes marks the Prosody unit for a restart when the plan needs one.
func (p *prosodyLive) changes(ch []systemd.Change) []systemd.Change {
	if p == nil {
		return ch
	}
	r, why := p.plan.Restart()
	if !r {
		return ch
	}
	for i := range ch {
		if ch[i].Unit == p.unit {
			ch[i].Restart = true
			ch[i].Why = strings.Join(why, "; ")
		}
	}
	return ch
}

// afterUnit runs right after Prosody's unit was handled: per what happened
// to it, sync the live server (reload; or, when repairing, a running
// unchanged server), verify it (restart/start), or say the change waits for
// the deferred restart.
func (p *prosodyLive) afterUnit(ctx context.Context, u systemd.UnitResult) error {
	if p == nil || p.new == nil || (!p.touched && !p.repair) {
		return nil
	}
	switch u.Action {
	case systemd.ActionDeferred:
		_, why := p.plan.Restart()
		p.log.Infof("prosody: restart deferred (%s); the running server keeps the old config until 'apply --restart-deferred'", strings.Join(why, "; "))
		return nil
	case systemd.ActionRestart, systemd.ActionStart:
		return p.verifyAfterStart(ctx)
	case systemd.ActionReload, systemd.ActionNone:
		if u.Action == systemd.ActionNone && (!p.repair || !u.State.Running()) {
			return nil
		}
		done, err := prosody.Sync(ctx, p.admin, p.plan, p.old, p.new)
		for _, a := range done {
			if a.Kind != prosody.ActConfigReload {
				p.log.Infof("prosody: %s", a)
			}
		}
		if err != nil {
			return fmt.Errorf("prosody did not take the change live: %w", err)
		}
		return nil
	}
	return nil
}

// rollback takes the running server back to the old config after the
// files were restored (best effort: logged, never fails the rollback).
func (p *prosodyLive) rollback(ctx context.Context, u systemd.UnitResult) {
	if p == nil || !p.touched || p.old == nil || p.new == nil {
		return
	}
	if u.Action != systemd.ActionReload && u.Action != systemd.ActionNone {
		return // a restart or start already runs the old config
	}
	back := prosody.Classify(p.new, p.old)
	if r, _ := back.Restart(); r {
		p.log.Warnf("prosody: going back needs a restart; the running server keeps part of the rolled-back change until Prosody restarts")
		return
	}
	done, err := prosody.Sync(ctx, p.admin, back, p.new, p.old)
	for _, a := range done {
		if a.Kind != prosody.ActConfigReload {
			p.log.Infof("prosody (rollback): %s", a)
		}
	}
	if err != nil {
		p.log.Warnf("prosody (rollback): %v", err)
	}
}

// verifyAfterStart waits (bounded) for the admin shell and checks the
// freshly started server.
func (p *prosodyLive) verifyAfterStart(ctx context.Context) error {
	if p == nil || p.new == nil {
		return nil
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := prosody.Verify(ctx, p.admin, p.new)
		if err == nil {
			return nil
		}
		var ve *prosody.VerifyError
		if time.Now().After(deadline) || ctx.Err() != nil {
			if errors.As(err, &ve) {
				return fmt.Errorf("prosody restarted but %w", err)
			}
			return fmt.Errorf("prosody restarted but its admin shell did not answer: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// ProsodyEffect says what applying set will do to the running Prosody:
// the rendered Prosody config is compared (structurally) with the one on
// disk under root. nil when the Prosody config does not change.
func ProsodyEffect(d *spec.Deployment, set *render.Set, root string) (*plan.LiveEffect, error) {
	if len(d.Host.Roles) > 0 && !d.Host.HasRole(spec.Prosody) {
		return nil, nil
	}
	for _, f := range set.Files {
		if f.Kind != render.KindFile || !isProsodyConfig(f.Path) {
			continue
		}
		cur, err := os.ReadFile(hostPath(root, f.Path))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read %s: %w", f.Path, err)
		}
		var old *prosody.Model
		if err == nil {
			if string(cur) == string(f.Content) {
				return nil, nil
			}
			if old, err = prosody.ModelOf(cur); err != nil {
				old = nil // unreadable: treated as new
			}
		}
		nm, err := prosody.ModelOf(f.Content)
		if err != nil {
			return nil, fmt.Errorf("prosody config %s: %w", f.Path, err)
		}
		p := prosody.Classify(old, nm)
		unit := "prosody.service"
		svc := d.Services[spec.Prosody]
		if svc.Unit != "" {
			unit = svc.Unit
		}
		le := &plan.LiveEffect{Unit: unit, Effect: "live"}
		if r, _ := p.Restart(); r {
			le.Effect = "restart"
			if svc.Restart == spec.RestartDefer && old != nil {
				le.Effect = "deferred-restart"
			}
		}
		if p.Empty() {
			le.Steps = []string{"config reload only (no setting that needs more changed)"}
		}
		le.Steps = append(le.Steps, p.Summary()...)
		return le, nil
	}
	return nil, nil
}
