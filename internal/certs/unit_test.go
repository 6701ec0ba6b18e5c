package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Min: time.Minute, Max: time.Hour, Jitter: 0.25, Rand: func() float64 { return 0 }}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute,
		32 * time.Minute, time.Hour, time.Hour, time.Hour}
	for i, w := range want {
		if got := b.Delay(i + 1); got != w {
			t.Errorf("Delay(%d) = %s, want %s", i+1, got, w)
		}
	}
	b.Rand = func() float64 { return 0.999 }
	if got := b.Delay(1); got <= time.Minute || got >= 76*time.Second {
		t.Errorf("Delay(1) with max jitter = %s, want in (1m, 1m15s]", got)
	}
	if got := b.Delay(100); got != time.Hour {
		t.Errorf("Delay(100) = %s, want capped at 1h", got)
	}
	if got := (Backoff{}).Delay(1); got < time.Minute {
		t.Errorf("zero Backoff Delay(1) = %s, want >= 1m", got)
	}
}

func TestPathsAndUnits(t *testing.T) {
	d := testDeployment(&spec.ACME{RSA: true, ExtraNames: []string{"Alt.Test.Example", testDomain}})
	if got := Names(d); strings.Join(got, ",") != testDomain+",alt.test.example" {
		t.Fatalf("Names = %v", got)
	}
	if n := len(Slots(d)); n != 4 {
		t.Fatalf("Slots = %d, want 4", n)
	}
	p := PathsFor(d, Slot{testDomain, RSA})
	if p.NginxCert != "/etc/jitsi/meet/"+testDomain+"-rsa.crt" || p.ProsodyCert != "" {
		t.Errorf("RSA paths = %+v", p)
	}
	p = PathsFor(d, Slot{"alt.test.example", ECDSA})
	if p.NginxKey != "/etc/jitsi/meet/alt.test.example.key" || p.CoturnKey != "" {
		t.Errorf("extra-name paths = %+v", p)
	}
	a, b := CacheDir(d, "/r"), CacheDir(testDeployment(&spec.ACME{DirectoryURL: "https://other/dir"}), "/r")
	if a == b || !strings.HasPrefix(a, "/r/var/lib/jitsi-agent/acme/") {
		t.Errorf("cache dirs %s %s: want distinct, under the state dir", a, b)
	}
}

