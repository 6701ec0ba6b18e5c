package joinapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/room"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/token"
)

const (
	appSecret = "app-secret-0123456789-0123456789-xyz"
	guestKey  = "guest-key-0123456789abcdef"
	hostKey   = "host-key-0123456789abcdef0"
)

// fakeClock is a manually advanced clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// logBuf collects access-log lines.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) Printf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logBuf) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

type env struct {
	srv    *Server
	tokens *token.Tokens
	url    string
	clock  *fakeClock
	log    *logBuf
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

func testTokens(t testing.TB) *token.Tokens {
	tk, err := token.New(token.Config{Domain: "meet.example.com", AppID: "my-app", Secret: spec.NewSecret(appSecret),
		Audiences: []string{"my-app"}, DomainVerification: true})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func baseConfig() Config {
	return Config{
		Listen: "127.0.0.1:0",
		Keys: []Key{
			{Name: "guests", Secret: spec.NewSecret(guestKey)},
			{Name: "hosts", Secret: spec.NewSecret(hostKey), GrantHosts: true},
		},
		RateRPS:     1000,
		Burst:       1000,
		MaxBody:     512,
		Unguessable: true,
		RoomSecret:  RoomSecretFrom(spec.NewSecret(appSecret)),
		ServerURL:   "https://meet.example.com",
	}
}

// start serves on a kernel-chosen loopback port with a real listener.
func start(t testing.TB, mod func(*Config), m Minter) *env { return startLog(t, mod, m, nil) }

// discard is an access logger that formats nothing.
type discard struct{}

func (discard) Printf(string, ...any) {}

func startLog(t testing.TB, mod func(*Config), m Minter, logger Logger) *env {
	t.Helper()
	cfg := baseConfig()
	clock := &fakeClock{}
	clock.ns.Store(time.Unix(1_800_000_000, 0).UnixNano())
	cfg.Now = clock.now
	if mod != nil {
		mod(&cfg)
	}
	tk := testTokens(t)
	if m == nil {
		m = tk
	}
	lb := &logBuf{}
	if logger == nil {
		logger = lb
	}
	srv, err := New(cfg, m, logger)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	e := &env{srv: srv, tokens: tk, url: "http://" + ln.Addr().String(), clock: clock, log: lb, cancel: cancel, done: done,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("server did not shut down")
		}
		e.client.CloseIdleConnections()
	})
	return e
}

type result struct {
	status int
	header http.Header
	ok     JoinResponse
	err    APIError
	raw    string
}

func (e *env) post(t testing.TB, stream, key, body string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+"/api/v1/live/streams/"+stream+"/join", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(t, req)
}

func (e *env) do(t testing.TB, req *http.Request) result {
	t.Helper()
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q for %s", ct, raw)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &r.ok); err != nil {
			t.Fatalf("body %s: %v", raw, err)
		}
	} else {
		var wrap struct{ Error APIError }
		if err := json.Unmarshal(raw, &wrap); err != nil || wrap.Error.Code == "" || wrap.Error.Message == "" {
			t.Fatalf("error body %s is not {\"error\":{code,message}}", raw)
		}
		r.err = wrap.Error
	}
	return r
}

func expect(t *testing.T, r result, status int, code string) {
	t.Helper()
	if r.status != status || r.err.Code != code {
		t.Fatalf("got %d %q (%s), want %d %q", r.status, r.err.Code, r.raw, status, code)
	}
}

