package systemd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/jitsi-agent/jitsi-agent/internal/deferred"
	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/logging"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Change is a unit whose files changed, with the component that owns them
// ("prosody", "jicofo", "jvb", "nginx", "coturn" or "template:NAME").
type Change struct {
	Unit      string `json:"unit"`
	Component string `json:"component"`
	// Urgent restarts now even under restart = "defer": set it for jicofo
	// and jvb when their Prosody account password was rotated in this
	// apply (a deferred restart would leave them unable to log in again).
	Urgent bool `json:"urgent,omitempty"`
	// Restart: the change needs a restart even though the unit can
	// reload (a Prosody setting that only a restart takes, see
	// internal/prosody). It follows the service's restart policy.
	Restart bool `json:"restart,omitempty"`
	// Why says why it needs the restart (shown with a deferral).
	Why string `json:"why,omitempty"`
}

// ChangesFromPlan lists the units of the changes an apply (or rollback)
// made: apply.Result.Changes. Unmanaged paths were not touched and reload
// nothing.
func ChangesFromPlan(changes []plan.Change) []Change {
	var out []Change
	for _, c := range changes {
		if c.Action == plan.ActionUnmanage {
			continue
		}
		for _, u := range c.Units {
			out = append(out, Change{Unit: u, Component: c.Component})
		}
	}
	return Order(out)
}

// UrgentFor returns urgent changes for the units of the given components
// (see Change.Urgent); append them to the apply's changes.
func UrgentFor(services map[string]spec.Service, components ...string) []Change {
	var out []Change
	for _, c := range components {
		if s, ok := services[c]; ok && s.Unit != "" {
			out = append(out, Change{Unit: s.Unit, Component: c, Urgent: true})
		}
	}
	return out
}

// rank is the reload order (the component table, internal/files): Prosody
// first (Jicofo and JVB log in to it), then Jicofo, JVB, nginx, coturn, then
// units named by custom templates.
func rank(component string) int { return files.Rank(component) }

// disruptive components end every running meeting when restarted.
func disruptive(component string) bool {
	c, ok := files.Lookup(component)
	return ok && c.Disruptive
}

// Order deduplicates changes by unit (a unit named by several components
// takes the earliest position) and sorts them in reload order.
func Order(changes []Change) []Change {
	best := map[string]Change{}
	var units []string
	for _, c := range changes {
		if c.Unit == "" {
			continue
		}
		prev, ok := best[c.Unit]
		if !ok {
			units = append(units, c.Unit)
			best[c.Unit] = c
			continue
		}
		urgent, restart, why := prev.Urgent || c.Urgent, prev.Restart || c.Restart, prev.Why
		if why == "" {
			why = c.Why
		}
		if rank(c.Component) < rank(prev.Component) {
			prev = c
		}
		prev.Urgent, prev.Restart, prev.Why = urgent, restart, why
		best[c.Unit] = prev
	}
	out := make([]Change, 0, len(units))
	for _, u := range units {
		out = append(out, best[u])
	}
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := rank(out[i].Component), rank(out[j].Component)
		if ri != rj {
			return ri < rj
		}
		return out[i].Unit < out[j].Unit
	})
	return out
}

// Action is what the reloader did to a unit.
type Action string

const (
	ActionNone     Action = "none"     // not changed and already running
	ActionReload   Action = "reload"   // running and CanReload
	ActionRestart  Action = "restart"  // running without reload support
	ActionStart    Action = "start"    // stopped (changed, or enabled in the spec)
	ActionDeferred Action = "deferred" // disruptive restart postponed (restart = "defer")
	ActionSkipped  Action = "skipped"  // stopped and disabled in the spec: left alone
	ActionNotRun   Action = "not-run"  // an earlier unit failed; nothing was done
	ActionStop     Action = "stop"     // retired: the spec no longer runs it here (Retire)
)

// Outcome values of UnitResult.Result.
const (
	ResultOK       = "ok"
	ResultFailed   = "failed"
	ResultDeferred = "deferred"
	ResultSkipped  = "skipped"
	// ResultMissing: systemd has no such unit (not installed, or a typo in
	// a template's notify list). A warning, not a failure.
	ResultMissing = "missing"
)

