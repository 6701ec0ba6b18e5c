package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/jitsi-agent/jitsi-agent/internal/accounts"
	"github.com/jitsi-agent/jitsi-agent/internal/apply"
	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/deferred"
	"github.com/jitsi-agent/jitsi-agent/internal/doctor"
	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/firewall"
	"github.com/jitsi-agent/jitsi-agent/internal/logging"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/probe"
	"github.com/jitsi-agent/jitsi-agent/internal/prosody"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

// Env is the agent's side effects. The zero value touches nothing but the
// files under the root: no units, no accounts, no ACME, the system clock.
type Env struct {
	// Units connects to the unit manager; nil means reloads are off (files
	// only). An error means systemd is unavailable: the files are applied
	// and Result.UnitsErr says why nothing was reloaded.
	Units func(ctx context.Context) (systemd.Units, error)
	// Accounts manages the focus/jvb Prosody accounts; nil leaves them
	// alone. An accounts.Unavailable value logs its notice instead.
	Accounts accounts.Prosody
	// ACME obtains and renews certificates; nil never contacts a CA.
	ACME ACME
	// Prosody is the running Prosody's admin shell (prosody.System());
	// nil skips the live step (hosts activated, modules loaded/reloaded,
	// checked against the config) and leaves Prosody to the unit reload.
	Prosody prosody.Shell
	// Trust rebuilds the system trust store after the internal CA file
	// changed (UpdateCACertificates); nil skips it.
	Trust func(ctx context.Context) error
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Probes builds the live probes run after the reload pass (LiveProbes);
	// nil runs none. A failed probe rolls the apply back like a failed
	// unit.
	Probes func(d *spec.Deployment, set *render.Set) Prober
	// Reload tunes the reloader (health-check client, timeouts, journal);
	// Services, DeferredPath, Redact, Now and Logf are filled in per apply.
	Reload systemd.Options
	// Firewall loads the spec's nftables table into the kernel; nil leaves
	// the live table alone (the ruleset file is still written).
	Firewall *Firewall
}

// Firewall is the nftables side of Env.
type Firewall struct {
	// Nft is the kernel (firewall.Nft; tests run it in a namespace).
	Nft firewall.Backend
	// Timer arms the revert of apply --confirm (nil: --confirm refused).
	Timer firewall.Timer
	// RevertArgv is the nft command the revert unit runs.
	RevertArgv []string
	// SSHPorts lists the ports sshd listens on beyond loopback (nil: not
	// checked). A ruleset whose SSH port is none of them is refused: it
	// would lock out the administrator.
	SSHPorts func(ctx context.Context) ([]int, error)
}

// SystemFirewall is the real one: nft, and systemd-run for the revert.
func SystemFirewall() *Firewall {
	nft := "/usr/sbin/nft"
	if p, err := exec.LookPath("nft"); err == nil {
		nft = p
	}
	return &Firewall{Nft: firewall.Nft{Argv: []string{nft}}, Timer: firewall.SystemdRun{}, RevertArgv: []string{nft}, SSHPorts: sshdPorts}
}

// sshdPorts reads the listening sockets (/proc) and keeps sshd's
// non-loopback TCP ports.
func sshdPorts(ctx context.Context) ([]int, error) {
	socks, err := doctor.ProcSockets{}.Listening(ctx)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, s := range socks {
		if s.Proto != "tcp" || s.Addr.IsLoopback() {
			continue
		}
		for _, p := range s.Procs {
			if p.Comm == "sshd" && !slices.Contains(out, s.Port) {
				out = append(out, s.Port)
			}
		}
	}
	return out, nil
}

// checkSSH refuses a ruleset that would close the port sshd listens on.
func (f *Firewall) checkSSH(ctx context.Context, d *spec.Deployment) error {
	if f.SSHPorts == nil {
		return nil
	}
	ports, err := f.SSHPorts(ctx)
	if err != nil || len(ports) == 0 || slices.Contains(ports, d.Firewall.SSHPort) {
		return nil // no sshd seen (a container, not root): nothing to protect
	}
	return fmt.Errorf("sshd listens on %s, but firewall.ssh_port is %d: this ruleset would lock you out; set ssh_port = %d in the spec", joinInts(ports), d.Firewall.SSHPort, ports[0])
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x) + "/tcp"
	}
	return strings.Join(s, ", ")
}

