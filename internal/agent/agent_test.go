package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/accounts"
	"github.com/jitsi-agent/jitsi-agent/internal/apply"
	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

// fakeUnits is an in-memory systemd: every unit is installed and enabled
// (until disabled);
// a unit listed in failOn goes "failed" on its next start/restart/reload.
type fakeUnits struct {
	mu     sync.Mutex
	state  map[string]string // unit -> ActiveState
	calls  []string          // "reload prosody.service", ...
	failOn map[string]bool
	off    map[string]bool // disabled unit files
	// failStop makes Stop fail (the unit keeps running).
	failStop bool
	// noReload units cannot reload (jicofo, the videobridge: no ExecReload).
	noReload map[string]bool
}

func newFakeUnits() *fakeUnits {
	return &fakeUnits{state: map[string]string{}, failOn: map[string]bool{}, off: map[string]bool{}, noReload: map[string]bool{}}
}

func (f *fakeUnits) Properties(_ context.Context, unit string) (systemd.UnitState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.state[unit]
	if st == "" {
		st = "inactive"
	}
	file := "enabled"
	if f.off[unit] {
		file = "disabled"
	}
	return systemd.UnitState{Name: unit, LoadState: "loaded", ActiveState: st, UnitFileState: file, CanReload: !f.noReload[unit]}, nil
}

func (f *fakeUnits) job(op, unit string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op+" "+unit)
	if f.failOn[unit] {
		f.state[unit] = "failed"
		return nil
	}
	f.state[unit] = "active"
	return nil
}

func (f *fakeUnits) Start(_ context.Context, u string) error   { return f.job("start", u) }
func (f *fakeUnits) Restart(_ context.Context, u string) error { return f.job("restart", u) }
func (f *fakeUnits) Reload(_ context.Context, u string) error  { return f.job("reload", u) }
func (f *fakeUnits) Enable(_ context.Context, units ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range units {
		delete(f.off, u)
	}
	return nil
}

func (f *fakeUnits) Stop(_ context.Context, u string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "stop "+u)
	if f.failStop {
		return errors.New("stop job failed")
	}
	f.state[u] = "inactive"
	return nil
}

func (f *fakeUnits) Disable(_ context.Context, units ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range units {
		f.calls = append(f.calls, "disable "+u)
		f.off[u] = true
	}
	return nil
}

func (f *fakeUnits) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// fakeAccounts is Prosody's account store in memory.
type fakeAccounts struct {
	mu sync.Mutex
	pw map[string]string
}

func (f *fakeAccounts) Check(_ context.Context, user, host string, p spec.Secret) (accounts.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.pw[user+"@"+host]
	switch {
	case !ok:
		return accounts.StatusMissing, nil
	case v == p.Reveal():
		return accounts.StatusMatches, nil
	}
	return accounts.StatusDiffers, nil
}

func (f *fakeAccounts) Create(_ context.Context, user, host string, p spec.Secret) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pw[user+"@"+host] = p.Reveal()
	return nil
}

func (f *fakeAccounts) SetPassword(ctx context.Context, user, host string, p spec.Secret) error {
	return f.Create(ctx, user, host, p)
}

const testSpec = `domain = "meet.example.com"
auth "anonymous" {}
meeting {
  max_participants = %d
}
turn {
  enabled = false
}
metrics {
  listen = ""
}
service "nginx" {
  drift = "report"
}
`

type fixture struct {
	t     *testing.T
	dir   string
	spec  string
	root  string
	units *fakeUnits
	accts *fakeAccounts
	env   Env
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, spec: filepath.Join(dir, "meet.hcl"), root: filepath.Join(dir, "root"),
		units: newFakeUnits(), accts: &fakeAccounts{pw: map[string]string{}}}
	f.writeSpec(50)
	f.env = Env{
		Units:    func(context.Context) (systemd.Units, error) { return f.units, nil },
		Accounts: f.accts,
		Reload: systemd.Options{Settle: -1, PollInterval: time.Millisecond, Journal: noJournal{},
			HTTP: healthy{}, HealthTimeout: time.Second, ActiveTimeout: time.Second},
	}
	return f
}

// healthy answers every health check with 200.
type healthy struct{}

func (healthy) Do(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Status: "200 OK", Body: io.NopCloser(strings.NewReader("ok"))}, nil
}

type noJournal struct{}

