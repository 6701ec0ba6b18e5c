package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/input"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Config configures a Manager. ConfigFor derives it from a Deployment; tests
// inject the HTTP client (trusting their CA), the listeners and the clock.
type Config struct {
	// Names to obtain certificates for (one certificate per name); the
	// host policy allows exactly these.
	Names []string
	// RSA also obtains an RSA-2048 certificate per name (ECDSA always).
	RSA          bool
	Email        string
	DirectoryURL string
	// RenewBefore is autocert's renewal window (0 = a third of the
	// lifetime, capped at 30 days; values above 30 days are capped too).
	RenewBefore time.Duration
	// Listen is the loopback address nginx proxies
	// /.well-known/acme-challenge/ to ("" = no listener; use HTTPHandler).
	Listen string
	// BootstrapAddr is where the Manager serves HTTP-01 itself while a
	// certificate is missing or due, if it can bind it (fresh host: nginx
	// not running). A busy address (nginx up) is skipped silently. "" = never.
	BootstrapAddr string
	// CacheDir is the autocert cache for DirectoryURL (see CacheDir).
	CacheDir string
	// StatePath is the JSON state file (see StatePath).
	StatePath string
	// Deployed reads a slot's deployed chain and key, to re-import a
	// certificate this Manager issued when the cache lost it (nil = never).
	Deployed func(Slot) (chainPEM, keyPEM []byte, err error)
	// HTTPClient is the ACME client's HTTP client (nil = default transport).
	HTTPClient *http.Client
	// Clock drives the retry loop (nil = real time).
	Clock Clock
	// Backoff paces retries after failures (zero = DefaultBackoff).
	Backoff Backoff
	// AttemptTimeout bounds one certificate attempt (default 3 min).
	AttemptTimeout time.Duration
	// MaxOrdersPerHour caps new ACME orders (default 12).
	MaxOrdersPerHour int
	Log              logrus.FieldLogger
}

// ConfigFor derives the Manager configuration of d, with paths under root.
// d.TLS.ACME must be set.
func ConfigFor(d *spec.Deployment, root string) (Config, error) {
	a := d.TLS.ACME
	if a == nil {
		return Config{}, errors.New("certs: the spec has no tls.acme block")
	}
	listen := a.Listen
	if listen == "" {
		listen = DefaultListen
	}
	port := d.Web.HTTPPort
	if port == 0 {
		port = 80
	}
	return Config{
		Names:         Names(d),
		RSA:           a.RSA,
		Email:         a.Email,
		DirectoryURL:  DirectoryURL(d),
		RenewBefore:   a.RenewBefore,
		Listen:        listen,
		BootstrapAddr: ":" + strconv.Itoa(port),
		CacheDir:      CacheDir(d, root),
		StatePath:     StatePath(d, root),
		Deployed: func(s Slot) ([]byte, []byte, error) {
			p := PathsFor(d, s)
			c, err := input.ReadFile(rootJoin(root, p.NginxCert), input.MaxFile)
			if err != nil {
				return nil, nil, err
			}
			k, err := input.ReadFile(rootJoin(root, p.NginxKey), input.MaxFile)
			if err != nil {
				return nil, nil, err
			}
			return c, k, nil
		},
	}, nil
}

// Event says a certificate was stored: first issuance or renewal. The
// daemon answers by re-rendering (Load + Files) and applying, which reloads
// the units whose files changed.
type Event struct {
	Slot     Slot
	Serial   string
	NotAfter time.Time
}

// Manager obtains and renews the certificates of one ACME directory.
type Manager struct {
	cfg     Config
	ac      *autocert.Manager
	inner   autocert.Cache
	tr      *acmeTransport
	handler http.Handler
	slots   []Slot
	clock   Clock
	backoff Backoff
	log     logrus.FieldLogger
	events  chan Event

	mu    sync.Mutex
	state State
	prev  *State // state file found at start (provenance for imports)

	srvMu   sync.Mutex
	servers []*http.Server
	addr    net.Addr
	closed  bool
}