// Manager is the firewall state of deployment d under root.
func (f *Firewall) Manager(d *spec.Deployment, root string) *firewall.Manager {
	return &firewall.Manager{Nft: f.Nft, Dir: filepath.Join(StateDir(d, root), "firewall"), Timer: f.Timer, RevertArgv: f.RevertArgv}
}

func (e Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// ApplyOptions says how one Apply runs.
type ApplyOptions struct {
	// Root is the directory treated as / ("" = /).
	Root string
	// Progress receives one line per file change; nil is quiet.
	Progress io.Writer
	// Log receives one line per service action (accounts, units);
	// default: discarded.
	Log logrus.FieldLogger
	// OverwriteDrift also replaces hand-edited files whose drift policy is
	// "report" (otherwise they are held back and listed in Result.Held).
	OverwriteDrift bool
	// Always runs the service step even when no file changed: it starts
	// enabled units that are stopped and ensures the Prosody accounts (the
	// CLI's every apply, the daemon's first).
	Always bool
	// RestartDeferred also runs the restarts earlier applies deferred.
	RestartDeferred bool
	// RestartNow are components restarted now (when their files changed)
	// whatever their restart policy: bootstrap's, whose packages it just
	// installed, so no meeting runs on them yet.
	RestartNow []string
	// Wrote, when set, is told the host paths of replaced files right after
	// the swap (and after a rollback puts files back), before any reload:
	// the daemon marks them as its own writes (daemon.Request.Wrote).
	Wrote func(paths ...string)
	// Confirm > 0 applies a firewall change that reverts by itself unless
	// "jitsi-agent confirm" arrives in time (apply --confirm).
	Confirm time.Duration
	// Daemon marks an unattended run: a firewall change that was reverted
	// for want of confirmation is not put back, and a hand-edited table is
	// only reported when the drift policy is "report".
	Daemon bool
	// Verdicts, when set, lets apply skip prosodyctl for a file it
	// already accepted byte for byte (see apply.Verdicts); the daemon
	// keeps one.
	Verdicts *apply.Verdicts
}

// Result is what one Apply did. Fields are filled as far as the apply got.
type Result struct {
	// Files is the file transaction (nil when it failed).
	Files *apply.Result
	// Held are host-changed files with drift policy "report", left as is.
	Held []plan.Change
	// UnitsErr is set when reloads were wanted but systemd is unavailable.
	UnitsErr error
	// Services is the reload pass (and its rollback); nil when no unit
	// step ran.
	Services *systemd.Outcome
	// Deferred is the --restart-deferred pass, when it ran.
	Deferred *systemd.Report
	// Retired are the units stopped and disabled because the spec no
	// longer runs them on this host (RunsFile); nil when none.
	Retired *systemd.Report
	// Accounts are the Prosody account results.
	Accounts []accounts.Result
	// Firewall is what happened to the live nftables table (nil when
	// Env.Firewall is nil or the files failed).
	Firewall *firewall.SyncResult
	// Probes are the live probes run after the reload pass.
	Probes []probe.Result
}

// Reloaded lists the units the reload pass reloaded, restarted or started
// successfully.
func (r *Result) Reloaded() []string {
	var out []string
	if r.Services == nil || r.Services.Report == nil {
		return nil
	}
	for _, u := range r.Services.Report.Units {
		switch u.Action {
		case systemd.ActionReload, systemd.ActionRestart, systemd.ActionStart:
			if u.Result != systemd.ResultFailed {
				out = append(out, u.Unit)
			}
		}
	}
	return out
}

// IsRollback reports whether err says the files were put back (a unit
// failed on the new files).
func IsRollback(err error) bool {
	var rbe *systemd.RollbackError
	return errors.As(err, &rbe)
}

// IsCleanRollback reports whether err is a rollback that restored every
// file (the previous configuration is in place again).
func IsCleanRollback(err error) bool {
	var rbe *systemd.RollbackError
	return errors.As(err, &rbe) && rbe.RestoreErr == nil
}

// Apply makes the host match set: stage, validate, swap and record the files
// (internal/apply), ensure the Prosody accounts, then reload, restart or
// start the affected units in dependency order, verifying each; a unit that
// fails puts the previous files back and reloads again (the error is then a
// *systemd.RollbackError). A *apply.CheckError means nothing changed.
func Apply(ctx context.Context, env Env, d *spec.Deployment, set *render.Set, o ApplyOptions) (*Result, error) {
	res := &Result{}
	root := o.Root
	if root == "" {
		root = "/"
	}
	log := o.Log
	if log == nil {
		log = logging.Discard()
	}
	opts := apply.Options{Root: root, StateDir: d.StateDir, Keep: d.Backups, Progress: o.Progress, Now: env.Now, Verdicts: o.Verdicts}
	if !o.OverwriteDrift {
		opts.Skip = func(c plan.Change) bool {
			if c.HostChanged && DriftPolicy(d, c.File) == spec.DriftReport {
				res.Held = append(res.Held, c)
				return true
			}
			return false
		}
	}
	var fw *firewall.Manager
	var script []byte // the rendered ruleset (the files table's firewall row); nil: off
	if f, ok := set.Lookup(firewall.Path); ok {
		script = f.Content
	}
	if env.Firewall != nil {
		fw = env.Firewall.Manager(d, root)
		// nft -c before any file is swapped: a ruleset the kernel rejects
		// changes nothing, like any other failed validator.
		if script != nil {
			if err := env.Firewall.checkSSH(ctx, d); err != nil {
				return res, &apply.CheckError{Failures: []apply.Failure{{Path: firewall.Path, Checker: "ssh port", Output: err.Error()}}}
			}
			if err := fw.Validate(ctx, script); err != nil {
				return res, &apply.CheckError{Failures: []apply.Failure{{Path: firewall.Path, Checker: string(files.Nft), Output: err.Error()}}}
			}
		}
	}
	fr, err := apply.Apply(ctx, set, opts)
	if err != nil {
		return res, err
	}
	res.Files = fr
	if o.Wrote != nil && fr.Changed() {
		var paths []string
		for _, c := range fr.Changes {
			paths = append(paths, hostPath(root, c.Dest()))
		}
		o.Wrote(paths...)
	}
	// settle tells the apply journal the units of what was swapped were
	// reloaded; until then every later apply reloads them again.
	settle := func() {
		if err := apply.Settle(opts, fr.Serial+1); err != nil {
			log.Infof("notice: %v", err)
		}
	}
	var fwRestore []byte
	if fw != nil {
		sr, err := firewall.Sync(ctx, fw, script, DriftPolicy(d, render.File{}), firewall.SyncOptions{Confirm: o.Confirm, Daemon: o.Daemon})
		if err != nil {
			// The ruleset file went in with the others: put them all back.
			if fr.Changed() {
				if _, uerr := apply.Undo(ctx, fr.Serial, opts); uerr != nil {
					err = fmt.Errorf("%w; restoring the files also failed: %w", err, uerr)
				}
			}
			return res, fmt.Errorf("firewall: %w", err)
		}
		res.Firewall = &sr
		fwRestore = sr.Restore
		if sr.Action == firewall.ActionApplied || sr.Action == firewall.ActionRemoved {
			log.Infof("firewall: %s table %s %s", sr.Action, firewall.Family, firewall.Table)
		}
	}
	if !fr.Changed() && !o.Always && !o.RestartDeferred && !runsChanged(d, root) {
		return res, nil
	}
	if env.Units == nil {
		settle() // nothing here reloads units
		return res, nil
	}
	units, err := env.Units(ctx)
	if err != nil {
		res.UnitsErr = err
		return res, nil
	}

	if env.Trust != nil {
		for _, c := range fr.Changes {
			if c.Path == certs.InternalTrustPath(d) {
				if err := env.Trust(ctx); err != nil {
					log.Warnf("the internal CA was installed but the trust store was not rebuilt: %v (run update-ca-certificates; jicofo and the videobridge verify auth.%s with it)", err, d.Domain)
				} else {
					log.Infof("trust store: internal CA added (update-ca-certificates)")
				}
			}
		}
	}
	urgent, err := ensureAccounts(ctx, env, d, root, log, res)
	if err != nil {
		return res, err
	}
	svcs := systemd.ServicesFor(d)
	ro := env.Reload
	ro.Services = svcs
	ro.DeferredPath = deferred.Path(StateDir(d, root))
	ro.Redact = set.Redact
	ro.Log = log
	if env.Now != nil {
		ro.Now = env.Now
	}
	// Prosody's live step runs as soon as its unit was handled; a failure
	// fails the unit, so the files are rolled back, and the rollback pass
	// takes the running server back to the old config the same way.
	var pl *prosodyLive
	if env.Prosody != nil {
		if pl, err = newProsodyLive(d, set, fr, env.Prosody, log); err != nil {
			return res, err
		}
	}
	livePhase := 0 // 0: apply pass, 1: rollback pass, 2: done, 3: deferred restarts
	if pl != nil {
		pl.repair = o.Always
		ro.AfterUnit = func(ctx context.Context, u systemd.UnitResult) error {
			if u.Unit != pl.unit {
				return nil
			}
			switch livePhase {
			case 0:
				livePhase = 1
				return pl.afterUnit(ctx, u)
			case 1:
				livePhase = 2
				pl.rollback(ctx, u)
			case 3:
				// A deferred restart ran: apply returns once the new
				// server serves every host of the config.
				if u.Action == systemd.ActionRestart || u.Action == systemd.ActionStart {
					return pl.verifyAfterStart(ctx)
				}
			}
			return nil
		}
	}
	r := systemd.NewReloader(units, ro)
	changes := append(systemd.ChangesFromPlan(fr.Changes), systemd.UrgentFor(svcs, urgent...)...)
	for i := range changes {
		if slices.Contains(o.RestartNow, changes[i].Component) {
			changes[i].Urgent = true // never deferred
		}
	}
	changes = pl.changes(changes)
	var restorer systemd.Restorer
	if fr.Changed() || fwRestore != nil {
		serial := fr.Serial
		restorer = systemd.RestorerFunc(func(ctx context.Context) ([]string, error) {
			// The live firewall table goes back with the files.
			var fwErr error
			if fwRestore != nil {
				fwErr = fw.Rollback(ctx, fwRestore)
			}
			if !fr.Changed() {
				return nil, fwErr
			}
			u, err := apply.Undo(ctx, serial, opts)
			if err != nil {
				return nil, errors.Join(err, fwErr)
			}
			var paths []string
			for _, c := range u.Changes {
				paths = append(paths, hostPath(root, c.Dest()))
			}
			if o.Wrote != nil {
				o.Wrote(paths...)
			}
			return paths, fwErr
		})
	}
	out, err := systemd.ReloadOrRollback(ctx, r, changes, restorer)
	res.Services = out
	livePhase = 3 // a later RestartDeferred pass is not a rollback
	if err == nil || IsCleanRollback(err) {
		settle() // the files in place are the ones the units run on
	}
	if err != nil {
		return res, err
	}
	if env.Probes != nil && out != nil {
		rs, perr := runProbes(ctx, env.Probes(d, set), out.Report, log.Infof)
		res.Probes = rs
		if perr != nil {
			if restorer == nil {
				return res, perr // nothing changed in this run: the services are unhealthy
			}
			log.Warnf("%v; rolling back", perr)
			return res, systemd.RollBack(ctx, r, out, restorer, perr)
		}
	}
	// Units the spec ran here before and no longer does are stopped and
	// disabled (RunsFile), once the new files serve.
	rep, err := retireUnits(ctx, r, svcs, StateDir(d, root), log)
	res.Retired = rep
	if err != nil {
		return res, err
	}
	if o.RestartDeferred {
		rep, err := r.RestartDeferred(ctx)
		res.Deferred = rep
		if err != nil {
			return res, fmt.Errorf("deferred restarts: %w", err)
		}
		for _, u := range rep.Units {
			log.Infof("%s %s: %s", u.Action, u.Unit, u.Result)
		}
		if env.Probes != nil {
			// The restarted services serve again before apply returns.
			rs, perr := runProbes(ctx, env.Probes(d, set), rep, log.Infof)
			res.Probes = append(res.Probes, rs...)
			if perr != nil {
				return res, fmt.Errorf("deferred restarts: %w", perr)
			}
		}
	}
	return res, nil
}

// ensureAccounts creates or updates focus@auth.DOMAIN and jvb@auth.DOMAIN
// and returns the components whose login changed (they must restart now).
func ensureAccounts(ctx context.Context, env Env, d *spec.Deployment, root string, log logrus.FieldLogger, res *Result) ([]string, error) {
	if env.Accounts == nil || !d.Host.HasRole(spec.Prosody) {
		return nil, nil
	}
	if u, ok := env.Accounts.(accounts.Unavailable); ok {
		log.Infof("notice: %s", u.Reason)
		return nil, nil
	}
	m := &accounts.Manager{Prosody: env.Accounts, StatePath: accounts.StatePath(StateDir(d, root))}
	rs, err := m.Ensure(ctx, accounts.ForDeployment(d))
	res.Accounts = rs
	for _, r := range rs {
		if r.Action != accounts.Unchanged {
			log.Infof("account %s: %s", r.JID, r.Action)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("prosody accounts: %w", err)
	}
	return accounts.Components(rs), nil
}