// UnitResult is what happened to one unit.
type UnitResult struct {
	Unit      string        `json:"unit"`
	Component string        `json:"component"`
	Changed   bool          `json:"changed"`            // its files changed in this apply
	Enabled   bool          `json:"enabled"`            // this run enabled the unit file
	Disabled  bool          `json:"disabled,omitempty"` // this run disabled it (Retire)
	Action    Action        `json:"action"`
	Result    string        `json:"result"`
	State     UnitState     `json:"state"` // after the action (and verification)
	Duration  time.Duration `json:"duration"`
	Note      string        `json:"note,omitempty"`
	Err       error         `json:"-"` // a *UnitError when Result is failed
}

// Report is the result of one reloader pass, in the order units were handled.
type Report struct {
	Units []UnitResult `json:"units"`
	// NewlyDeferred are the restarts this pass recorded as deferred.
	NewlyDeferred []deferred.Restart `json:"newly_deferred,omitempty"`
}

// Failed returns the failed units.
func (r *Report) Failed() []UnitResult {
	var out []UnitResult
	for _, u := range r.Units {
		if u.Result == ResultFailed {
			out = append(out, u)
		}
	}
	return out
}

// Missing returns the units systemd does not know: print them as warnings.
func (r *Report) Missing() []UnitResult {
	var out []UnitResult
	for _, u := range r.Units {
		if u.Result == ResultMissing {
			out = append(out, u)
		}
	}
	return out
}

// Acted returns the units this pass reloaded, restarted or started (whether
// or not that succeeded): after a rollback exactly these must be reloaded
// again to pick up the restored files.
func (r *Report) Acted() []Change {
	var out []Change
	for _, u := range r.Units {
		switch u.Action {
		case ActionReload, ActionRestart, ActionStart:
			out = append(out, Change{Unit: u.Unit, Component: u.Component})
		}
	}
	return out
}

// UnitError is a unit that failed its action or verification, with its
// state and the last lines of its journal (secrets redacted).
type UnitError struct {
	Unit      string
	Component string
	Action    Action
	State     UnitState
	Journal   []string
	// JournalErr is why the journal could not be read, if it could not.
	JournalErr error
	Err        error
}

func (e *UnitError) Error() string {
	var b strings.Builder
	if e.Action == "" || e.Action == ActionNone {
		fmt.Fprintf(&b, "%s: %v; state: %s", e.Unit, e.Err, e.State)
	} else {
		fmt.Fprintf(&b, "%s: %s failed: %v; state: %s", e.Unit, e.Action, e.Err, e.State)
	}
	if len(e.Journal) > 0 {
		b.WriteString("\nlast journal lines of " + e.Unit + ":")
		for _, l := range e.Journal {
			b.WriteString("\n  " + l)
		}
	} else if e.JournalErr != nil {
		fmt.Fprintf(&b, " (journal unavailable: %v)", e.JournalErr)
	}
	return b.String()
}

func (e *UnitError) Unwrap() error { return e.Err }

// HTTPDoer is the HTTP client used for health checks (*http.Client fits).
type HTTPDoer interface {
	Do(req *http.Request) (*http.Response, error)
}

// Options configures a Reloader. Only Services is needed for policy; the
// zero values of the rest are sensible defaults.
type Options struct {
	// Services maps component -> the spec's service settings (unit name,
	// enabled, restart policy, health URL): Deployment.Services, restricted
	// to the components this host runs (ServicesFor does that).
	Services map[string]spec.Service
	// DeferredPath is the JSON file of deferred restarts in the state dir
	// ("" = do not persist: deferred restarts are only reported).
	DeferredPath string
	// HTTP runs health checks (default: a client with a 5 s timeout).
	HTTP HTTPDoer
	// Journal reads journal lines for failures (default JournalCtl{}).
	Journal Journal
	// JournalLines is how many lines to attach (default 20).
	JournalLines int
	// ActiveTimeout bounds waiting for a unit to become active after its
	// job finished (default 30 s).
	ActiveTimeout time.Duration
	// HealthTimeout bounds waiting for a 2xx from the health URL
	// (default 60 s: the JVMs of jicofo and jvb take a while).
	HealthTimeout time.Duration
	// Settle is how long a started or restarted unit must stay active
	// before it counts as up (default 2 s): Type=simple services such as
	// Prosody are "active" the moment they are forked and die a moment
	// later on a bad configuration. Negative disables it.
	Settle time.Duration
	// PollInterval between state/health polls (default 250 ms).
	PollInterval time.Duration
	// Redact lists secret values scrubbed from journal lines
	// (render.Set.Redact / Deployment.SecretValues()).
	Redact []string
	// Now is the clock for deferred timestamps (default time.Now).
	Now func() time.Time
	// Log receives one line per action (default: discarded).
	Log logrus.FieldLogger
	// AfterUnit, when set, runs right after each unit's action succeeded
	// and before the next unit (e.g. Prosody's live step: jicofo and the
	// videobridge, next in order, log in to the hosts it activates). An
	// error fails the unit like a failed reload: apply rolls back.
	AfterUnit func(ctx context.Context, res UnitResult) error
}