func TestPlaceholderLoadFiles(t *testing.T) {
	root := t.TempDir()
	d := testDeployment(&spec.ACME{ExtraNames: []string{"alt.test.example"}})
	now := time.Now()
	m, err := Load(d, root, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Bundles) != 2 {
		t.Fatalf("bundles = %d", len(m.Bundles))
	}
	for _, b := range m.Bundles {
		if !b.Placeholder || !IsPlaceholder(b.Leaf) || b.Leaf.VerifyHostname("alt.test.example") != nil ||
			b.Leaf.VerifyHostname(testDomain) != nil || keyTypeOf(b.Leaf) != ECDSA {
			t.Fatalf("%s: want an ECDSA placeholder for both names, got %+v", b.Slot, b.Leaf.Subject)
		}
		if b.Leaf.NotAfter.Sub(now) > PlaceholderValidity {
			t.Errorf("placeholder validity too long: %s", b.Leaf.NotAfter)
		}
	}
	files := Files(d, m)
	want := map[string]struct {
		mode  os.FileMode
		group string
		unit  string
		sens  bool
	}{
		d.TLS.Certificate: {0o644, "root", "nginx.service", false},
		d.TLS.Key:         {0o600, "root", "nginx.service", true},
		"/etc/prosody/certs/" + testDomain + ".crt":          {0o644, "prosody", "prosody.service", false},
		"/etc/prosody/certs/" + testDomain + ".key":          {0o640, "prosody", "prosody.service", true},
		"/etc/coturn/certs/" + testDomain + ".fullchain.pem": {0o644, "turnserver", "coturn.service", false},
		"/etc/coturn/certs/" + testDomain + ".privkey.pem":   {0o640, "turnserver", "coturn.service", true},
		"/etc/jitsi/meet/alt.test.example.crt":               {0o644, "root", "nginx.service", false},
		"/etc/jitsi/meet/alt.test.example.key":               {0o600, "root", "nginx.service", true},
	}
	if len(files) != len(want) {
		t.Fatalf("Files = %d entries, want %d", len(files), len(want))
	}
	for _, f := range files {
		w, ok := want[f.Path]
		if !ok {
			t.Errorf("unexpected file %s", f.Path)
			continue
		}
		if f.Mode != w.mode || f.Group != w.group || f.Owner != "root" || f.Sensitive != w.sens ||
			len(f.Units) != 1 || f.Units[0] != w.unit || f.Kind != render.KindFile {
			t.Errorf("%s: mode %o %s:%s units %v sensitive %v", f.Path, f.Mode, f.Owner, f.Group, f.Units, f.Sensitive)
		}
		if f.Mode&0o004 != 0 && f.Sensitive {
			t.Errorf("%s: key is world-readable", f.Path)
		}
	}
	// Deployed: the next Load reuses the placeholder byte for byte.
	writeFiles(t, root, files)
	m2, err := Load(d, root, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range Files(d, m2) {
		if !bytes.Equal(f.Content, files[i].Content) {
			t.Errorf("%s changed between renders", f.Path)
		}
	}
	// Close to expiry it is refreshed.
	m3, err := Load(d, root, now.Add(PlaceholderValidity-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(m3.Bundles[0].ChainPEM, m.Bundles[0].ChainPEM) {
		t.Error("placeholder near expiry was not replaced")
	}
}

// selfCA issues a "real" (non-placeholder) certificate for name.
func selfCA(t *testing.T, name string, notAfter time.Time) (chain, key []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter.Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, k.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := encodeKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return encodeChain([][]byte{der, caDER}), kp
}

func TestRealCertificateNeverReplacedByPlaceholder(t *testing.T) {
	root := t.TempDir()
	d := testDeployment(&spec.ACME{})
	chain, key := selfCA(t, testDomain, time.Now().Add(-time.Minute)) // even expired
	writeFiles(t, root, []render.File{{Path: d.TLS.Certificate, Content: chain, Mode: 0o644},
		{Path: d.TLS.Key, Content: key, Mode: 0o600}})
	m, err := Load(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b := m.Bundles[0]
	if b.Placeholder || !bytes.Equal(b.ChainPEM, chain) || !bytes.Equal(b.KeyPEM, key) {
		t.Fatalf("deployed real certificate replaced (source %s)", b.Source)
	}
	// Without ACME, the user's certificate is copied to Prosody/coturn and
	// its nginx files are not managed.
	d.TLS.ACME = nil
	m, err = Load(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Files(d, m) {
		if f.Component == spec.Nginx {
			t.Errorf("user certificate: nginx file %s managed", f.Path)
		}
	}
	// A key that does not match is an error without ACME (the user's files).
	_, other := selfCA(t, testDomain, time.Now().Add(time.Hour))
	writeFiles(t, root, []render.File{{Path: d.TLS.Key, Content: other, Mode: 0o600}})
	if _, err := Load(d, root, time.Now()); err == nil {
		t.Error("mismatched user key: want an error")
	} else if strings.Contains(err.Error(), "PRIVATE") {
		t.Errorf("error leaks key material: %v", err)
	}
}

type fakeRT func(*http.Request) (*http.Response, error)

func (f fakeRT) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func jsonResp(status int, v any) *http.Response {
	b, _ := json.Marshal(v)
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b))}
}

func TestTransportFiltersTLSALPNAndRecordsErrors(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var nextErr error
	base := fakeRT(func(r *http.Request) (*http.Response, error) {
		if nextErr != nil {
			return nil, nextErr
		}
		switch r.URL.Path {
		case "/dir":
			return jsonResp(200, map[string]string{"newOrder": "https://ca.test/new-order"}), nil
		case "/authz/1":
			return jsonResp(200, map[string]any{"status": "pending", "identifier": map[string]string{"type": "dns", "value": "x.test"},
				"challenges": []map[string]string{{"type": "tls-alpn-01", "url": "u1"}, {"type": "http-01", "url": "u2"}, {"type": "dns-01", "url": "u3"}}}), nil
		case "/authz/2":
			return jsonResp(200, map[string]any{"status": "invalid", "identifier": map[string]string{"type": "dns", "value": "x.test"},
				"challenges": []map[string]any{{"type": "http-01", "url": "u2", "error": map[string]string{
					"type": "urn:ietf:params:acme:error:unauthorized", "detail": "wrong key authorization"}}}}), nil
		case "/new-order":
			return jsonResp(201, map[string]string{"status": "pending"}), nil
		}
		return jsonResp(400, map[string]string{"type": "urn:ietf:params:acme:error:badNonce", "detail": "retry"}), nil
	})
	tr := &acmeTransport{base: base, now: func() time.Time { return now }, dirURL: "https://ca.test/dir", maxOrders: 2}
	get := func(method, u string) (*http.Response, error) {
		req, _ := http.NewRequest(method, u, nil)
		return tr.RoundTrip(req)
	}
	if _, err := get("GET", "https://ca.test/dir"); err != nil {
		t.Fatal(err)
	}
	resp, err := get("POST", "https://ca.test/authz/1")
	if err != nil {
		t.Fatal(err)
	}
	var z struct{ Challenges []struct{ Type string } }
	if err := json.NewDecoder(resp.Body).Decode(&z); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, c := range z.Challenges {
		types = append(types, c.Type)
	}
	if strings.Join(types, ",") != "http-01,dns-01" {
		t.Errorf("challenges after filter = %v", types)
	}
	if _, _ = get("POST", "https://ca.test/other"); tr.last(time.Time{}) != "" {
		t.Errorf("badNonce recorded as an error: %q", tr.last(time.Time{}))
	}
	if _, err := get("POST", "https://ca.test/authz/2"); err != nil {
		t.Fatal(err)
	}
	if got := tr.last(now); !strings.Contains(got, "http-01 failed: unauthorized: wrong key authorization") {
		t.Errorf("last error = %q", got)
	}
	nextErr = errors.New("connection refused")
	if _, err := get("GET", "https://ca.test/dir"); err == nil {
		t.Fatal("want error")
	}
	if got := tr.last(now); !strings.Contains(got, "unreachable") {
		t.Errorf("last error = %q", got)
	}
	nextErr = nil
	// Order limit: 2 per hour.
	for i := range 3 {
		_, err := get("POST", "https://ca.test/new-order")
		if (i < 2) != (err == nil) {
			t.Errorf("order %d: err = %v", i, err)
		}
	}
	now = now.Add(61 * time.Minute)
	if _, err := get("POST", "https://ca.test/new-order"); err != nil {
		t.Errorf("order after an hour: %v", err)
	}
	tr.close()
	if _, err := get("GET", "https://ca.test/dir"); err == nil {
		t.Error("closed transport still sends")
	}
}

func TestStateFileRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "acme", "state.json")
	s := State{DirectoryURL: "https://x/dir"}
	s.put(CertStatus{Name: "b.test", KeyType: ECDSA, LastError: "boom"})
	s.put(CertStatus{Name: "a.test", KeyType: RSA, NotAfter: time.Unix(2_000_000_000, 0).UTC()})
	if err := writeState(p, s); err != nil {
		t.Fatal(err)
	}
	got, err := ReadState(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Certificates) != 2 || got.Certificates[0].Name != "a.test" || got.Certificates[1].LastError != "boom" {
		t.Fatalf("round trip: %+v", got)
	}
	if c, _ := got.Lookup(Slot{"a.test", RSA}); c.ExpirySeconds(time.Unix(1_999_999_000, 0)) != 1000 {
		t.Errorf("ExpirySeconds = %v", c.ExpirySeconds(time.Unix(1_999_999_000, 0)))
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o640 {
		t.Errorf("state file mode %o", st.Mode().Perm())
	}
	if s, err := ReadState(filepath.Join(t.TempDir(), "none")); s != nil || err != nil {
		t.Errorf("missing state: %v %v", s, err)
	}
}
