// Package pebbletest runs Pebble (a small ACME test CA) and
// pebble-challtestsrv (its mock DNS) on loopback for tests.
//
// The binaries come from PATH (CI installs them) or are built once per test
// binary from the go.mod tool dependencies into a temporary directory; call
// Cleanup from TestMain. Without either, tests skip (fail under
// JITSI_AGENT_REQUIRE_REAL=1). Pebble's API certificate is signed by the
// minica root in the pebble module; HTTPClient trusts only that root, and
// only for the ACME client of the test.
package pebbletest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

const module = "github.com/letsencrypt/pebble/v2"

var (
	once                    sync.Once
	binDir, modDir, onceErr string
	pebbleBin, ctsBin       string
)

// Cleanup removes the binaries built for this test binary. Call it from
// TestMain after m.Run.
func Cleanup() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

func setup() {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil {
		onceErr = "cannot locate the pebble module (go list -m " + module + "): " + err.Error()
		return
	}
	modDir = strings.TrimSpace(string(out))
	p1, e1 := exec.LookPath("pebble")
	p2, e2 := exec.LookPath("pebble-challtestsrv")
	if e1 == nil && e2 == nil {
		pebbleBin, ctsBin = p1, p2
		return
	}
	dir, err := os.MkdirTemp("", "jitsi-agent-pebble-")
	if err != nil {
		onceErr = err.Error()
		return
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-o", dir+"/", module+"/cmd/pebble", module+"/cmd/pebble-challtestsrv")
	if out, err := cmd.CombinedOutput(); err != nil {
		onceErr = "go build pebble: " + err.Error() + ": " + string(out)
		return
	}
	pebbleBin, ctsBin = filepath.Join(dir, "pebble"), filepath.Join(dir, "pebble-challtestsrv")
}

func binaries(t testing.TB) {
	t.Helper()
	once.Do(setup)
	if onceErr != "" {
		testenv.Unavailable(t, onceErr, "put pebble and pebble-challtestsrv on PATH, or let `go build` reach the module proxy")
	}
}

// FreePort returns a loopback TCP port that was free a moment ago
// (testenv.FreePort).
func FreePort(t testing.TB) int {
	t.Helper()
	return testenv.FreePort(t, testenv.TCP)
}

// Options configure one Pebble.
type Options struct {
	// HTTPPort is the port Pebble's VA connects to for http-01 (required).
	HTTPPort int
	// ValidityPeriod of issued certificates in seconds (0 = Pebble's 90 days).
	ValidityPeriod uint64
}

// Server is a running Pebble + challtestsrv pair.
type Server struct {
	// DirectoryURL is the ACME directory.
	DirectoryURL string
	// ManagementURL serves /roots/0.
	ManagementURL string
	// MinicaPEM is the root of Pebble's own API certificate.
	MinicaPEM []byte

	t      testing.TB
	pebble *exec.Cmd
	cts    *exec.Cmd
	out    *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start runs challtestsrv (mock DNS answering 127.0.0.1 for every name)
// and Pebble on loopback ports. Both are killed by PID at cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	binaries(t)
	if opts.HTTPPort == 0 {
		t.Fatal("pebbletest: Options.HTTPPort is required")
	}
	minica, err := os.ReadFile(filepath.Join(modDir, "test/certs/pebble.minica.pem"))
	if err != nil {
		t.Fatalf("pebbletest: %v", err)
	}
	s := &Server{t: t, MinicaPEM: minica, out: &lockedBuffer{}}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			out := s.out.String()
			if len(out) > 8000 {
				out = out[len(out)-8000:]
			}
			t.Logf("pebble output (tail):\n%s", out)
		}
	})

	dnsPort := testenv.FreePort(t, testenv.TCPUDP)
	ctsMgmt := FreePort(t)
	s.cts = exec.Command(ctsBin, "-dnsserver", "127.0.0.1:"+strconv.Itoa(dnsPort),
		"-management", "127.0.0.1:"+strconv.Itoa(ctsMgmt),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	s.cts.Stdout, s.cts.Stderr = s.out, s.out
	if err := s.cts.Start(); err != nil {
		t.Fatalf("start pebble-challtestsrv: %v", err)
	}
	waitTCP(t, "127.0.0.1:"+strconv.Itoa(ctsMgmt))

	dir := t.TempDir()
	pp := testenv.FreePorts(t, testenv.TCP, 3)
	apiPort, mgmtPort, tlsPort := pp[0], pp[1], pp[2]
	var cfg struct {
		Pebble map[string]any `json:"pebble"`
	}
	cfg.Pebble = map[string]any{
		"listenAddress":           "127.0.0.1:" + strconv.Itoa(apiPort),
		"managementListenAddress": "127.0.0.1:" + strconv.Itoa(mgmtPort),
		"certificate":             filepath.Join(modDir, "test/certs/localhost/cert.pem"),
		"privateKey":              filepath.Join(modDir, "test/certs/localhost/key.pem"),
		"httpPort":                opts.HTTPPort,
		"tlsPort":                 tlsPort, // nothing listens: tls-alpn-01 would fail
		"retryAfter":              map[string]int{"authz": 0, "order": 0},
		"profiles": map[string]any{"default": map[string]any{
			"description": "test", "validityPeriod": opts.ValidityPeriod}},
	}
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s.pebble = exec.Command(pebbleBin, "-config", cfgPath, "-dnsserver", "127.0.0.1:"+strconv.Itoa(dnsPort), "-strict")
	s.pebble.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	s.pebble.Stdout, s.pebble.Stderr = s.out, s.out
	if err := s.pebble.Start(); err != nil {
		t.Fatalf("start pebble: %v", err)
	}
	s.DirectoryURL = "https://127.0.0.1:" + strconv.Itoa(apiPort) + "/dir"
	s.ManagementURL = "https://127.0.0.1:" + strconv.Itoa(mgmtPort)
	hc := s.HTTPClient()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(s.DirectoryURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not come up: %v\n%s", err, s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

func waitTCP(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// HTTPClient trusts Pebble's minica root (and nothing else): give it to the
// ACME client only.
func (s *Server) HTTPClient() *http.Client {
	return &http.Client{Transport: s.Transport(), Timeout: 30 * time.Second}
}

// Transport is HTTPClient's transport.
func (s *Server) Transport() *http.Transport {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.MinicaPEM)
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: false}
}

// Roots returns the pool of Pebble's issuing root (regenerated per start),
// from /roots/0 of the management interface.
func (s *Server) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.ManagementURL+"/roots/0", nil)
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("fetch pebble root: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("fetch pebble root: %d %v", resp.StatusCode, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble root: no certificate in %q", b)
	}
	return pool
}

// Output is what both processes printed so far.
func (s *Server) Output() string { return s.out.String() }

// Stop kills Pebble and challtestsrv (by PID). Idempotent.
func (s *Server) Stop() {
	for _, c := range []*exec.Cmd{s.pebble, s.cts} {
		if c == nil || c.Process == nil || c.ProcessState != nil {
			continue
		}
		_ = c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
	}
}

// String describes the server (for logs).
func (s *Server) String() string { return fmt.Sprintf("pebble at %s", s.DirectoryURL) }
