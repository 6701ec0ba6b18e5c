package agent

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/probe"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// fakeProber fails the components in bad and records what it probed.
type fakeProber struct {
	bad    map[string]bool
	probed []string
}

func (p *fakeProber) Has(c string) bool {
	return c == spec.Prosody || c == spec.Nginx || c == spec.Coturn
}
func (p *fakeProber) Run(ctx context.Context, cs ...string) []probe.Result {
	var out []probe.Result
	for _, c := range cs {
		rs, _ := p.Wait(ctx, c, 0)
		out = append(out, rs...)
	}
	return out
}
func (p *fakeProber) Wait(_ context.Context, c string, _ time.Duration) ([]probe.Result, error) {
	p.probed = append(p.probed, c)
	r := probe.Result{Component: c, Check: "fake", Target: c, OK: !p.bad[c]}
	if !r.OK {
		r.Error = "not serving"
	}
	return []probe.Result{r}, probe.Failed([]probe.Result{r})
}

func TestApplyProbesWhatItReloadedAndRollsBackOnAFailedProbe(t *testing.T) {
	f := newFixture(t)
	fp := &fakeProber{bad: map[string]bool{}}
	f.env.Probes = func(*spec.Deployment, *render.Set) Prober { return fp }
	res, err := f.apply(ApplyOptions{Always: true})
	if err != nil {
		t.Fatal(err)
	}
	// TURN is off in the fixture: coturn is neither started nor probed.
	if want := []string{spec.Prosody, spec.Nginx}; !slices.Equal(fp.probed, want) {
		t.Fatalf("probed %v after starting everything, want %v", fp.probed, want)
	}
	if len(res.Probes) != 2 {
		t.Fatalf("results %v", res.Probes)
	}
	f.units.take()

	// A change Prosody's unit takes but the live probe says did not.
	before := f.file(prosodyConf)
	fp.probed, fp.bad[spec.Prosody] = nil, true
	f.writeSpec(40)
	res, err = f.apply(ApplyOptions{})
	var pe *ProbeError
	if !IsCleanRollback(err) || !errors.As(err, &pe) || !strings.Contains(err.Error(), "prosody probe fake") {
		t.Fatalf("want a clean rollback caused by the probe, got %v", err)
	}
	if !slices.Equal(fp.probed, []string{spec.Prosody}) {
		t.Errorf("probed %v, want only the reloaded prosody", fp.probed)
	}
	if !bytes.Equal(f.file(prosodyConf), before) {
		t.Fatal("previous prosody config not restored")
	}
	if c := f.units.take(); !slices.Equal(c, []string{"reload prosody.service", "reload prosody.service"}) {
		t.Errorf("units %v: want the reload and the rollback's reload", c)
	}
	if res.Services == nil || !res.Services.RolledBack {
		t.Errorf("outcome %+v", res.Services)
	}
}

func TestSupervisorStartsStoppedUnitsWithBackoffAndProbes(t *testing.T) {
	f := newFixture(t)
	fp := &fakeProber{bad: map[string]bool{}}
	f.env.Probes = func(*spec.Deployment, *render.Set) Prober { return fp }
	a := NewDaemon(DaemonConfig{Spec: f.spec, Root: f.root, Env: f.env, NoJoinAPI: true})
	defer a.Close()
	ctx := context.Background()
	if _, err := a.Apply(ctx, daemon.Request{Reason: daemon.ReasonStartup, Initial: true}); err != nil {
		t.Fatal(err)
	}
	f.units.take()
	check := func() map[string]daemon.ServiceStatus {
		a.sup.once(ctx, f.env, t.Logf, t.Logf)
		out := map[string]daemon.ServiceStatus{}
		for _, s := range a.Services() {
			out[s.Unit] = s
		}
		return out
	}
	st := check()
	if len(st) != 4 || st["coturn.service"].Unit != "" || !st["prosody.service"].OK || len(st["prosody.service"].Probes) != 1 || len(f.units.take()) != 0 {
		t.Fatalf("all running: %+v", st)
	}

	// Someone stops Prosody: it is started again and probed.
	f.units.state["prosody.service"] = "inactive"
	st = check()
	if c := f.units.take(); !slices.Equal(c, []string{"start prosody.service"}) {
		t.Fatalf("calls %v", c)
	}
	if p := st["prosody.service"]; !p.OK || p.Restarts != 1 || p.LastRestart == nil {
		t.Fatalf("prosody after the restart: %+v", p)
	}

	// jicofo keeps failing: one attempt, then it waits for the backoff.
	f.units.failOn["jicofo.service"] = true
	f.units.state["jicofo.service"] = "failed"
	st = check()
	c := st["jicofo.service"]
	if c.OK || c.NextAttempt == nil || !strings.Contains(c.Problem, "starting it again failed") {
		t.Fatalf("failing jicofo: %+v", c)
	}
	if calls := f.units.take(); !slices.Equal(calls, []string{"start jicofo.service"}) {
		t.Fatalf("calls %v", calls)
	}
	check()
	if calls := f.units.take(); len(calls) != 0 {
		t.Fatalf("started again inside the backoff: %v", calls)
	}

	// nginx runs but does not serve: not OK, the probe says why.
	fp.bad[spec.Nginx] = true
	st = check()
	if n := st["nginx.service"]; n.OK || !strings.Contains(n.Problem, "probe fake") {
		t.Fatalf("nginx with a failing probe: %+v", n)
	}
	hs := daemon.Status{Ready: true, State: daemon.StateOK, Services: a.Services()}
	if ok, why := hs.Healthy(); ok || !strings.Contains(why, "nginx.service: probe fake") || !strings.Contains(why, "jicofo.service: unit is failed") {
		t.Fatalf("healthy %v %q", ok, why)
	}
}
