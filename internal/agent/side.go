package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

// Bus is the systemd connection of a long-lived caller: connected on first
// use, reconnected when it dropped. Safe for concurrent use.
type Bus struct {
	mu  sync.Mutex
	bus *systemd.DBus
}

// Units returns the connection, connecting (again) when needed. It fits
// Env.Units.
func (b *Bus) Units(ctx context.Context) (systemd.Units, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bus != nil && b.bus.Connected() {
		return b.bus, nil
	}
	if b.bus != nil {
		b.bus.Close()
		b.bus = nil
	}
	bus, err := systemd.Connect(ctx, systemd.ConnectOptions{})
	if err != nil {
		return nil, err
	}
	b.bus = bus
	return bus, nil
}

// Close drops the connection.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bus != nil {
		b.bus.Close()
		b.bus = nil
	}
}

// ACME obtains and renews the deployment's certificates.
type ACME interface {
	// Obtain runs one pass (apply on a fresh host: the agent answers
	// HTTP-01 on port 80 itself while nothing else listens there).
	Obtain(ctx context.Context, d *spec.Deployment, root string, log logrus.FieldLogger) error
	// Run keeps the certificates renewed until ctx ends (nginx owns port 80
	// and proxies the challenge); stored is called after each issuance.
	Run(ctx context.Context, d *spec.Deployment, root string, stored func(name string, notAfter time.Time)) error
}

// CertManager is the real ACME client (internal/certs).
type CertManager struct{}

// ObtainTimeout bounds Obtain.
const ObtainTimeout = 3 * time.Minute

// Obtain implements ACME.
func (CertManager) Obtain(ctx context.Context, d *spec.Deployment, root string, log logrus.FieldLogger) error {
	cfg, err := certs.ConfigFor(d, root)
	if err != nil {
		return err
	}
	m, err := certs.New(cfg)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Start(); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, ObtainTimeout)
	defer cancel()
	log.Infof("certificates: checking %s with %s", strings.Join(certs.Names(d), ", "), certs.DirectoryURL(d))
	if err := m.ObtainOnce(cctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("the CA did not finish within %s", ObtainTimeout)
		}
		return err
	}
	return nil
}

// Run implements ACME.
func (CertManager) Run(ctx context.Context, d *spec.Deployment, root string, stored func(string, time.Time)) error {
	cfg, err := certs.ConfigFor(d, root)
	if err != nil {
		return err
	}
	cfg.BootstrapAddr = "" // nginx owns port 80 now; it proxies the challenge to cfg's loopback listener
	m, err := certs.New(cfg)
	if err != nil {
		return err
	}
	defer m.Close()
	done := make(chan struct{})
	defer func() { <-done }()
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(done)
		for {
			select {
			case <-ectx.Done():
				return
			case ev, ok := <-m.Events():
				if !ok {
					return
				}
				stored(ev.Slot.Name, ev.NotAfter)
			}
		}
	}()
	return m.Run(ctx)
}

// UpdateCACertificates runs Debian's update-ca-certificates (bounded to a
// minute): it adds the CAs in /usr/local/share/ca-certificates to
// /etc/ssl/certs and, through its hook, to Java's store that jicofo and the
// videobridge read.
func UpdateCACertificates(ctx context.Context) error {
	bin, err := exec.LookPath("update-ca-certificates")
	if err != nil {
		for _, p := range []string{"/usr/sbin/update-ca-certificates", "/sbin/update-ca-certificates"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("update-ca-certificates not installed (apt-get install ca-certificates)")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin).CombinedOutput()
	if err != nil {
		return fmt.Errorf("update-ca-certificates: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
