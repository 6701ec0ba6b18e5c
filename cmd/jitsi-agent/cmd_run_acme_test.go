package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/certs/pebbletest"
	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
)

// TestRunObtainsCertificateFromACME: the daemon runs the ACME manager when
// the spec has tls.acme. Against a local Pebble (its HTTP-01 validation
// reaches the manager's loopback listener), the issued certificate lands in
// the ACME cache, the watcher sees it, and the re-apply deploys it in place
// of the self-signed placeholder.
func TestRunObtainsCertificateFromACME(t *testing.T) {
	bin := agentBinary(t)
	httpPort := pebbletest.FreePort(t)
	srv := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort})
	dir := t.TempDir()
	roots := filepath.Join(dir, "pebble-minica.pem")
	if err := os.WriteFile(roots, srv.MinicaPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(dir, "meet.hcl")
	spec := fmt.Sprintf(`domain = "meet.example.com"
auth "anonymous" {}
turn {
  enabled = false
}
tls {
  acme {
    email     = "ops@example.com"
    directory = %q
    listen    = "127.0.0.1:%d"
  }
}
metrics {
  listen = ""
}
`, srv.DirectoryURL, httpPort)
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	sock := filepath.Join(dir, "status.sock")
	cmd := exec.Command(bin, "run", specPath, "--root", root, "--socket", sock, "--log-format", "json", "--log-level", "debug")
	// Pebble's API certificate is trusted only by this daemon process.
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+roots, "NOTIFY_SOCKET=", "WATCHDOG_USEC=")
	var logs lockedBuffer
	cmd.Stderr, cmd.Stdout = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("daemon log:\n%s\npebble:\n%s", logs.String(), srv.Output())
		}
	})
	waitStatus(t, sock, "ready", func(s *daemon.Status) bool { return s.Ready })

	crt := filepath.Join(root, "etc/jitsi/meet/meet.example.com.crt")
	deadline := time.Now().Add(60 * time.Second)
	var issuer string
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(crt); err == nil {
			if blk, _ := pem.Decode(b); blk != nil {
				if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
					issuer = c.Issuer.String()
					if !strings.Contains(issuer, "placeholder") && c.Subject.String() != c.Issuer.String() {
						if err := c.VerifyHostname("meet.example.com"); err != nil {
							t.Fatalf("deployed certificate does not cover the domain: %v", err)
						}
						return
					}
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the ACME certificate was never deployed (issuer still %q)", issuer)
}