// New builds a Manager. It does not touch the network.
func New(cfg Config) (*Manager, error) {
	if len(cfg.Names) == 0 {
		return nil, errors.New("certs: no names")
	}
	for _, n := range cfg.Names {
		if !strings.Contains(strings.Trim(n, "."), ".") {
			return nil, fmt.Errorf("certs: %q is not a fully qualified name (autocert needs a dot)", n)
		}
	}
	if cfg.CacheDir == "" || cfg.StatePath == "" || cfg.DirectoryURL == "" {
		return nil, errors.New("certs: CacheDir, StatePath and DirectoryURL are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Backoff.Min == 0 && cfg.Backoff.Max == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 3 * time.Minute
	}
	if cfg.MaxOrdersPerHour <= 0 {
		cfg.MaxOrdersPerHour = 12
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	cfg.RenewBefore = min(max(cfg.RenewBefore, 0), 30*24*time.Hour)
	if err := fsys.MkdirPrivate(cfg.CacheDir); err != nil {
		return nil, fmt.Errorf("certs: create cache dir: %w", err)
	}
	m := &Manager{cfg: cfg, clock: cfg.Clock, backoff: cfg.Backoff,
		log: cfg.Log.WithField("component", "certs"), events: make(chan Event, 16)}
	for _, n := range cfg.Names {
		m.slots = append(m.slots, Slot{Name: n, Key: ECDSA})
		if cfg.RSA {
			m.slots = append(m.slots, Slot{Name: n, Key: RSA})
		}
	}
	base := http.DefaultTransport
	if cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
		base = cfg.HTTPClient.Transport
	}
	m.tr = &acmeTransport{base: base, now: m.clock.Now, dirURL: cfg.DirectoryURL, maxOrders: cfg.MaxOrdersPerHour}
	slotKeys := map[string]Slot{}
	for _, s := range m.slots {
		slotKeys[s.CacheKey()] = s
	}
	m.inner = autocert.DirCache(cfg.CacheDir)
	m.ac = &autocert.Manager{
		Prompt:      autocert.AcceptTOS,
		Cache:       &notifyCache{Cache: m.inner, slots: slotKeys, onPut: m.onPut},
		HostPolicy:  autocert.HostWhitelist(cfg.Names...),
		RenewBefore: cfg.RenewBefore,
		Email:       cfg.Email,
		Client: &acme.Client{
			DirectoryURL: cfg.DirectoryURL,
			UserAgent:    "jitsi-agent",
			HTTPClient:   &http.Client{Transport: m.tr, Timeout: time.Minute},
		},
	}
	// HTTPHandler must be called before the first GetCertificate: it is what
	// makes autocert offer http-01 at all.
	h := m.ac.HTTPHandler(http.NotFoundHandler())
	m.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The host policy sees r.Host as sent; drop a port (nginx's $host
		// has none, a CA validating a non-default port sends one).
		if host, _, err := net.SplitHostPort(r.Host); err == nil {
			r.Host = host
		}
		h.ServeHTTP(w, r)
	})
	prev, err := ReadState(cfg.StatePath)
	if err != nil {
		m.log.WithError(err).Warn("ignoring unreadable certificate state")
	}
	m.state = State{DirectoryURL: cfg.DirectoryURL}
	if prev != nil && prev.DirectoryURL == cfg.DirectoryURL {
		m.prev = prev
		for _, s := range m.slots {
			if c, ok := prev.Lookup(s); ok {
				m.state.put(c)
			}
		}
	}
	for _, s := range m.slots {
		if _, ok := m.state.Lookup(s); !ok {
			m.state.put(CertStatus{Name: s.Name, KeyType: s.Key})
		}
	}
	return m, nil
}

// HTTPHandler answers /.well-known/acme-challenge/ (404 for anything else).
// Start serves it on Config.Listen already.
func (m *Manager) HTTPHandler() http.Handler { return m.handler }

// Events delivers one Event per stored certificate (buffered; when the
// buffer is full, events are dropped: re-render on any event, not per
// event).
func (m *Manager) Events() <-chan Event { return m.events }

