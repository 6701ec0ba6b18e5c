// Package systemtest is the shared harness for system tests: it boots a
// systemd box (internal/systembox: overlays, so the host is never written)
// with Debian's real prosody, nginx and coturn, Jitsi's Prosody plugins
// installed exactly where the jitsi-meet-prosody package puts them
// (/usr/share/jitsi-meet/prosody-plugins, copied from the upstream test
// material), the jicofo/jvb system users, a non-loopback address for coturn,
// /etc/hosts names for the deployment, and the agent (the launcher at
// /usr/local/bin/jitsi-agent, jitsi-agent-full next to it) with the spec at
// /etc/jitsi-agent/meet.hcl (the paths the shipped unit uses). Tests talk to the box's services through
// sockets opened in the box's network namespace (Env.Dial, Env.HTTPClient)
// and log in with a real XMPP client (internal/xmpptest).
//
// One booted box per scenario group: booting takes a few seconds, so tests
// that share a deployment share an Env and run their steps as subtests.
package systemtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jitsi-agent/jitsi-agent/internal/systembox"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// Paths inside the box.
const (
	AgentPath   = "/usr/local/bin/jitsi-agent"
	SpecPath    = "/etc/jitsi-agent/meet.hcl"
	PluginsPath = "/usr/share/jitsi-meet/prosody-plugins"
	StateDir    = "/var/lib/jitsi-agent"
	// TURNAddr is the box's non-loopback address (a bridge with no ports):
	// coturn refuses to start with only lo.
	TURNAddr = "10.77.0.1"
)

// Options describe the box.
type Options struct {
	// Domain is the deployment's domain (default "meet.test"); it and its
	// auth., guest., conference. ... names resolve to 127.0.0.1 in the box.
	Domain string
	// Spec is the HCL written to SpecPath (default: DefaultSpec(Domain)).
	Spec string
	// Files are more files to place in the box before boot (absolute path
	// inside the box -> content; mode 0644, or 0600 for paths containing
	// "secret").
	Files map[string]string
	// Env is written to /etc/jitsi-agent/env (the unit's EnvironmentFile)
	// and passed to Env.Agent runs.
	Env map[string]string
	// Agent is the agent binary to install as jitsi-agent, with the
	// jitsi-agent-full next to it if there is one (default: the launcher
	// and jitsi-agent-full, built by BuildAgent).
	Agent string
	// Setup is extra shell run inside the box before systemd starts.
	Setup string
	// NoStart leaves prosody, nginx and coturn stopped (default: they run,
	// as on a host right after `apt-get install`).
	NoStart bool
}

// AppSecretFile is where DefaultSpec reads the JWT secret from (file()).
const AppSecretFile = "/etc/jitsi-agent/app_secret"

// AppSecret is the secret DefaultSpec's box starts with.
const AppSecret = "a83f2c6e1d9b4075c2e8f1a6d3b9c4e7f0a2d5b8"

// DefaultSpec is a complete JWT deployment: token auth with the secret read
// from AppSecretFile, guests off, a 10-occupant limit, TURN on coturn, the
// default nginx ports, self-signed placeholder certificates.
func DefaultSpec(domain string) string {
	return fmt.Sprintf(`domain = %q

auth "jwt" {
  app_id     = "systemtest"
  app_secret = trimspace(file(%q))
  moderators = "token"
}

meeting {
  max_participants = 10
}

turn {
  relay_min_port = 49160
  relay_max_port = 49200
}

host "box" {
  public_ips = [%q]
}

service "jicofo" { restart = "defer" }
service "jvb" { restart = "defer" }
`, domain, AppSecretFile, TURNAddr)
}

// Env is a booted box with the deployment's components installed.
type Env struct {
	*systembox.Box
	T      testing.TB
	Domain string
	opts   Options
}

// Require skips (or fails under JITSI_AGENT_REQUIRE_REAL=1) when the
// harness cannot run here.
func Require(t testing.TB) {
	t.Helper()
	systembox.Require(t)
	for _, tool := range []string{"prosody", "prosodyctl", "nginx", "turnserver", "turnutils_uclient", "lua5.4"} {
		testenv.LookPath(t, tool, "apt-get install prosody lua5.4 nginx-light coturn")
	}
	PluginsSource(t)
}

// PluginsSource finds Jitsi's upstream prosody-plugins (test material; see
// testenv.Upstream).
func PluginsSource(t testing.TB) string {
	t.Helper()
	const rel = "jitsi-meet/resources/prosody-plugins"
	return filepath.Join(testenv.Upstream(t, rel+"/mod_auth_token.lua"), rel)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the module")
	}
	return filepath.Dir(gomod), nil
}

