// Package doctor answers "is this host ready to serve the deployment, and if
// not, why": a list of independent checks (spec, plan, DNS, ports, TLS,
// services, Prosody's Lua dependencies, token verification, clock, resources),
// each reporting pass/warn/fail/skip, what it saw, and how to fix it.
//
// Every side effect goes through a small interface in Env, so each failure can
// be injected in tests; Defaults fills in the real implementations (/proc,
// net, os/exec, adjtimex, net/http). Planner, Services, Tokens and Renewal
// come from other packages and are wired by the caller; when nil, the checks
// that need them report "skip".
package doctor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/journal"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Status is the outcome of one check.
type Status string

// Statuses, in increasing severity (skip is informational).
const (
	Pass Status = "pass"
	Skip Status = "skip"
	Warn Status = "warn"
	Fail Status = "fail"
)

func (s Status) rank() int {
	switch s {
	case Pass:
		return 0
	case Skip:
		return 1
	case Warn:
		return 2
	default:
		return 3
	}
}

// Result is one check's outcome.
type Result struct {
	// ID is stable and machine-readable, e.g. "port.jvb" or "cert.expiry".
	ID    string `json:"id"`
	Title string `json:"title"`
	// Status is pass, warn, fail or skip.
	Status Status `json:"status"`
	// Seen says what the check observed (never a secret value).
	Seen string `json:"seen"`
	// Fix says what to do; set on every warn and fail.
	Fix string `json:"fix,omitempty"`
	// Duration is how long the check group producing the result took.
	Duration time.Duration `json:"-"`
}

func pass(id, title, seen string) Result {
	return Result{ID: id, Title: title, Status: Pass, Seen: seen}
}
func skip(id, title, seen string) Result {
	return Result{ID: id, Title: title, Status: Skip, Seen: seen}
}
func warn(id, title, seen, fix string) Result {
	return Result{ID: id, Title: title, Status: Warn, Seen: seen, Fix: fix}
}
func fail(id, title, seen, fix string) Result {
	return Result{ID: id, Title: title, Status: Fail, Seen: seen, Fix: fix}
}

// Report is the outcome of a doctor run.
type Report struct {
	Domain   string
	Host     string
	Started  time.Time
	Duration time.Duration
	Results  []Result
}

// Counts returns how many results have each status.
func (r *Report) Counts() map[Status]int {
	c := map[Status]int{Pass: 0, Warn: 0, Fail: 0, Skip: 0}
	for _, res := range r.Results {
		c[res.Status]++
	}
	return c
}

// Worst returns the most severe status (warn beats skip beats pass).
func (r *Report) Worst() Status {
	w := Pass
	for _, res := range r.Results {
		if res.Status.rank() > w.rank() {
			w = res.Status
		}
	}
	return w
}

// ExitCode maps the report to the CLI contract: 0 when everything passed (or
// was skipped), 2 when there are warnings but no failures, 1 on any failure.
func (r *Report) ExitCode() int {
	switch r.Worst() {
	case Fail:
		return 1
	case Warn:
		return 2
	default:
		return 0
	}
}

// SpecInfo is the outcome of loading the spec, which the caller does.
type SpecInfo struct {
	Path string
	// Valid is false when the spec had errors (the caller printed them).
	Valid bool
	// Warnings is the number of warning diagnostics.
	Warnings int
}

// Options configure a run.
type Options struct {
	// Root prefixes every host path (tests, chroots); "" means "/".
	Root string
	// Timeout bounds each check group (default 5s).
	Timeout time.Duration
	// Spec is the spec load outcome.
	Spec SpecInfo
	// RenderErr is set when the desired state could not be rendered (for
	// example the state dir's secrets are unreadable); the plan check fails.
	RenderErr error
}

// Env holds every side effect. Zero fields are filled by Defaults with the
// real implementations, except Planner, Services, Tokens and Renewal, which
// other packages provide (checks needing them are skipped while nil).
type Env struct {
	Planner  Planner
	Services ServiceManager
	Tokens   TokenChecker
	Renewal  RenewalChecker
	// Firewall reads the live nftables table (nil: the firewall checks
	// skip).
	Firewall FirewallInspector
	// FirewallProbe runs the self-test from a second network namespace
	// (nil: not run; doctor --self-test sets it).
	FirewallProbe FirewallProber

	// Probes runs the live probes (nil: skipped, e.g. with --root).
	Probes LiveProber

	Resolver   Resolver
	LocalAddrs func() ([]net.Addr, error)
	Sockets    SocketLister
	HTTP       HTTPDoer
	Exec       Commander
	Clock      ClockSource
	System     SystemInfo
	// Roots verifies certificate chains; nil means the system roots.
	Roots RootsFunc
	// Journal reads the units' recent log lines for known errors (nil:
	// the check skips).
	Journal journal.Reader
	// Now is the wall clock for expiry checks and token minting.
	Now func() time.Time
}

