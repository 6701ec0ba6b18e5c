package doctor

import (
	"context"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/probe"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// fakeProbes answers the four probes; errs fails some (by check name).
type fakeProbes struct{ errs map[string]string }

func (f fakeProbes) Run(context.Context, ...string) []probe.Result {
	var out []probe.Result
	for _, c := range []struct{ comp, check string }{
		{spec.Nginx, probe.CheckConfigJS}, {spec.Prosody, probe.CheckBOSH}, {spec.Prosody, probe.CheckC2STLS}, {spec.Coturn, probe.CheckSTUN},
	} {
		r := probe.Result{Component: c.comp, Check: c.check, Target: c.check + " target", OK: f.errs[c.check] == ""}
		r.Error = f.errs[c.check]
		out = append(out, r)
	}
	return out
}

// TestLiveProbesNameTheBrokenState: each broken state a probe finds gets
// its own diagnosis and fix.
func TestLiveProbesNameTheBrokenState(t *testing.T) {
	d, env, root := healthyHost(t)
	d.Web.HTTPSPort = 5269
	env.Probes = fakeProbes{errs: map[string]string{
		probe.CheckConfigJS: "nginx does not answer: connection refused",
		probe.CheckBOSH:     "Prosody refused a BOSH session for guest.meet.example.com (host-unknown): the host is not active",
		probe.CheckC2STLS:   "c2s stream to auth.meet.example.com offers no STARTTLS (features: mechanisms)",
		probe.CheckSTUN:     "no STUN answer from 127.0.0.1:3478",
	}}
	rep := Run(context.Background(), d, env, Options{Root: root, Spec: SpecInfo{Path: "meet.hcl", Valid: true}})
	got := map[string]Result{}
	for _, r := range rep.Results {
		if strings.HasPrefix(r.ID, "live.") {
			got[r.ID] = r
		}
	}
	for id, want := range map[string][]string{
		"live.nginx.config.js":      {"could not bind the port", "ss -ltnp sport = :5269", "web.https_port"},
		"live.prosody.bosh":         {"does not activate new hosts", "jitsi-agent apply"},
		"live.prosody.c2s-starttls": {"/etc/prosody/certs/auth." + testDomain + ".crt"},
		"live.coturn.stun":          {"TURNSERVER_ENABLED=1", "udp/3478"},
	} {
		r, ok := got[id]
		if !ok || r.Status != Fail {
			t.Errorf("%s: %+v", id, r)
			continue
		}
		for _, w := range want {
			if !strings.Contains(r.Fix, w) {
				t.Errorf("%s fix lacks %q: %s", id, w, r.Fix)
			}
		}
	}
	if rep.ExitCode() != 1 {
		t.Errorf("exit %d", rep.ExitCode())
	}

	env.Probes = nil
	rep = Run(context.Background(), d, env, Options{Root: root, Spec: SpecInfo{Path: "meet.hcl", Valid: true}})
	for _, r := range rep.Results {
		if strings.HasPrefix(r.ID, "live") && r.Status != Skip {
			t.Errorf("without probes: %+v", r)
		}
	}
}