// Status returns the current status of every slot.
func (m *Manager) Status() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.clone()
}

// Start serves the challenge handler on Config.Listen. Idempotent.
func (m *Manager) Start() error {
	m.srvMu.Lock()
	defer m.srvMu.Unlock()
	if m.closed {
		return errors.New("certs: manager closed")
	}
	if m.addr != nil || m.cfg.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", m.cfg.Listen)
	if err != nil {
		return fmt.Errorf("certs: challenge listener: %w", err)
	}
	m.addr = ln.Addr()
	m.servers = append(m.servers, m.serve(ln))
	return nil
}

// Addr is the challenge listener's address (nil before Start).
func (m *Manager) Addr() net.Addr {
	m.srvMu.Lock()
	defer m.srvMu.Unlock()
	return m.addr
}

func (m *Manager) serve(ln net.Listener) *http.Server {
	srv := &http.Server{Handler: m.handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.WithError(err).Warn("challenge listener stopped")
		}
	}()
	return srv
}

// Close stops the listeners and keeps autocert's renewal timers (which
// cannot be stopped from outside) off the network.
func (m *Manager) Close() error {
	m.tr.close()
	m.srvMu.Lock()
	defer m.srvMu.Unlock()
	m.closed = true
	var errs []error
	for _, s := range m.servers {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	m.servers = nil
	return errors.Join(errs...)
}

// Run obtains missing certificates, arms the renewal timers and keeps
// checking until ctx ends: after a failure it retries per Backoff; otherwise
// it checks (without network traffic) at least hourly that renewals happen.
func (m *Manager) Run(ctx context.Context) error {
	if err := m.Start(); err != nil {
		return err
	}
	for {
		err := m.ObtainOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := m.nextWait()
		if err != nil {
			m.log.WithError(err).WithField("retry_in", wait.Round(time.Second)).Warn("certificate attempt failed; keeping the current certificate")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.clock.After(wait):
		}
	}
}

// ObtainOnce makes one pass over every slot: a valid cached certificate is
// loaded without network traffic (arming autocert's renewal timer); a
// missing one is obtained over HTTP-01. While anything is to be obtained the
// Manager also serves BootstrapAddr if it can bind it. Failures are recorded
// per slot with the next attempt time; the joined error is returned.
func (m *Manager) ObtainOnce(ctx context.Context) error {
	now := m.clock.Now()
	need := false
	for _, s := range m.slots {
		m.importDeployed(ctx, s, now)
		if !m.cachedFresh(ctx, s, now) {
			need = true
		}
	}
	if need && m.cfg.BootstrapAddr != "" {
		if ln, err := net.Listen("tcp", m.cfg.BootstrapAddr); err != nil {
			m.log.WithError(err).Debug("bootstrap challenge listener not available; relying on nginx")
		} else {
			srv := m.serve(ln)
			m.log.WithField("addr", ln.Addr().String()).Info("serving ACME challenges directly until the certificates are obtained")
			defer srv.Close()
		}
	}
	var errs []error
	for _, s := range m.slots {
		start := m.clock.Now()
		c, err := m.get(ctx, s)
		if err != nil {
			msg := err.Error()
			if d := m.tr.last(start); d != "" && !strings.Contains(msg, d) {
				msg = d + " (" + msg + ")"
			} else if msg == errCooldown {
				// autocert keeps a failed attempt for a minute and answers
				// this without contacting the CA: keep the real reason.
				if prev, _ := m.Status().Lookup(s); prev.LastError != "" {
					msg = prev.LastError
				}
			}
			m.fail(s, msg)
			errs = append(errs, fmt.Errorf("%s: %s", s, msg))
			continue
		}
		if err := m.observe(s, c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
		}
	}
	m.persist()
	return errors.Join(errs...)
}

// errCooldown is autocert's answer during the minute after a failure.
const errCooldown = "acme/autocert: missing certificate"

// get runs autocert's GetCertificate for the slot with a bounded wait.
func (m *Manager) get(ctx context.Context, s Slot) (*tls.Certificate, error) {
	hello := &tls.ClientHelloInfo{ServerName: s.Name}
	if s.Key == ECDSA {
		// Without an ECDSA suite autocert picks RSA.
		hello.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
		hello.SupportedCurves = []tls.CurveID{tls.CurveP256}
	}
	type result struct {
		c   *tls.Certificate
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := m.ac.GetCertificate(hello)
		ch <- result{c, err}
	}()
	t := time.NewTimer(m.cfg.AttemptTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.err == nil && (r.c == nil || r.c.Leaf == nil) {
			return nil, errors.New("autocert returned no certificate")
		}
		return r.c, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fmt.Errorf("no certificate after %s", m.cfg.AttemptTimeout)
	}
}

// renewAt mirrors autocert's schedule (without its jitter).
func (m *Manager) renewAt(nb, na time.Time) time.Time {
	th := min(na.Sub(nb)/3, 30*24*time.Hour)
	if m.cfg.RenewBefore > 0 {
		th = m.cfg.RenewBefore
	}
	return na.Add(-th)
}

// overdueAt is when a renewal that has not happened counts as failed:
// autocert's latest scheduled time plus the same slack again.
func (m *Manager) overdueAt(nb, na time.Time) time.Time {
	ra := m.renewAt(nb, na)
	slack := min(na.Sub(ra)/10, time.Hour)
	return ra.Add(2 * slack)
}

// observe records the certificate autocert returned.
func (m *Manager) observe(s Slot, c *tls.Certificate) error {
	leaf := c.Leaf
	now := m.clock.Now()
	m.mu.Lock()
	st, _ := m.state.Lookup(s)
	fillLeaf(&st, leaf, m.renewAt(leaf.NotBefore, leaf.NotAfter))
	m.mu.Unlock()
	if now.After(m.overdueAt(leaf.NotBefore, leaf.NotAfter)) {
		msg := "renewal overdue since " + st.RenewAt.UTC().Format(time.RFC3339)
		if d := m.tr.last(time.Time{}); d != "" {
			msg += "; last ACME error: " + d
		}
		m.mu.Lock()
		m.state.put(st)
		m.mu.Unlock()
		m.fail(s, msg)
		return errors.New(msg)
	}
	st.LastError, st.LastErrorAt, st.NextAttempt, st.Failures = "", time.Time{}, time.Time{}, 0
	m.mu.Lock()
	m.state.put(st)
	m.mu.Unlock()
	return nil
}

func fillLeaf(st *CertStatus, leaf *x509.Certificate, renewAt time.Time) {
	st.Serial = leaf.SerialNumber.Text(16)
	st.Issuer = issuerName(leaf)
	st.NotBefore, st.NotAfter = leaf.NotBefore.UTC(), leaf.NotAfter.UTC()
	st.RenewAt = renewAt.UTC()
}

// issuerName is the issuer's CN (or the whole DN when it has none).
func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		if len(c.Issuer.Organization) > 0 {
			return c.Issuer.CommonName + " (" + c.Issuer.Organization[0] + ")"
		}
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}

