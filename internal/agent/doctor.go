package agent

import (
	"context"
	"fmt"
	"github.com/jitsi-agent/jitsi-agent/internal/journal"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/deferred"
	"github.com/jitsi-agent/jitsi-agent/internal/doctor"
	"github.com/jitsi-agent/jitsi-agent/internal/firewall"
	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
	"github.com/jitsi-agent/jitsi-agent/internal/token"
)

// DoctorEnv connects the doctor to the packages that own plan, systemd,
// token and certificate state; fields left nil make their checks "skip".
// set may be nil (the render failed). The returned func releases what it
// opened (a D-Bus connection).
func DoctorEnv(ctx context.Context, d *spec.Deployment, set *render.Set, root string) (doctor.Env, func()) {
	env := doctor.Env{}
	release := func() {}
	if set != nil {
		env.Planner = doctorPlanner{d: d, set: set, root: root}
	}
	if bus, err := systemd.Connect(ctx, systemd.ConnectOptions{}); err == nil {
		env.Services = doctorUnits{bus}
		release = bus.Close
	} else {
		env.Services = doctorUnitsErr{err}
	}
	if d.Auth.Mode == spec.AuthJWT {
		env.Tokens = doctorTokens{}
	}
	if d.TLS.ACME != nil {
		env.Renewal = doctorRenewal{d: d, root: root}
	}
	if root == "" || root == "/" {
		if j := journal.System(); j != nil {
			env.Journal = j
		}
		env.Probes = LiveProbes(d, set)
	}
	if (root == "" || root == "/") && d.Firewall.Enabled && set != nil {
		if f, ok := set.Lookup(firewall.Path); ok {
			env.Firewall = doctorFirewall{m: SystemFirewall().Manager(d, root), script: f.Content}
		}
	}
	return env, release
}

// doctorFirewall reads the live table against the rendered ruleset.
type doctorFirewall struct {
	m      *firewall.Manager
	script []byte
}

func (f doctorFirewall) Inspect(ctx context.Context) (firewall.Live, error) {
	return f.m.Inspect(ctx, f.script)
}

// FirewallSelfTest probes ports from a second network namespace (doctor
// --self-test).
func FirewallSelfTest(ctx context.Context, ports []firewall.Port) ([]firewall.Probe, error) {
	return firewall.SelfTest(ctx, "", ports, 500*time.Millisecond)
}

type doctorUnits struct{ bus *systemd.DBus }

func (u doctorUnits) UnitStatus(ctx context.Context, unit string) (doctor.UnitStatus, error) {
	st, err := u.bus.Properties(ctx, unit)
	if err != nil {
		return doctor.UnitStatus{}, err
	}
	return doctor.UnitStatus{LoadState: st.LoadState, ActiveState: st.ActiveState, SubState: st.SubState}, nil
}

// doctorUnitsErr makes every service check fail with the connect error.
type doctorUnitsErr struct{ err error }

func (u doctorUnitsErr) UnitStatus(context.Context, string) (doctor.UnitStatus, error) {
	return doctor.UnitStatus{}, fmt.Errorf("connect to systemd: %w", u.err)
}

type doctorTokens struct{}

// MintAndVerify mints with the spec's settings and verifies with the values
// the doctor read from the rendered Prosody vhost.
func (doctorTokens) MintAndVerify(ctx context.Context, d *spec.Deployment, pc doctor.ProsodyTokenConfig) error {
	mcfg, err := token.FromDeployment(d)
	if err != nil {
		return err
	}
	minter, err := token.New(mcfg)
	if err != nil {
		return err
	}
	tok, err := minter.Mint(token.MintRequest{Room: "doctor-check", User: token.User{Name: "jitsi-agent doctor"}})
	if err != nil {
		return err
	}
	vcfg := mcfg
	vcfg.AppID, vcfg.Secret, vcfg.Algorithm = pc.AppID, pc.AppSecret, pc.Algorithm
	vcfg.Issuers, vcfg.Audiences, vcfg.DomainVerification = pc.Issuers, pc.Audiences, pc.DomainVerification
	verifier, err := token.New(vcfg)
	if err != nil {
		return err
	}
	_, err = verifier.Verify(tok, &token.Target{Room: "doctor-check"})
	return err
}

type doctorRenewal struct {
	d    *spec.Deployment
	root string
}

func (r doctorRenewal) RenewalState(ctx context.Context) (doctor.RenewalState, error) {
	st, err := certs.ReadState(certs.StatePath(r.d, r.root))
	if err != nil {
		return doctor.RenewalState{}, err
	}
	var out doctor.RenewalState
	for _, sl := range certs.Slots(r.d) {
		c, ok := st.Lookup(sl)
		if !ok {
			continue
		}
		out.LastSuccess = c.LastSuccess
		out.LastAttempt = c.LastSuccess
		if c.LastErrorAt.After(out.LastAttempt) {
			out.LastAttempt, out.LastError = c.LastErrorAt, c.LastError
		}
		out.NextAttempt = c.RenewAt
		if c.LastError != "" && !c.NextAttempt.IsZero() {
			out.NextAttempt = c.NextAttempt
		}
		break // the primary (first) slot
	}
	return out, nil
}

type doctorPlanner struct {
	d    *spec.Deployment
	set  *render.Set
	root string
}

func (p doctorPlanner) Summary(ctx context.Context) (doctor.PlanSummary, error) {
	host, err := fsys.New(p.root)
	if err != nil {
		return doctor.PlanSummary{}, err
	}
	m, err := manifest.Load(manifest.Path(StateDir(p.d, p.root)))
	if err != nil {
		return doctor.PlanSummary{}, err
	}
	pl, err := plan.Compute(p.set, plan.Options{Host: host, Manifest: m, Redact: p.set.Redact})
	if err != nil {
		return doctor.PlanSummary{}, err
	}
	drift := pl.HostChanged()
	s := doctor.PlanSummary{Changes: len(pl.Changes), Drift: len(drift), DriftPaths: drift}
	def, err := deferred.Load(deferred.Path(StateDir(p.d, p.root)))
	if err != nil {
		return doctor.PlanSummary{}, err
	}
	for _, u := range def {
		s.PendingRestarts = append(s.PendingRestarts, u.Unit)
	}
	return s, nil
}