func TestJoin(t *testing.T) {
	e := start(t, nil, nil)
	r := e.post(t, "Stream%2042", guestKey, `{"identity":"user-1","name":"Ada","email":"ada@example.com","is_host":false}`)
	expect(t, r, 200, "")
	if !strings.HasPrefix(r.ok.RoomName, "stream-42-") || room.Validate(r.ok.RoomName) != nil {
		t.Errorf("room_name %q", r.ok.RoomName)
	}
	if want := room.Sanitize("Stream 42", true, RoomSecretFrom(spec.NewSecret(appSecret))); r.ok.RoomName != want {
		t.Errorf("room_name %q, want %q", r.ok.RoomName, want)
	}
	if r.ok.URL != "https://meet.example.com" {
		t.Errorf("url %q, want the server URL (guide §6)", r.ok.URL)
	}
	if r.ok.MeetingURL != "https://meet.example.com/"+r.ok.RoomName {
		t.Errorf("meeting_url %q", r.ok.MeetingURL)
	}
	if !strings.Contains(r.raw, `"url":"https://meet.example.com",`) {
		t.Errorf("body %s", r.raw)
	}
	c, err := e.tokens.Verify(r.ok.Token, &token.Target{Room: r.ok.RoomName})
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	user := c.Payload()["context"].(map[string]any)["user"].(map[string]any)
	if user["id"] != "user-1" || user["name"] != "Ada" || user["email"] != "ada@example.com" || user["moderator"] != false {
		t.Errorf("context.user = %v", user)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Error("token response must not be cached")
	}
	// Same stream, same room; another stream, another room.
	if again := e.post(t, "Stream%2042", guestKey, `{"identity":"user-2"}`); again.ok.RoomName != r.ok.RoomName {
		t.Errorf("room not stable: %q vs %q", again.ok.RoomName, r.ok.RoomName)
	}
	if other := e.post(t, "stream-43", guestKey, `{"identity":"user-2"}`); other.ok.RoomName == r.ok.RoomName {
		t.Error("different streams share a room")
	}

	// Hosts: only keys with grant_hosts may ask for is_host.
	h := e.post(t, "Stream%2042", hostKey, `{"identity":"host-1","is_host":true}`)
	expect(t, h, 200, "")
	hc, err := e.tokens.Verify(h.ok.Token, &token.Target{Room: h.ok.RoomName})
	if err != nil {
		t.Fatal(err)
	}
	if hc.Payload()["context"].(map[string]any)["user"].(map[string]any)["moderator"] != true {
		t.Error("host token is not moderator")
	}
	expect(t, e.post(t, "s1", guestKey, `{"identity":"sneaky","is_host":true}`), 403, CodeHostGrant)

	// Nothing secret in the access log.
	logs := e.log.all()
	for _, secret := range []string{guestKey, hostKey, appSecret, r.ok.Token, h.ok.Token, r.ok.RoomName, "ada@example.com", "Stream"} {
		if strings.Contains(logs, secret) {
			t.Errorf("access log contains %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, `key=guests`) || !strings.Contains(logs, `status=403`) || !strings.Contains(logs, JoinPath) {
		t.Errorf("access log lacks key/status/route:\n%s", logs)
	}
}

func TestJoinGuessableRooms(t *testing.T) {
	e := start(t, func(c *Config) { c.Unguessable = false }, nil)
	r := e.post(t, "weekly-standup", guestKey, `{"identity":"u"}`)
	expect(t, r, 200, "")
	if r.ok.RoomName != "weekly-standup" {
		t.Errorf("room_name %q, want the stream id itself", r.ok.RoomName)
	}
}

func TestAuthFailures(t *testing.T) {
	e := start(t, nil, nil)
	body := `{"identity":"u"}`
	for name, hdr := range map[string][]string{
		"no header":       nil,
		"wrong key":       {"Authorization", "Bearer not-a-key-not-a-key-xx"},
		"basic scheme":    {"Authorization", "Basic " + guestKey},
		"empty bearer":    {"Authorization", "Bearer "},
		"key prefix":      {"Authorization", "Bearer " + guestKey[:10]},
		"key with suffix": {"Authorization", "Bearer " + guestKey + "x"},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.post(t, "s", "", body, hdr...)
			expect(t, r, 401, CodeUnauthorized)
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Error("no WWW-Authenticate: Bearer")
			}
		})
	}
	// lower-case scheme is fine (RFC 7235: case-insensitive)
	expect(t, e.post(t, "s", "", body, "Authorization", "bearer "+guestKey), 200, "")
}