// fail records a failed attempt and schedules the next one.
func (m *Manager) fail(s Slot, msg string) {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	st, _ := m.state.Lookup(s)
	st.Failures++
	st.LastError = msg
	st.LastErrorAt = now.UTC()
	st.NextAttempt = now.Add(m.backoff.Delay(st.Failures)).UTC()
	m.state.put(st)
}

// nextWait is how long Run sleeps: until the earliest scheduled retry, or
// until the earliest renewal could be overdue, between Backoff.Min and 1 h.
func (m *Manager) nextWait() time.Duration {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	wait := time.Hour
	for _, st := range m.state.Certificates {
		var at time.Time
		switch {
		case !st.NextAttempt.IsZero():
			at = st.NextAttempt
		case !st.NotAfter.IsZero():
			at = m.overdueAt(st.NotBefore, st.NotAfter)
		default:
			continue
		}
		wait = min(wait, at.Sub(now))
	}
	minWait := m.backoff.Min
	if minWait <= 0 {
		minWait = DefaultBackoff.Min
	}
	return max(wait, minWait)
}

// persist writes the state file.
func (m *Manager) persist() {
	m.mu.Lock()
	m.state.Updated = m.clock.Now().UTC()
	st := m.state.clone()
	m.mu.Unlock()
	if err := writeState(m.cfg.StatePath, st); err != nil {
		m.log.WithError(err).Warn("cannot write certificate state")
	}
}