// BuildAgent builds the programs as `make build` lays them out into dir:
// jitsi-agent (the launcher, cmd/jitsi-agent-launcher) and
// jitsi-agent-full (cmd/jitsi-agent) next to it; it returns the
// launcher's path.
func BuildAgent(t testing.TB, dir string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("module root: %v", err)
	}
	for out, pkg := range map[string]string{"jitsi-agent": "./cmd/jitsi-agent-launcher", "jitsi-agent-full": "./cmd/jitsi-agent"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, out), pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return filepath.Join(dir, "jitsi-agent")
}

const setupScript = `
# --- systemtest: what a Debian host with jitsi-meet-prosody, jicofo and
# jitsi-videobridge2 installed has, minus the Java services ---
mkdir -p /usr/share/jitsi-meet
cp -a "$(cat /run/jt/plugins.src)" /usr/share/jitsi-meet/prosody-plugins
chown -R root:root /usr/share/jitsi-meet/prosody-plugins
getent group jitsi >/dev/null || groupadd --system jitsi
getent passwd jicofo >/dev/null || useradd --system --gid jitsi --no-create-home --home-dir /usr/share/jicofo --shell /usr/sbin/nologin jicofo
getent passwd jvb >/dev/null || useradd --system --gid jitsi --no-create-home --home-dir /usr/share/jitsi-videobridge --shell /usr/sbin/nologin jvb
mkdir -p /etc/jitsi/jicofo /etc/jitsi/videobridge /etc/jitsi/meet /usr/share/jitsi-meet
ip link add jt0 type bridge
ip addr add ` + TURNAddr + `/24 dev jt0
ip link set jt0 up
cat /run/jt/hosts >> /etc/hosts
install -m 0755 /run/jt/jitsi-agent ` + AgentPath + `
if [ -e /run/jt/jitsi-agent-full ]; then install -m 0755 /run/jt/jitsi-agent-full ` + AgentPath + `-full; fi
mkdir -p /etc/jitsi-agent
for d in /run/jt/files/*; do cp -a "$d" /; done
`

// Boot boots a box for the deployment and installs everything.
func Boot(t testing.TB, o Options) *Env {
	t.Helper()
	Require(t)
	if o.Domain == "" {
		o.Domain = "meet.test"
	}
	if o.Spec == "" {
		o.Spec = DefaultSpec(o.Domain)
	}
	stage := t.TempDir()
	agent := o.Agent
	if agent == "" {
		agent = BuildAgent(t, t.TempDir())
	}
	write := func(rel, content string, mode os.FileMode) {
		p := filepath.Join(stage, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	bin, err := os.ReadFile(agent)
	if err != nil {
		t.Fatal(err)
	}
	write("jitsi-agent", string(bin), 0o755)
	// The launcher's jitsi-agent-full, installed next to it.
	if full, err := os.ReadFile(filepath.Join(filepath.Dir(agent), "jitsi-agent-full")); err == nil {
		write("jitsi-agent-full", string(full), 0o755)
	}
	write("plugins.src", PluginsSource(t), 0o644)
	d := o.Domain
	names := []string{d, "auth." + d, "guest." + d, "conference." + d, "internal.auth." + d, "focus." + d, "recorder." + d}
	write("hosts", "127.0.0.1 "+strings.Join(names, " ")+"\n", 0o644)
	files := map[string]string{SpecPath: o.Spec}
	if _, ok := o.Files[AppSecretFile]; !ok && strings.Contains(o.Spec, AppSecretFile) {
		files[AppSecretFile] = AppSecret + "\n"
	}
	for p, c := range o.Files {
		files[p] = c
	}
	var env strings.Builder
	for k, v := range o.Env {
		fmt.Fprintf(&env, "%s=%s\n", k, v)
	}
	files["/etc/jitsi-agent/env"] = env.String()
	for p, c := range files {
		mode := os.FileMode(0o644)
		if strings.Contains(p, "secret") || strings.HasSuffix(p, "/env") {
			mode = 0o600
		}
		write(filepath.Join("files", p), c, mode)
	}
	write("setup.sh", setupScript+o.Setup+"\n", 0o755)
	e := &Env{Box: systembox.Boot(t, stage), T: t, Domain: d, opts: o}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := e.Exec(context.Background(), "journalctl", "--no-pager", "-n", "120", "-u", "prosody", "-u", "nginx", "-u", "jitsi-agent", "-o", "short-precise")
			t.Logf("box journal (prosody, nginx, jitsi-agent; last 120 lines):\n%s", out)
			out, _ = e.Exec(context.Background(), "journalctl", "--no-pager", "-n", "15", "-u", "coturn", "-o", "short-precise")
			t.Logf("box journal (coturn; last 15 lines):\n%s", out)
		}
	})
	if !o.NoStart {
		e.MustRun("systemctl", "start", "prosody.service", "nginx.service")
		// coturn with Debian's stock config may or may not start; the
		// agent's apply starts it with the rendered one.
		_, _ = e.Exec(context.Background(), "systemctl", "start", "coturn.service")
	}
	return e
}

