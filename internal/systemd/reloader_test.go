package systemd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/jitsi-agent/jitsi-agent/internal/deferred"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// fakeUnits is an in-memory systemd: each unit has a state, and jobs can be
// told to fail or to leave the unit in a given state.
type fakeUnits struct {
	mu     sync.Mutex
	states map[string]UnitState
	// jobErr makes the next job on a unit fail with this error.
	jobErr map[string]error
	// after sets the ActiveState a job leaves behind (default active).
	after map[string]string
	calls []string
}

func newFakeUnits(states ...UnitState) *fakeUnits {
	f := &fakeUnits{states: map[string]UnitState{}, jobErr: map[string]error{}, after: map[string]string{}}
	for _, s := range states {
		if s.LoadState == "" {
			s.LoadState = "loaded"
		}
		if s.UnitFileState == "" {
			s.UnitFileState = "enabled"
		}
		f.states[s.Name] = s
	}
	return f
}

func (f *fakeUnits) Properties(ctx context.Context, unit string) (UnitState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.states[unit]
	if !ok {
		return UnitState{Name: unit, LoadState: "not-found", ActiveState: "inactive"}, nil
	}
	return s, nil
}

func (f *fakeUnits) job(op, unit string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op+" "+unit)
	if err := f.jobErr[unit]; err != nil {
		delete(f.jobErr, unit)
		return err
	}
	s := f.states[unit]
	s.ActiveState = "active"
	if a := f.after[unit]; a != "" {
		s.ActiveState = a
	}
	f.states[unit] = s
	return nil
}

func (f *fakeUnits) Start(ctx context.Context, unit string) error   { return f.job("start", unit) }
func (f *fakeUnits) Restart(ctx context.Context, unit string) error { return f.job("restart", unit) }
func (f *fakeUnits) Reload(ctx context.Context, unit string) error  { return f.job("reload", unit) }
func (f *fakeUnits) Enable(ctx context.Context, units ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range units {
		f.calls = append(f.calls, "enable "+u)
		s := f.states[u]
		s.UnitFileState = "enabled"
		f.states[u] = s
	}
	return nil
}

func (f *fakeUnits) Stop(ctx context.Context, unit string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "stop "+unit)
	if err := f.jobErr[unit]; err != nil {
		delete(f.jobErr, unit)
		return err
	}
	s := f.states[unit]
	s.ActiveState = "inactive"
	f.states[unit] = s
	return nil
}

func (f *fakeUnits) Disable(ctx context.Context, units ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range units {
		f.calls = append(f.calls, "disable "+u)
		s := f.states[u]
		s.UnitFileState = "disabled"
		f.states[u] = s
	}
	return nil
}

func (f *fakeUnits) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

type fakeJournal struct{ lines []string }

func (j fakeJournal) Tail(ctx context.Context, unit string, n int, since time.Time) ([]string, error) {
	return j.lines, nil
}

// fakeHTTP answers with the queued status codes (the last one repeats).
type fakeHTTP struct {
	mu    sync.Mutex
	codes []int
	urls  []string
}

func (h *fakeHTTP) Do(req *http.Request) (*http.Response, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.urls = append(h.urls, req.URL.String())
	code := h.codes[0]
	if len(h.codes) > 1 {
		h.codes = h.codes[1:]
	}
	return &http.Response{StatusCode: code, Status: fmt.Sprint(code), Body: io.NopCloser(strings.NewReader(""))}, nil
}

func services() map[string]spec.Service {
	return map[string]spec.Service{
		spec.Prosody: {Component: spec.Prosody, Unit: "prosody.service", Enabled: true, Restart: spec.RestartImmediate},
		spec.Jicofo:  {Component: spec.Jicofo, Unit: "jicofo.service", Enabled: true, Restart: spec.RestartImmediate},
		spec.JVB:     {Component: spec.JVB, Unit: "jitsi-videobridge2.service", Enabled: true, Restart: spec.RestartImmediate},
		spec.Nginx:   {Component: spec.Nginx, Unit: "nginx.service", Enabled: true, Restart: spec.RestartImmediate},
		spec.Coturn:  {Component: spec.Coturn, Unit: "coturn.service", Enabled: false, Restart: spec.RestartImmediate},
	}
}

