package doctor

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type fakeServices map[string]string // unit -> active state; "err" = error; "not-found"/"masked" = load state

func (f fakeServices) UnitStatus(_ context.Context, unit string) (UnitStatus, error) {
	st, ok := f[unit]
	switch {
	case !ok:
		return UnitStatus{LoadState: "loaded", ActiveState: "inactive", SubState: "dead"}, nil
	case st == "err":
		return UnitStatus{}, errors.New("dbus: connection refused")
	case st == "not-found" || st == "masked":
		return UnitStatus{LoadState: st, ActiveState: "inactive"}, nil
	}
	return UnitStatus{LoadState: "loaded", ActiveState: st}, nil
}

func TestServices(t *testing.T) {
	d := testDeployment()
	expect(t, newChecker(d, Env{}, "").checkServices(context.Background())[0], Skip, "not available")
	svc := fakeServices{"prosody.service": "active", "jicofo.service": "failed", "jitsi-videobridge2.service": "activating",
		"nginx.service": "err"}
	rs := newChecker(d, Env{Services: svc}, "").checkServices(context.Background())
	expect(t, byID(t, rs, "service.prosody"), Pass)
	r := byID(t, rs, "service.jicofo")
	expect(t, r, Fail, "failed")
	if !strings.Contains(r.Fix, "journalctl -u jicofo.service") {
		t.Errorf("fix %q", r.Fix)
	}
	expect(t, byID(t, rs, "service.jvb"), Warn, "activating")
	expect(t, byID(t, rs, "service.nginx"), Fail, "connection refused")
	r = byID(t, rs, "service.coturn")
	expect(t, r, Fail, "inactive (dead)")
	if !strings.Contains(r.Fix, "systemctl enable --now coturn.service") {
		t.Errorf("fix %q", r.Fix)
	}
	rs = newChecker(d, Env{Services: fakeServices{"jicofo.service": "not-found", "nginx.service": "masked"}}, "").checkServices(context.Background())
	r = byID(t, rs, "service.jicofo")
	expect(t, r, Fail, "not installed")
	if !strings.Contains(r.Fix, "apt-get install jicofo") {
		t.Errorf("fix %q", r.Fix)
	}
	expect(t, byID(t, rs, "service.nginx"), Fail, "masked")
	// The service manager is unreachable: one failure, not one per unit.
	all := fakeServices{}
	for _, u := range []string{"prosody.service", "jicofo.service", "jitsi-videobridge2.service", "nginx.service", "coturn.service"} {
		all[u] = "err"
	}
	rs = newChecker(d, Env{Services: all}, "").checkServices(context.Background())
	if len(rs) != 1 {
		t.Fatalf("got %d results", len(rs))
	}
	expect(t, rs[0], Fail, "cannot query systemd", "connection refused")
	// TURN off: coturn is not expected (resolve disables its service, by
	// the component table); disabled services are not checked.
	d.TURN.Enabled = false
	ct := d.Services["coturn"]
	ct.Enabled = false
	d.Services["coturn"] = ct
	s := d.Services["jicofo"]
	s.Enabled = false
	d.Services["jicofo"] = s
	rs = newChecker(d, Env{Services: svc}, "").checkServices(context.Background())
	for _, r := range rs {
		if r.ID == "service.coturn" || r.ID == "service.jicofo" {
			t.Errorf("unexpected %s", r.ID)
		}
	}
}

type okHTTP struct{}

func (okHTTP) Do(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in this test")
}

// TestHealthEndpoints probes real HTTP servers on loopback.
func TestHealthEndpoints(t *testing.T) {
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/about/health" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(healthy.Close)
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no bridges available", http.StatusServiceUnavailable)
	}))
	t.Cleanup(sick.Close)
	// A port nothing listens on: bind, note the port, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/about/health"
	l.Close()
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hang); slow.Close() })

	d := testDeployment()
	d.Videobridge.HealthURL = healthy.URL + "/about/health"
	d.Jicofo.HealthURL = sick.URL + "/about/health"
	p := d.Services["prosody"]
	p.HealthURL = closed
	d.Services["prosody"] = p
	n := d.Services["nginx"]
	n.HealthURL = slow.URL + "/"
	d.Services["nginx"] = n
	c := newChecker(d, Env{}, "")
	c.opts.Timeout = 400 * time.Millisecond
	rs := c.checkHealth(context.Background())
	expect(t, byID(t, rs, "health.jvb"), Pass, "200 OK")
	r := byID(t, rs, "health.jicofo")
	expect(t, r, Fail, "503", "no bridges available")
	expect(t, byID(t, rs, "health.prosody"), Fail, "connection refused")
	expect(t, byID(t, rs, "health.nginx"), Fail, "no answer in time")

	// No URLs at all.
	d2 := testDeployment()
	d2.Videobridge.HealthURL, d2.Jicofo.HealthURL = "", ""
	expect(t, newChecker(d2, Env{}, "").checkHealth(context.Background())[0], Skip)
}
