// Package probe checks that the running services took a change: after
// every reload the agent asks each touched component whether it really
// serves what the spec says, over the network, as a client would.
//
//   - nginx: GET https://DOMAIN:https_port/config.js (SNI and Host set to the
//     domain, connecting to the local address) answers 200 with the
//     rendered config.js;
//   - Prosody: a BOSH session for the domain (and guest.DOMAIN when guests
//     are on) starts on Prosody's HTTP port, and a c2s stream to
//     auth.DOMAIN offers STARTTLS and completes the TLS handshake (what
//     jicofo and the videobridge need to log in);
//   - coturn: a STUN binding request on turn.port gets a binding success
//     response for the same transaction.
//
// A probe is a plain client: it reads nothing on the host, needs no
// privileges and sends no credentials. Ports come from the port model
// (spec.Deployment.Ports).
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/ports"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Check names.
const (
	CheckConfigJS   = "config.js"
	CheckBOSH       = "bosh"
	CheckC2STLS     = "c2s-starttls"
	CheckSTUN       = "stun"
	defaultTimeout  = 3 * time.Second
	defaultInterval = 250 * time.Millisecond
)

// Options tune a Prober. The zero value probes 127.0.0.1.
type Options struct {
	// Host is the address the probes connect to ("" = 127.0.0.1); names
	// (SNI, Host header, XMPP domains) always come from the spec.
	Host string
	// ConfigJS is the config.js nginx must serve (the rendered file); nil
	// accepts any non-empty 200 answer.
	ConfigJS []byte
	// Timeout bounds one attempt of one check (default 3 s).
	Timeout time.Duration
	// Interval is the pause between attempts in Wait (default 250 ms).
	Interval time.Duration
	// Ports overrides the deployment's port model (tests).
	Ports ports.Set
}

// Check is one live probe of one component.
type Check struct {
	Component string // spec.Nginx, spec.Prosody, spec.Coturn
	Name      string // CheckConfigJS, CheckBOSH, CheckC2STLS, CheckSTUN
	// Target says what is probed ("https://meet.example.com:443/config.js
	// via 127.0.0.1").
	Target string
	run    func(ctx context.Context) error
}

// Result is one check's outcome.
type Result struct {
	Component string        `json:"component"`
	Check     string        `json:"check"`
	Target    string        `json:"target"`
	OK        bool          `json:"ok"`
	Error     string        `json:"error,omitempty"`
	Duration  time.Duration `json:"duration"`
	// Attempts is how many times Wait ran the check.
	Attempts int `json:"attempts,omitempty"`
}

// Prober holds the checks of one deployment on this host.
type Prober struct {
	checks []Check
	o      Options
}

// New returns the probes of the components d runs on this host.
func New(d *spec.Deployment, o Options) *Prober {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.Interval <= 0 {
		o.Interval = defaultInterval
	}
	set := o.Ports
	if set == nil {
		set = d.Ports()
	}
	p := &Prober{o: o}
	addr := func(port int) string { return net.JoinHostPort(o.Host, strconv.Itoa(port)) }
	if port := set.Port(ports.NginxHTTPS); port != 0 {
		u := "https://" + net.JoinHostPort(d.Domain, strconv.Itoa(port)) + "/config.js"
		want := o.ConfigJS
		a := addr(port)
		p.checks = append(p.checks, Check{Component: spec.Nginx, Name: CheckConfigJS, Target: u + " via " + a,
			run: func(ctx context.Context) error { return configJS(ctx, a, d.Domain, u, want) }})
	}
	if port := set.Port(ports.ProsodyHTTP); port != 0 {
		a := addr(port)
		hosts := []string{d.Domain}
		if d.Auth.Guests {
			hosts = append(hosts, d.GuestDomain())
		}
		for _, h := range hosts {
			p.checks = append(p.checks, Check{Component: spec.Prosody, Name: CheckBOSH, Target: "http://" + a + "/http-bind to " + h,
				run: func(ctx context.Context) error { return bosh(ctx, a, d.Domain, h) }})
		}
	}
	if port := set.Port(ports.ProsodyC2S); port != 0 {
		a, h := addr(port), d.AuthDomain()
		p.checks = append(p.checks, Check{Component: spec.Prosody, Name: CheckC2STLS, Target: "xmpp://" + a + " to " + h,
			run: func(ctx context.Context) error { return c2sStartTLS(ctx, a, h) }})
	}
	if port := set.Port(ports.CoturnTURN); port != 0 {
		a := addr(port)
		p.checks = append(p.checks, Check{Component: spec.Coturn, Name: CheckSTUN, Target: "stun:" + a,
			run: func(ctx context.Context) error { return stunBinding(ctx, a) }})
	}
	return p
}

// Checks lists the checks of the components (all when none are named).
func (p *Prober) Checks(components ...string) []Check {
	var out []Check
	for _, c := range p.checks {
		if len(components) == 0 || contains(components, c.Component) {
			out = append(out, c)
		}
	}
	return out
}

// Has reports whether the component has probes.
func (p *Prober) Has(component string) bool { return len(p.Checks(component)) > 0 }

// Run runs each check once.
func (p *Prober) Run(ctx context.Context, components ...string) []Result {
	checks := p.Checks(components...)
	out := make([]Result, len(checks))
	for i, c := range checks {
		out[i] = p.once(ctx, c)
		out[i].Attempts = 1
	}
	return out
}

// Wait runs the component's checks until each has passed once or within
// has passed (services come up, and nginx replaces its workers, a moment
// after their reload job finished). The error names every check that never
// passed, with its last failure.
func (p *Prober) Wait(ctx context.Context, component string, within time.Duration) ([]Result, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	checks := p.Checks(component)
	out := make([]Result, len(checks))
	for i, c := range checks {
		for {
			r := p.once(ctx, c)
			r.Attempts = out[i].Attempts + 1
			if !r.OK && ctx.Err() != nil && out[i].Error != "" {
				// The deadline cut this attempt short: the previous
				// failure says more.
				r.Error = out[i].Error
			}
			out[i] = r
			if r.OK || ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(p.o.Interval):
			}
		}
	}
	return out, Failed(out)
}

func (p *Prober) once(ctx context.Context, c Check) Result {
	actx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	start := time.Now()
	err := c.run(actx)
	r := Result{Component: c.Component, Check: c.Name, Target: c.Target, OK: err == nil, Duration: time.Since(start)}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// Error is one or more failed checks.
type Error struct {
	Failed []Result
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Failed))
	for i, r := range e.Failed {
		parts[i] = fmt.Sprintf("%s probe %s (%s): %s", r.Component, r.Check, r.Target, r.Error)
	}
	return strings.Join(parts, "; ")
}

// Failed returns an *Error for the failed results, nil when all passed.
func Failed(rs []Result) error {
	var bad []Result
	for _, r := range rs {
		if !r.OK {
			bad = append(bad, r)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &Error{Failed: bad}
}

// IsProbeError reports whether err is (or wraps) a failed probe.
func IsProbeError(err error) bool {
	var pe *Error
	return errors.As(err, &pe)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