// onPut runs when autocert stored a certificate (issuance or renewal).
func (m *Manager) onPut(s Slot, data []byte) {
	b, err := parseAutocertEntry(s, data)
	if err != nil {
		m.log.WithError(err).Warn("stored certificate unreadable")
		return
	}
	now := m.clock.Now()
	m.mu.Lock()
	st, _ := m.state.Lookup(s)
	old := st.Serial
	fillLeaf(&st, b.Leaf, m.renewAt(b.Leaf.NotBefore, b.Leaf.NotAfter))
	st.LastSuccess = now.UTC()
	st.LastError, st.LastErrorAt, st.NextAttempt, st.Failures = "", time.Time{}, time.Time{}, 0
	m.state.put(st)
	m.mu.Unlock()
	m.persist()
	m.log.WithFields(logrus.Fields{"name": s.Name, "key": s.Key, "serial": st.Serial,
		"previous": old, "not_after": st.NotAfter}).Info("certificate obtained")
	select {
	case m.events <- Event{Slot: s, Serial: st.Serial, NotAfter: st.NotAfter}:
	default:
		m.log.Warn("certificate event dropped: the consumer is behind")
	}
}

// cachedFresh reports whether the cache holds a valid certificate for the
// slot that is not yet due for renewal (then no ACME traffic is needed).
func (m *Manager) cachedFresh(ctx context.Context, s Slot, now time.Time) bool {
	data, err := m.inner.Get(ctx, s.CacheKey())
	if err != nil {
		return false
	}
	b, err := parseAutocertEntry(s, data)
	if err != nil || b.Leaf.VerifyHostname(s.Name) != nil || keyTypeOf(b.Leaf) != s.Key {
		return false
	}
	return now.After(b.Leaf.NotBefore) && now.Before(m.renewAt(b.Leaf.NotBefore, b.Leaf.NotAfter))
}

// importDeployed puts the deployed certificate back into an empty cache
// when the state file proves this Manager obtained it from the same
// directory, and it is valid and not due. Otherwise a lost cache would cost
// a new order on every start.
func (m *Manager) importDeployed(ctx context.Context, s Slot, now time.Time) {
	if m.cfg.Deployed == nil || m.prev == nil {
		return
	}
	if _, err := m.inner.Get(ctx, s.CacheKey()); !errors.Is(err, autocert.ErrCacheMiss) {
		return
	}
	rec, ok := m.prev.Lookup(s)
	if !ok || rec.Serial == "" {
		return
	}
	chain, key, err := m.cfg.Deployed(s)
	if err != nil {
		return
	}
	b, signer, ders, err := parseBundle(s, chain, key)
	if err != nil || b.Placeholder || b.Leaf.SerialNumber.Text(16) != rec.Serial ||
		b.Leaf.VerifyHostname(s.Name) != nil || keyTypeOf(b.Leaf) != s.Key ||
		!now.Before(m.renewAt(b.Leaf.NotBefore, b.Leaf.NotAfter)) {
		return
	}
	entry, err := autocertEntry(signer, ders)
	if err != nil {
		return
	}
	if err := m.inner.Put(ctx, s.CacheKey(), entry); err != nil {
		m.log.WithError(err).Warn("cannot re-import the deployed certificate into the ACME cache")
		return
	}
	m.log.WithField("name", s.Name).WithField("key", s.Key).Info("re-imported the deployed certificate into the ACME cache")
}
