package certs

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDeployedCertificateBoundedRead: a certificate or key that is
// /dev/zero (through a symlink) or a FIFO is refused at once instead of
// exhausting memory or blocking.
func TestDeployedCertificateBoundedRead(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "etc/jitsi/meet")
	os.MkdirAll(dir, 0o755)
	p := Paths{NginxCert: "/etc/jitsi/meet/meet.example.com.crt", NginxKey: "/etc/jitsi/meet/meet.example.com.key"}
	for name, plant := range map[string]func(string) error{
		"dev-zero": func(at string) error { return os.Symlink("/dev/zero", at) },
		"fifo":     func(at string) error { return syscall.Mkfifo(at, 0o600) },
	} {
		t.Run(name, func(t *testing.T) {
			at := filepath.Join(root, p.NginxCert)
			os.Remove(at)
			if err := plant(at); err != nil {
				t.Skip(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := readDeployed(root, Slot{Name: "meet.example.com"}, p)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !(strings.Contains(err.Error(), "no configuration") || strings.Contains(err.Error(), "not a regular file")) {
					t.Fatalf("want a refusal, got %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("reading the deployed certificate did not return within 10s")
			}
		})
	}
}
