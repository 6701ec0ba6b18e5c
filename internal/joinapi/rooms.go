package joinapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/prosody"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/token"
)

// Rooms reports and ends meetings. room is the room node (room_name).
type Rooms interface {
	// Status reports whether the room exists and how many participants
	// (occupants other than Jitsi's focus) are in it.
	Status(ctx context.Context, room string) (RoomStatus, error)
	// End destroys the room for everyone; false when it did not exist.
	End(ctx context.Context, room, reason string) (bool, error)
}

// RoomStatus is one room's state.
type RoomStatus struct {
	Running      bool
	Participants int
}

// ProsodyRooms asks the deployment's Prosody: the status from Jitsi's
// mod_muc_size over Prosody's loopback HTTP (GET /room, with a token the
// agent mints for that room, as enable_roomsize_token_verification
// requires), and the end through Prosody's admin shell (the MUC room is
// destroyed: every occupant gets the destroy presence and leaves).
type ProsodyRooms struct {
	// HTTPBase is Prosody's HTTP listener (http://127.0.0.1:5280).
	HTTPBase string
	// Domain is the VirtualHost with mod_muc_size; MUC the conference
	// component (conference.DOMAIN).
	Domain, MUC string
	Minter      Minter
	Shell       prosody.Shell
	Client      *http.Client

	// Concurrent status queries for one room share one request to
	// Prosody (whose HTTP handler runs one request at a time): a query
	// that arrives while another for the same room is on its way waits
	// for that answer instead of queueing behind it.
	mu       sync.Mutex
	inflight map[string]*statusFlight
}

// statusFlight is one status request to Prosody and the callers waiting
// for its answer.
type statusFlight struct {
	done    chan struct{}
	st      RoomStatus
	err     error
	waiters int // callers sharing it (tests wait for them)
}

// NewProsodyRooms is ProsodyRooms for a deployment. shell may be nil
// (Prosody not installed): End then reports it.
func NewProsodyRooms(d *spec.Deployment, m Minter, shell prosody.Shell) *ProsodyRooms {
	port := d.Prosody.HTTPPort
	if port == 0 {
		port = spec.DefaultProsodyHTTPPort
	}
	return &ProsodyRooms{
		HTTPBase: "http://127.0.0.1:" + strconv.Itoa(port),
		Domain:   d.Domain,
		MUC:      d.MUCDomain(),
		Minter:   m,
		Shell:    shell,
		Client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second, DisableCompression: true,
			Proxy: nil, // loopback: never through a proxy from the environment
		}},
	}
}

// statusTokenTTL is the lifetime of the token the status query carries.
const statusTokenTTL = time.Minute

// statusQueryTimeout bounds one shared status request to Prosody; each
// caller's own context still bounds its wait.
const statusQueryTimeout = 10 * time.Second

// Status implements Rooms. The answer may come from a request to Prosody
// that another caller started for the same room while this one arrived
// (at most one round trip older than this call); an End for the room
// makes later calls ask afresh.
func (p *ProsodyRooms) Status(ctx context.Context, room string) (RoomStatus, error) {
	p.mu.Lock()
	f, shared := p.inflight[room]
	if !shared {
		f = &statusFlight{done: make(chan struct{})}
		if p.inflight == nil {
			p.inflight = map[string]*statusFlight{}
		}
		p.inflight[room] = f
		// The request runs on its own deadline, not the first caller's
		// context: callers that joined it must not fail because the first
		// one went away.
		go func() {
			qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusQueryTimeout)
			defer cancel()
			f.st, f.err = p.status(qctx, room)
			p.mu.Lock()
			if p.inflight[room] == f {
				delete(p.inflight, room)
			}
			p.mu.Unlock()
			close(f.done)
		}()
	}
	f.waiters++
	p.mu.Unlock()
	select {
	case <-f.done:
		return f.st, f.err
	case <-ctx.Done():
		return RoomStatus{}, fmt.Errorf("room status: %w", ctx.Err())
	}
}

// forget makes the next Status for room ask Prosody afresh.
func (p *ProsodyRooms) forget(room string) {
	p.mu.Lock()
	delete(p.inflight, room)
	p.mu.Unlock()
}

// status asks Prosody's mod_muc_size about one room.
func (p *ProsodyRooms) status(ctx context.Context, room string) (RoomStatus, error) {
	tok, err := p.Minter.Mint(token.MintRequest{Room: room, Service: true, TTL: statusTokenTTL})
	if err != nil {
		return RoomStatus{}, fmt.Errorf("room status: %w", err)
	}
	q := url.Values{"room": {room}, "domain": {p.Domain}, "token": {tok}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.HTTPBase+"/room?"+q.Encode(), nil)
	if err != nil {
		return RoomStatus{}, fmt.Errorf("room status: %w", err)
	}
	req.Host = p.Domain // Prosody routes HTTP by host to the VirtualHost with mod_muc_size
	resp, err := p.Client.Do(req)
	if err != nil {
		return RoomStatus{}, fmt.Errorf("room status: Prosody's HTTP at %s: %w", p.HTTPBase, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return RoomStatus{}, fmt.Errorf("room status: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusForbidden:
		// mod_muc_size: 404 for a missing room; with token verification,
		// verify_room refuses a room that does not exist ("Room does not
		// exist"), so 403 means the same for the token minted here.
		return RoomStatus{}, nil
	default:
		return RoomStatus{}, fmt.Errorf("room status: Prosody answered %d for /room (is mod_muc_size loaded on %s?)", resp.StatusCode, p.Domain)
	}
	var occupants []struct {
		JID string `json:"jid"`
	}
	// lua-cjson encodes an empty array as {}.
	if t := strings.TrimSpace(string(body)); t == "{}" {
		return RoomStatus{Running: true}, nil
	}
	if err := json.Unmarshal(body, &occupants); err != nil {
		return RoomStatus{}, fmt.Errorf("room status: mod_muc_size's answer is not a list of occupants: %w", err)
	}
	seen := map[string]bool{}
	for _, o := range occupants {
		seen[o.JID] = true // one entry per session; count occupants
	}
	return RoomStatus{Running: true, Participants: len(seen)}, nil
}

// luaString quotes s as a Lua string literal.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// End implements Rooms.
func (p *ProsodyRooms) End(ctx context.Context, room, reason string) (bool, error) {
	if p.Shell == nil {
		return false, errors.New("end meeting: prosodyctl is not installed here")
	}
	if reason == "" {
		reason = "The meeting has been ended"
	}
	cmd := ">local r = hosts[" + luaString(p.MUC) + "] and hosts[" + luaString(p.MUC) + "].modules.muc and hosts[" + luaString(p.MUC) +
		"].modules.muc.get_room_from_jid(" + luaString(room+"@"+p.MUC) + "); if not r then return \"not-running\" end; r:set_persistent(false); r:destroy(nil, " +
		luaString(reason) + "); return \"ended\""
	out, err := p.Shell.Run(ctx, cmd)
	p.forget(room) // a status asked before the end must not answer later calls
	if err != nil {
		return false, fmt.Errorf("end meeting: %w", err)
	}
	switch {
	case strings.Contains(out, "Result: ended"):
		return true, nil
	case strings.Contains(out, "Result: not-running"):
		return false, nil
	}
	return false, fmt.Errorf("end meeting: unexpected answer from Prosody's admin shell: %.200q", out)
}
