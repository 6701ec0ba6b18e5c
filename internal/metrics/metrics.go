// Package metrics holds the daemon's Prometheus metrics and the HTTP
// handlers of the loopback observability listener: /metrics and /healthz.
//
// The text exposition format (version 0.0.4) is written by hand: the
// handful of counters and gauges here do not need client_golang, whose
// package initialisation (with protobuf's) was half of every jitsi-agent
// start-up, including `jitsi-agent version`. Tests parse the output with
// Prometheus' own parser (prometheus/common/expfmt).
package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Namespace prefixes every metric name.
const Namespace = "jitsi_agent"

// Apply results (the applies_total "result" label).
const (
	ResultSuccess     = "success"
	ResultError       = "error"
	ResultInvalidSpec = "invalid_spec"
)

// Results lists every result label value.
var Results = []string{ResultSuccess, ResultError, ResultInvalidSpec}

// CertInfo is one certificate the daemon knows about.
type CertInfo struct {
	Name     string    `json:"name"`
	NotAfter time.Time `json:"not_after"`
}

// Options configure New. The funcs are read at scrape time; nil means none.
type Options struct {
	// Version, Commit and BuildDate label build_info.
	Version, Commit, BuildDate string
	// Certificates lists certificate expiries (cert_expiry_seconds{name}).
	Certificates func() []CertInfo
	// DeferredRestarts counts restarts waiting for a safe moment.
	DeferredRestarts func() int
	// Services lists the managed units as last checked
	// (service_up{unit}, service_restarts_total{unit}).
	Services func() []ServiceInfo
	// Now is the clock for cert_expiry_seconds (nil = time.Now).
	Now func() time.Time
}

// ServiceInfo is one managed unit for service_up / service_restarts_total.
type ServiceInfo struct {
	Unit     string
	Up       bool
	Restarts int
}

// Metrics are the daemon's metrics. Each Metrics has its own values; there
// is no global registry.
type Metrics struct {
	opts Options

	mu             sync.Mutex
	applies        map[string]float64
	driftFiles     float64
	lastSuccess    float64
	reloadFailures float64
	degraded       float64
}

// New creates the metrics.
func New(o Options) *Metrics {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Version == "" {
		o.Version = "unknown"
	}
	m := &Metrics{opts: o, applies: map[string]float64{}}
	for _, r := range Results {
		m.applies[r] = 0
	}
	return m
}

// ObserveApply counts one apply; a success also sets the last-success time.
func (m *Metrics) ObserveApply(result string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applies[result]++
	if result == ResultSuccess {
		m.lastSuccess = float64(at.UnixNano()) / 1e9
	}
}

// SetDriftFiles sets how many files drifted in the last run.
func (m *Metrics) SetDriftFiles(n int) {
	m.mu.Lock()
	m.driftFiles = float64(n)
	m.mu.Unlock()
}

// AddReloadFailures counts failed unit reloads.
func (m *Metrics) AddReloadFailures(n int) {
	if n > 0 {
		m.mu.Lock()
		m.reloadFailures += float64(n)
		m.mu.Unlock()
	}
}

// SetDegraded sets the degraded gauge.
func (m *Metrics) SetDegraded(d bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.degraded = 0
	if d {
		m.degraded = 1
	}
}

// sample is one line of a family: label pairs (name, value, ...) and a value.
type sample struct {
	labels []string
	value  float64
}

// family is one metric family as exposed.
type family struct {
	name, help, typ string
	samples         []sample
}

// families snapshots every metric: the agent's own, then the process and
// Go runtime metrics Prometheus' client would have added (same names).
func (m *Metrics) families() []family {
	m.mu.Lock()
	results := make([]string, 0, len(m.applies))
	for r := range m.applies {
		results = append(results, r)
	}
	sort.Strings(results)
	applies := make([]sample, 0, len(results))
	for _, r := range results {
		applies = append(applies, sample{[]string{"result", r}, m.applies[r]})
	}
	fams := []family{
		{Namespace + "_applies_total", "Plan/apply runs by result (success, error, invalid_spec).", "counter", applies},
		{Namespace + "_drift_files", "Managed files found different from what was last applied, in the last run.", "gauge", []sample{{nil, m.driftFiles}}},
		{Namespace + "_last_successful_apply_timestamp_seconds", "Unix time of the last successful apply (0 = none yet).", "gauge", []sample{{nil, m.lastSuccess}}},
		{Namespace + "_reload_failures_total", "systemd unit reloads/restarts that failed.", "counter", []sample{{nil, m.reloadFailures}}},
		{Namespace + "_degraded", "1 while the daemon runs on the last good files because the spec or an apply failed.", "gauge", []sample{{nil, m.degraded}}},
	}
	m.mu.Unlock()

	deferred := 0.0
	if m.opts.DeferredRestarts != nil {
		deferred = float64(m.opts.DeferredRestarts())
	}
	fams = append(fams, family{Namespace + "_deferred_restarts_pending", "Disruptive restarts waiting for a safe moment.", "gauge", []sample{{nil, deferred}}})

	var up, restarts []sample
	if m.opts.Services != nil {
		seen := map[string]bool{}
		for _, si := range m.opts.Services() {
			if seen[si.Unit] {
				continue
			}
			seen[si.Unit] = true
			v := 0.0
			if si.Up {
				v = 1
			}
			up = append(up, sample{[]string{"unit", si.Unit}, v})
			restarts = append(restarts, sample{[]string{"unit", si.Unit}, float64(si.Restarts)})
		}
	}
	fams = append(fams,
		family{Namespace + "_service_up", "1 while the managed unit runs and its live probes pass.", "gauge", up},
		family{Namespace + "_service_restarts_total", "Times the agent started a stopped or failed managed unit again.", "counter", restarts})

	var certs []sample
	if m.opts.Certificates != nil {
		now := m.opts.Now()
		seen := map[string]bool{}
		for _, ci := range m.opts.Certificates() {
			if seen[ci.Name] {
				continue // a duplicate label set would make the scrape invalid
			}
			seen[ci.Name] = true
			certs = append(certs, sample{[]string{"name", ci.Name}, ci.NotAfter.Sub(now).Seconds()})
		}
	}
	fams = append(fams, family{Namespace + "_cert_expiry_seconds", "Seconds until the certificate expires (negative when expired).", "gauge", certs})
	fams = append(fams, family{Namespace + "_build_info", "Build information; the value is always 1.", "gauge",
		[]sample{{[]string{"build_date", m.opts.BuildDate, "commit", m.opts.Commit, "goversion", runtime.Version(), "version", m.opts.Version}, 1}}})
	fams = append(fams, processFamilies()...)
	fams = append(fams, goFamilies()...)
	return fams
}

