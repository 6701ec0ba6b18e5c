// Package etcdtest starts a real etcd cluster (Debian's etcd-server) for
// tests: three members on loopback ports, each with its own data directory
// under t.TempDir(), TLS between clients and members and between members,
// with a throwaway CA and client certificates. Tests share it so every
// fleet scenario runs against the same kind of cluster.
package etcdtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// Install is how to get etcd on Debian.
const Install = "apt-get install etcd-server etcd-client"

// Cluster is a running etcd cluster.
type Cluster struct {
	t       testing.TB
	bin     string
	dir     string
	token   string
	Members []*Member
	// CA, ClientCert, ClientKey are PEM files: the CA that signed every
	// certificate, and a client certificate (CN "root") it accepts.
	CA, ClientCert, ClientKey string

	ca *authority
}

// Member is one etcd process.
type Member struct {
	Name      string
	ClientURL string
	PeerURL   string
	dataDir   string
	logPath   string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts a 3-member cluster and waits until it has a leader; it is
// stopped when the test ends. Without etcd the test skips (fails under
// JITSI_AGENT_REQUIRE_REAL=1).
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := testenv.LookPath(t, "etcd", Install)
	var last error
	for range 3 { // a port picked free may be taken before etcd binds it
		c, err := start(t, bin)
		if err == nil {
			return c
		}
		last = err
	}
	t.Fatalf("etcd cluster did not start: %v", last)
	return nil
}

func start(t testing.TB, bin string) (*Cluster, error) {
	dir := t.TempDir()
	ca, err := newAuthority()
	if err != nil {
		return nil, err
	}
	c := &Cluster{t: t, bin: bin, dir: dir, token: fmt.Sprintf("t%d", time.Now().UnixNano()), ca: ca}
	c.CA = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(c.CA, ca.certPEM, 0o600); err != nil {
		return nil, err
	}
	// Member certificates serve both roles (server and peer client).
	if err := ca.issue(dir, "member", "member", true); err != nil {
		return nil, err
	}
	if c.ClientCert, c.ClientKey, err = c.IssueClient("root"); err != nil {
		return nil, err
	}
	// etcd takes URLs, not sockets: ports from outside the kernel's
	// ephemeral range, so that a member killed and restarted by a test
	// finds its port again.
	ports := testenv.FreePorts(t, testenv.TCP, 6)
	var initial []string
	for i := range 3 {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("https://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("https://127.0.0.1:%d", ports[2*i+1]),
		}
		m.dataDir = filepath.Join(dir, m.Name)
		m.logPath = filepath.Join(dir, m.Name+".log")
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	for _, m := range c.Members {
		if err := c.startMember(m, strings.Join(initial, ","), "new"); err != nil {
			c.stopAll()
			return nil, err
		}
	}
	t.Cleanup(c.stopAll)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.waitLeader(ctx, nil); err != nil {
		c.stopAll()
		return nil, fmt.Errorf("%w\n%s", err, c.Logs())
	}
	return c, nil
}

// IssueClient writes a client certificate with common name cn (etcd's
// user name when auth is on) and returns its PEM files.
func (c *Cluster) IssueClient(cn string) (cert, key string, err error) {
	if err := c.ca.issue(c.dir, "client-"+cn, cn, false); err != nil {
		return "", "", err
	}
	return filepath.Join(c.dir, "client-"+cn+".pem"), filepath.Join(c.dir, "client-"+cn+"-key.pem"), nil
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// TLS is a client TLS configuration with the root client certificate.
func (c *Cluster) TLS() *tls.Config {
	cfg, err := ClientTLS(c.CA, c.ClientCert, c.ClientKey)
	if err != nil {
		c.t.Fatal(err)
	}
	return cfg
}

// ClientTLS builds a client TLS configuration from PEM files.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	pemCA, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemCA) {
		return nil, fmt.Errorf("%s: no certificate", caFile)
	}
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}, nil
}

func (c *Cluster) startMember(m *Member, initial, state string) error {
	crt, key := filepath.Join(c.dir, "member.pem"), filepath.Join(c.dir, "member-key.pem")
	args := []string{
		"--name", m.Name, "--data-dir", m.dataDir,
		"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", initial, "--initial-cluster-state", state, "--initial-cluster-token", c.token,
		"--cert-file", crt, "--key-file", key, "--trusted-ca-file", c.CA, "--client-cert-auth",
		"--peer-cert-file", crt, "--peer-key-file", key, "--peer-trusted-ca-file", c.CA, "--peer-client-cert-auth",
		// Fast elections: a killed leader is replaced in about a second.
		"--heartbeat-interval", "50", "--election-timeout", "500",
		"--logger", "zap", "--log-level", "warn",
		"--listen-metrics-urls", "", "--enable-pprof=false",
	}
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	return nil
}

// Kill stops a member with SIGKILL and waits for it to exit.
func (c *Cluster) Kill(m *Member) {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill() // our own child, by PID
	<-done
}

// Restart starts a killed member again on its data directory.
func (c *Cluster) Restart(m *Member) error {
	var initial []string
	for _, o := range c.Members {
		initial = append(initial, o.Name+"="+o.PeerURL)
	}
	return c.startMember(m, strings.Join(initial, ","), "existing")
}

func (c *Cluster) stopAll() {
	for _, m := range c.Members {
		c.Kill(m)
	}
}

// Logs returns every member's log (for failure messages).
func (c *Cluster) Logs() string {
	var b bytes.Buffer
	for _, m := range c.Members {
		data, _ := os.ReadFile(m.logPath)
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", m.Name, data)
	}
	return b.String()
}

// Leader waits (bounded by ctx) until a running member reports itself the
// leader, and returns it.
func (c *Cluster) Leader(ctx context.Context) (*Member, error) { return c.waitLeader(ctx, nil) }

// waitLeader asks each running member (but except) for its status until
// one is the leader.
func (c *Cluster) waitLeader(ctx context.Context, except *Member) (*Member, error) {
	tlsCfg := c.TLS()
	for {
		for _, m := range c.Members {
			if m == except {
				continue
			}
			m.mu.Lock()
			running := m.cmd != nil
			m.mu.Unlock()
			if !running {
				continue
			}
			if memberIsLeader(ctx, m.ClientURL, tlsCfg) {
				return m, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no etcd leader: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitLeaderExcept waits for a leader other than m (after killing m).
func (c *Cluster) WaitLeaderExcept(ctx context.Context, m *Member) (*Member, error) {
	return c.waitLeader(ctx, m)
}

func memberIsLeader(ctx context.Context, url string, tlsCfg *tls.Config) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, TLS: tlsCfg, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return false
	}
	defer cl.Close()
	st, err := cl.Status(ctx, url)
	return err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId
}

// authority is a throwaway CA.
type authority struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newAuthority() (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "etcdtest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// issue writes DIR/NAME.pem and DIR/NAME-key.pem for cn; server
// certificates name 127.0.0.1 and localhost and serve both TLS roles.
func (a *authority) issue(dir, name, cn string, server bool) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}