// Defaults returns env with every nil real-world dependency filled in.
func Defaults(env Env) Env {
	if env.Resolver == nil {
		env.Resolver = net.DefaultResolver
	}
	if env.LocalAddrs == nil {
		env.LocalAddrs = net.InterfaceAddrs
	}
	if env.Sockets == nil {
		env.Sockets = ProcSockets{}
	}
	if env.HTTP == nil {
		env.HTTP = &http.Client{
			// Health endpoints are local; never follow a redirect elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if env.Exec == nil {
		env.Exec = ExecCommander{}
	}
	if env.Clock == nil {
		env.Clock = KernelClock{}
	}
	if env.System == nil {
		env.System = ProcSystem{}
	}
	if env.Roots == nil {
		env.Roots = SystemRoots
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	return env
}

// checkGroup is one unit of parallel work producing one or more results.
type checkGroup struct {
	// id/title are used when the group times out or panics.
	id, title string
	run       func(ctx context.Context) []Result
}

// Run executes every check against d and returns the report. d may be nil
// when the spec is invalid; only the spec check is reported then.
func Run(ctx context.Context, d *spec.Deployment, env Env, opts Options) *Report {
	env = Defaults(env)
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Root == "" {
		opts.Root = "/"
	}
	start := env.Now()
	rep := &Report{Started: start}
	specRes := checkSpec(d, opts.Spec)
	if d == nil {
		rep.Results = []Result{specRes}
		rep.Duration = env.Now().Sub(start)
		return rep
	}
	rep.Domain = d.Domain
	rep.Host = d.Host.Name

	c := &checker{d: d, env: env, opts: opts}
	groups := c.groups()
	out := make([][]Result, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = runGroup(ctx, g, opts.Timeout)
		}()
	}
	wg.Wait()
	rep.Results = append(rep.Results, specRes)
	for _, rs := range out {
		rep.Results = append(rep.Results, rs...)
	}
	rep.Duration = env.Now().Sub(start)
	return rep
}

func runGroup(ctx context.Context, g checkGroup, timeout time.Duration) []Result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	done := make(chan []Result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- []Result{fail(g.id, g.title, fmt.Sprintf("check crashed: %v", p),
					"this is a bug in jitsi-agent doctor; report it with the output of 'jitsi-agent doctor --json'")}
			}
		}()
		done <- g.run(ctx)
	}()
	var rs []Result
	select {
	case rs = <-done:
	case <-ctx.Done():
		rs = []Result{fail(g.id, g.title, fmt.Sprintf("check did not finish within %s", timeout),
			"the resource this check probes is hanging (DNS, HTTP or a subprocess); investigate it, or rerun the doctor")}
	}
	el := time.Since(t0)
	for i := range rs {
		rs[i].Duration = el
	}
	return rs
}

// checker carries the run's inputs to the individual checks.
type checker struct {
	d    *spec.Deployment
	env  Env
	opts Options
}

// hostPath maps an absolute host path under the root.
func (c *checker) hostPath(p string) string {
	if c.opts.Root == "/" {
		return p
	}
	return filepath.Join(c.opts.Root, p)
}

// runs reports whether this host runs the component (all of them when the
// host lists no roles).
func (c *checker) runs(component string) bool { return c.d.Runs(component) }

func (c *checker) groups() []checkGroup {
	return []checkGroup{
		{"plan.clean", "Host matches the spec", func(ctx context.Context) []Result { return []Result{c.checkPlan(ctx)} }},
		{"dns.domain", "Domain resolves to this host", c.checkDNSAll},
		{"ports", "Ports bound by the right services", c.checkPorts},
		{"firewall.table", "Firewall allows the public ports", c.checkFirewall},
		{"cert", "TLS certificate", c.checkCert},
		{"service", "Services active", c.checkServices},
		{"health", "Health endpoints answer", c.checkHealth},
		{"live", "Services answer as the spec says (live probes)", c.checkProbes},
		{"prosody.lua-deps", "Prosody Lua modules for token auth", func(ctx context.Context) []Result { return []Result{c.checkLuaDeps(ctx)} }},
		{"prosody.plugins", "Prosody plugins, internal certificates, live hosts", c.checkProsody},
		{"token", "Token verifies against the Prosody config", c.checkToken},
		{"clock.ntp", "Clock is NTP-synchronised", func(ctx context.Context) []Result { return []Result{c.checkClock(ctx)} }},
		{"resources", "CPU, memory, file descriptors", c.checkResources},
		{"journal", "Known errors in the services' recent journal", c.checkJournal},
	}
}

// sortedKeys returns the map's keys sorted.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