func allRunning() *fakeUnits {
	return newFakeUnits(
		UnitState{Name: "prosody.service", ActiveState: "active", CanReload: true},
		UnitState{Name: "jicofo.service", ActiveState: "active"},
		UnitState{Name: "jitsi-videobridge2.service", ActiveState: "active"},
		UnitState{Name: "nginx.service", ActiveState: "active", CanReload: true},
		UnitState{Name: "coturn.service", ActiveState: "inactive", UnitFileState: "disabled"},
		UnitState{Name: "app-backend.service", ActiveState: "active"},
	)
}

func testOptions(t *testing.T) Options {
	return Options{
		Services:      services(),
		DeferredPath:  filepath.Join(t.TempDir(), "deferred.json"),
		Journal:       fakeJournal{lines: []string{"nginx: [emerg] unknown directive \"bogus\"", "secret is hunter2-very-secret"}},
		HTTP:          &fakeHTTP{codes: []int{200}},
		ActiveTimeout: 2 * time.Second,
		HealthTimeout: 2 * time.Second,
		PollInterval:  time.Millisecond,
		Settle:        5 * time.Millisecond,
		Redact:        []string{"hunter2-very-secret"},
		Now:           func() time.Time { return time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC) },
	}
}

func TestOrderDedupes(t *testing.T) {
	got := Order([]Change{
		{Unit: "app-backend.service", Component: "template:backend-env"},
		{Unit: "nginx.service", Component: spec.Nginx},
		{Unit: "coturn.service", Component: spec.Coturn},
		{Unit: "jitsi-videobridge2.service", Component: spec.JVB},
		{Unit: "prosody.service", Component: spec.Prosody},
		{Unit: "nginx.service", Component: "template:extra-site"},
		{Unit: "jicofo.service", Component: spec.Jicofo},
		{Unit: "prosody.service", Component: spec.Prosody},
		{Unit: "", Component: spec.Nginx},
	})
	var units []string
	for _, c := range got {
		units = append(units, c.Unit)
	}
	want := []string{"prosody.service", "jicofo.service", "jitsi-videobridge2.service", "nginx.service", "coturn.service", "app-backend.service"}
	if !reflect.DeepEqual(units, want) {
		t.Fatalf("order = %v, want %v", units, want)
	}
	if got[3].Component != spec.Nginx {
		t.Errorf("nginx named by nginx and a template should keep the nginx position, got %q", got[3].Component)
	}
}

