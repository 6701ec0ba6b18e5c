package fleet_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
	"github.com/jitsi-agent/jitsi-agent/internal/xmpptest"
)

// turnSpec: a signalling host and a separate TURN host. Neither names a
// TURN secret: both derive it from the fleet's cluster secret, which the
// first agent creates in etcd. (jvb1 makes the spec valid; no agent runs
// for it here.)
const turnSpec = `domain = "meet.example.com"
cluster_secret = env("JITSI_AGENT_CLUSTER_SECRET")
auth "anonymous" {}
host "signal1" {
  address = "10.0.0.1"
  roles   = ["prosody", "jicofo", "nginx"]
}
host "turn1" {
  address = "10.0.0.3"
  roles   = ["coturn"]
}
host "jvb1" {
  address = "10.0.0.11"
  roles   = ["jvb"]
}
`

const (
	fleetProsodyConf = "/etc/prosody/conf.avail/meet.example.com.cfg.lua"
	fleetCoturnConf  = "/etc/coturn/turnserver.conf"
)

// TestTURNCredentialsAcrossHosts: the spec goes through the real fleet path
// (3-member etcd over TLS, push, one runner per host with its own root);
// then the REAL Prosody runs with the config the signalling host applied
// and the REAL coturn with the TURN host's turnserver.conf. A logged-in
// client asks Prosody for TURN credentials (XEP-0215) and coturn accepts
// them for an allocation; a tampered credential is refused, and a coturn
// whose secret differs from the signalling host's refuses Prosody's
// credentials (the check can fail).
func TestTURNCredentialsAcrossHosts(t *testing.T) {
	prosodyBin := testenv.LookPath(t, "prosody", "apt-get install prosody lua-basexx lua-cjson lua-luaossl")
	turnserver := testenv.LookPath(t, "turnserver", "apt-get install coturn")
	uclient := testenv.LookPath(t, "turnutils_uclient", "apt-get install coturn")

	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := os.WriteFile(filepath.Join(f.dir, "fleet.hcl"), []byte(turnSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	sig, turn := f.start("signal1", ""), f.start("turn1", "")
	if res := f.push(ctx, f.admin); res.Generation != 1 {
		t.Fatalf("push: %+v", res)
	}
	sig.wait(t, "generation 1", atGeneration(1))
	turn.wait(t, "generation 1", atGeneration(1))
	if _, err := os.Stat(filepath.Join(sig.root, fleetCoturnConf)); err == nil {
		t.Error("signal1 applied a turnserver.conf but does not run coturn")
	}
	if _, err := os.Stat(filepath.Join(turn.root, fleetProsodyConf)); err == nil {
		t.Error("turn1 applied a Prosody config but does not run Prosody")
	}

	c2s, httpPort := startFleetProsody(t, prosodyBin, sig.file(t, fleetProsodyConf))
	creds := fetchTURN(t, ctx, httpPort, c2s)

	turnConf := turn.file(t, fleetCoturnConf)
	port := startFleetCoturn(t, turnserver, turnConf)
	if out, ok := allocate(ctx, uclient, port, creds.Username, creds.Password); !ok {
		t.Fatalf("the TURN host's coturn refused the credentials the signalling host's Prosody handed out:\n%s", out)
	}
	tampered := []byte(creds.Password)
	tampered[0] ^= 1
	if out, ok := refused(ctx, uclient, port, creds.Username, string(tampered)); !ok {
		t.Errorf("coturn did not refuse a tampered password:\n%s", out)
	}
	if out, ok := refused(ctx, uclient, port, "1"+creds.Username, creds.Password); !ok {
		t.Errorf("coturn did not refuse a tampered username (expiry):\n%s", out)
	}

	// The same round-trip against a TURN host whose secret differs fails:
	// what made it pass is the shared derived secret, not coturn's leniency.
	other := regexp.MustCompile(`(?m)^static-auth-secret=(\S+)$`).ReplaceAllString(turnConf, "static-auth-secret=0123456789abcdef0123456789abcdef")
	if other == turnConf {
		t.Fatalf("turnserver.conf has no static-auth-secret line:\n(%d bytes)", len(turnConf))
	}
	otherPort := startFleetCoturn(t, turnserver, other)
	if out, ok := refused(ctx, uclient, otherPort, creds.Username, creds.Password); !ok {
		t.Errorf("a coturn with a different secret did not refuse Prosody's credentials:\n%s", out)
	}
}

// fetchTURN logs in anonymously over BOSH and returns the UDP TURN service.
func fetchTURN(t *testing.T, ctx context.Context, httpPort, c2s int) xmpptest.Service {
	t.Helper()
	endpoint := fmt.Sprintf("http://127.0.0.1:%d/http-bind", httpPort)
	// Prosody picks the virtual host by the Host header, as nginx sends it.
	hc := &http.Client{Transport: hostHeader{"meet.example.com"}}
	var (
		c   *xmpptest.Client
		err error
	)
	// Prosody listens before each host has loaded its modules: retry the
	// login (bounded) until the host answers.
	deadline := time.Now().Add(60 * time.Second)
	for {
		lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
		c, err = xmpptest.BOSH(lctx, hc, endpoint, "meet.example.com", xmpptest.Credentials{})
		lcancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("anonymous BOSH login to the real Prosody (c2s %d): %v", c2s, err)
	}
	defer c.Close()
	svcs, err := c.ExternalServices(ctx)
	if err != nil {
		t.Fatalf("XEP-0215: %v", err)
	}
	for _, s := range svcs {
		if s.Type == "turn" && s.Transport == "udp" && s.Username != "" && s.Password != "" {
			if s.Host != "10.0.0.3" {
				t.Errorf("Prosody hands out TURN host %q, want turn1's address 10.0.0.3", s.Host)
			}
			return s
		}
	}
	t.Fatalf("no TURN credentials from Prosody: %+v", svcs)
	return xmpptest.Service{}
}

type hostHeader struct{ host string }

func (h hostHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = h.host
	return http.DefaultTransport.RoundTrip(r)
}

// startFleetProsody runs the real Prosody with the applied host config:
// only the certificates (throwaway ones) and the listeners (free loopback
// ports) are moved; everything else, the TURN secret included, is the
// file as the signalling host's agent wrote it.
func startFleetProsody(t *testing.T, bin, conf string) (c2s, httpPort int) {
	t.Helper()
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	for _, m := range regexp.MustCompile(`"/etc/prosody/certs/([^"/]+)\.crt"`).FindAllStringSubmatch(conf, -1) {
		writeTestCert(t, filepath.Join(certs, m[1]+".crt"), filepath.Join(certs, m[1]+".key"))
	}
	conf = strings.ReplaceAll(conf, `"/etc/prosody/certs/`, `"`+certs+"/")
	// The Jitsi plugins (jitsi-meet-prosody's) from the upstream tree.
	const rel = "jitsi-meet/resources/prosody-plugins"
	plugins := filepath.Join(testenv.Upstream(t, rel+"/mod_auth_jitsi-anonymous.lua"), rel)
	if !strings.Contains(conf, `"/usr/share/jitsi-meet/prosody-plugins/"`) {
		t.Fatal("applied Prosody config has no Jitsi plugin path")
	}
	conf = strings.ReplaceAll(conf, `"/usr/share/jitsi-meet/prosody-plugins/"`, strconv.Quote(plugins+"/"))
	pp := testenv.FreePorts(t, testenv.TCP, 2)
	c2s, httpPort = pp[0], pp[1]
	for _, l := range []struct {
		re   string
		port int
	}{{`c2s_ports = \{ \d+ \}`, c2s}, {`http_ports = \{ \d+ \}`, httpPort}} {
		re := regexp.MustCompile(l.re)
		if !re.MatchString(conf) {
			t.Fatalf("applied Prosody config lacks %s", l.re)
		}
		name := strings.Fields(l.re)[0]
		conf = re.ReplaceAllString(conf, fmt.Sprintf("%s = { %d }", name, l.port))
	}
	host := filepath.Join(dir, "meet.example.com.cfg.lua")
	if err := os.WriteFile(host, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	q := strconv.Quote
	main := strings.Join([]string{
		`modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "posix"; "ping"; }`,
		"pidfile = " + q(filepath.Join(dir, "prosody.pid")),
		"data_path = " + q(filepath.Join(dir, "data")),
		"run_as_root = true",
		`c2s_interfaces = { "127.0.0.1" }`,
		`http_interfaces = { "127.0.0.1" }`,
		"https_ports = { }", "s2s_ports = { }", "c2s_direct_tls_ports = { }", "s2s_direct_tls_ports = { }", "component_ports = { }",
		`log = { { levels = { min = "info" }, to = "file", filename = ` + q(filepath.Join(dir, "prosody.log")) + ` } }`,
		"Include " + q(host),
		"",
	}, "\n")
	mainPath := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(mainPath, []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	startProc(t, "prosody", filepath.Join(dir, "prosody.log"), bin, "-F", "--config", mainPath)
	return c2s, httpPort
}

// startFleetCoturn runs the real coturn with an applied turnserver.conf:
// listeners (and the relay) move to loopback on a free UDP port, TLS (no
// certificate here) and syslog are off; secret, realm and the rest are the
// file as written.
func startFleetCoturn(t *testing.T, bin, conf string) int {
	t.Helper()
	dir := t.TempDir()
	var keep []string
	for _, line := range strings.Split(conf, "\n") {
		key, _, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch key {
		case "listening-port", "tls-listening-port", "listening-ip", "cert", "pkey", "syslog", "external-ip", "relay-ip":
			continue
		}
		keep = append(keep, line)
	}
	port := freeUDP(t)
	keep = append(keep, "listening-ip=127.0.0.1", "relay-ip=127.0.0.1", "listening-port="+strconv.Itoa(port),
		"no-tls", "log-file="+filepath.Join(dir, "turn.log"), "pidfile="+filepath.Join(dir, "turn.pid"), "")
	p := filepath.Join(dir, "turnserver.conf")
	if err := os.WriteFile(p, []byte(strings.Join(keep, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	startProc(t, "coturn", filepath.Join(dir, "turn.log"), bin, "-c", p)
	return port
}

// allocate runs turnutils_uclient once; ok when coturn gave a relay
// address (it then refuses the loopback peer: denied-peer-ip, expected).
func allocate(ctx context.Context, uclient string, port int, user, password string) (string, bool) {
	out, ok, answered := allocateAnswer(ctx, uclient, port, user, password)
	if !ok && !answered {
		out = "coturn never answered:\n" + out
	}
	return out, ok
}

// refused reports whether coturn answered the allocation with a refusal
// (not silence: a coturn that never came up refuses nothing).
func refused(ctx context.Context, uclient string, port int, user, password string) (string, bool) {
	out, ok, answered := allocateAnswer(ctx, uclient, port, user, password)
	return out, !ok && answered
}

func allocateAnswer(ctx context.Context, uclient string, port int, user, password string) (out string, ok, answered bool) {
	// coturn binds after it starts: retry while nothing answers (bounded
	// by time, not by a number of tries: a loaded machine starts it late).
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		b, _ := exec.CommandContext(cctx, uclient, "-v", "-u", user, "-w", password, "-n", "1", "-X", "-c",
			"-p", strconv.Itoa(port), "-e", "127.0.0.1", "127.0.0.1").CombinedOutput()
		cancel()
		out = tail(strings.ReplaceAll(string(b), password, "(password)"), 1500)
		if strings.Contains(out, "Received relay addr") {
			return out, true, true
		}
		// An answer (an error response) means coturn is up: a refusal.
		// Nothing received: coturn is not listening yet.
		if strings.Contains(out, "response received") || strings.Contains(out, "ERROR") {
			return out, false, true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return out, false, false
		}
	}
}

// startProc starts a server process and stops it (by its PID) at cleanup.
func startProc(t *testing.T, what, logFile, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", what, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		err := <-exited
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("%s (exit %v):\n%s\n%s", what, err, out.String(), tail(string(b), 4000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func freeUDP(t *testing.T) int {
	t.Helper()
	return testenv.FreePort(t, testenv.TCPUDP) // coturn listens on both
}

// writeTestCert writes a throwaway self-signed ECDSA pair.
func writeTestCert(t *testing.T, certPath, keyPath string) {
	t.Helper()
	testenv.WriteSelfSigned(t, certPath, keyPath, "meet.example.com")
}