// ServicesFor returns the deployment's services this host runs (by
// Host.Roles; all of them when no roles are set) that name a unit.
func ServicesFor(d *spec.Deployment) map[string]spec.Service {
	out := map[string]spec.Service{}
	for c, s := range d.Services {
		if s.Unit == "" {
			continue
		}
		if len(d.Host.Roles) > 0 && !d.Host.HasRole(c) {
			continue
		}
		if s.Component == "" {
			s.Component = c
		}
		out[c] = s
	}
	return out
}

// Reloader makes running services pick up changed files.
type Reloader struct {
	units Units
	o     Options
}

// NewReloader returns a reloader over units.
func NewReloader(units Units, o Options) *Reloader {
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 5 * time.Second}
	}
	if o.Journal == nil {
		o.Journal = JournalCtl{}
	}
	if o.JournalLines <= 0 {
		o.JournalLines = 20
	}
	if o.ActiveTimeout <= 0 {
		o.ActiveTimeout = 30 * time.Second
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = 60 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.Settle == 0 {
		o.Settle = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = logging.Discard()
	}
	return &Reloader{units: units, o: o}
}

type item struct {
	Change
	changed bool
}

// Apply handles the changed units plus every unit the spec enables: in
// reload order it enables unit files that are not enabled, reloads running
// units that support it, restarts the others (or defers the restart of
// jicofo/jvb under restart = "defer"), starts stopped units, and verifies
// each unit it touched (active, health URL 2xx). It stops at the first
// failure (later units are ActionNotRun). The error is an *ApplyError.
func (r *Reloader) Apply(ctx context.Context, changes []Change) (*Report, error) {
	items := r.items(changes, true)
	stored, err := deferred.Load(r.o.DeferredPath)
	if err != nil && r.o.DeferredPath != "" {
		return nil, err
	}
	pending := map[string]bool{}
	for _, d := range stored {
		pending[d.Unit] = true
	}
	return r.run(ctx, items, false, pending)
}

// RestartDeferred runs the recorded deferred restarts (apply
// --restart-deferred) in reload order and clears each one that succeeds.
func (r *Reloader) RestartDeferred(ctx context.Context) (*Report, error) {
	stored, err := deferred.Load(r.o.DeferredPath)
	if err != nil {
		return nil, err
	}
	var items []item
	pending := map[string]bool{}
	for _, d := range stored {
		// A recorded deferral is always a restart (a Prosody one
		// would otherwise be "reloaded", as the unit can reload).
		items = append(items, item{Change: Change{Unit: d.Unit, Component: d.Component, Restart: true}, changed: true})
		pending[d.Unit] = true
	}
	return r.run(ctx, items, true, pending)
}

