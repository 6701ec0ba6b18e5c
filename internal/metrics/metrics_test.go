package metrics

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestMetricsExposition(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	pending := 2
	m := New(Options{
		Version: "1.2.3", Commit: "abc", BuildDate: "2026-11-27T10:00:00Z",
		Certificates: func() []CertInfo {
			return []CertInfo{{Name: "meet.example.org", NotAfter: now.Add(48 * time.Hour)}, {Name: "meet.example.org", NotAfter: now}}
		},
		DeferredRestarts: func() int { return pending },
		Services: func() []ServiceInfo {
			return []ServiceInfo{{Unit: "prosody.service", Up: true}, {Unit: "coturn.service", Restarts: 3}}
		},
		Now: func() time.Time { return now },
	})
	m.ObserveApply(ResultSuccess, now)
	m.ObserveApply(ResultInvalidSpec, now.Add(time.Minute))
	m.SetDriftFiles(3)
	m.AddReloadFailures(1)
	m.AddReloadFailures(0)
	m.SetDegraded(true)

	var text strings.Builder
	if err := m.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	// Prometheus' own parser must accept the hand-written exposition.
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text.String()))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, text.String())
	}
	ls := fams[Namespace+"_last_successful_apply_timestamp_seconds"]
	if ls == nil || ls.GetType() != dto.MetricType_GAUGE {
		t.Fatalf("last success family: %v", ls)
	}
	if got := ls.GetMetric()[0].GetGauge().GetValue(); got != float64(now.Unix()) {
		t.Fatalf("last success = %v (the invalid spec must not move it)", got)
	}
	if fams[Namespace+"_applies_total"].GetType() != dto.MetricType_COUNTER || len(fams[Namespace+"_applies_total"].GetMetric()) != 3 {
		t.Errorf("applies_total: %v", fams[Namespace+"_applies_total"])
	}
	if len(fams[Namespace+"_cert_expiry_seconds"].GetMetric()) != 1 {
		t.Error("duplicate certificate names exposed twice")
	}
	if v := fams["process_resident_memory_bytes"].GetMetric()[0].GetGauge().GetValue(); v < 1<<20 {
		t.Errorf("resident memory %v", v)
	}
	if v := fams["process_start_time_seconds"].GetMetric()[0].GetGauge().GetValue(); math.Abs(v-float64(time.Now().Unix())) > 3600 {
		t.Errorf("process start time %v", v)
	}

	srv := httptest.NewServer(NewMux(m, func() (bool, string) { return true, "" }))
	defer srv.Close()
	body := get(t, srv.URL+"/metrics", 200)
	for _, want := range []string{
		`jitsi_agent_applies_total{result="success"} 1`,
		`jitsi_agent_applies_total{result="invalid_spec"} 1`,
		`jitsi_agent_applies_total{result="error"} 0`,
		`jitsi_agent_drift_files 3`,
		`jitsi_agent_reload_failures_total 1`,
		`jitsi_agent_degraded 1`,
		`jitsi_agent_deferred_restarts_pending 2`,
		`jitsi_agent_service_up{unit="prosody.service"} 1`,
		`jitsi_agent_service_up{unit="coturn.service"} 0`,
		`jitsi_agent_service_restarts_total{unit="coturn.service"} 3`,
		`jitsi_agent_cert_expiry_seconds{name="meet.example.org"} 172800`,
		`jitsi_agent_build_info{build_date="2026-11-27T10:00:00Z",commit="abc",goversion=`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, body)
		}
	}
	// No shared state: a second Metrics starts from zero.
	var other strings.Builder
	New(Options{}).WriteText(&other)
	if !strings.Contains(other.String(), `jitsi_agent_applies_total{result="success"} 0`) || !strings.Contains(other.String(), `version="unknown"`) {
		t.Errorf("a new Metrics is not independent:\n%s", other.String())
	}
}

func TestHealthz(t *testing.T) {
	m := New(Options{})
	ok, reason := true, ""
	srv := httptest.NewServer(NewMux(m, func() (bool, string) { return ok, reason }))
	defer srv.Close()
	if b := get(t, srv.URL+"/healthz", 200); b != "ok\n" {
		t.Fatalf("body %q", b)
	}
	ok, reason = false, "degraded: site.hcl:3,1-7: Unsupported argument"
	if b := get(t, srv.URL+"/healthz", 503); !strings.Contains(b, "site.hcl:3") {
		t.Fatalf("body %q", b)
	}
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:9101": true, "[::1]:9101": true, "localhost:9101": true, "127.0.0.2:0": true,
		"0.0.0.0:9101": false, ":9101": false, "192.0.2.1:9101": false, "[::]:1": false, "example.org:1": false, "nonsense": false,
	} {
		if err := CheckLoopback(addr); (err == nil) != ok {
			t.Errorf("CheckLoopback(%q) = %v", addr, err)
		}
	}
	l, err := ListenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := ListenLoopback("0.0.0.0:0"); err == nil {
		t.Fatal("listened on a public address")
	}
}

func get(t *testing.T, url string, code int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		t.Fatalf("GET %s = %d, want %d: %s", url, resp.StatusCode, code, b)
	}
	return string(b)
}
