package joinapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"mime"
	"net"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/room"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/token"
)

// Route patterns.
const (
	JoinPath   = "/api/v1/live/streams/{stream_id}/join"
	StatusPath = "/api/v1/live/streams/{stream_id}"
	EndPath    = "/api/v1/live/streams/{stream_id}/end"
)

// Minter signs tokens; *token.Tokens implements it.
type Minter interface {
	Mint(token.MintRequest) (string, error)
}

// Logger receives one access-log line per request; *logrus.Logger and
// *log.Logger implement it.
type Logger interface {
	Printf(format string, args ...any)
}

type apiKey struct {
	name       string
	digest     [32]byte
	grantHosts bool
	bucket     *bucket
}

// Server is the join endpoint.
type Server struct {
	cfg      Config
	minter   Minter
	log      Logger
	keys     []apiKey
	profiles map[string]spec.TokenProfile
	denied   *bucket // shared by requests that fail authentication
	// rejectLog limits access-log lines for rejected (4xx) requests;
	// suppressed counts the lines it dropped since the last one written.
	rejectLog  *bucket
	suppressed atomic.Int64
	handler    http.Handler
}

// New builds the server. log may be nil (no access log).
func New(cfg Config, m Minter, logger Logger) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("join api: no token minter")
	}
	s := &Server{cfg: cfg, minter: m, log: logger}
	for _, k := range cfg.Keys {
		s.keys = append(s.keys, apiKey{name: k.Name, digest: sha256.Sum256([]byte(k.Secret.Reveal())),
			grantHosts: k.GrantHosts, bucket: newBucket(cfg.RateRPS, cfg.Burst, cfg.Now())})
	}
	s.profiles = map[string]spec.TokenProfile{}
	for _, p := range cfg.Profiles {
		s.profiles[p.Name] = p
	}
	s.denied = newBucket(cfg.RateRPS, cfg.Burst, cfg.Now())
	mux := http.NewServeMux()
	mux.HandleFunc(JoinPath, s.join)
	mux.HandleFunc(StatusPath, s.status)
	mux.HandleFunc(EndPath, s.end)
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, apiErr(http.StatusNotFound, CodeNotFound, "no such endpoint; the endpoints are POST /api/v1/live/streams/{stream_id}/join, GET /api/v1/live/streams/{stream_id} and POST /api/v1/live/streams/{stream_id}/end"))
	})
	s.rejectLog = newBucket(rejectLogRate, rejectLogBurst, cfg.Now())
	s.handler = s.accessLog(cleanPaths(mux))
	return s, nil
}

// Access-log lines for rejected requests: at most rejectLogRate per second
// after a burst of rejectLogBurst; the next line written says how many were
// dropped. A 401/429 flood thus costs a few lines a second, not one per request.
const (
	rejectLogRate  = 2.0
	rejectLogBurst = 20
)

