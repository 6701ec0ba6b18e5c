package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Prosody serves TLS names that no public CA will certify (auth.DOMAIN,
// where jicofo and the videobridge log in with STARTTLS, and the guest and
// recorder VirtualHosts). The agent keeps a small CA of its own for them:
//
//	state_dir/internal-ca/ca.crt, ca.key   generated once (ECDSA P-256, 10 years), key 0600
//	/etc/prosody/certs/NAME.crt, NAME.key  leaf + CA, issued for 1 year, re-issued when
//	                                       less than InternalRenewBefore is left (each
//	                                       apply, and the daemon's periodic rescan)
//	/usr/local/share/ca-certificates/jitsi-agent-DOMAIN.crt
//	                                       the CA, for update-ca-certificates: Java's trust
//	                                       store (jicofo, jvb) and the system bundle
//
// jicofo.conf and jvb.conf keep certificate verification on, so the trust
// store and the certificate must agree; doctor checks both.

// Internal CA and leaf lifetimes.
const (
	InternalCAValidity   = 10 * 365 * 24 * time.Hour
	InternalLeafValidity = 365 * 24 * time.Hour
	InternalRenewBefore  = 30 * 24 * time.Hour
)

const internalOrg = "jitsi-agent internal CA"

// InternalCADir is where the internal CA is kept, under root.
func InternalCADir(d *spec.Deployment, root string) string {
	return filepath.Join(rootJoin(root, d.StateDir), "internal-ca")
}

// InternalTrustPath is where the CA is installed for update-ca-certificates.
func InternalTrustPath(d *spec.Deployment) string {
	return "/usr/local/share/ca-certificates/jitsi-agent-" + d.Domain + ".crt"
}

// InternalNames are the Prosody VirtualHosts that get an internal
// certificate: every one except DOMAIN itself (which has the public one).
func InternalNames(d *spec.Deployment) []string {
	names := []string{d.AuthDomain()}
	if d.Auth.Guests {
		names = append(names, d.GuestDomain())
	}
	if d.Meeting.Recording.Enabled && d.Meeting.Recording.RecorderDomain != "" {
		names = append(names, d.Meeting.Recording.RecorderDomain)
	}
	return names
}

// ProsodyCertPaths are a VirtualHost's certificate and key as the rendered
// Prosody config names them.
func ProsodyCertPaths(name string) (cert, key string) {
	return "/etc/prosody/certs/" + name + ".crt", "/etc/prosody/certs/" + name + ".key"
}

// Internal is the internal CA and the leaf certificates to deploy.
type Internal struct {
	CAPEM []byte
	CA    *x509.Certificate
	// Leaves are keyed by name.
	Leaves map[string]*Bundle
}

// LoadInternal loads (or, with persist, creates once) the internal CA from
// the state directory and decides each name's leaf: the deployed one when
// the CA signed it, it covers the name, its key matches and more than
// InternalRenewBefore is left; a new one otherwise. Without persist (plan,
// read-only renders) a missing CA is generated in memory only.
func LoadInternal(d *spec.Deployment, root string, now time.Time, persist bool) (*Internal, error) {
	caCert, caKey, caPEM, err := loadOrCreateCA(InternalCADir(d, root), d.Domain, now, persist)
	if err != nil {
		return nil, fmt.Errorf("internal CA: %w", err)
	}
	in := &Internal{CAPEM: caPEM, CA: caCert, Leaves: map[string]*Bundle{}}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	for _, name := range InternalNames(d) {
		certPath, keyPath := ProsodyCertPaths(name)
		if b := deployedInternal(root, certPath, keyPath, name, pool, now); b != nil {
			in.Leaves[name] = b
			continue
		}
		b, err := issueInternal(caCert, caKey, caPEM, name, now)
		if err != nil {
			return nil, fmt.Errorf("internal certificate for %s: %w", name, err)
		}
		in.Leaves[name] = b
	}
	return in, nil
}

func deployedInternal(root, certPath, keyPath, name string, pool *x509.CertPool, now time.Time) *Bundle {
	chain, err := os.ReadFile(rootJoin(root, certPath))
	if err != nil {
		return nil
	}
	key, err := os.ReadFile(rootJoin(root, keyPath))
	if err != nil {
		return nil
	}
	b, _, _, err := parseBundle(Slot{Name: name, Key: ECDSA}, chain, key)
	if err != nil || b.Leaf.NotAfter.Sub(now) <= InternalRenewBefore {
		return nil
	}
	if _, err := b.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: now}); err != nil {
		return nil
	}
	b.Source = "internal"
	return b
}