// WriteText writes every metric in the Prometheus text exposition format.
func (m *Metrics) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, f := range m.families() {
		if len(f.samples) == 0 {
			continue
		}
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.typ)
		for _, s := range f.samples {
			bw.WriteString(f.name)
			if len(s.labels) > 0 {
				bw.WriteByte('{')
				for i := 0; i+1 < len(s.labels); i += 2 {
					if i > 0 {
						bw.WriteByte(',')
					}
					fmt.Fprintf(bw, "%s=\"%s\"", s.labels[i], escapeLabel(s.labels[i+1]))
				}
				bw.WriteByte('}')
			}
			bw.WriteByte(' ')
			bw.WriteString(formatFloat(s.value))
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := m.WriteText(w); err != nil {
			return // the client went away
		}
	})
}

// processFamilies are client_golang's process collector metrics, read from
// /proc/self (Linux); what cannot be read is left out.
func processFamilies() []family {
	var out []family
	add := func(name, help, typ string, v float64) {
		out = append(out, family{name, help, typ, []sample{{nil, v}}})
	}
	if stat, err := os.ReadFile("/proc/self/stat"); err == nil {
		// Fields after the command name, which is in parentheses and may
		// contain spaces: state is field 3 of proc(5).
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
			f := strings.Fields(string(stat)[i+1:])
			const tick = 100.0 // USER_HZ on Linux
			if len(f) > 21 {
				utime, _ := strconv.ParseFloat(f[11], 64)
				stime, _ := strconv.ParseFloat(f[12], 64)
				start, _ := strconv.ParseFloat(f[19], 64)
				vsize, _ := strconv.ParseFloat(f[20], 64)
				rss, _ := strconv.ParseFloat(f[21], 64)
				add("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", (utime+stime)/tick)
				add("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", vsize)
				add("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", rss*float64(os.Getpagesize()))
				if boot := bootTime(); boot > 0 {
					add("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge", boot+start/tick)
				}
			}
		}
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		add("process_open_fds", "Number of open file descriptors.", "gauge", float64(len(ents)))
	}
	if lim, err := os.ReadFile("/proc/self/limits"); err == nil {
		for _, line := range strings.Split(string(lim), "\n") {
			if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					if n, err := strconv.ParseFloat(f[0], 64); err == nil {
						add("process_max_fds", "Maximum number of open file descriptors.", "gauge", n)
					}
				}
			}
		}
	}
	return out
}

func bootTime() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			t, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return t
		}
	}
	return 0
}

// goFamilies are the Go runtime metrics most dashboards read (names as
// client_golang's Go collector).
func goFamilies() []family {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return []family{
		{"go_goroutines", "Number of goroutines that currently exist.", "gauge", []sample{{nil, float64(runtime.NumGoroutine())}}},
		{"go_info", "Information about the Go environment.", "gauge", []sample{{[]string{"version", runtime.Version()}, 1}}},
		{"go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use.", "gauge", []sample{{nil, float64(ms.HeapAlloc)}}},
		{"go_memstats_sys_bytes", "Number of bytes obtained from system.", "gauge", []sample{{nil, float64(ms.Sys)}}},
		{"go_memstats_heap_objects", "Number of currently allocated objects.", "gauge", []sample{{nil, float64(ms.HeapObjects)}}},
		{"go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place.", "gauge", []sample{{nil, float64(ms.NextGC)}}},
		{"go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", "gauge", []sample{{nil, float64(ms.LastGC) / 1e9}}},
		{"go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously.", "gauge", []sample{{nil, float64(runtime.GOMAXPROCS(0))}}},
	}
}

// HealthFunc reports health: ok, or the reason it is not.
type HealthFunc func() (ok bool, reason string)

// HealthHandler answers 200 "ok" or 503 with the reason.
func HealthHandler(h HealthFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		ok, reason := h()
		if ok {
			fmt.Fprintln(w, "ok")
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, reason)
	})
}

// NewMux returns a mux with /metrics and /healthz; callers add more routes.
func NewMux(m *Metrics, h HealthFunc) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.Handle("GET /healthz", HealthHandler(h))
	return mux
}

// CheckLoopback returns an error unless addr ("host:port") names a loopback
// address: the listener carries internal state and must not be public.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("metrics listen address %q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("metrics listen address %q is not a loopback address (use 127.0.0.1, [::1] or localhost)", addr)
	}
	return nil
}

// ListenLoopback listens on a loopback TCP address.
func ListenLoopback(addr string) (net.Listener, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	return l, nil
}
