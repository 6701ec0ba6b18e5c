package agent

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/probe"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

// ProbeWithin bounds how long a component's live probes may take to pass
// after its unit was reloaded, restarted or started.
const ProbeWithin = 15 * time.Second

// Prober runs a deployment's live probes (internal/probe).
type Prober interface {
	// Has reports whether the component has probes.
	Has(component string) bool
	// Wait runs the component's probes until they pass or within passes.
	Wait(ctx context.Context, component string, within time.Duration) ([]probe.Result, error)
	// Run runs every probe of the components (all when none) once.
	Run(ctx context.Context, components ...string) []probe.Result
}

// LiveProbes is the real Env.Probes: the network probes of package probe on
// this host, expecting nginx to serve the rendered config.js.
func LiveProbes(d *spec.Deployment, set *render.Set) Prober {
	o := probe.Options{}
	if set != nil {
		if f, ok := set.Lookup("/etc/jitsi/meet/" + d.Domain + "-config.js"); ok && f.Kind == render.KindFile {
			o.ConfigJS = f.Content
		}
	}
	return probe.New(d, o)
}

// ProbeError is a change the services did not take: their units run, but a
// live probe fails (nginx could not bind its new port, Prosody does not
// serve a host, ...).
type ProbeError struct {
	Err error
}

func (e *ProbeError) Error() string {
	return "the services did not take the change: " + e.Err.Error()
}

func (e *ProbeError) Unwrap() error { return e.Err }

// probedComponents are the components whose unit this pass reloaded,
// restarted or started, in reload order.
func probedComponents(rep *systemd.Report) []string {
	var out []string
	if rep == nil {
		return nil
	}
	for _, u := range rep.Units {
		switch u.Action {
		case systemd.ActionReload, systemd.ActionRestart, systemd.ActionStart:
			if u.Result == systemd.ResultOK && !slices.Contains(out, u.Component) {
				out = append(out, u.Component)
			}
		}
	}
	return out
}

// runProbes probes every component the reload pass touched; the error is
// a *ProbeError naming each failed probe.
func runProbes(ctx context.Context, p Prober, rep *systemd.Report, logf func(string, ...any)) ([]probe.Result, error) {
	var all []probe.Result
	var errs []error
	for _, c := range probedComponents(rep) {
		if !p.Has(c) {
			continue
		}
		rs, err := p.Wait(ctx, c, ProbeWithin)
		all = append(all, rs...)
		for _, r := range rs {
			if r.OK {
				logf("probe %s %s: ok (%s)", r.Component, r.Check, r.Target)
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return all, nil
	}
	return all, &ProbeError{Err: errors.Join(errs...)}
}