func loadOrCreateCA(dir, domain string, now time.Time, persist bool) (*x509.Certificate, crypto.Signer, []byte, error) {
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	if cerr == nil && kerr == nil {
		b, key, _, err := parseBundle(Slot{Name: "internal-ca"}, certPEM, keyPEM)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w (delete the directory to generate a new CA, then apply)", dir, err)
		}
		if !b.Leaf.IsCA || b.Leaf.NotAfter.Before(now.Add(InternalLeafValidity)) {
			return nil, nil, nil, fmt.Errorf("%s holds no CA valid for another year (delete the directory to generate a new one, then apply)", dir)
		}
		return b.Leaf, key, certPEM, nil
	}
	if (cerr != nil && !errors.Is(cerr, fs.ErrNotExist)) || (kerr != nil && !errors.Is(kerr, fs.ErrNotExist)) {
		return nil, nil, nil, fmt.Errorf("read %s: %w", dir, errors.Join(cerr, kerr))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "jitsi-agent internal CA for " + domain, Organization: []string{internalOrg}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(InternalCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, err
	}
	caCert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	caPEM := encodeChain([][]byte{der})
	if persist {
		kp, err := encodeKey(key)
		if err != nil {
			return nil, nil, nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, nil, err
		}
		// Key first: a crash between the two leaves no certificate
		// without its key (the next run starts over).
		for _, f := range []struct {
			path string
			data []byte
			mode fs.FileMode
		}{{keyPath, kp, 0o600}, {certPath, caPEM, 0o644}} {
			tmp := f.path + ".tmp"
			if err := os.WriteFile(tmp, f.data, f.mode); err != nil {
				return nil, nil, nil, err
			}
			if err := os.Rename(tmp, f.path); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	return caCert, key, caPEM, nil
}

func issueInternal(ca *x509.Certificate, caKey crypto.Signer, caPEM []byte, name string, now time.Time) (*Bundle, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{internalOrg}},
		DNSNames:              []string{name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(InternalLeafValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	chain := append(encodeChain([][]byte{der}), caPEM...)
	return &Bundle{Slot: Slot{Name: name, Key: ECDSA}, ChainPEM: chain, KeyPEM: keyPEM, Leaf: leaf, Source: "internal"}, nil
}

// InternalFiles are the files to deploy for in: each leaf for Prosody
// (0644/0640 root:prosody, reload prosody) and the CA for the system trust
// store (0644; no unit: see below).
func InternalFiles(d *spec.Deployment, in *Internal) []render.File {
	// The CA lives on the Prosody host; a host without Prosody (split
	// deployments) gets the CA copied by the admin (README).
	if !runs(d, spec.Prosody) {
		return nil
	}
	var out []render.File
	units := []string{unitOf(d, spec.Prosody)}
	for _, name := range InternalNames(d) {
		b := in.Leaves[name]
		certPath, keyPath := ProsodyCertPaths(name)
		out = append(out,
			render.File{Path: certPath, Kind: render.KindFile, Content: b.ChainPEM, Mode: 0o644,
				Owner: "root", Group: "prosody", Component: spec.Prosody, Units: units},
			render.File{Path: keyPath, Kind: render.KindFile, Content: b.KeyPEM, Mode: 0o640,
				Owner: "root", Group: "prosody", Component: spec.Prosody, Units: units, Sensitive: true})
	}
	// The CA for the system trust store: update-ca-certificates puts it
	// into Java's store, which jicofo and the videobridge read when they
	// start (their own config changes restart them on a fresh host; the CA
	// itself is valid for ten years).
	out = append(out, render.File{Path: InternalTrustPath(d), Kind: render.KindFile, Content: in.CAPEM, Mode: 0o644,
		Owner: "root", Group: "root", Component: spec.Prosody})
	return out
}
