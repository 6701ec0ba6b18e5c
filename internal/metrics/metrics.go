// Package metrics holds the daemon's Prometheus metrics (in a registry of
// its own, never the global one) and the HTTP handlers of the loopback
// observability listener: /metrics and /healthz.
package metrics

import (
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	Version, Commit string
	// Certificates lists certificate expiries (cert_expiry_seconds{name}).
	Certificates func() []CertInfo
	// DeferredRestarts counts restarts waiting for a safe moment.
	DeferredRestarts func() int
	// Now is the clock for cert_expiry_seconds (nil = time.Now).
	Now func() time.Time
}

// Metrics are the daemon's metrics.
type Metrics struct {
	reg            *prometheus.Registry
	applies        *prometheus.CounterVec
	driftFiles     prometheus.Gauge
	lastSuccess    prometheus.Gauge
	reloadFailures prometheus.Counter
	degraded       prometheus.Gauge
}

// New creates the metrics in a new registry.
func New(o Options) *Metrics {
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "applies_total",
			Help: "Plan/apply runs by result (success, error, invalid_spec).",
		}, []string{"result"}),
		driftFiles: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "drift_files",
			Help: "Managed files found different from what was last applied, in the last run.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "last_successful_apply_timestamp_seconds",
			Help: "Unix time of the last successful apply (0 = none yet).",
		}),
		reloadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "reload_failures_total",
			Help: "systemd unit reloads/restarts that failed.",
		}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "degraded",
			Help: "1 while the daemon runs on the last good files because the spec or an apply failed.",
		}),
	}
	for _, r := range Results {
		m.applies.WithLabelValues(r)
	}
	m.reg.MustRegister(m.applies, m.driftFiles, m.lastSuccess, m.reloadFailures, m.degraded)
	deferred := o.DeferredRestarts
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "deferred_restarts_pending",
		Help: "Disruptive restarts waiting for a safe moment.",
	}, func() float64 {
		if deferred == nil {
			return 0
		}
		return float64(deferred())
	}))
	m.reg.MustRegister(&certCollector{
		desc: prometheus.NewDesc(Namespace+"_cert_expiry_seconds",
			"Seconds until the certificate expires (negative when expired).", []string{"name"}, nil),
		list: o.Certificates,
		now:  o.Now,
	})
	version := o.Version
	if version == "" {
		version = "unknown"
	}
	bi := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "Build information; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": version, "commit": o.Commit, "goversion": runtime.Version()},
	})
	bi.Set(1)
	m.reg.MustRegister(bi)
	m.reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(collectors.NewGoCollector())
	return m
}

// Registry returns the registry (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveApply counts one apply; a success also sets the last-success time.
func (m *Metrics) ObserveApply(result string, at time.Time) {
	m.applies.WithLabelValues(result).Inc()
	if result == ResultSuccess {
		m.lastSuccess.Set(float64(at.UnixNano()) / 1e9)
	}
}

// SetDriftFiles sets how many files drifted in the last run.
func (m *Metrics) SetDriftFiles(n int) { m.driftFiles.Set(float64(n)) }

// AddReloadFailures counts failed unit reloads.
func (m *Metrics) AddReloadFailures(n int) {
	if n > 0 {
		m.reloadFailures.Add(float64(n))
	}
}

// SetDegraded sets the degraded gauge.
func (m *Metrics) SetDegraded(d bool) {
	if d {
		m.degraded.Set(1)
	} else {
		m.degraded.Set(0)
	}
}

// Handler serves /metrics from the registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
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

type certCollector struct {
	desc *prometheus.Desc
	list func() []CertInfo
	now  func() time.Time
}

func (c *certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	if c.list == nil {
		return
	}
	now := c.now()
	seen := map[string]bool{}
	for _, ci := range c.list() {
		if seen[ci.Name] {
			continue // a duplicate label set would fail the whole scrape
		}
		seen[ci.Name] = true
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, ci.NotAfter.Sub(now).Seconds(), ci.Name)
	}
}
