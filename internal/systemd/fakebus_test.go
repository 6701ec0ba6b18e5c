package systemd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// privateBus starts a dbus-daemon of its own (killed by PID at cleanup) and
// returns its address and PID.
func privateBus(tb testing.TB) (string, *os.Process) {
	tb.Helper()
	bin := testenv.LookPath(tb, "dbus-daemon", "apt-get install dbus")
	dir := tb.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	err := os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=`+filepath.Join(dir, "bus")+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`), 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+conf, "--nofork", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	// stderr is discarded: dbus-daemon warns about fd limits as root.
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	proc := cmd.Process
	tb.Cleanup(func() {
		_ = proc.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			lines <- s.Text()
		}
		close(lines)
		// keep draining so the daemon never blocks on stdout
		for s.Scan() {
		}
	}()
	select {
	case addr, ok := <-lines:
		if !ok || addr == "" {
			tb.Fatal("dbus-daemon printed no address")
		}
		return strings.TrimSpace(addr), proc
	case <-time.After(10 * time.Second):
		tb.Fatal("dbus-daemon did not print its address within 10s")
	}
	return "", nil
}

// fakeUnit is the behaviour of one unit in the fake systemd.
type fakeUnit struct {
	name      string
	result    string // JobRemoved result; "never" sends none
	after     string // ActiveState after a done job (default active)
	canReload bool
	state     string
	props     *prop.Properties
}

// fakeSystemd exports org.freedesktop.systemd1 on a private bus.
type fakeSystemd struct {
	conn   *dbus.Conn
	mu     sync.Mutex
	units  map[string]*fakeUnit
	nextID uint32
	calls  []string
	queued chan string // every queued job, for tests that act mid-job
}

func newFakeSystemd(tb testing.TB, addr string, units ...*fakeUnit) *fakeSystemd {
	tb.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	f := &fakeSystemd{conn: conn, units: map[string]*fakeUnit{}, queued: make(chan string, 100)}
	if err := conn.Export(f, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"); err != nil {
		tb.Fatal(err)
	}
	if _, err := prop.Export(conn, "/org/freedesktop/systemd1", prop.Map{
		"org.freedesktop.systemd1.Manager": {"SystemState": {Value: "running"}, "Version": {Value: "252-fake"}},
	}); err != nil {
		tb.Fatal(err)
	}
	for _, u := range units {
		f.add(tb, u)
	}
	// A unit systemd has no file for still has an object (load state
	// not-found), as with the real systemd.
	f.add(tb, &fakeUnit{name: "missing.service", state: "inactive"})
	f.units["missing.service"].props.SetMust("org.freedesktop.systemd1.Unit", "LoadState", "not-found")
	delete(f.units, "missing.service") // jobs on it fail with NoSuchUnit
	reply, err := conn.RequestName("org.freedesktop.systemd1", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		tb.Fatalf("RequestName: %v %v", reply, err)
	}
	return f
}

func (f *fakeSystemd) add(tb testing.TB, u *fakeUnit) {
	if u.state == "" {
		u.state = "active"
	}
	p, err := prop.Export(f.conn, dbus.ObjectPath("/org/freedesktop/systemd1/unit/"+sddbus.PathBusEscape(u.name)), prop.Map{
		"org.freedesktop.systemd1.Unit": {
			"Id":            {Value: u.name},
			"LoadState":     {Value: "loaded"},
			"ActiveState":   {Value: u.state},
			"SubState":      {Value: "running"},
			"UnitFileState": {Value: "enabled"},
			"CanReload":     {Value: u.canReload},
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	u.props = p
	f.units[u.name] = u
}

func (f *fakeSystemd) job(op, name string) (dbus.ObjectPath, *dbus.Error) {
	f.mu.Lock()
	u, ok := f.units[name]
	f.calls = append(f.calls, op+" "+name)
	if !ok {
		f.mu.Unlock()
		return "", dbus.NewError("org.freedesktop.systemd1.NoSuchUnit", []any{"Unit " + name + " not found."})
	}
	f.nextID++
	id := f.nextID
	result := u.result
	f.mu.Unlock()
	path := dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", id))
	f.queued <- op + " " + name
	if result != "never" {
		go func() {
			if result == "" {
				result = "done"
			}
			st := "active"
			if result != "done" {
				st = "failed"
			} else if u.after != "" {
				st = u.after
			}
			// A failed reload leaves the running service as it was
			// (nginx keeps its old configuration).
			if result == "done" || op != "reload" {
				u.props.SetMust("org.freedesktop.systemd1.Unit", "ActiveState", st)
			}
			_ = f.conn.Emit("/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager.JobRemoved", id, path, name, result)
		}()
	}
	return path, nil
}

func (f *fakeSystemd) StartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return f.job("start", name)
}
func (f *fakeSystemd) RestartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return f.job("restart", name)
}
func (f *fakeSystemd) ReloadUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return f.job("reload", name)
}