func (noJournal) Tail(context.Context, string, int, time.Time) ([]string, error) { return nil, nil }

func (f *fixture) writeSpec(max int) {
	f.t.Helper()
	if err := os.WriteFile(f.spec, fmt.Appendf(nil, testSpec, max), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) load() *spec.Deployment {
	f.t.Helper()
	res := spec.Load(f.spec, spec.Options{})
	if res.HasErrors() {
		f.t.Fatal(res.Summary())
	}
	return res.Deployment
}

func (f *fixture) apply(o ApplyOptions) (*Result, error) {
	f.t.Helper()
	d := f.load()
	set, err := DesiredState(d, f.root, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	o.Root = f.root
	return Apply(context.Background(), f.env, d, set, o)
}

func (f *fixture) file(p string) []byte {
	b, err := os.ReadFile(filepath.Join(f.root, p))
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

const prosodyConf = "/etc/prosody/conf.avail/meet.example.com.cfg.lua"

func TestApplyStartsReloadsInOrderAndIsIdempotent(t *testing.T) {
	f := newFixture(t)
	res, err := f.apply(ApplyOptions{Always: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Files.Changed() {
		t.Fatal("first apply wrote nothing")
	}
	calls := f.units.take()
	// TURN is off in the fixture: coturn is not started (table: When TURN).
	want := []string{"start prosody.service", "start jicofo.service", "start jitsi-videobridge2.service", "start nginx.service"}
	if !slices.Equal(calls, want) {
		t.Fatalf("first apply: %v, want %v", calls, want)
	}
	if len(f.accts.pw) != 2 {
		t.Fatalf("accounts %v, want focus and jvb", f.accts.pw)
	}

	res, err = f.apply(ApplyOptions{})
	if err != nil || res.Files.Changed() || res.Services != nil {
		t.Fatalf("second apply changed something: %+v %v", res, err)
	}
	if c := f.units.take(); len(c) != 0 {
		t.Fatalf("no-op apply touched units: %v", c)
	}

	f.writeSpec(40)
	res, err = f.apply(ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(f.file(prosodyConf), []byte("muc_max_occupants = 40")) {
		t.Fatal("prosody config not updated")
	}
	if c := f.units.take(); !slices.Equal(c, []string{"reload prosody.service"}) {
		t.Fatalf("edit reloaded %v, want prosody only", c)
	}
	if got := res.Reloaded(); !slices.Equal(got, []string{"prosody.service"}) {
		t.Fatalf("Reloaded %v", got)
	}
}

func TestApplyRollsBackWhenAUnitFails(t *testing.T) {
	f := newFixture(t)
	if _, err := f.apply(ApplyOptions{Always: true}); err != nil {
		t.Fatal(err)
	}
	f.units.take()
	before := f.file(prosodyConf)
	f.writeSpec(40)
	f.units.failOn["prosody.service"] = true
	res, err := f.apply(ApplyOptions{})
	if !IsCleanRollback(err) {
		t.Fatalf("want a clean rollback, got %v", err)
	}
	if !bytes.Equal(f.file(prosodyConf), before) {
		t.Fatal("the previous prosody config was not restored")
	}
	if res.Services == nil || !res.Services.RolledBack || len(res.Services.Restored) == 0 {
		t.Fatalf("outcome %+v", res.Services)
	}
	for _, p := range res.Services.Restored {
		if !strings.HasPrefix(p, f.root) {
			t.Errorf("restored path %s is not under the root", p)
		}
	}
}

func TestApplyHoldsReportDriftUnlessOverwritten(t *testing.T) {
	f := newFixture(t)
	if _, err := f.apply(ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	site := "/etc/nginx/sites-available/meet.example.com.conf"
	edited := append(f.file(site), []byte("# hand edit\n")...)
	if err := os.WriteFile(filepath.Join(f.root, site), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := f.apply(ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Held) != 1 || res.Held[0].Path != site || !bytes.Equal(f.file(site), edited) {
		t.Fatalf("held %+v", res.Held)
	}
	res, err = f.apply(ApplyOptions{OverwriteDrift: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Held) != 0 || bytes.Equal(f.file(site), edited) {
		t.Fatal("--overwrite-drift did not replace the file")
	}
}

func TestApplyWithoutSystemdWritesFilesAndSaysWhy(t *testing.T) {
	f := newFixture(t)
	down := errors.New("no bus")
	f.env.Units = func(context.Context) (systemd.Units, error) { return nil, down }
	res, err := f.apply(ApplyOptions{Always: true})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res.UnitsErr, down) || !res.Files.Changed() || len(f.accts.pw) != 0 {
		t.Fatalf("result %+v accounts %v", res, f.accts.pw)
	}
}

func TestApplyInvalidFileChangesNothing(t *testing.T) {
	f := newFixture(t)
	d := f.load()
	set, err := DesiredState(d, f.root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i := range set.Files {
		if set.Files[i].Path == prosodyConf {
			set.Files[i].Content = nil // the built-in check refuses an empty rendered file
		}
	}
	res, err := Apply(context.Background(), f.env, d, set, ApplyOptions{Root: f.root, Always: true})
	var ce *apply.CheckError
	if !errors.As(err, &ce) || res.Files != nil {
		t.Fatalf("want a CheckError, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.root, prosodyConf)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a file was written")
	}
	if c := f.units.take(); len(c) != 0 {
		t.Fatalf("units touched: %v", c)
	}
}

func TestDaemonRemembersTheFailedSet(t *testing.T) {
	f := newFixture(t)
	a := NewDaemon(DaemonConfig{Spec: f.spec, Root: f.root, Env: f.env, NoJoinAPI: true})
	defer a.Close()
	ctx := context.Background()
	if _, err := a.Apply(ctx, daemon.Request{Reason: daemon.ReasonStartup, Initial: true}); err != nil {
		t.Fatal(err)
	}
	f.units.take()
	f.writeSpec(40)
	f.units.failOn["prosody.service"] = true
	out, err := a.Apply(ctx, daemon.Request{Reason: "change"})
	var nr *daemon.NoRetryError
	if !errors.As(err, &nr) || len(out.ReloadFailures) != 1 || out.ReloadFailures[0].Unit != "prosody.service" {
		t.Fatalf("failed apply: %v %+v", err, out)
	}
	f.units.take()
	// A rescan with the same set does not re-break the services...
	if _, err := a.Apply(ctx, daemon.Request{Reason: "rescan"}); err == nil || !strings.Contains(err.Error(), "not re-applying") {
		t.Fatalf("rescan: %v", err)
	}
	if c := f.units.take(); len(c) != 0 {
		t.Fatalf("rescan touched units: %v", c)
	}
	// ...SIGHUP tries again, and a fixed unit makes it succeed.
	f.units.failOn["prosody.service"] = false
	out, err = a.Apply(ctx, daemon.Request{Reason: daemon.ReasonSIGHUP})
	if err != nil || !slices.Contains(out.Reloaded, "prosody.service") {
		t.Fatalf("SIGHUP: %v %+v", err, out)
	}
}

func TestDaemonReportsInvalidSpec(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(f.spec, []byte("domain = \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := NewDaemon(DaemonConfig{Spec: f.spec, Root: f.root, Env: f.env})
	defer a.Close()
	out, err := a.Apply(context.Background(), daemon.Request{Initial: true})
	if !daemon.IsInvalidSpec(err) || !strings.Contains(err.Error(), "meet.hcl:") {
		t.Fatalf("err %v", err)
	}
	if !slices.Contains(out.Watch.Files, f.spec) {
		t.Fatalf("the spec is not watched: %+v", out.Watch)
	}
}

func TestApplyWithRecordingRunsJibri(t *testing.T) {
	f := newFixture(t)
	spec := fmt.Sprintf(testSpec, 50) + "\n"
	spec = strings.Replace(spec, "meeting {\n", "meeting {\n  recording {\n    enabled = true\n  }\n", 1)
	if err := os.WriteFile(f.spec, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.apply(ApplyOptions{Always: true}); err != nil {
		t.Fatal(err)
	}
	calls := f.units.take()
	want := []string{"start prosody.service", "start jicofo.service", "start jitsi-videobridge2.service", "start jibri.service", "start nginx.service"}
	if !slices.Equal(calls, want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	conf := f.file("/etc/jitsi/jibri/jibri.conf")
	for _, jid := range []string{"jibri@auth.meet.example.com", "recorder@recorder.meet.example.com"} {
		pw, ok := f.accts.pw[jid]
		if !ok || !bytes.Contains(conf, []byte(`"`+pw+`"`)) {
			t.Errorf("account %s missing or its password not in jibri.conf", jid)
		}
	}
}
