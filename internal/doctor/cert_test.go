package doctor

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a local root + intermediate issuing leaf certificates.
type testCA struct {
	root, inter       *x509.Certificate
	rootKey, interKey crypto.Signer
	pool              *x509.CertPool
}

var serial int64 = 1

func mkCert(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	now := time.Now()
	ca := &testCA{rootKey: ecKey(t), interKey: ecKey(t)}
	ca.root = mkCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Doctor Test Root"}, NotBefore: now.Add(-365 * 24 * time.Hour),
		NotAfter: now.Add(10 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, ca.rootKey.Public(), ca.rootKey)
	ca.inter = mkCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Doctor Test Intermediate"}, NotBefore: now.Add(-365 * 24 * time.Hour),
		NotAfter: now.Add(5 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, ca.root, ca.interKey.Public(), ca.rootKey)
	ca.pool = x509.NewCertPool()
	ca.pool.AddCert(ca.root)
	return ca
}

func (ca *testCA) leaf(t *testing.T, key crypto.Signer, notBefore, notAfter time.Time, names ...string) *x509.Certificate {
	return mkCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca.inter, key.Public(), ca.interKey)
}

func pemCerts(cs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range cs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func pemKey(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// writeTLS writes the certificate and key where the deployment expects them
// under root.
func writeTLS(t *testing.T, root string, certPEM, keyPEM []byte, keyMode os.FileMode) {
	t.Helper()
	dir := filepath.Join(root, "etc/jitsi/meet")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if certPEM != nil {
		if err := os.WriteFile(filepath.Join(dir, testDomain+".crt"), certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if keyPEM != nil {
		p := filepath.Join(dir, testDomain+".key")
		if err := os.WriteFile(p, keyPEM, keyMode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, keyMode); err != nil {
			t.Fatal(err)
		}
	}
}

type fakeRenewal struct {
	st  RenewalState
	err error
}

func (f fakeRenewal) RenewalState(context.Context) (RenewalState, error) { return f.st, f.err }

func certChecker(t *testing.T, ca *testCA, root string, env Env) *checker {
	d := testDeployment()
	env.Roots = func() (*x509.CertPool, error) { return ca.pool, nil }
	return newChecker(d, env, root)
}

func TestCertificateGood(t *testing.T) {
	ca := newTestCA(t)
	root := t.TempDir()
	key := ecKey(t)
	now := time.Now()
	leaf := ca.leaf(t, key, now.Add(-time.Hour), now.Add(60*24*time.Hour), testDomain)
	writeTLS(t, root, pemCerts(leaf, ca.inter), pemKey(t, key), 0o640)
	rs := certChecker(t, ca, root, Env{}).checkCert(context.Background())
	expect(t, byID(t, rs, "cert.present"), Pass, "ECDSA P-256", "matching key")
	expect(t, byID(t, rs, "cert.domain"), Pass, testDomain)
	expect(t, byID(t, rs, "cert.chain"), Pass, "meet.example.test -> Doctor Test Intermediate -> Doctor Test Root")
	expect(t, byID(t, rs, "cert.expiry"), Pass, "expires in 59 days")
	expect(t, byID(t, rs, "cert.renewal"), Skip, "no tls.acme")
}

func TestCertificateRSAPKCS1(t *testing.T) {
	ca := newTestCA(t)
	root := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	leaf := ca.leaf(t, key, now.Add(-time.Hour), now.Add(60*24*time.Hour), testDomain, "*.example.test")
	kp := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	writeTLS(t, root, pemCerts(leaf, ca.inter), kp, 0o600)
	rs := certChecker(t, ca, root, Env{}).checkCert(context.Background())
	expect(t, byID(t, rs, "cert.present"), Pass, "RSA 2048")
	expect(t, byID(t, rs, "cert.chain"), Pass)
}

func TestCertificateFailures(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	key := ecKey(t)
	good := func() *x509.Certificate {
		return ca.leaf(t, key, now.Add(-time.Hour), now.Add(60*24*time.Hour), testDomain)
	}
	run := func(certPEM, keyPEM []byte, keyMode os.FileMode, env Env) []Result {
		root := t.TempDir()
		writeTLS(t, root, certPEM, keyPEM, keyMode)
		return certChecker(t, ca, root, env).checkCert(context.Background())
	}

	t.Run("missing", func(t *testing.T) {
		rs := run(nil, nil, 0, Env{})
		expect(t, byID(t, rs, "cert.present"), Fail, "does not exist")
		expect(t, byID(t, rs, "cert.expiry"), Skip)
	})
	t.Run("not pem", func(t *testing.T) {
		expect(t, byID(t, run([]byte("hello"), pemKey(t, key), 0o600, Env{}), "cert.present"), Fail, "no PEM")
	})
	t.Run("key mismatch", func(t *testing.T) {
		r := byID(t, run(pemCerts(good(), ca.inter), pemKey(t, ecKey(t)), 0o600, Env{}), "cert.present")
		expect(t, r, Fail, "does not belong")
		if strings.Contains(r.Seen, "PRIVATE") {
			t.Error("key material in output")
		}
	})
	t.Run("key missing", func(t *testing.T) {
		expect(t, byID(t, run(pemCerts(good(), ca.inter), nil, 0, Env{}), "cert.present"), Fail, "key", "does not exist")
	})
	t.Run("world-readable key", func(t *testing.T) {
		expect(t, byID(t, run(pemCerts(good(), ca.inter), pemKey(t, key), 0o644, Env{}), "cert.present"), Warn, "world-readable")
	})
	t.Run("wrong domain", func(t *testing.T) {
		leaf := ca.leaf(t, key, now.Add(-time.Hour), now.Add(60*24*time.Hour), "other.example.test")
		r := byID(t, run(pemCerts(leaf, ca.inter), pemKey(t, key), 0o600, Env{}), "cert.domain")
		expect(t, r, Fail, "does not cover meet.example.test", "other.example.test")
	})
	t.Run("leaf only", func(t *testing.T) {
		r := byID(t, run(pemCerts(good()), pemKey(t, key), 0o600, Env{}), "cert.chain")
		expect(t, r, Fail, "only the leaf")
		if !strings.Contains(r.Fix, "fullchain") {
			t.Errorf("fix %q", r.Fix)
		}
	})
	t.Run("untrusted CA", func(t *testing.T) {
		other := newTestCA(t)
		leaf := other.leaf(t, key, now.Add(-time.Hour), now.Add(60*24*time.Hour), testDomain)
		expect(t, byID(t, run(pemCerts(leaf, other.inter), pemKey(t, key), 0o600, Env{}), "cert.chain"), Fail, "trusted root")
	})
	t.Run("self-signed", func(t *testing.T) {
		ss := mkCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: testDomain}, DNSNames: []string{testDomain},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(3650 * 24 * time.Hour)}, nil, key.Public(), key)
		rs := run(pemCerts(ss), pemKey(t, key), 0o600, Env{})
		expect(t, byID(t, rs, "cert.chain"), Warn, "self-signed")
		expect(t, byID(t, rs, "cert.domain"), Pass)
	})
	t.Run("expiring", func(t *testing.T) {
		leaf := ca.leaf(t, key, now.Add(-80*24*time.Hour), now.Add(10*24*time.Hour+time.Hour), testDomain)
		expect(t, byID(t, run(pemCerts(leaf, ca.inter), pemKey(t, key), 0o600, Env{}), "cert.expiry"), Warn, "expires in 10 day")
	})
	t.Run("expired", func(t *testing.T) {
		leaf := ca.leaf(t, key, now.Add(-90*24*time.Hour), now.Add(-3*24*time.Hour-time.Hour), testDomain)
		rs := run(pemCerts(leaf, ca.inter), pemKey(t, key), 0o600, Env{})
		expect(t, byID(t, rs, "cert.expiry"), Fail, "expired 3 day")
		expect(t, byID(t, rs, "cert.chain"), Pass) // the chain itself is fine
	})
	t.Run("not yet valid", func(t *testing.T) {
		leaf := ca.leaf(t, key, now.Add(24*time.Hour), now.Add(90*24*time.Hour), testDomain)
		expect(t, byID(t, run(pemCerts(leaf, ca.inter), pemKey(t, key), 0o600, Env{}), "cert.expiry"), Fail, "not valid until")
	})
	t.Run("no roots", func(t *testing.T) {
		root := t.TempDir()
		writeTLS(t, root, pemCerts(good(), ca.inter), pemKey(t, key), 0o600)
		c := newChecker(testDeployment(), Env{Roots: func() (*x509.CertPool, error) { return nil, errors.New("no store") }}, root)
		expect(t, byID(t, c.checkCert(context.Background()), "cert.chain"), Warn, "no store")
	})
}

func TestCertificateRenewal(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	key := ecKey(t)
	run := func(left time.Duration, env Env) Result {
		root := t.TempDir()
		leaf := ca.leaf(t, key, now.Add(-time.Hour), now.Add(left), testDomain)
		writeTLS(t, root, pemCerts(leaf, ca.inter), pemKey(t, key), 0o600)
		c := certChecker(t, ca, root, env)
		c.d.TLS.ACME = newACME()
		return byID(t, c.checkCert(context.Background()), "cert.renewal")
	}
	expect(t, run(60*24*time.Hour, Env{}), Skip, "not available")
	ok := RenewalState{LastAttempt: now.Add(-time.Hour), LastSuccess: now.Add(-time.Hour), NextAttempt: now.Add(30 * 24 * time.Hour)}
	expect(t, run(60*24*time.Hour, Env{Renewal: fakeRenewal{st: ok}}), Pass, "last success")
	bad := RenewalState{LastAttempt: now.Add(-time.Hour), LastSuccess: now.Add(-40 * 24 * time.Hour), LastError: "acme: urn:ietf:params:acme:error:connection"}
	expect(t, run(60*24*time.Hour, Env{Renewal: fakeRenewal{st: bad}}), Warn, "failed", "connection")
	expect(t, run(5*24*time.Hour, Env{Renewal: fakeRenewal{st: bad}}), Fail, "failed")
	expect(t, run(60*24*time.Hour, Env{Renewal: fakeRenewal{}}), Warn, "no renewal")
	expect(t, run(60*24*time.Hour, Env{Renewal: fakeRenewal{err: errors.New("state unreadable")}}), Fail, "state unreadable")
}