func TestChangesFromPlan(t *testing.T) {
	got := ChangesFromPlan([]plan.Change{
		{Path: "/etc/turnserver.conf", Action: plan.ActionUpdate, Component: spec.Coturn, Units: []string{"coturn.service"}},
		{Path: "/etc/jitsi/jicofo/jicofo.conf", Action: plan.ActionMode, Component: spec.Jicofo, Units: []string{"jicofo.service"}},
		{Path: "/etc/nginx/old.conf", Action: plan.ActionUnmanage, Component: spec.Nginx, Units: []string{"nginx.service"}},
	})
	want := []Change{{Unit: "jicofo.service", Component: spec.Jicofo}, {Unit: "coturn.service", Component: spec.Coturn}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestApplyReloadsRestartsInOrder(t *testing.T) {
	u := allRunning()
	r := NewReloader(u, testOptions(t))
	rep, err := r.Apply(context.Background(), []Change{
		{Unit: "app-backend.service", Component: "template:backend-env"},
		{Unit: "nginx.service", Component: spec.Nginx},
		{Unit: "jicofo.service", Component: spec.Jicofo},
		{Unit: "prosody.service", Component: spec.Prosody},
		{Unit: "nginx.service", Component: spec.Nginx},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"reload prosody.service", "restart jicofo.service", "reload nginx.service", "restart app-backend.service"}
	if got := u.Calls(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	actions := map[string]Action{}
	for _, ur := range rep.Units {
		actions[ur.Unit] = ur.Action
		if ur.Result == ResultFailed {
			t.Errorf("%s failed: %v", ur.Unit, ur.Err)
		}
	}
	if actions["jitsi-videobridge2.service"] != ActionNone || actions["coturn.service"] != "" {
		t.Errorf("unchanged running jvb should be none and disabled coturn absent, got %v", actions)
	}
}

func TestApplyUnchangedDoesNothing(t *testing.T) {
	u := allRunning()
	r := NewReloader(u, testOptions(t))
	rep, err := r.Apply(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := u.Calls(); len(c) != 0 {
		t.Fatalf("unchanged apply made calls %v", c)
	}
	if len(rep.Acted()) != 0 {
		t.Fatalf("acted = %v", rep.Acted())
	}
}

func TestApplyStartsAndEnablesStoppedServices(t *testing.T) {
	u := allRunning()
	u.states["jicofo.service"] = UnitState{Name: "jicofo.service", LoadState: "loaded", ActiveState: "inactive", UnitFileState: "disabled"}
	u.states["coturn.service"] = UnitState{Name: "coturn.service", LoadState: "loaded", ActiveState: "inactive", UnitFileState: "disabled"}
	r := NewReloader(u, testOptions(t))
	rep, err := r.Apply(context.Background(), []Change{{Unit: "coturn.service", Component: spec.Coturn}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"enable jicofo.service", "start jicofo.service"}
	if got := u.Calls(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %v, want %v (coturn is disabled in the spec and must stay stopped)", got, want)
	}
	for _, ur := range rep.Units {
		if ur.Unit == "coturn.service" && ur.Action != ActionSkipped {
			t.Errorf("coturn action = %s, want skipped", ur.Action)
		}
		if ur.Unit == "jicofo.service" && (!ur.Enabled || ur.State.ActiveState != "active") {
			t.Errorf("jicofo result %+v", ur)
		}
	}
}

func TestDeferredRestartIsRecordedAndRun(t *testing.T) {
	u := allRunning()
	o := testOptions(t)
	svcs := services()
	s := svcs[spec.Jicofo]
	s.Restart = spec.RestartDefer
	svcs[spec.Jicofo] = s
	s = svcs[spec.JVB]
	s.Restart = spec.RestartDefer
	svcs[spec.JVB] = s
	o.Services = svcs
	r := NewReloader(u, o)
	ctx := context.Background()

	rep, err := r.Apply(ctx, []Change{{Unit: "jicofo.service", Component: spec.Jicofo}, {Unit: "prosody.service", Component: spec.Prosody}})
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Calls(); !reflect.DeepEqual(got, []string{"reload prosody.service"}) {
		t.Fatalf("calls = %v: jicofo must not restart under defer", got)
	}
	if len(rep.NewlyDeferred) != 1 || rep.NewlyDeferred[0].Unit != "jicofo.service" {
		t.Fatalf("newly deferred = %+v", rep.NewlyDeferred)
	}
	d, err := deferred.Load(o.DeferredPath)
	if err != nil || len(d) != 1 || d[0].Unit != "jicofo.service" || !d[0].Since.Equal(o.Now()) {
		t.Fatalf("deferred file = %+v, %v", d, err)
	}

	// A second apply with another jvb change: jicofo's entry keeps its time.
	later := o.Now().Add(time.Hour)
	r.o.Now = func() time.Time { return later }
	rep, err = r.Apply(ctx, []Change{{Unit: "jicofo.service", Component: spec.Jicofo}, {Unit: "jitsi-videobridge2.service", Component: spec.JVB}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.NewlyDeferred) != 1 || rep.NewlyDeferred[0].Unit != "jitsi-videobridge2.service" {
		t.Fatalf("newly deferred = %+v", rep.NewlyDeferred)
	}
	d, _ = deferred.Load(o.DeferredPath)
	if len(d) != 2 || d[0].Unit != "jicofo.service" || !d[0].Since.Equal(o.Now()) || !d[1].Since.Equal(later) {
		t.Fatalf("deferred file = %+v", d)
	}

	rep, err = r.RestartDeferred(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"reload prosody.service", "restart jicofo.service", "restart jitsi-videobridge2.service"}
	if got := u.Calls(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	if len(rep.Units) != 2 {
		t.Fatalf("report %+v", rep.Units)
	}
	if _, err := os.Stat(o.DeferredPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("deferred file should be gone after the restarts: %v", err)
	}
}

func TestUrgentChangeIgnoresDefer(t *testing.T) {
	u := allRunning()
	o := testOptions(t)
	s := o.Services[spec.Jicofo]
	s.Restart = spec.RestartDefer
	o.Services[spec.Jicofo] = s
	rep, err := NewReloader(u, o).Apply(context.Background(), append([]Change{
		{Unit: "jicofo.service", Component: spec.Jicofo},
	}, UrgentFor(o.Services, spec.Jicofo)...))
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Calls(); !reflect.DeepEqual(got, []string{"restart jicofo.service"}) || len(rep.NewlyDeferred) != 0 {
		t.Fatalf("calls = %v, deferred %v: a rotated password must restart jicofo now", got, rep.NewlyDeferred)
	}
}

func TestStoppedDisruptiveUnitStartsDespiteDefer(t *testing.T) {
	u := allRunning()
	u.states["jicofo.service"] = UnitState{Name: "jicofo.service", LoadState: "loaded", ActiveState: "failed", UnitFileState: "enabled"}
	o := testOptions(t)
	s := o.Services[spec.Jicofo]
	s.Restart = spec.RestartDefer
	o.Services[spec.Jicofo] = s
	if _, err := NewReloader(u, o).Apply(context.Background(), []Change{{Unit: "jicofo.service", Component: spec.Jicofo}}); err != nil {
		t.Fatal(err)
	}
	if got := u.Calls(); !reflect.DeepEqual(got, []string{"start jicofo.service"}) {
		t.Fatalf("calls = %v: starting a stopped jicofo ends no meeting", got)
	}
}

func TestFailureCarriesStateAndRedactedJournal(t *testing.T) {
	u := allRunning()
	u.jobErr["nginx.service"] = &JobError{Unit: "nginx.service", Op: "reload", Result: "failed"}
	r := NewReloader(u, testOptions(t))
	rep, err := r.Apply(context.Background(), []Change{{Unit: "nginx.service", Component: spec.Nginx}, {Unit: "app-backend.service", Component: "template:env"}})
	var ae *ApplyError
	if !errors.As(err, &ae) || len(ae.Units) != 1 {
		t.Fatalf("err = %v", err)
	}
	ue := ae.Units[0]
	if ue.Unit != "nginx.service" || ue.Action != ActionReload || ue.State.ActiveState != "active" || len(ue.Journal) != 2 {
		t.Fatalf("unit error = %+v", ue)
	}
	var je *JobError
	if !errors.As(err, &je) || je.Result != "failed" {
		t.Fatalf("job error not reachable: %v", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "hunter2-very-secret") || !strings.Contains(msg, "(sensitive)") || !strings.Contains(msg, "unknown directive") {
		t.Fatalf("message not redacted or missing journal:\n%s", msg)
	}
	last := rep.Units[len(rep.Units)-1]
	if last.Unit != "app-backend.service" || last.Action != ActionNotRun {
		t.Fatalf("units after the failure must not run: %+v", rep.Units)
	}
}

func TestVerifyCatchesUnitThatDies(t *testing.T) {
	u := allRunning()
	u.after["jicofo.service"] = "failed"
	_, err := NewReloader(u, testOptions(t)).Apply(context.Background(), []Change{{Unit: "jicofo.service", Component: spec.Jicofo}})
	if err == nil || !strings.Contains(err.Error(), "failed after the job finished") {
		t.Fatalf("err = %v", err)
	}
}

func TestVerifyBoundedWhileActivating(t *testing.T) {
	u := allRunning()
	u.after["jicofo.service"] = "activating"
	o := testOptions(t)
	o.ActiveTimeout = 50 * time.Millisecond
	_, err := NewReloader(u, o).Apply(context.Background(), []Change{{Unit: "jicofo.service", Component: spec.Jicofo}})
	if err == nil || !strings.Contains(err.Error(), "did not become active") {
		t.Fatalf("err = %v", err)
	}
}

func TestHealthCheck(t *testing.T) {
	u := allRunning()
	o := testOptions(t)
	s := o.Services[spec.JVB]
	s.HealthURL = "http://127.0.0.1:8080/about/health"
	o.Services[spec.JVB] = s
	h := &fakeHTTP{codes: []int{503, 503, 200}}
	o.HTTP = h
	if _, err := NewReloader(u, o).Apply(context.Background(), []Change{{Unit: "jitsi-videobridge2.service", Component: spec.JVB}}); err != nil {
		t.Fatal(err)
	}
	if len(h.urls) != 3 || h.urls[0] != s.HealthURL {
		t.Fatalf("health polls = %v", h.urls)
	}

	o.HTTP = &fakeHTTP{codes: []int{500}}
	o.HealthTimeout = 30 * time.Millisecond
	_, err := NewReloader(u, o).Apply(context.Background(), []Change{{Unit: "jitsi-videobridge2.service", Component: spec.JVB}})
	if err == nil || !strings.Contains(err.Error(), "did not answer 2xx") {
		t.Fatalf("err = %v", err)
	}
}

func TestMaskedUnitIsLeftAlone(t *testing.T) {
	u := allRunning()
	u.states["nginx.service"] = UnitState{Name: "nginx.service", LoadState: "masked", ActiveState: "inactive", UnitFileState: "masked"}
	rep, err := NewReloader(u, testOptions(t)).Apply(context.Background(), []Change{{Unit: "nginx.service", Component: spec.Nginx}})
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Calls()) != 0 {
		t.Fatalf("calls on a masked unit: %v", u.Calls())
	}
	for _, ur := range rep.Units {
		if ur.Unit == "nginx.service" && (ur.Action != ActionSkipped || ur.Note == "") {
			t.Fatalf("%+v", ur)
		}
	}
}

func TestMissingUnit(t *testing.T) {
	u := allRunning()
	rep, err := NewReloader(u, testOptions(t)).Apply(context.Background(), []Change{{Unit: "nope.service", Component: "template:x"}})
	if err != nil {
		t.Fatalf("a missing unit is a warning, not a failure (rollback cannot fix it): %v", err)
	}
	if m := rep.Missing(); len(m) != 1 || m[0].Unit != "nope.service" || !strings.Contains(m[0].Note, "no unit nope.service") {
		t.Fatalf("missing = %+v", m)
	}
	if len(u.Calls()) != 0 {
		t.Fatalf("calls %v", u.Calls())
	}
}

type fakeRestorer struct {
	calls int
	fn    func()
	err   error
}

func (f *fakeRestorer) RestoreLast(ctx context.Context) ([]string, error) {
	f.calls++
	if f.fn != nil {
		f.fn()
	}
	return []string{"/etc/nginx/sites-available/meet.conf"}, f.err
}

func TestReloadOrRollback(t *testing.T) {
	u := allRunning()
	o := testOptions(t)
	s := o.Services[spec.Jicofo]
	s.Restart = spec.RestartDefer
	o.Services[spec.Jicofo] = s
	u.jobErr["nginx.service"] = &JobError{Unit: "nginx.service", Op: "reload", Result: "failed"}
	rest := &fakeRestorer{}
	r := NewReloader(u, o)
	out, err := ReloadOrRollback(context.Background(), r, []Change{
		{Unit: "prosody.service", Component: spec.Prosody},
		{Unit: "jicofo.service", Component: spec.Jicofo},
		{Unit: "nginx.service", Component: spec.Nginx},
	}, rest)
	var rb *RollbackError
	if !errors.As(err, &rb) {
		t.Fatalf("err = %v, want *RollbackError", err)
	}
	var ae *ApplyError
	if !errors.As(err, &ae) || ae.Units[0].Unit != "nginx.service" {
		t.Fatalf("cause not reachable: %v", err)
	}
	if rest.calls != 1 || !out.RolledBack || len(out.Restored) != 1 {
		t.Fatalf("restorer calls %d, outcome %+v", rest.calls, out)
	}
	want := []string{"reload prosody.service", "reload nginx.service", "reload prosody.service", "reload nginx.service"}
	if got := u.Calls(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	if d, _ := deferred.Load(o.DeferredPath); len(d) != 0 {
		t.Fatalf("a rolled-back apply must not leave its deferred restarts: %+v", d)
	}
	if !strings.Contains(err.Error(), "rolled back 1 file") {
		t.Fatalf("message: %s", err)
	}
}

func TestReloadOrRollbackRestoreFails(t *testing.T) {
	u := allRunning()
	u.jobErr["nginx.service"] = &JobError{Unit: "nginx.service", Op: "reload", Result: "failed"}
	rest := &fakeRestorer{err: errors.New("backup missing")}
	_, err := ReloadOrRollback(context.Background(), NewReloader(u, testOptions(t)), []Change{{Unit: "nginx.service", Component: spec.Nginx}}, rest)
	var rb *RollbackError
	if !errors.As(err, &rb) || rb.RestoreErr == nil || !strings.Contains(err.Error(), "rollback FAILED") {
		t.Fatalf("err = %v", err)
	}
	if got := u.Calls(); len(got) != 1 {
		t.Fatalf("no reload pass after a failed restore, calls = %v", got)
	}
}

func TestReloadOrRollbackSuccess(t *testing.T) {
	u := allRunning()
	rest := &fakeRestorer{}
	out, err := ReloadOrRollback(context.Background(), NewReloader(u, testOptions(t)), []Change{{Unit: "nginx.service", Component: spec.Nginx}}, rest)
	if err != nil || rest.calls != 0 || out.RolledBack {
		t.Fatalf("err %v, restorer calls %d", err, rest.calls)
	}
}

func TestServicesFor(t *testing.T) {
	d := &spec.Deployment{Services: services(), Host: spec.Host{Roles: []string{spec.Nginx, spec.Prosody}}}
	got := ServicesFor(d)
	if len(got) != 2 || got[spec.Nginx].Unit != "nginx.service" {
		t.Fatalf("got %+v", got)
	}
	d.Host.Roles = nil
	if len(ServicesFor(d)) != 5 {
		t.Fatal("no roles means every component")
	}
}

// testLogger sends log lines to t.Log.
func testLogger(t *testing.T) logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(testWriter{t})
	l.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true})
	return l
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Retire stops and disables what runs, skips what is already stopped and
// disabled, and leaves masked and unknown units alone.
func TestRetire(t *testing.T) {
	u := newFakeUnits(
		UnitState{Name: "coturn.service", ActiveState: "active"},
		UnitState{Name: "jibri.service", ActiveState: "inactive", UnitFileState: "disabled"},
		UnitState{Name: "haproxy.service", ActiveState: "active", LoadState: "masked", UnitFileState: "masked"},
		UnitState{Name: "jicofo.service", ActiveState: "failed"},
	)
	r := NewReloader(u, Options{})
	rep, err := r.Retire(context.Background(), []Change{
		{Unit: "coturn.service", Component: spec.Coturn}, {Unit: "jibri.service", Component: spec.Jibri},
		{Unit: "haproxy.service", Component: spec.Front}, {Unit: "nope.service", Component: "template:x"},
		{Unit: "jicofo.service", Component: spec.Jicofo},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"disable jicofo.service", "stop coturn.service", "disable coturn.service"}
	if got := u.Calls(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	results := map[string]UnitResult{}
	for _, r := range rep.Units {
		results[r.Unit] = r
	}
	if c := results["coturn.service"]; c.Action != ActionStop || !c.Disabled || c.Result != ResultOK || c.State.ActiveState != "inactive" {
		t.Fatalf("coturn: %+v", c)
	}
	if c := results["nope.service"]; c.Result != ResultMissing {
		t.Fatalf("unknown unit: %+v", c)
	}
	if c := results["haproxy.service"]; c.Action != ActionSkipped || c.Disabled {
		t.Fatalf("masked unit: %+v", c)
	}
	// A stop that fails is reported and the rest still run.
	u = newFakeUnits(UnitState{Name: "coturn.service", ActiveState: "active"}, UnitState{Name: "jibri.service", ActiveState: "active"})
	u.jobErr["coturn.service"] = errors.New("boom")
	rep, err = NewReloader(u, Options{}).Retire(context.Background(), []Change{{Unit: "coturn.service", Component: spec.Coturn}, {Unit: "jibri.service", Component: spec.Jibri}})
	var ae *ApplyError
	if !errors.As(err, &ae) || len(ae.Units) != 1 || ae.Units[0].Unit != "coturn.service" {
		t.Fatalf("err %v", err)
	}
	if got := u.Calls(); !reflect.DeepEqual(got, []string{"stop jibri.service", "disable jibri.service", "stop coturn.service"}) {
		t.Fatalf("calls %v", got)
	}
	if len(rep.Failed()) != 1 {
		t.Fatalf("report %+v", rep)
	}
}
