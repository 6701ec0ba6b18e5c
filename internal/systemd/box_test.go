package systemd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systembox"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// The systemd box (../shared/recipes/systemd-box.md): Debian's systemd as
// PID 1 in private pid/mount/uts/net namespaces, with tmpfs over /run, /tmp,
// /var/tmp and /etc/systemd/system. The host's /etc/nginx and /etc/prosody
// are never touched: drop-ins in the box's tmpfs /etc/systemd/system point
// Debian's real nginx.service and prosody.service at configurations under
// the box's tmpfs /run/jt, which the test edits through /proc/PID1/root.

const boxNginxConf = `pid /run/jt/nginx.pid;
error_log stderr;
events {}
http {
  access_log off;
  include /run/jt/nginx/sites/*.conf;
}
`

const boxNginxDropIn = `[Service]
PIDFile=/run/jt/nginx.pid
ExecStartPre=
ExecStartPre=/usr/sbin/nginx -c /run/jt/nginx/nginx.conf -t -q -g 'daemon on; master_process on;'
ExecStart=
ExecStart=/usr/sbin/nginx -c /run/jt/nginx/nginx.conf -g 'daemon on; master_process on;'
ExecReload=
ExecReload=/usr/sbin/nginx -c /run/jt/nginx/nginx.conf -g 'daemon on; master_process on;' -s reload
ExecStop=
ExecStop=-/sbin/start-stop-daemon --quiet --stop --retry QUIT/5 --pidfile /run/jt/nginx.pid
`

const boxProsodyConf = `pidfile = "/run/jt/prosody/prosody.pid"
data_path = "/run/jt/prosody/data"
log = { info = "*console" }
c2s_ports = { 5222 }
c2s_interfaces = { "127.0.0.1" }
s2s_ports = { }
http_ports = { }
https_ports = { }
VirtualHost "auth.box.test"
  authentication = "internal_hashed"
`

const boxProsodyDropIn = `[Service]
ExecStart=
ExecStart=/usr/bin/prosody -F --config /run/jt/prosody/prosody.cfg.lua
PIDFile=/run/jt/prosody/prosody.pid
WorkingDirectory=/run/jt/prosody
`

func site(body string) string {
	return "server { listen 127.0.0.1:8081; location / { return 200 \"" + body + "\\n\"; } }\n"
}

// box is a booted systemd box (internal/systembox).
type box struct {
	*systembox.Box
	pid1 int
	root string // /proc/PID1/root: the box's view of the filesystem
}

func (b *box) nsenter(args ...string) []string { return b.Nsenter(args...) }

func (b *box) run(ctx context.Context, args ...string) (string, error) { return b.Run(ctx, args...) }

