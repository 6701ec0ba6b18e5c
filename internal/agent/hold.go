package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/jitsi-agent/jitsi-agent/internal/apply"
	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/deferred"
	"github.com/jitsi-agent/jitsi-agent/internal/firewall"
	"github.com/jitsi-agent/jitsi-agent/internal/input"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
	"github.com/jitsi-agent/jitsi-agent/internal/watch"
)

// hold is a rolled-back generation the daemon keeps in place until the spec
// or one of its inputs changes: without it the next rescan (or a drift
// event) would re-apply the spec and silently undo the rollback.
type hold struct {
	digest string // inputsDigest at the time of the rollback
	msg    string
	watch  watch.Paths
}

// inputsDigest identifies the spec and everything it reads (file() targets,
// template sources, the templates directory's listing).
func inputsDigest(res *spec.Result) string {
	h := sha256.New()
	for _, p := range res.Inputs {
		io.WriteString(h, p+"\x00")
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			io.WriteString(h, "error:"+err.Error())
		case fi.IsDir():
			ents, _ := os.ReadDir(p)
			for _, e := range ents {
				if info, err := e.Info(); err == nil {
					fmt.Fprintf(h, "%s\x00%d\x00%d\x00", e.Name(), info.Size(), info.ModTime().UnixNano())
				}
			}
		default:
			b, err := input.ReadFile(p, spec.MaxSpecFile)
			if err != nil {
				io.WriteString(h, "error:"+err.Error())
			}
			h.Write(b)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Rollback implements daemon.Rollbacker: it restores the files of serial to
// (apply.Previous: the one before the last), reloads their units, and holds
// that generation until the spec or an input changes. It refuses, with the
// reason, when the spec does not load (the state directory is unknown) or
// the backups no longer reach the serial.
func (a *Daemon) Rollback(ctx context.Context, to int) (daemon.Outcome, error) {
	var out daemon.Outcome
	a.mu.Lock()
	specPath, load := a.cfg.Spec, a.cfg.Load
	a.mu.Unlock()
	res := spec.Load(specPath, load)
	out.Redact = res.Redactions()
	out.Watch = WatchPaths(res, nil, a.root)
	if res.HasErrors() {
		return out, fmt.Errorf("rollback refused: the spec does not load (%s); stop the daemon to roll back by hand", res.Summary())
	}
	d := res.Deployment
	out.Redact = append(out.Redact, d.SecretValues()...)
	if set, err := DesiredStateReadOnly(d, a.root, a.cfg.Env.now()); err == nil {
		out.Watch = WatchPaths(res, set, a.root) // the managed files stay watched while held
	}
	opts := apply.Options{Root: a.root, StateDir: d.StateDir, Keep: d.Backups}
	r, err := apply.Rollback(ctx, to, opts)
	if err != nil {
		return out, fmt.Errorf("rollback refused: %w", err)
	}
	for _, c := range r.Changes {
		out.Written = append(out.Written, hostPath(a.root, c.Dest()))
	}
	env := a.cfg.Env
	if env.Units != nil && r.Changed() {
		units, err := env.Units(ctx)
		if err != nil {
			return out, fmt.Errorf("rolled back to serial %d, but the units could not be reloaded: %w", r.Serial, err)
		}
		ro := env.Reload
		ro.Services = systemd.ServicesFor(d)
		ro.DeferredPath = deferred.Path(StateDir(d, a.root))
		ro.Redact = d.SecretValues()
		ro.Log = a.cfg.Log
		if env.Now != nil {
			ro.Now = env.Now
		}
		so, err := systemd.ReloadOrRollback(ctx, systemd.NewReloader(units, ro), systemd.ChangesFromPlan(r.Changes), nil)
		out.Reloaded = (&Result{Services: so}).Reloaded()
		if err != nil {
			return out, fmt.Errorf("rolled back to serial %d, but reloading failed: %w", r.Serial, err)
		}
	}
	if err := a.rollbackFirewall(ctx, d, r.Changes); err != nil {
		return out, fmt.Errorf("rolled back to serial %d, but the firewall table was not: %w", r.Serial, err)
	}
	if err := apply.Settle(opts, r.Serial); err != nil {
		a.cfg.Log.WithError(err).Warn("rollback: journal")
	}
	target := to
	if target == apply.Previous {
		target = r.Serial - 2
	}
	a.hold = &hold{
		digest: inputsDigest(res),
		msg:    fmt.Sprintf("rolled back to serial %d (recorded as serial %d); held until the spec or one of its inputs changes", target, r.Serial),
		watch:  out.Watch,
	}
	a.failedSet = "" // the held generation is what runs now
	out.Held = a.hold.msg
	a.cfg.Log.Info(a.hold.msg)
	return out, nil
}

// held returns the hold's outcome when the inputs are unchanged since the
// rollback; a change releases the hold.
func (a *Daemon) held(res *spec.Result) (daemon.Outcome, bool) {
	if a.hold == nil {
		return daemon.Outcome{}, false
	}
	if inputsDigest(res) != a.hold.digest {
		a.cfg.Log.Info("the spec changed: releasing the rollback hold and applying it")
		a.hold = nil
		return daemon.Outcome{}, false
	}
	return daemon.Outcome{Held: a.hold.msg, Watch: a.hold.watch, Redact: res.Redactions()}, true
}

var _ daemon.Rollbacker = (*Daemon)(nil)

// rollbackFirewall loads the ruleset file a rollback put back (or removes
// the table when that generation had no firewall), so the kernel runs the
// held generation too.
func (a *Daemon) rollbackFirewall(ctx context.Context, d *spec.Deployment, changes []plan.Change) error {
	if a.cfg.Env.Firewall == nil {
		return nil
	}
	touched := false
	for _, c := range changes {
		if c.Path == firewall.Path {
			touched = true
		}
	}
	if !touched {
		return nil
	}
	m := a.cfg.Env.Firewall.Manager(d, a.root)
	script, err := os.ReadFile(hostPath(a.root, firewall.Path))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		_, err = m.Remove(ctx)
		return err
	case err != nil:
		return err
	}
	_, err = m.Apply(ctx, script, 0)
	return err
}