func TestRequestErrors(t *testing.T) {
	e := start(t, nil, nil)
	cases := []struct {
		name, body string
		hdr        []string
		status     int
		code       string
	}{
		{"unknown field", `{"identity":"u","room":"x"}`, nil, 400, CodeUnknownField},
		{"wrong type", `{"identity":"u","is_host":"yes"}`, nil, 400, CodeInvalidField},
		{"identity number", `{"identity":5}`, nil, 400, CodeInvalidField},
		{"missing identity", `{"name":"x"}`, nil, 400, CodeInvalidField},
		{"blank identity", `{"identity":"  "}`, nil, 400, CodeInvalidField},
		{"control char", `{"identity":"a\u0000b"}`, nil, 400, CodeInvalidField},
		{"bad email", `{"identity":"u","email":"not an email"}`, nil, 400, CodeInvalidField},
		{"named email", `{"identity":"u","email":"Ada <ada@example.com>"}`, nil, 400, CodeInvalidField},
		{"trailing data", `{"identity":"u"} {}`, nil, 400, CodeInvalidJSON},
		{"array", `[]`, nil, 400, CodeInvalidJSON},
		{"null", `null`, nil, 400, CodeInvalidJSON},
		{"upper-case field", `{"identity":"u","IS_HOST":true}`, nil, 400, CodeUnknownField},
		{"capitalised field", `{"Identity":"u"}`, nil, 400, CodeUnknownField},
		{"repeated field", `{"identity":"u","identity":"v"}`, nil, 400, CodeInvalidField},
		{"null is_host", `{"identity":"u","is_host":null}`, nil, 200, ""},
		{"object value", `{"identity":{"a":1}}`, nil, 400, CodeInvalidField},
		{"trailing comma", `{"identity":"u",}`, nil, 400, CodeInvalidJSON},
		{"empty", ``, nil, 400, CodeInvalidJSON},
		{"truncated", `{"identity":`, nil, 400, CodeInvalidJSON},
		{"garbage", `identity=u`, nil, 400, CodeInvalidJSON},
		{"text/plain", `{"identity":"u"}`, []string{"Content-Type", "text/plain"}, 415, CodeUnsupportedMedia},
		{"too large", `{"identity":"` + strings.Repeat("a", 600) + `"}`, nil, 413, CodeBodyTooLarge},
		{"too large with whitespace", `{"identity":"u"}` + strings.Repeat(" ", 600), nil, 413, CodeBodyTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, e.post(t, "s", guestKey, tc.body, tc.hdr...), tc.status, tc.code)
		})
	}
	t.Run("too large, chunked", func(t *testing.T) {
		body := io.MultiReader(strings.NewReader(`{"identity":"`), strings.NewReader(strings.Repeat("a", 5000)), strings.NewReader(`"}`))
		req, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/live/streams/s/join", body)
		req.Header.Set("Authorization", "Bearer "+guestKey)
		req.ContentLength = -1
		expect(t, e.do(t, req), 413, CodeBodyTooLarge)
	})
	t.Run("long stream id", func(t *testing.T) {
		expect(t, e.post(t, strings.Repeat("s", 300), guestKey, `{"identity":"u"}`), 400, CodeInvalidStreamID)
	})
	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/live/streams/s/join", nil)
		r := e.do(t, req)
		expect(t, r, 405, CodeMethodNotAllowed)
		if r.header.Get("Allow") != "POST" {
			t.Errorf("Allow = %q", r.header.Get("Allow"))
		}
	})
	for _, p := range []string{"/api/v1/live/streams//join", "/api/v1/live/streams/../streams/s/join", "/api/v1/live/streams/s/join/",
		"/api/v1/live/streams/./s/join", "/api/v1/live/streams/%2E%2E/join", "//api/v1/live/streams/s/join"} {
		t.Run("unclean "+p, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.url+p, strings.NewReader(`{"identity":"u"}`))
			req.Header.Set("Authorization", "Bearer "+guestKey)
			r := e.do(t, req) // the client does not follow redirects (see start)
			expect(t, r, 404, CodeNotFound)
			if r.header.Get("Location") != "" {
				t.Errorf("Location %q", r.header.Get("Location"))
			}
		})
	}
	t.Run("unknown path", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/streams", nil)
		expect(t, e.do(t, req), 404, CodeNotFound)
	})
	t.Run("healthz", func(t *testing.T) {
		resp, err := e.client.Get(e.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"ok"`) {
			t.Errorf("healthz: %d %s", resp.StatusCode, b)
		}
	})
}

func TestRateLimit(t *testing.T) {
	e := start(t, func(c *Config) { c.RateRPS = 0.5; c.Burst = 3 }, nil)
	body := `{"identity":"u"}`
	for i := 0; i < 3; i++ {
		expect(t, e.post(t, "s", guestKey, body), 200, "")
	}
	r := e.post(t, "s", guestKey, body)
	expect(t, r, 429, CodeRateLimited)
	if r.header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After = %q, want 2 (one token at 0.5/s)", r.header.Get("Retry-After"))
	}
	// Another key has its own bucket.
	expect(t, e.post(t, "s", hostKey, body), 200, "")
	e.clock.advance(2 * time.Second)
	expect(t, e.post(t, "s", guestKey, body), 200, "")
	expect(t, e.post(t, "s", guestKey, body), 429, CodeRateLimited)
	// Failed authentication is limited too, without touching the keys' buckets.
	for i := 0; i < 3; i++ {
		expect(t, e.post(t, "s", "wrong-wrong-wrong-wrong", body), 401, CodeUnauthorized)
	}
	expect(t, e.post(t, "s", "wrong-wrong-wrong-wrong", body), 429, CodeRateLimited)
	expect(t, e.post(t, "s", hostKey, body), 200, "")
}

// TestRejectionLogSampled: a flood of rejected requests writes a bounded
// number of access-log lines, and the next line written counts the rest.
func TestRejectionLogSampled(t *testing.T) {
	e := start(t, func(c *Config) { c.RateRPS = -1 }, nil)
	const flood = 300
	for i := 0; i < flood; i++ {
		r := e.post(t, "s", "wrong-wrong-wrong-wrong", `{"identity":"u"}`)
		if r.status != 401 && r.status != 429 {
			t.Fatalf("status %d", r.status)
		}
	}
	lines := strings.Count(e.log.all(), "\n") + 1
	if lines > rejectLogBurst+1 {
		t.Fatalf("%d log lines for %d rejected requests in one instant; want at most %d", lines, flood, rejectLogBurst)
	}
	e.clock.advance(time.Second)
	expect(t, e.post(t, "s", guestKey, `{"identity":"u"}`), 200, "")
	last := e.log.lines[len(e.log.lines)-1]
	if want := fmt.Sprintf("(%d rejected requests not logged", flood-rejectLogBurst); !strings.Contains(last, want) || !strings.Contains(last, "status=200") {
		t.Errorf("last line %q does not say %q", last, want)
	}
	// Successful requests are always logged.
	n := len(e.log.lines)
	for i := 0; i < 50; i++ {
		expect(t, e.post(t, "s", guestKey, `{"identity":"u"}`), 200, "")
	}
	if got := len(e.log.lines) - n; got != 50 {
		t.Errorf("%d lines for 50 successful requests", got)
	}
}

// TestConcurrentLoad sends a bounded number of requests from parallel
// clients and checks every answer; it reports the rate it saw.
func TestConcurrentLoad(t *testing.T) {
	e := startLog(t, func(c *Config) { c.RateRPS = -1 }, nil, discard{})
	const workers, perWorker = 16, 125
	var wg sync.WaitGroup
	var failures atomic.Int64
	begin := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/v1/live/streams/stream-%d/join", e.url, w),
					strings.NewReader(`{"identity":"u","name":"N"}`))
				req.Header.Set("Authorization", "Bearer "+guestKey)
				resp, err := e.client.Do(req)
				if err != nil {
					failures.Add(1)
					continue
				}
				var out JoinResponse
				if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil || out.Token == "" {
					failures.Add(1)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(begin)
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed", n, workers*perWorker)
	}
	t.Logf("%d requests from %d clients in %s: %.0f requests/s", workers*perWorker, workers, el.Round(time.Millisecond),
		float64(workers*perWorker)/el.Seconds())
}

// blockingMinter holds Mint until released, to test graceful shutdown.
type blockingMinter struct {
	inner   Minter
	entered chan struct{}
	release chan struct{}
}

func (b *blockingMinter) Mint(r token.MintRequest) (string, error) {
	close(b.entered)
	<-b.release
	return b.inner.Mint(r)
}

func TestGracefulShutdown(t *testing.T) {
	bm := &blockingMinter{inner: testTokens(t), entered: make(chan struct{}), release: make(chan struct{})}
	e := start(t, nil, bm)
	got := make(chan result, 1)
	go func() { got <- e.post(t, "s", guestKey, `{"identity":"u"}`) }()
	<-bm.entered
	e.cancel()
	select {
	case err := <-e.done:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(bm.release)
	if r := <-got; r.status != 200 {
		t.Fatalf("in-flight request: %d %s", r.status, r.raw)
	}
	if err := <-e.done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	e.done <- nil // for the cleanup
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(e.url, "http://"), time.Second); err == nil {
		t.Error("still listening after shutdown")
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	e := start(t, func(c *Config) { c.TLSCert, c.TLSKey = certFile, keyFile }, nil)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	e.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	e.url = strings.Replace(e.url, "http://", "https://", 1)
	expect(t, e.post(t, "s", guestKey, `{"identity":"u"}`), 200, "")
}

func selfSigned(t *testing.T) ([]byte, []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func TestConfigChecks(t *testing.T) {
	tk := testTokens(t)
	for name, mod := range map[string]func(*Config){
		"public without TLS":   func(c *Config) { c.Listen = "0.0.0.0:8443" },
		"any host without TLS": func(c *Config) { c.Listen = ":8443" },
		"cert without key":     func(c *Config) { c.TLSCert = "/x" },
		"no keys":              func(c *Config) { c.Keys = nil },
		"short key":            func(c *Config) { c.Keys = []Key{{Name: "k", Secret: spec.NewSecret("short")}} },
		"duplicate names":      func(c *Config) { c.Keys = append(c.Keys, Key{Name: "guests", Secret: spec.NewSecret(hostKey + "z")}) },
		"no room secret":       func(c *Config) { c.RoomSecret = nil },
		"no server URL":        func(c *Config) { c.ServerURL = "" },
	} {
		cfg := baseConfig()
		mod(&cfg)
		if _, err := New(cfg, tk, nil); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), guestKey) || strings.Contains(err.Error(), "short\"") {
			t.Errorf("%s: error leaks a key: %v", name, err)
		}
	}
	for _, ok := range []string{"127.0.0.1:0", "[::1]:9138", "localhost:9138"} {
		cfg := baseConfig()
		cfg.Listen = ok
		if _, err := New(cfg, tk, nil); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

func TestFromDeployment(t *testing.T) {
	d := &spec.Deployment{Domain: "meet.example.com", Web: spec.Web{HTTPSPort: 443},
		Auth: spec.Auth{Mode: spec.AuthJWT, JWT: &spec.JWT{AppID: "a", AppSecret: spec.NewSecret(appSecret)}},
		TokenAPI: &spec.TokenAPI{Listen: "127.0.0.1:9000", Keys: []spec.APIKey{{Name: "app", Key: spec.NewSecret(guestKey), GrantHosts: true}},
			RateRPS: 5, Burst: 10, MaxBody: 2048, Unguessable: true}}
	cfg, err := FromDeployment(d)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerURL != "https://meet.example.com" || cfg.Listen != "127.0.0.1:9000" || len(cfg.Keys) != 1 || !cfg.Keys[0].GrantHosts ||
		cfg.RateRPS != 5 || cfg.Burst != 10 || cfg.MaxBody != 2048 || !cfg.Unguessable || len(cfg.RoomSecret) != 32 {
		t.Errorf("cfg = %+v", cfg)
	}
	if bytes.Contains(cfg.RoomSecret, []byte(appSecret)) {
		t.Error("room secret is the app secret")
	}
	if s := fmt.Sprintf("%+v", cfg); strings.Contains(s, guestKey) {
		t.Error("config prints a key")
	}
	d.TokenAPI = nil
	if _, err := FromDeployment(d); err == nil {
		t.Error("no token_api accepted")
	}
}

func FuzzJoinBody(f *testing.F) {
	for _, s := range []string{`{"identity":"u","name":"n","email":"a@b.c","is_host":true}`, `{}`, `[]`, `null`, `{"identity":"u"} x`,
		`{"identity":"u","extra":1}`, `{"is_host":"true"}`, `{"identity":"` + strings.Repeat("a", 300) + `"}`, "\xff", `{"identity":"\ud800"}`,
		`{"Identity":"u"}`, `{"identity":"u","identity":"v"}`, `  {"identity" : "u" }  `, `{"identity":"u","IS_HOST":true}`,
		`{"identity":"u","profile":"webinar"}`, `{"identity":"u","profile":"Web inar"}`} {
		f.Add([]byte(s))
	}
	const limit = 256
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := DecodeJoinRequest(bytes.NewReader(body), limit)
		if e != nil {
			if e.Status < 400 || e.Status > 499 || e.Code == "" || e.Message == "" {
				t.Fatalf("bad error %+v for %q", e, body)
			}
			return
		}
		if len(body) > limit {
			t.Fatalf("accepted a %d-byte body over the %d limit", len(body), limit)
		}
		if req.Identity == "" || len(req.Identity) > maxIdentity || req.validate() != nil {
			t.Fatalf("accepted an invalid request %+v from %q", req, body)
		}
		// Differential: encoding/json sees the same exact-case fields and values.
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted %q that encoding/json refuses: %v", body, err)
		}
		for k, v := range m {
			if !slices.Contains(joinFields, k) {
				t.Fatalf("accepted field %q in %q", k, body)
			}
			want := map[string]any{"identity": req.Identity, "name": req.Name, "email": req.Email, "is_host": req.IsHost, "profile": req.Profile}[k]
			if v != nil && v != want {
				t.Fatalf("field %s: %v, encoding/json %v (%q)", k, want, v, body)
			}
		}
	})
}

func BenchmarkJoinEndpoint(b *testing.B) {
	cfg := baseConfig()
	cfg.RateRPS = -1
	srv, err := New(cfg, testTokens(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	body := []byte(`{"identity":"user-1","name":"Ada","email":"ada@example.com","is_host":false}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/live/streams/stream-42/join", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+guestKey)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

// processCPU is this process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoopback measures the endpoint over real loopback TCP with
// keep-alive clients; requests/s is reported as a metric, and the CPU time
// per request of the whole process (clients and server: on a shared
// machine the throughput follows what the other processes leave over,
// the CPU cost does not).
func BenchmarkLoopback(b *testing.B) {
	e := startLog(b, func(c *Config) { c.RateRPS = -1 }, nil, discard{})
	body := []byte(`{"identity":"user-1","name":"Ada","email":"ada@example.com","is_host":false}`)
	b.SetParallelism(8)
	b.ResetTimer()
	cpu0 := processCPU()
	begin := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/live/streams/stream-42/join", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+guestKey)
			resp, err := e.client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(begin).Seconds(), "req/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
}

// BenchmarkLoopbackLean is BenchmarkLoopback with a lean client, as load
// generators such as wrk are: 16 keep-alive connections, each writing one
// prepared HTTP/1.1 request and reading the answer (status line, headers,
// Content-Length body) before the next, so the client's share of the two
// cores is small and the server's capacity shows. Reported: requests/s and
// the CPU time per request of the whole process.
func BenchmarkLoopbackLean(b *testing.B) {
	e := startLog(b, func(c *Config) { c.RateRPS = -1 }, nil, discard{})
	body := `{"identity":"user-1","name":"Ada","email":"ada@example.com","is_host":false}`
	addr := strings.TrimPrefix(e.url, "http://")
	req := []byte("POST /api/v1/live/streams/stream-42/join HTTP/1.1\r\nHost: " + addr +
		"\r\nAuthorization: Bearer " + guestKey + "\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	b.SetParallelism(8)
	b.ResetTimer()
	cpu0 := processCPU()
	begin := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		rd := bufio.NewReader(conn)
		for pb.Next() {
			if _, err := conn.Write(req); err != nil {
				b.Error(err)
				return
			}
			if err := readAnswer(rd); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(begin).Seconds(), "req/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
}

// readAnswer reads one HTTP/1.1 response with a Content-Length body and
// requires 200 and a token in it.
func readAnswer(rd *bufio.Reader) error {
	status, err := rd.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(status, "HTTP/1.1 200 ") {
		return fmt.Errorf("answer %q", status)
	}
	n := -1
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
			if n, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
				return err
			}
		}
	}
	if n < 0 {
		return errors.New("answer without Content-Length")
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(rd, buf); err != nil {
		return err
	}
	if !bytes.Contains(buf, []byte(`"token":"`)) {
		return fmt.Errorf("answer without a token: %.100s", buf)
	}
	return nil
}

func TestForDeployment(t *testing.T) {
	d := &spec.Deployment{Domain: "meet.example.com",
		Auth: spec.Auth{Mode: spec.AuthJWT, JWT: &spec.JWT{AppID: "a", AppSecret: spec.NewSecret(appSecret), Algorithm: "HS256", Audiences: []string{"a"}}},
		TokenAPI: &spec.TokenAPI{Listen: "127.0.0.1:8450", Keys: []spec.APIKey{{Name: "app", Key: spec.NewSecret(guestKey)}},
			RateRPS: 5, Burst: 10, MaxBody: 2048}}
	srv, err := ForDeployment(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/api/v1/live/streams/weekly/join", strings.NewReader(`{"identity":"u"}`))
	req.Header.Set("Authorization", "Bearer "+guestKey)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	var out JoinResponse
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.URL != "https://meet.example.com" || out.MeetingURL != "https://meet.example.com/weekly" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	d.Auth = spec.Auth{Mode: spec.AuthAnonymous}
	if _, err := ForDeployment(d, nil); err == nil {
		t.Error("anonymous deployment accepted")
	}
}

type failingMinter struct{}

func (failingMinter) Mint(r token.MintRequest) (string, error) {
	return "", fmt.Errorf("mint: %w", &room.Error{Name: r.Room, Reason: "is reserved", Fix: "x"})
}

func TestMintFailure(t *testing.T) {
	e := start(t, nil, failingMinter{})
	r := e.post(t, "s", guestKey, `{"identity":"u"}`)
	expect(t, r, 500, CodeInternal)
	logs := e.log.all()
	if !strings.Contains(logs, "could not mint a token: room name: is reserved") || strings.Contains(logs, room.Sanitize("s", true, baseConfig().RoomSecret)) {
		t.Errorf("log:\n%s", logs)
	}
}

// fakeRooms is an in-memory meeting service.
type fakeRooms struct {
	mu    sync.Mutex
	rooms map[string]int
	err   error
	ended []string
}

func (f *fakeRooms) Status(_ context.Context, room string) (RoomStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return RoomStatus{}, f.err
	}
	n, ok := f.rooms[room]
	return RoomStatus{Running: ok, Participants: n}, nil
}

func (f *fakeRooms) End(_ context.Context, room, reason string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return false, f.err
	}
	_, ok := f.rooms[room]
	delete(f.rooms, room)
	f.ended = append(f.ended, room+"|"+reason)
	return ok, nil
}

func (e *env) send(t *testing.T, method, path, key, body string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return e.do(t, req)
}

func TestStatusAndEnd(t *testing.T) {
	fr := &fakeRooms{rooms: map[string]int{}}
	e := start(t, func(c *Config) { c.Rooms = fr; c.Unguessable = false }, nil)
	fr.rooms["weekly"] = 3
	r := e.send(t, "GET", "/api/v1/live/streams/weekly", hostKey, "")
	var st StatusResponse
	if r.status != 200 || json.Unmarshal([]byte(r.raw), &st) != nil || !st.Running || st.Participants != 3 || st.RoomName != "weekly" {
		t.Fatalf("status: %d %s", r.status, r.raw)
	}
	r = e.send(t, "GET", "/api/v1/live/streams/other", guestKey, "")
	if r.status != 200 || !strings.Contains(r.raw, `"running":false`) || !strings.Contains(r.raw, `"participants":0`) {
		t.Fatalf("status of a room not running: %d %s", r.status, r.raw)
	}
	// Authenticated like join, same error codes.
	expect(t, e.send(t, "GET", "/api/v1/live/streams/weekly", "", ""), 401, CodeUnauthorized)
	expect(t, e.send(t, "GET", "/api/v1/live/streams/weekly", "wrong-wrong-wrong-wrong", ""), 401, CodeUnauthorized)
	expect(t, e.send(t, "DELETE", "/api/v1/live/streams/weekly", hostKey, ""), 405, CodeMethodNotAllowed)
	expect(t, e.send(t, "GET", "/api/v1/live/streams/weekly/end", hostKey, ""), 405, CodeMethodNotAllowed)
	expect(t, e.send(t, "GET", "/api/v1/live/streams/"+strings.Repeat("s", 300), hostKey, ""), 400, CodeInvalidStreamID)
	// Ending needs a key that may grant hosts.
	expect(t, e.send(t, "POST", "/api/v1/live/streams/weekly/end", guestKey, ""), 403, CodeHostGrant)
	expect(t, e.send(t, "POST", "/api/v1/live/streams/weekly/end", hostKey, `{"Reason":"x"}`), 400, CodeUnknownField)
	expect(t, e.send(t, "POST", "/api/v1/live/streams/weekly/end", hostKey, `{"reason":"`+strings.Repeat("r", 201)+`"}`), 400, CodeInvalidField)
	r = e.send(t, "POST", "/api/v1/live/streams/weekly/end", hostKey, `{"reason":"Class is over"}`)
	if r.status != 200 || r.raw != `{"room_name":"weekly","ended":true}`+"\n" {
		t.Fatalf("end: %d %s", r.status, r.raw)
	}
	if len(fr.ended) != 1 || fr.ended[0] != "weekly|Class is over" {
		t.Errorf("ended %v", fr.ended)
	}
	r = e.send(t, "POST", "/api/v1/live/streams/weekly/end", hostKey, "")
	if r.status != 200 || !strings.Contains(r.raw, `"ended":false`) {
		t.Fatalf("end of a room not running: %d %s", r.status, r.raw)
	}
	// Prosody unreachable: 503 with a stable code, details only in the log.
	fr.err = errors.New("dial tcp 127.0.0.1:5280: connection refused")
	expect(t, e.send(t, "GET", "/api/v1/live/streams/weekly", hostKey, ""), 503, CodeUnavailable)
	expect(t, e.send(t, "POST", "/api/v1/live/streams/weekly/end", hostKey, ""), 503, CodeUnavailable)
	if !strings.Contains(e.log.all(), "connection refused") {
		t.Error("the cause is not logged")
	}
	e2 := start(t, nil, nil) // no meeting service
	expect(t, e2.send(t, "GET", "/api/v1/live/streams/weekly", hostKey, ""), 503, CodeUnavailable)
}

func TestProfiles(t *testing.T) {
	e := start(t, func(c *Config) {
		c.Profiles = []spec.TokenProfile{
			{Name: "webinar", Lifetime: 4 * time.Hour, Moderator: spec.ProfileModeratorNever, Features: map[string]bool{"screen-sharing": false}},
			{Name: "tutoring", Lifetime: 30 * time.Minute, Moderator: spec.ProfileModeratorAlways},
			{Name: "class", Moderator: spec.ProfileModeratorRequest},
		}
	}, nil)
	claims := func(r result) map[string]any {
		t.Helper()
		c, err := e.tokens.Verify(r.ok.Token, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Payload()
	}
	r := e.post(t, "s", guestKey, `{"identity":"u","profile":"webinar"}`)
	expect(t, r, 200, "")
	p := claims(r)
	if p["exp"].(float64)-p["iat"].(float64) != 4*3600 {
		t.Errorf("webinar lifetime %v", p["exp"].(float64)-p["iat"].(float64))
	}
	ctx := p["context"].(map[string]any)
	if ctx["features"].(map[string]any)["screen-sharing"] != false || ctx["user"].(map[string]any)["moderator"] != false {
		t.Errorf("webinar context %v", ctx)
	}
	expect(t, e.post(t, "s", hostKey, `{"identity":"u","profile":"webinar","is_host":true}`), 403, CodeHostGrant)
	// "always": every token is a moderator's, for keys that may grant hosts.
	expect(t, e.post(t, "s", guestKey, `{"identity":"u","profile":"tutoring"}`), 403, CodeHostGrant)
	r = e.post(t, "s", hostKey, `{"identity":"u","profile":"tutoring"}`)
	expect(t, r, 200, "")
	if p := claims(r); p["context"].(map[string]any)["user"].(map[string]any)["moderator"] != true || p["exp"].(float64)-p["iat"].(float64) != 1800 {
		t.Errorf("tutoring %v", p)
	}
	r = e.post(t, "s", guestKey, `{"identity":"u","profile":"class"}`)
	expect(t, r, 200, "")
	if p := claims(r); p["exp"].(float64)-p["iat"].(float64) != 7200 {
		t.Errorf("class keeps the configured lifetime: %v", p)
	}
	expect(t, e.post(t, "s", guestKey, `{"identity":"u","profile":"party"}`), 400, CodeUnknownProfile)
	expect(t, e.post(t, "s", guestKey, `{"identity":"u","profile":"Webinar"}`), 400, CodeInvalidField)
	expect(t, e.post(t, "s", guestKey, `{"identity":"u","profile":5}`), 400, CodeInvalidField)
	for name, bad := range map[string][]spec.TokenProfile{
		"bad name":      {{Name: "Bad Name"}},
		"twice":         {{Name: "a"}, {Name: "a"}},
		"bad moderator": {{Name: "a", Moderator: "sometimes"}},
		"too long":      {{Name: "a", Lifetime: 31 * 24 * time.Hour}},
	} {
		cfg := baseConfig()
		cfg.Profiles = bad
		if _, err := New(cfg, testTokens(t), nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzEndBody(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"reason":"x"}`, `{"Reason":"x"}`, `[]`, `null`, `{"reason":5}`, `{"reason":"a"} {}`,
		`{"reason":"\u0000"}`, `   `, `{"reason":"` + strings.Repeat("r", 300) + `"}`} {
		f.Add([]byte(s))
	}
	const limit = 256
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := DecodeEndRequest(bytes.NewReader(body), limit)
		if e != nil {
			if e.Status < 400 || e.Status > 499 || e.Code == "" || e.Message == "" {
				t.Fatalf("bad error %+v for %q", e, body)
			}
			return
		}
		if len(body) > limit || len(req.Reason) > maxReason || checkText("reason", req.Reason, maxReason, false) != nil {
			t.Fatalf("accepted %q -> %+v", body, req)
		}
	})
}

func TestLuaString(t *testing.T) {
	for in, want := range map[string]string{`a`: `"a"`, `a"b`: `"a\"b"`, `a\b`: `"a\\b"`, "a\nb]]": `"a\010b]]"`, "ä": `"\195\164"`} {
		if got := luaString(in); got != want {
			t.Errorf("luaString(%q) = %s, want %s", in, got, want)
		}
	}
}