// cleanPaths answers 404 in JSON for paths that are not in canonical form
// ("streams//join", "/../", a trailing slash), which ServeMux would
// otherwise redirect with an empty 301/307.
func cleanPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "" || p[0] != '/' || path.Clean(p) != p {
			note(r, "")
			writeError(w, apiErr(http.StatusNotFound, CodeNotFound, "no such endpoint (the path is not in canonical form: no empty, '.' or '..' segments, no trailing slash); the join endpoint is POST /api/v1/live/streams/{stream_id}/join"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Handler is the endpoint's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Addr is the configured listen address.
func (s *Server) Addr() string { return s.cfg.Listen }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	note(r, "")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, apiErr(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "use GET"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// authenticate finds the key for the request's bearer token, comparing the
// SHA-256 digests of the presented and every configured key in constant time.
func (s *Server) authenticate(r *http.Request) *apiKey {
	h := r.Header.Get("Authorization")
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil
	}
	cred = strings.TrimSpace(cred)
	if cred == "" {
		return nil
	}
	d := sha256.Sum256([]byte(cred))
	var found *apiKey
	for i := range s.keys {
		if subtle.ConstantTimeCompare(d[:], s.keys[i].digest[:]) == 1 {
			found = &s.keys[i]
		}
	}
	return found
}

type ctxKey struct{}

// logInfo is what the access log learns from the handler.
type logInfo struct{ key, route string }

// note tells the access log the matched route and, once known, the key name.
func note(r *http.Request, key string) {
	if li, ok := r.Context().Value(ctxKey{}).(*logInfo); ok {
		li.route = r.Pattern
		if key != "" {
			li.key = key
		}
	}
}

// admit checks the method, the bearer key, its rate limit and the stream id,
// and answers the error itself when one fails.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, method string) (*apiKey, string, bool) {
	note(r, "")
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeError(w, apiErr(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "use %s", method))
		return nil, "", false
	}
	key := s.authenticate(r)
	now := s.cfg.Now()
	if key == nil {
		if ok, retry := s.denied.take(now); !ok {
			tooMany(w, retry)
			return nil, "", false
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="jitsi-agent"`)
		writeError(w, apiErr(http.StatusUnauthorized, CodeUnauthorized, "missing or unknown API key; send Authorization: Bearer <key>"))
		return nil, "", false
	}
	note(r, key.name)
	if ok, retry := key.bucket.take(now); !ok {
		tooMany(w, retry)
		return nil, "", false
	}
	if method == http.MethodPost {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
				writeError(w, apiErr(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "send Content-Type: application/json"))
				return nil, "", false
			}
		}
		if r.ContentLength > s.cfg.MaxBody {
			writeError(w, apiErr(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "the body is larger than %d bytes", s.cfg.MaxBody))
			return nil, "", false
		}
	}
	streamID := r.PathValue("stream_id")
	if e := checkStreamID(streamID); e != nil {
		writeError(w, e)
		return nil, "", false
	}
	return key, streamID, true
}

func (s *Server) join(w http.ResponseWriter, r *http.Request) {
	key, streamID, ok := s.admit(w, r, http.MethodPost)
	if !ok {
		return
	}
	req, e := DecodeJoinRequest(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody+1), s.cfg.MaxBody)
	if e != nil {
		writeError(w, e)
		return
	}
	prof := spec.TokenProfile{Moderator: spec.ProfileModeratorRequest}
	if req.Profile != "" {
		p, ok := s.profiles[req.Profile]
		if !ok {
			writeError(w, apiErr(http.StatusBadRequest, CodeUnknownProfile, "profile %q is not defined; the profiles are: %s", req.Profile, s.profileNames()))
			return
		}
		prof = p
	}
	moderator := req.IsHost
	switch prof.Moderator {
	case spec.ProfileModeratorNever:
		if req.IsHost {
			writeError(w, apiErr(http.StatusForbidden, CodeHostGrant, "profile %q has no hosts (moderator = \"never\"); send is_host: false", prof.Name))
			return
		}
	case spec.ProfileModeratorAlways:
		moderator = true
	}
	if moderator && !key.grantHosts {
		writeError(w, apiErr(http.StatusForbidden, CodeHostGrant, "API key %q may not grant hosts: set grant_hosts = true on the key, or send is_host: false (with a profile whose moderator rule is not \"always\")", key.name))
		return
	}
	ttl := s.cfg.TTL
	if prof.Lifetime > 0 {
		ttl = prof.Lifetime
	}
	roomName := room.Sanitize(streamID, s.cfg.Unguessable, s.cfg.RoomSecret)
	tok, err := s.minter.Mint(token.MintRequest{
		Room:     roomName,
		User:     token.User{ID: req.Identity, Name: req.Name, Email: req.Email, Moderator: moderator},
		TTL:      ttl,
		Features: prof.Features,
	})
	if err != nil {
		// Never the secret; and not the room name either (with unguessable
		// names it is the meeting's capability): a room error logs its reason only.
		if s.log != nil {
			msg := err.Error()
			if re := (*room.Error)(nil); errors.As(err, &re) {
				msg = "room name: " + re.Reason
			}
			s.log.Printf("join-api: key=%s: could not mint a token: %s", key.name, msg)
		}
		writeError(w, apiErr(http.StatusInternalServerError, CodeInternal, "could not mint a token"))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, JoinResponse{Token: tok, URL: s.cfg.ServerURL, RoomName: roomName,
		MeetingURL: s.cfg.ServerURL + "/" + roomName})
}

func (s *Server) profileNames() string {
	if len(s.profiles) == 0 {
		return "(none: leave profile out)"
	}
	names := make([]string, 0, len(s.profiles))
	for n := range s.profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// roomsTimeout bounds one status or end call to Prosody.
const roomsTimeout = 10 * time.Second

func (s *Server) roomsError(w http.ResponseWriter, key *apiKey, what string, err error) {
	if s.log != nil {
		s.log.Printf("join-api: key=%s: %s: %v", key.name, what, err)
	}
	writeError(w, apiErr(http.StatusServiceUnavailable, CodeUnavailable, "%s: the meeting service (Prosody) cannot be asked right now; retry later", what))
}

// status answers GET /api/v1/live/streams/{stream_id}: is the meeting
// running, and how many participants are in it.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	key, streamID, ok := s.admit(w, r, http.MethodGet)
	if !ok {
		return
	}
	roomName := room.Sanitize(streamID, s.cfg.Unguessable, s.cfg.RoomSecret)
	if s.cfg.Rooms == nil {
		s.roomsError(w, key, "room status", errors.New("no meeting service configured"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), roomsTimeout)
	defer cancel()
	st, err := s.cfg.Rooms.Status(ctx, roomName)
	if err != nil {
		s.roomsError(w, key, "room status", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, StatusResponse{RoomName: roomName, Running: st.Running, Participants: st.Participants})
}

// end answers POST /api/v1/live/streams/{stream_id}/end: the meeting ends
// for everyone. Only keys with grant_hosts may end meetings.
func (s *Server) end(w http.ResponseWriter, r *http.Request) {
	key, streamID, ok := s.admit(w, r, http.MethodPost)
	if !ok {
		return
	}
	req, e := DecodeEndRequest(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody+1), s.cfg.MaxBody)
	if e != nil {
		writeError(w, e)
		return
	}
	if !key.grantHosts {
		writeError(w, apiErr(http.StatusForbidden, CodeHostGrant, "API key %q may not end meetings: ending a meeting for everyone is a host's power; set grant_hosts = true on the key", key.name))
		return
	}
	roomName := room.Sanitize(streamID, s.cfg.Unguessable, s.cfg.RoomSecret)
	if s.cfg.Rooms == nil {
		s.roomsError(w, key, "end meeting", errors.New("no meeting service configured"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), roomsTimeout)
	defer cancel()
	ended, err := s.cfg.Rooms.End(ctx, roomName, req.Reason)
	if err != nil {
		s.roomsError(w, key, "end meeting", err)
		return
	}
	writeJSON(w, http.StatusOK, EndResponse{RoomName: roomName, Ended: ended})
}

func tooMany(w http.ResponseWriter, retry time.Duration) {
	secs := int(math.Ceil(retry.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, apiErr(http.StatusTooManyRequests, CodeRateLimited, "rate limit exceeded; retry after %d s", secs))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"could not encode the response"}}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, e *APIError) {
	writeJSON(w, e.Status, struct {
		Error *APIError `json:"error"`
	}{e})
}

// statusWriter records the status and size for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (sw *statusWriter) WriteHeader(code int) {
	if sw.status == 0 {
		sw.status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *statusWriter) Write(b []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	n, err := sw.ResponseWriter.Write(b)
	sw.bytes += n
	return n, err
}

var logInfoPool = sync.Pool{New: func() any { return new(logInfo) }}

// accessLog writes one line per request: remote, method, route (the pattern,
// never the stream id, room or query), status, size, duration and key name.
func (s *Server) accessLog(next http.Handler) http.Handler {
	if s.log == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		li := logInfoPool.Get().(*logInfo)
		li.key, li.route = "-", ""
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, li)))
		route := li.route
		if route == "" {
			route = "(unrouted)"
		}
		key := li.key
		logInfoPool.Put(li)
		if sw.status >= 400 && sw.status < 500 {
			if ok, _ := s.rejectLog.take(s.cfg.Now()); !ok {
				s.suppressed.Add(1)
				return
			}
		}
		var dropped string
		if n := s.suppressed.Swap(0); n > 0 {
			dropped = fmt.Sprintf(" (%d rejected requests not logged before this one)", n)
		}
		s.log.Printf("join-api: remote=%s key=%s method=%s route=%q status=%d bytes=%d dur=%s%s",
			r.RemoteAddr, key, sanitizeMethod(r.Method), route, sw.status, sw.bytes, time.Since(start).Round(time.Microsecond), dropped)
	})
}

func sanitizeMethod(m string) string {
	if len(m) > 16 {
		m = m[:16]
	}
	return strings.Map(func(r rune) rune {
		if r < 'A' || r > 'Z' {
			return '?'
		}
		return r
	}, m)
}

// Serve answers on ln until ctx is cancelled, then shuts down gracefully
// (in-flight requests get up to 10 s). TLS is used when configured.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	if s.cfg.TLSCert != "" {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
		case <-stopped:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	var err error
	if s.cfg.TLSCert != "" {
		err = srv.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return fmt.Errorf("join api: %w", err)
}

// ListenAndServe listens on the configured address and serves until ctx is
// cancelled.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("join api: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}