// Retire stops and disables units the spec no longer runs on this host
// (a component it ran before: TURN or recording turned off, a role moved
// to another host, the service's enabled = false): like `systemctl disable
// --now`. A unit systemd does not know, or a masked one, is left alone;
// one already stopped and disabled is skipped. Every unit is tried; the
// error lists those that failed (*ApplyError).
func (r *Reloader) Retire(ctx context.Context, units []Change) (*Report, error) {
	rep := &Report{}
	var failed []*UnitError
	for _, c := range Order(units) {
		res := UnitResult{Unit: c.Unit, Component: c.Component, Action: ActionSkipped, Result: ResultSkipped}
		since := r.o.Now().Add(-time.Second)
		fail := func(st UnitState, err error) {
			res.Result, res.State = ResultFailed, st
			ue := r.unitError(ctx, item{Change: c}, ActionStop, st, err, since)
			res.Err = ue
			failed = append(failed, ue)
			r.o.Log.Warnf("%s: stop: %v", c.Unit, err)
		}
		st, err := r.units.Properties(ctx, c.Unit)
		switch {
		case err != nil:
			fail(st, err)
		case !st.Known():
			res.Result, res.State, res.Note = ResultMissing, st, "not installed"
		case st.LoadState == "masked" || st.UnitFileState == "masked":
			res.State, res.Note = st, "unit is masked"
		default:
			if st.Running() || st.ActiveState == "activating" || st.ActiveState == "reloading" {
				res.Action = ActionStop
				r.o.Log.Infof("%s: stop (no longer in the spec for this host)", c.Unit)
				if err := r.units.Stop(ctx, c.Unit); err != nil {
					after, perr := r.units.Properties(ctx, c.Unit)
					if perr != nil {
						after = st
					}
					fail(after, err)
					break
				}
			}
			if st.UnitFileState == "enabled" {
				if err := r.units.Disable(ctx, c.Unit); err != nil {
					fail(st, fmt.Errorf("disabling: %w", err))
					break
				}
				res.Disabled = true
				r.o.Log.Infof("%s: disabled", c.Unit)
			}
			if after, err := r.units.Properties(ctx, c.Unit); err == nil {
				st = after
			}
			res.Result, res.State = ResultOK, st
		}
		rep.Units = append(rep.Units, res)
	}
	if len(failed) > 0 {
		return rep, &ApplyError{Units: failed}
	}
	return rep, nil
}

// Reload is the rollback pass: reload/restart/start exactly the given
// units (no deferral, no enabling, no other services).
func (r *Reloader) Reload(ctx context.Context, changes []Change) (*Report, error) {
	items := r.items(changes, false)
	return r.run(ctx, items, true, nil)
}

func (r *Reloader) items(changes []Change, withEnabled bool) []item {
	all := append([]Change{}, changes...)
	changed := map[string]bool{}
	for _, c := range changes {
		changed[c.Unit] = true
	}
	if withEnabled {
		comps := make([]string, 0, len(r.o.Services))
		for c := range r.o.Services {
			comps = append(comps, c)
		}
		sort.Strings(comps)
		for _, c := range comps {
			s := r.o.Services[c]
			if s.Enabled && s.Unit != "" {
				all = append(all, Change{Unit: s.Unit, Component: c})
			}
		}
	}
	var out []item
	for _, c := range Order(all) {
		out = append(out, item{Change: c, changed: changed[c.Unit]})
	}
	return out
}

func (r *Reloader) service(component string) (spec.Service, bool) {
	s, ok := r.o.Services[component]
	return s, ok
}

// run executes items in order. force disables deferral (restart-deferred,
// rollback). pending lists units with a recorded deferred restart.
func (r *Reloader) run(ctx context.Context, items []item, force bool, pending map[string]bool) (*Report, error) {
	rep := &Report{}
	var add []deferred.Restart
	var clear []string
	var failed []*UnitError
	for i, it := range items {
		if len(failed) > 0 {
			for _, rest := range items[i:] {
				rep.Units = append(rep.Units, UnitResult{Unit: rest.Unit, Component: rest.Component, Changed: rest.changed, Action: ActionNotRun, Result: ResultSkipped})
			}
			break
		}
		start := time.Now()
		res, d, ok := r.one(ctx, it, force)
		if ok && res.Err == nil && r.o.AfterUnit != nil {
			if err := r.o.AfterUnit(ctx, res); err != nil {
				res.Result = ResultFailed
				res.Err = &UnitError{Unit: it.Unit, Component: it.Component, Action: res.Action, State: res.State, Err: err}
				r.o.Log.Warnf("%s: %v", it.Unit, err)
			}
		}
		res.Duration = time.Since(start)
		rep.Units = append(rep.Units, res)
		if d != nil {
			add = append(add, *d)
			if !pending[d.Unit] {
				rep.NewlyDeferred = append(rep.NewlyDeferred, *d)
			}
		}
		if ok && pending[it.Unit] && (res.Action == ActionRestart || res.Action == ActionStart) {
			clear = append(clear, it.Unit) // it now runs the files on disk
		}
		if res.Err != nil {
			var ue *UnitError
			if errors.As(res.Err, &ue) {
				failed = append(failed, ue)
			} else {
				failed = append(failed, &UnitError{Unit: it.Unit, Component: it.Component, Action: res.Action, State: res.State, Err: res.Err})
			}
		}
	}
	var perr error
	if r.o.DeferredPath != "" {
		perr = deferred.Update(r.o.DeferredPath, add, clear)
	}
	if len(failed) > 0 {
		return rep, &ApplyError{Units: failed, Persist: perr}
	}
	if perr != nil {
		return rep, perr
	}
	return rep, nil
}

