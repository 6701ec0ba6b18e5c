package agent

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/probe"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

// Supervision defaults: how often the live services are checked, and the
// backoff between attempts to start a unit that keeps failing.
const (
	DefaultSuperviseEvery = 10 * time.Second
	superviseBackoffMin   = 10 * time.Second
	superviseBackoffMax   = 5 * time.Minute
)

// supervisor keeps the services of the last applied deployment in their
// desired state between applies: a managed unit that is enabled in the
// spec but stopped or failed is started again (with backoff while it keeps
// failing), and every running one is probed. What it saw is the daemon's
// live status (/healthz, /status, `jitsi-agent status`).
type supervisor struct {
	mu       sync.Mutex
	d        *spec.Deployment
	set      *render.Set
	services map[string]daemon.ServiceStatus // by unit
	backoff  map[string]*unitBackoff
}

type unitBackoff struct {
	fails int
	next  time.Time
}

// use records the deployment the supervisor works from (after each
// successful apply).
func (s *supervisor) use(d *spec.Deployment, set *render.Set) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d, s.set = d, set
}

// Services implements daemon.LiveSource.
func (s *supervisor) snapshot() []daemon.ServiceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d == nil {
		return nil
	}
	var out []daemon.ServiceStatus
	for _, c := range spec.Components {
		svc, ok := systemd.ServicesFor(s.d)[c]
		if !ok {
			continue
		}
		if st, ok := s.services[svc.Unit]; ok {
			out = append(out, st)
		}
	}
	return out
}

// once checks every service one time. It never runs while an apply runs
// (the caller holds the apply lock).
func (s *supervisor) once(ctx context.Context, env Env, logf func(string, ...any), warnf func(string, ...any)) {
	s.mu.Lock()
	d, set := s.d, s.set
	if s.services == nil {
		s.services = map[string]daemon.ServiceStatus{}
		s.backoff = map[string]*unitBackoff{}
	}
	s.mu.Unlock()
	if d == nil || env.Units == nil {
		return
	}
	units, err := env.Units(ctx)
	if err != nil {
		return // the apply already says systemd is unavailable
	}
	var prober Prober
	if env.Probes != nil {
		prober = env.Probes(d, set)
	}
	svcs := systemd.ServicesFor(d)
	now := env.now()
	seen := map[string]bool{}
	for _, c := range spec.Components {
		svc, ok := svcs[c]
		if !ok || !svc.Enabled {
			continue // the spec keeps it stopped: left alone
		}
		seen[svc.Unit] = true
		st, err := units.Properties(ctx, svc.Unit)
		s.mu.Lock()
		prev := s.services[svc.Unit]
		bo := s.backoff[svc.Unit]
		if bo == nil {
			bo = &unitBackoff{}
			s.backoff[svc.Unit] = bo
		}
		s.mu.Unlock()
		cur := daemon.ServiceStatus{Component: c, Unit: svc.Unit, Restarts: prev.Restarts, LastRestart: prev.LastRestart, CheckedAt: now}
		switch {
		case err != nil:
			cur.State, cur.Problem = "unknown", "cannot read the unit state: "+err.Error()
		case !st.Known() || st.LoadState == "masked":
			// Not installed, or masked by the administrator: nothing to keep
			// running (doctor reports it).
			continue
		case st.Running():
			cur.State = st.String()
			cur.OK = true
			bo.fails, bo.next = 0, time.Time{}
			if prober != nil && prober.Has(c) {
				cur.Probes, cur.OK, cur.Problem = probeStatus(prober.Run(ctx, c))
			}
		case st.ActiveState == "activating" || st.ActiveState == "deactivating":
			cur.State, cur.Problem = st.String(), "unit is "+st.ActiveState
		default:
			cur.State = st.String()
			cur.Problem = "unit is " + st.ActiveState + "; the spec wants it running"
			if now.Before(bo.next) {
				t := bo.next
				cur.NextAttempt = &t
				break
			}
			warnf("%s is %s; starting it again", svc.Unit, st.ActiveState)
			r := systemd.NewReloader(units, s.reloadOptions(env, d, set))
			rep, rerr := r.Reload(ctx, []systemd.Change{{Unit: svc.Unit, Component: c}})
			t := env.now()
			cur.Restarts++
			cur.LastRestart = &t
			if after, err := units.Properties(ctx, svc.Unit); err == nil {
				cur.State = after.String()
			}
			if rerr != nil || rep == nil || len(rep.Failed()) > 0 {
				bo.fails++
				wait := min(superviseBackoffMin<<(bo.fails-1), superviseBackoffMax)
				bo.next = t.Add(wait)
				next := bo.next
				cur.NextAttempt = &next
				cur.Problem = "unit is " + st.ActiveState + "; starting it again failed (next attempt in " + wait.String() + ")"
				if rerr != nil {
					cur.Problem += ": " + firstLine(rerr.Error())
				}
				warnf("%s did not start: %v", svc.Unit, rerr)
				break
			}
			logf("%s is running again", svc.Unit)
			cur.OK, cur.Problem = true, ""
			bo.fails, bo.next = 0, time.Time{}
			if prober != nil && prober.Has(c) {
				rs, _ := prober.Wait(ctx, c, ProbeWithin)
				cur.Probes, cur.OK, cur.Problem = probeStatus(rs)
			}
		}
		s.mu.Lock()
		s.services[svc.Unit] = cur
		s.mu.Unlock()
	}
	s.mu.Lock()
	for u := range s.services {
		if !seen[u] {
			delete(s.services, u)
		}
	}
	s.mu.Unlock()
}

func (s *supervisor) reloadOptions(env Env, d *spec.Deployment, set *render.Set) systemd.Options {
	ro := env.Reload
	ro.Services = systemd.ServicesFor(d)
	ro.DeferredPath = ""
	if set != nil {
		ro.Redact = set.Redact
	}
	ro.Log = nil
	if env.Now != nil {
		ro.Now = env.Now
	}
	return ro
}

// probeStatus turns probe results into the status fields.
func probeStatus(rs []probe.Result) ([]daemon.ProbeStatus, bool, string) {
	out := make([]daemon.ProbeStatus, len(rs))
	ok := true
	var bad []string
	for i, r := range rs {
		out[i] = daemon.ProbeStatus{Check: r.Check, Target: r.Target, OK: r.OK, Error: r.Error}
		if !r.OK {
			ok = false
			bad = append(bad, "probe "+r.Check+" ("+r.Target+"): "+r.Error)
		}
	}
	return out, ok, strings.Join(bad, "; ")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