type unitFileChange struct{ Type, Filename, Destination string }

func (f *fakeSystemd) EnableUnitFiles(files []string, runtime, force bool) (bool, []unitFileChange, *dbus.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ch []unitFileChange
	for _, n := range files {
		f.calls = append(f.calls, "enable "+n)
		if u, ok := f.units[n]; ok {
			u.props.SetMust("org.freedesktop.systemd1.Unit", "UnitFileState", "enabled")
		}
		ch = append(ch, unitFileChange{"symlink", "/etc/systemd/system/multi-user.target.wants/" + n, "/lib/systemd/system/" + n})
	}
	return true, ch, nil
}

func (f *fakeSystemd) Reload() *dbus.Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "daemon-reload")
	return nil
}

func (f *fakeSystemd) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func connectFake(t testing.TB, addr string, jobTimeout time.Duration) *DBus {
	t.Helper()
	d, err := Connect(context.Background(), ConnectOptions{Address: addr, ConnectTimeout: 5 * time.Second, JobTimeout: jobTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func TestFakeBusJobs(t *testing.T) {
	addr, _ := privateBus(t)
	fs := newFakeSystemd(t, addr,
		&fakeUnit{name: "nginx.service", canReload: true},
		&fakeUnit{name: "jicofo.service", result: "failed"},
		&fakeUnit{name: "coturn.service", result: "timeout"},
		&fakeUnit{name: "silent.service", result: "never"},
		&fakeUnit{name: "prosody.service", state: "inactive", canReload: true},
	)
	d := connectFake(t, addr, 300*time.Millisecond)
	ctx := context.Background()

	st, err := d.Properties(ctx, "nginx.service")
	if err != nil || st.ActiveState != "active" || !st.CanReload || st.LoadState != "loaded" || st.UnitFileState != "enabled" {
		t.Fatalf("properties = %+v, %v", st, err)
	}
	st, err = d.Properties(ctx, "missing.service")
	if err != nil || st.Known() {
		t.Fatalf("missing unit properties = %+v, %v", st, err)
	}

	if err := d.Reload(ctx, "nginx.service"); err != nil {
		t.Fatalf("reload done: %v", err)
	}
	if err := d.Start(ctx, "prosody.service"); err != nil {
		t.Fatalf("start done: %v", err)
	}
	var je *JobError
	if err := d.Restart(ctx, "jicofo.service"); !errors.As(err, &je) || je.Result != "failed" {
		t.Fatalf("failed job: %v", err)
	}
	if err := d.Restart(ctx, "coturn.service"); !errors.As(err, &je) || je.Result != "timeout" {
		t.Fatalf("timed-out job: %v", err)
	}
	if err := d.Restart(ctx, "silent.service"); !errors.Is(err, ErrJobTimeout) {
		t.Fatalf("job that never reports: %v, want ErrJobTimeout", err)
	}
	// The connection still works after a job that never reported (the
	// buffered channel cannot wedge go-systemd's listener).
	if err := d.Reload(ctx, "nginx.service"); err != nil {
		t.Fatalf("reload after a silent job: %v", err)
	}
	if err := d.Start(ctx, "missing.service"); !errors.Is(err, ErrNoSuchUnit) {
		t.Fatalf("NoSuchUnit: %v", err)
	}
	if err := d.Enable(ctx, "prosody.service"); err != nil {
		t.Fatal(err)
	}
	want := "reload nginx.service,start prosody.service,restart jicofo.service,restart coturn.service,restart silent.service,reload nginx.service,start missing.service,enable prosody.service,daemon-reload"
	if got := strings.Join(fs.Calls(), ","); got != want {
		t.Fatalf("calls\n got %s\nwant %s", got, want)
	}
	// A caller ctx that is cancelled while waiting ends the wait.
	for len(fs.queued) > 0 {
		<-fs.queued
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { <-fs.queued; cancel() }()
	d2 := connectFake(t, addr, time.Minute)
	err = d2.Restart(cctx, "silent.service")
	// Cancelled while queueing or while waiting: either way context.Canceled.
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v, want context.Canceled", err)
	}
}

func TestFakeBusReloaderEndToEnd(t *testing.T) {
	addr, _ := privateBus(t)
	fs := newFakeSystemd(t, addr,
		&fakeUnit{name: "prosody.service", canReload: true},
		&fakeUnit{name: "jicofo.service"},
		&fakeUnit{name: "nginx.service", canReload: true, result: "failed"},
	)
	d := connectFake(t, addr, 5*time.Second)
	o := Options{
		Services: map[string]spec.Service{
			spec.Prosody: {Unit: "prosody.service", Enabled: true},
			spec.Jicofo:  {Unit: "jicofo.service", Enabled: true},
			spec.Nginx:   {Unit: "nginx.service", Enabled: true},
		},
		Journal:      fakeJournal{lines: []string{"nginx: configuration file test failed"}},
		PollInterval: 5 * time.Millisecond,
		Settle:       -1,
	}
	rest := &fakeRestorer{fn: func() {
		fs.mu.Lock()
		fs.units["nginx.service"].result = "done"
		fs.mu.Unlock()
	}}
	out, err := ReloadOrRollback(context.Background(), NewReloader(d, o), []Change{
		{Unit: "nginx.service", Component: spec.Nginx},
		{Unit: "prosody.service", Component: spec.Prosody},
	}, rest)
	var rb *RollbackError
	if !errors.As(err, &rb) || rb.ReloadErr != nil || rb.RestoreErr != nil {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "configuration file test failed") || !strings.Contains(err.Error(), "job failed") {
		t.Fatalf("message lacks job result or journal: %s", err)
	}
	want := "reload prosody.service,reload nginx.service,reload prosody.service,reload nginx.service"
	if got := strings.Join(fs.Calls(), ","); got != want {
		t.Fatalf("calls\n got %s\nwant %s", got, want)
	}
	if out.Rollback == nil || len(out.Rollback.Failed()) != 0 {
		t.Fatalf("rollback pass %+v", out.Rollback)
	}
	for _, u := range out.Rollback.Units {
		if u.State.ActiveState != "active" {
			t.Fatalf("after rollback %s is %s", u.Unit, u.State.ActiveState)
		}
	}
}

func TestFakeBusVanishes(t *testing.T) {
	addr, proc := privateBus(t)
	fs := newFakeSystemd(t, addr, &fakeUnit{name: "silent.service", result: "never"})
	d := connectFake(t, addr, 2*time.Minute)
	go func() {
		<-fs.queued
		_ = proc.Kill()
	}()
	err := d.Restart(context.Background(), "silent.service")
	if !errors.Is(err, ErrBusClosed) {
		t.Fatalf("err = %v, want ErrBusClosed (not a 2 minute wait)", err)
	}
	// Every later call fails at once too.
	if _, err := d.Properties(context.Background(), "silent.service"); err == nil {
		t.Fatal("properties on a dead bus succeeded")
	}
	if err := d.Start(context.Background(), "silent.service"); err == nil {
		t.Fatal("start on a dead bus succeeded")
	}
}

func TestConnectUnavailable(t *testing.T) {
	ctx := context.Background()
	// No socket at all.
	_, err := Connect(ctx, ConnectOptions{Address: "unix:path=" + filepath.Join(t.TempDir(), "none")})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no socket: %v", err)
	}
	if n := UnavailableNotice(err, []string{"nginx.service"}); !strings.Contains(n, "--no-reload") || !strings.Contains(n, "nginx.service") {
		t.Fatalf("notice: %s", n)
	}

	// A socket that accepts and never speaks: bounded by ConnectTimeout.
	sock := filepath.Join(t.TempDir(), "mute")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, err = Connect(ctx, ConnectOptions{Address: "unix:path=" + sock, ConnectTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("mute socket: %v", err)
	}

	// A bus without systemd on it (containers).
	addr, _ := privateBus(t)
	_, err = Connect(ctx, ConnectOptions{Address: addr})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("bus without systemd: %v", err)
	}
}

// BenchmarkFakeBusReload5 measures a reloader pass over five changed units
// (Properties, reload job, JobRemoved wait, verification) on the fake bus.
func BenchmarkFakeBusReload5(b *testing.B) {
	addr, _ := privateBus(b)
	names := []string{"prosody.service", "jicofo.service", "jitsi-videobridge2.service", "nginx.service", "coturn.service"}
	var units []*fakeUnit
	svcs := map[string]spec.Service{}
	var changes []Change
	for i, n := range names {
		units = append(units, &fakeUnit{name: n, canReload: true})
		svcs[spec.Components[i]] = spec.Service{Unit: n, Enabled: true, Restart: spec.RestartImmediate}
		changes = append(changes, Change{Unit: n, Component: spec.Components[i]})
	}
	fs := newFakeSystemd(b, addr, units...)
	go func() {
		for range fs.queued {
		}
	}()
	d := connectFake(b, addr, 10*time.Second)
	r := NewReloader(d, Options{Services: svcs, PollInterval: time.Millisecond, Settle: -1})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.Apply(context.Background(), changes); err != nil {
			b.Fatal(err)
		}
	}
}