// ApplyError lists the units that failed (the reloader stops at the first,
// so normally one).
type ApplyError struct {
	Units []*UnitError
	// Persist is a failure to record deferred restarts, if any.
	Persist error
}

func (e *ApplyError) Error() string {
	var parts []string
	for _, u := range e.Units {
		parts = append(parts, u.Error())
	}
	if e.Persist != nil {
		parts = append(parts, e.Persist.Error())
	}
	return strings.Join(parts, "\n")
}

func (e *ApplyError) Unwrap() []error {
	var out []error
	for _, u := range e.Units {
		out = append(out, u)
	}
	if e.Persist != nil {
		out = append(out, e.Persist)
	}
	return out
}

// one handles a single unit. It returns the result, a deferred entry when
// the restart was deferred, and whether the action succeeded.
func (r *Reloader) one(ctx context.Context, it item, force bool) (UnitResult, *deferred.Restart, bool) {
	res := UnitResult{Unit: it.Unit, Component: it.Component, Changed: it.changed}
	// Journal lines from a second before the action: what this run caused,
	// not the unit's history.
	since := r.o.Now().Add(-time.Second)
	fail := func(action Action, st UnitState, err error) (UnitResult, *deferred.Restart, bool) {
		res.Action, res.Result, res.State = action, ResultFailed, st
		res.Err = r.unitError(ctx, it, action, st, err, since)
		r.o.Log.Warnf("%s: %s: %v", it.Unit, action, err)
		return res, nil, false
	}
	st, err := r.units.Properties(ctx, it.Unit)
	if err != nil {
		return fail(ActionNone, st, err)
	}
	if !st.Known() {
		// Not installed: nothing to reload, and restoring files would not
		// help, so this is reported (Report.Missing) rather than failed.
		res.Action, res.Result, res.State = ActionSkipped, ResultMissing, st
		res.Note = fmt.Sprintf("systemd has no unit %s (load state %q); is the package installed?", it.Unit, st.LoadState)
		r.o.Log.Warnf("%s: %s", it.Unit, res.Note)
		return res, nil, true
	}
	if st.LoadState == "masked" {
		// The administrator masked it: never start it, never roll back for it.
		res.Action, res.Result, res.State = ActionSkipped, ResultSkipped, st
		res.Note = "unit is masked"
		r.o.Log.Infof("%s: masked; left alone", it.Unit)
		return res, nil, true
	}
	svc, isService := r.service(it.Component)
	wantEnabled := isService && svc.Enabled && svc.Unit == it.Unit

	if wantEnabled && !force && !st.IsEnabled() && st.UnitFileState != "masked" {
		if err := r.units.Enable(ctx, it.Unit); err != nil {
			return fail(ActionNone, st, fmt.Errorf("enabling: %w", err))
		}
		res.Enabled = true
		r.o.Log.Infof("%s: enabled", it.Unit)
	}

	var action Action
	switch {
	case st.Running() && it.changed && st.CanReload && !it.Restart:
		action = ActionReload
	case (st.Running() || st.ActiveState == "activating") && it.changed:
		action = ActionRestart
		if !force && !it.Urgent && st.Running() && (disruptive(it.Component) || it.Restart) && svc.Restart == spec.RestartDefer {
			reason := "configuration changed; restarting ends every running meeting"
			if it.Why != "" {
				reason = it.Why + "; restarting ends every running meeting"
			}
			d := &deferred.Restart{Unit: it.Unit, Component: it.Component, Since: r.o.Now().UTC(), Reason: reason}
			res.Action, res.Result, res.State = ActionDeferred, ResultDeferred, st
			r.o.Log.Infof("%s: restart deferred (restart = \"defer\"); run apply --restart-deferred", it.Unit)
			return res, d, true
		}
	case st.Running() || st.ActiveState == "activating":
		res.Action, res.Result, res.State = ActionNone, ResultOK, st
		return res, nil, true
	case it.changed && isService && !svc.Enabled:
		// Files changed for a service the spec keeps stopped.
		res.Action, res.Result, res.State = ActionSkipped, ResultSkipped, st
		return res, nil, true
	case it.changed || wantEnabled || force:
		action = ActionStart
	default:
		res.Action, res.Result, res.State = ActionSkipped, ResultSkipped, st
		return res, nil, true
	}

	r.o.Log.Infof("%s: %s", it.Unit, action)
	var jerr error
	switch action {
	case ActionReload:
		jerr = r.units.Reload(ctx, it.Unit)
	case ActionRestart:
		jerr = r.units.Restart(ctx, it.Unit)
	case ActionStart:
		jerr = r.units.Start(ctx, it.Unit)
	}
	if jerr != nil {
		after, perr := r.units.Properties(ctx, it.Unit)
		if perr != nil {
			after = st
		}
		return fail(action, after, jerr)
	}
	after, err := r.waitActive(ctx, it.Unit)
	if err == nil && action != ActionReload && r.o.Settle > 0 {
		after, err = r.settle(ctx, it.Unit, after)
	}
	if err != nil {
		return fail(action, after, err)
	}
	if isService && svc.HealthURL != "" && svc.Unit == it.Unit {
		if err := r.waitHealthy(ctx, svc.HealthURL); err != nil {
			return fail(action, after, err)
		}
	}
	res.Action, res.Result, res.State = action, ResultOK, after
	return res, nil, true
}