// bootBox boots a box or skips (fails under JITSI_AGENT_REQUIRE_REAL=1).
func bootBox(t *testing.T) *box {
	t.Helper()
	systembox.Require(t)
	testenv.LookPath(t, "curl", "apt-get install curl")
	testenv.LookPath(t, "nginx", "apt-get install nginx-light")
	testenv.LookPath(t, "prosody", "apt-get install prosody")
	testenv.File(t, "/lib/systemd/system/nginx.service", "apt-get install nginx-light")
	testenv.File(t, "/lib/systemd/system/prosody.service", "apt-get install prosody")

	stage := t.TempDir()
	files := map[string]string{
		"setup.sh":                         "mkdir -p /run/jt/prosody/data\nchown -R prosody:prosody /run/jt/prosody\n",
		"nginx/nginx.conf":                 boxNginxConf,
		"nginx/sites/test.conf":            site("version-1"),
		"units/nginx.service.d/box.conf":   boxNginxDropIn,
		"prosody/prosody.cfg.lua":          boxProsodyConf,
		"units/prosody.service.d/box.conf": boxProsodyDropIn,
	}
	for p, c := range files {
		full := filepath.Join(stage, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sb := systembox.Boot(t, stage)
	return &box{Box: sb, pid1: sb.PID1, root: sb.Root}
}

// boxHTTP runs health checks inside the box's network namespace with curl.
type boxHTTP struct{ b *box }

func (h boxHTTP) Do(req *http.Request) (*http.Response, error) {
	out, err := h.b.run(req.Context(), "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", req.URL.String())
	if err != nil {
		return nil, fmt.Errorf("curl in the box: %w: %s", err, out)
	}
	code, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || code == 0 {
		return nil, fmt.Errorf("curl in the box: no HTTP answer (%q)", out)
	}
	return &http.Response{StatusCode: code, Status: strconv.Itoa(code), Body: io.NopCloser(strings.NewReader(""))}, nil
}

func (b *box) get(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := b.run(ctx, "curl", "-s", "--max-time", "5", url)
	if err != nil {
		t.Fatalf("curl %s in the box: %v: %s", url, err, out)
	}
	return strings.TrimSpace(out)
}

// waitServed polls (bounded) until url serves want.
func (b *box) waitServed(t *testing.T, url, want string) {
	t.Helper()
	var got string
	for i := 0; i < 100; i++ {
		if got = b.get(t, url); got == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s serves %q, want %q", url, got, want)
}

func (b *box) write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(b.root+path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRealSystemdBox(t *testing.T) {
	b := bootBox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := Connect(ctx, ConnectOptions{Address: "unix:path=" + b.root + "/run/dbus/system_bus_socket", JobTimeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	deferredPath := filepath.Join(t.TempDir(), "deferred.json")
	opts := Options{
		Services: map[string]spec.Service{
			spec.Prosody: {Component: spec.Prosody, Unit: "prosody.service", Enabled: true, Restart: spec.RestartImmediate},
			spec.Nginx:   {Component: spec.Nginx, Unit: "nginx.service", Enabled: true, Restart: spec.RestartImmediate, HealthURL: "http://127.0.0.1:8081/"},
		},
		DeferredPath:  deferredPath,
		HTTP:          boxHTTP{b},
		Journal:       JournalCtl{Command: b.nsenter("journalctl")},
		ActiveTimeout: 20 * time.Second,
		HealthTimeout: 20 * time.Second,
		PollInterval:  100 * time.Millisecond,
		Settle:        2 * time.Second,
		Log:           testLogger(t),
	}
	r := NewReloader(d, opts)
	nginxChange := []Change{{Unit: "nginx.service", Component: spec.Nginx}}
	sitePath := "/run/jt/nginx/sites/test.conf"

	t.Run("fresh host enables and starts", func(t *testing.T) {
		rep, err := r.Apply(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Units) != 2 {
			t.Fatalf("report %+v", rep.Units)
		}
		for _, u := range rep.Units {
			if u.Action != ActionStart || !u.Enabled || u.Result != ResultOK || u.State.ActiveState != "active" {
				t.Errorf("%s: %+v", u.Unit, u)
			}
			st, err := d.Properties(ctx, u.Unit)
			if err != nil || st.UnitFileState != "enabled" || st.ActiveState != "active" {
				t.Errorf("%s after apply: %+v %v", u.Unit, st, err)
			}
		}
		b.waitServed(t, "http://127.0.0.1:8081/", "version-1")
	})

	// reloads identifies the last ExecReload run of nginx (its start time
	// and pid, from systemd's ExecReload property): it changes exactly when
	// systemd ran a reload.
	reloads := func() string {
		p, err := d.conn.GetServicePropertyContext(ctx, "nginx.service", "ExecReload")
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(p.Value.Value())
	}

	t.Run("unchanged apply reloads nothing", func(t *testing.T) {
		before := reloads()
		rep, err := r.Apply(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range rep.Units {
			if u.Action != ActionNone {
				t.Errorf("%s: action %s on an unchanged apply", u.Unit, u.Action)
			}
		}
		if after := reloads(); after != before {
			t.Fatalf("nginx was reloaded by an unchanged apply: %s -> %s", before, after)
		}
	})

	t.Run("changed site reloads nginx", func(t *testing.T) {
		before := reloads()
		b.write(t, sitePath, site("version-2"))
		rep, err := r.Apply(ctx, nginxChange)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range rep.Units {
			want := ActionNone
			if u.Unit == "nginx.service" {
				want = ActionReload
			}
			if u.Action != want || u.Result != ResultOK {
				t.Errorf("%s: %s/%s, want %s/ok", u.Unit, u.Action, u.Result, want)
			}
		}
		// nginx -s reload only signals the master: the new workers take
		// over a moment after the job is done.
		b.waitServed(t, "http://127.0.0.1:8081/", "version-2")
		if after := reloads(); after == before {
			t.Fatalf("systemd ran no ExecReload for nginx (%s)", after)
		}
	})

	t.Run("broken site is rolled back", func(t *testing.T) {
		good := site("version-2")
		b.write(t, sitePath, "server { listen 127.0.0.1:8081; bogus_directive on; }\n")
		rest := RestorerFunc(func(ctx context.Context) ([]string, error) {
			b.write(t, sitePath, good)
			return []string{sitePath}, nil
		})
		out, err := ReloadOrRollback(ctx, r, nginxChange, rest)
		var rb *RollbackError
		if !errors.As(err, &rb) || rb.RestoreErr != nil || rb.ReloadErr != nil {
			t.Fatalf("err = %v, want a clean rollback", err)
		}
		var ue *UnitError
		if !errors.As(err, &ue) || ue.Unit != "nginx.service" || ue.Action != ActionReload {
			t.Fatalf("unit error: %v", err)
		}
		var je *JobError
		if !errors.As(err, &je) || je.Result != "failed" {
			t.Fatalf("job result: %v", err)
		}
		if !strings.Contains(err.Error(), "bogus_directive") {
			t.Fatalf("the journal lines are missing from the error:\n%s", err)
		}
		t.Logf("error as the user sees it:\n%s", err)
		if !out.RolledBack || out.Rollback == nil || len(out.Rollback.Failed()) != 0 {
			t.Fatalf("outcome %+v", out)
		}
		st, err := d.Properties(ctx, "nginx.service")
		if err != nil || st.ActiveState != "active" {
			t.Fatalf("nginx after rollback: %+v %v", st, err)
		}
		// nginx's reload returns before its new workers serve: wait.
		b.waitServed(t, "http://127.0.0.1:8081/", "version-2")
	})

	t.Run("prosody that cannot start is rolled back", func(t *testing.T) {
		// A stopped Prosody whose new config makes it exit: the start
		// fails, the old config is restored and Prosody runs again.
		if _, err := d.conn.StopUnitContext(ctx, "prosody.service", "replace", nil); err != nil {
			t.Fatal(err)
		}
		waitState(t, ctx, d, "prosody.service", "inactive")
		cfg := "/run/jt/prosody/prosody.cfg.lua"
		good, err := os.ReadFile(b.root + cfg)
		if err != nil {
			t.Fatal(err)
		}
		b.write(t, cfg, string(good)+"\nthis is not lua(\n")
		rest := RestorerFunc(func(ctx context.Context) ([]string, error) {
			b.write(t, cfg, string(good))
			return []string{cfg}, nil
		})
		// Prosody dies within a fraction of a second on a Lua syntax
		// error; a long settle window keeps this robust on a loaded CI box.
		slow := opts
		slow.Settle = 10 * time.Second
		out, err := ReloadOrRollback(ctx, NewReloader(d, slow), []Change{{Unit: "prosody.service", Component: spec.Prosody}}, rest)
		var rb *RollbackError
		if !errors.As(err, &rb) || rb.RestoreErr != nil || rb.ReloadErr != nil {
			t.Fatalf("err = %v, want a clean rollback", err)
		}
		t.Logf("error as the user sees it:\n%s", err)
		if !out.RolledBack || out.Report.Units[0].Action != ActionStart {
			t.Fatalf("outcome %+v", out.Report.Units)
		}
		st, err := d.Properties(ctx, "prosody.service")
		if err != nil || st.ActiveState != "active" {
			t.Fatalf("prosody after rollback: %+v %v", st, err)
		}
	})

	t.Run("hardened unit works", func(t *testing.T) {
		testHardenedUnit(t, ctx, b, d)
	})

	t.Run("missing unit", func(t *testing.T) {
		rep, err := r.Apply(ctx, []Change{{Unit: "no-such-thing.service", Component: "template:x"}})
		if err != nil || len(rep.Missing()) != 1 || rep.Missing()[0].State.LoadState != "not-found" {
			t.Fatalf("err = %v, report %+v: want one missing unit, no failure", err, rep)
		}
		if err := d.Start(ctx, "no-such-thing.service"); !errors.Is(err, ErrNoSuchUnit) {
			t.Fatalf("start: %v, want ErrNoSuchUnit", err)
		}
	})
}

func waitState(t *testing.T, ctx context.Context, d *DBus, unit, want string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		st, err := d.Properties(ctx, unit)
		if err == nil && st.ActiveState == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not become %s", unit, want)
}

// testHardenedUnit runs testdata/hardened as a service under the hardening
// of systemd/jitsi-agent.service (only ExecStart, the Condition and an
// extra ReadWritePaths for the box's test directory differ) and checks that
// the agent's operations still work and writing to /etc does not. It also
// logs systemd-analyze security for the loaded unit.
func testHardenedUnit(t *testing.T, ctx context.Context, b *box, d *DBus) {
	goBin := testenv.LookPath(t, "go", "install Go")
	unit, err := os.ReadFile(filepath.Join("..", "..", "systemd", "jitsi-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "hardened")
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./testdata/hardened")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the helper: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.root+"/run/jt/hardened", data, 0o755); err != nil {
		t.Fatal(err)
	}
	var lines []string
	replaced := false
	for _, l := range strings.Split(string(unit), "\n") {
		switch {
		case strings.HasPrefix(l, "ExecStart="):
			l = "ExecStart=/run/jt/hardened /run/jt/hardened.json"
			replaced = true
		case strings.HasPrefix(l, "ConditionPathExists="):
			continue
		case l == "ProtectSystem=strict":
			l += "\nReadWritePaths=/run/jt"
		}
		lines = append(lines, l)
	}
	if !replaced {
		t.Fatal("no ExecStart= in the unit file")
	}
	const name = "jitsi-agent-hardened.service"
	if err := os.WriteFile(b.root+"/etc/systemd/system/"+name, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.conn.ReloadContext(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, name); err != nil {
		t.Fatalf("starting the hardened helper: %v", err)
	}
	defer func() {
		_, _ = d.conn.StopUnitContext(context.WithoutCancel(ctx), name, "replace", nil)
	}()
	raw, err := os.ReadFile(b.root + "/run/jt/hardened.json")
	if err != nil {
		t.Fatalf("the helper wrote no result (READY=1 came first?): %v", err)
	}
	var res map[string]string
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"connect", "properties", "reload", "write+chown", "etc-readonly", "prosodyctl", "journal"} {
		if res[step] != "ok" {
			t.Errorf("under the unit's hardening, %s: %q", step, res[step])
		}
	}
	st, err := d.Properties(ctx, name)
	if err != nil || st.ActiveState != "active" {
		t.Errorf("hardened unit state %+v %v", st, err)
	}
	out, err := b.run(ctx, "systemd-analyze", "security", "--no-pager", name)
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	t.Logf("systemd-analyze security (in the box): %s", lastLine(out))
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}