// Exec runs a command in the box (bounded by ctx) and returns its combined output.
func (e *Env) Exec(ctx context.Context, args ...string) (string, error) {
	return e.Box.Run(ctx, args...)
}

// MustRun runs a command in the box (60 s bound) and fails the test on error.
func (e *Env) MustRun(args ...string) string {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := e.Exec(ctx, args...)
	if err != nil {
		e.T.Fatalf("in the box: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Agent runs the agent binary in the box with the Options' environment and
// returns its combined output and exit code (bounded to 3 minutes).
func (e *Env) Agent(args ...string) (string, int) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	full := []string{"env"}
	for k, v := range e.opts.Env {
		full = append(full, k+"="+v)
	}
	full = append(full, AgentPath)
	full = append(full, args...)
	out, err := e.Exec(ctx, full...)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return out, ee.ExitCode()
		}
		e.T.Fatalf("jitsi-agent %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out, 0
}

// Apply runs `jitsi-agent apply SPEC` and fails the test unless it exits 0.
func (e *Env) Apply() string {
	e.T.Helper()
	out, code := e.Agent("apply", SpecPath)
	if code != 0 {
		e.T.Fatalf("apply exited %d:\n%s", code, out)
	}
	return out
}

// Path is the host-side path of a file inside the box.
func (e *Env) Path(p string) string { return e.Root + p }

// WriteFile writes a file inside the box atomically (temp + rename, so a
// watcher never sees it half-written).
func (e *Env) WriteFile(p string, data []byte, mode os.FileMode) {
	e.T.Helper()
	full := e.Path(p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		e.T.Fatal(err)
	}
	tmp := full + ".systemtest-tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		e.T.Fatal(err)
	}
	if err := os.Rename(tmp, full); err != nil {
		e.T.Fatal(err)
	}
}

// ReadFile reads a file inside the box.
func (e *Env) ReadFile(p string) []byte {
	e.T.Helper()
	b, err := os.ReadFile(e.Path(p))
	if err != nil {
		e.T.Fatal(err)
	}
	return b
}

// SetSpec replaces the spec inside the box.
func (e *Env) SetSpec(hcl string) { e.WriteFile(SpecPath, []byte(hcl), 0o644) }

// MainPID is a unit's main PID inside the box (0 when not running).
func (e *Env) MainPID(unit string) int {
	e.T.Helper()
	out := e.MustRun("systemctl", "show", "-p", "MainPID", "--value", unit)
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		e.T.Fatalf("MainPID of %s: %q", unit, out)
	}
	return pid
}

// ProsodyShell runs one mod_admin_shell command through prosodyctl.
func (e *Env) ProsodyShell(cmd string) string {
	e.T.Helper()
	return e.MustRun("prosodyctl", "shell", cmd)
}

// Secret reads one of the agent's generated secrets (focus_password,
// jvb_password, turn_secret).
func (e *Env) Secret(name string) string {
	e.T.Helper()
	return strings.TrimSpace(string(e.ReadFile(filepath.Join(StateDir, "secrets", name))))
}

// Dial opens a connection from inside the box's network namespace; any
// host name is the box's loopback (the box's /etc/hosts maps the
// deployment's names there), IP addresses are used as given.
func (e *Env) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if net.ParseIP(host) == nil {
		host = "127.0.0.1"
	}
	addr = net.JoinHostPort(host, port)
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// A thread switched into another network namespace is never
		// given back: the goroutine ends locked, so the runtime retires
		// the thread. Sockets keep the namespace they were created in.
		runtime.LockOSThread()
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", e.PID1))
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("setns: %w", err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// HTTPClient reaches the box's services (nginx, Prosody's BOSH) through
// Dial. Certificates are not verified: the placeholder is self-signed, and
// these tests are about the services, not the certificate chain.
func (e *Env) HTTPClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:       e.Dial,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test against a placeholder
			ForceAttemptHTTP2: false,
			DisableKeepAlives: false,
		},
	}
}

// WaitFor polls cond every 100 ms until it is true or timeout passes.
func (e *Env) WaitFor(timeout time.Duration, what string, cond func() bool) {
	e.T.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.T.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