// waitActive polls ActiveState until "active", a terminal state, or the
// bound. "activating"/"reloading" keep it waiting (Restart= loops too).
func (r *Reloader) waitActive(ctx context.Context, unit string) (UnitState, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.ActiveTimeout)
	defer cancel()
	var last UnitState
	for {
		st, err := r.units.Properties(ctx, unit)
		if err == nil {
			last = st
			switch st.ActiveState {
			case "active":
				return st, nil
			case "failed", "inactive":
				return st, fmt.Errorf("%s is %s after the job finished", unit, st.ActiveState)
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return last, fmt.Errorf("waiting for %s to become active: %w", unit, err)
			}
			return last, fmt.Errorf("%s did not become active within %s (state %s)", unit, r.o.ActiveTimeout, last.ActiveState)
		case <-time.After(r.o.PollInterval):
		}
	}
}

// settle keeps polling for Settle and fails if the unit leaves "active"
// (crashed on its new files, or restarting in a Restart= loop).
func (r *Reloader) settle(ctx context.Context, unit string, st UnitState) (UnitState, error) {
	end := time.NewTimer(r.o.Settle)
	defer end.Stop()
	for {
		select {
		case <-end.C:
			return st, nil
		case <-ctx.Done():
			return st, fmt.Errorf("waiting for %s to stay active: %w", unit, ctx.Err())
		case <-time.After(r.o.PollInterval):
		}
		cur, err := r.units.Properties(ctx, unit)
		if err != nil {
			continue
		}
		st = cur
		if st.ActiveState != "active" && st.ActiveState != "reloading" {
			return st, fmt.Errorf("%s became %s within %s of starting", unit, st.ActiveState, r.o.Settle)
		}
	}
}

// waitHealthy polls url until it answers 2xx or the bound passes.
func (r *Reloader) waitHealthy(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.HealthTimeout)
	defer cancel()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("health URL %s: %w", url, err)
		}
		resp, err := r.o.HTTP.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				return nil
			}
			last = fmt.Errorf("status %s", resp.Status)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("health check %s did not answer 2xx within %s: %w", url, r.o.HealthTimeout, last)
		case <-time.After(r.o.PollInterval):
		}
	}
}

func (r *Reloader) unitError(ctx context.Context, it item, action Action, st UnitState, err error, since time.Time) *UnitError {
	ue := &UnitError{Unit: it.Unit, Component: it.Component, Action: action, State: st, Err: err}
	if errors.Is(err, ErrNoSuchUnit) || errors.Is(err, ErrBusClosed) {
		return ue
	}
	// The caller's ctx may be the one that expired: give the journal its
	// own short budget.
	jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	lines, jerr := r.o.Journal.Tail(jctx, it.Unit, r.o.JournalLines, since)
	ue.JournalErr = jerr
	for _, l := range lines {
		ue.Journal = append(ue.Journal, redact(l, r.o.Redact))
	}
	return ue
}

func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "(sensitive)")
		}
	}
	return s
}
