package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/xmpptest"
)

// meetingsAPIKey is the box's JOIN_API_KEY.
const meetingsAPIKey = "5e0b9d3a7c1f4e8b2d6a0c9f3b7e1d5a"

const meetingsAPI = "127.0.0.1:9138"

// TestMeetingManagement runs the join endpoint in the real daemon on a box
// with Prosody and Jitsi's plugins: a token from join logs in over websocket
// through nginx and joins the room named by room_name; the status endpoint
// counts the real occupants (through Jitsi's mod_muc_size, focus excluded);
// end destroys the room for everyone (the occupants get the destroy presence
// with the reason) through Prosody's admin shell; a profile's lifetime and
// moderator rule reach the token. It also measures the status endpoint's
// latency against this Prosody (reported, not asserted).
func TestMeetingManagement(t *testing.T) {
	spec := DefaultSpec("meet.test") + fmt.Sprintf(`
token_api {
  listen = %q
  # The latency measurement below sends 200 status requests back to back:
  # faster than the default 50/s after the default burst of 100 on an idle
  # machine (429). The limiter has its own tests in internal/joinapi.
  burst  = 1000
  key "backend" {
    key         = env("JOIN_API_KEY")
    grant_hosts = true
  }
  profile "webinar" {
    lifetime  = "4h"
    moderator = "never"
  }
}
`, meetingsAPI)
	e := Boot(t, Options{Spec: spec, Env: map[string]string{"JOIN_API_KEY": meetingsAPIKey}})
	e.Apply()
	e.StartDaemon()
	hc := e.HTTPClient()
	call := func(method, path, body string) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, "http://"+meetingsAPI+path, rd)
		req.Header.Set("Authorization", "Bearer "+meetingsAPIKey)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	e.WaitFor(30*time.Second, "the join endpoint answers", func() bool {
		c, err := e.Dial(context.Background(), "tcp", meetingsAPI)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	status := func(stream string) (running bool, n int) {
		t.Helper()
		code, b := call("GET", "/api/v1/live/streams/"+stream, "")
		var st struct {
			Running      bool `json:"running"`
			Participants int  `json:"participants"`
		}
		if code != 200 || json.Unmarshal(b, &st) != nil {
			t.Fatalf("status %s: %d %s", stream, code, b)
		}
		return st.Running, st.Participants
	}
	join := func(body string) (tok, roomName string) {
		t.Helper()
		code, b := call("POST", "/api/v1/live/streams/Standup/join", body)
		var out struct {
			Token    string `json:"token"`
			URL      string `json:"url"`
			RoomName string `json:"room_name"`
		}
		if code != 200 || json.Unmarshal(b, &out) != nil || out.URL != "https://meet.test" {
			t.Fatalf("join: %d %s", code, b)
		}
		return out.Token, out.RoomName
	}

	ctx := ctxT(t, 3*time.Minute)
	hostTok, roomName := join(`{"identity":"host-1","name":"Host","is_host":true}`)
	guestTok, _ := join(`{"identity":"guest-1","name":"Guest"}`)
	if running, _ := status("Standup"); running {
		t.Fatal("status says running before anyone joined")
	}

	focus, err := e.Component(ctx, "focus")
	if err != nil {
		t.Fatalf("focus login: %v", err)
	}
	defer focus.Close()
	if err := focus.JoinMUC(ctx, e.MUC(roomName), "focus"); err != nil {
		t.Fatalf("focus creates %s: %v", roomName, err)
	}
	if running, n := status("Standup"); !running || n != 0 {
		t.Errorf("with only focus: running %v, %d participants; want true, 0", running, n)
	}
	var clients []*xmpptest.Client
	for i, tok := range []string{hostTok, guestTok} {
		c, err := e.Websocket(ctx, e.Domain, roomName, tok)
		if err != nil {
			t.Fatalf("websocket login with the join endpoint's token: %v", err)
		}
		defer c.Close()
		if err := c.JoinMUC(ctx, e.MUC(roomName), fmt.Sprintf("user%d", i)); err != nil {
			t.Fatalf("join %s with the token for room_name: %v", roomName, err)
		}
		clients = append(clients, c)
		if running, n := status("Standup"); !running || n != i+1 {
			t.Errorf("after %d joined: running %v, %d participants", i+1, running, n)
		}
	}
	// Room status latency against this Prosody (median and p99 of 200).
	var lat []time.Duration
	for i := 0; i < 200; i++ {
		start := time.Now()
		status("Standup")
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("room status over loopback HTTP into the box, real Prosody: median %s, p99 %s", lat[100].Round(10*time.Microsecond), lat[197].Round(10*time.Microsecond))

	// End the meeting for everyone.
	code, b := call("POST", "/api/v1/live/streams/Standup/end", `{"reason":"Class is over"}`)
	if code != 200 || !strings.Contains(string(b), `"ended":true`) {
		t.Fatalf("end: %d %s", code, b)
	}
	for i, c := range clients {
		n, err := c.Await(ctx, func(n xmpptest.Node) bool {
			if n.XMLName.Local != "presence" || n.Attr("type") != "unavailable" {
				return false
			}
			x, ok := n.Child("x")
			if !ok {
				return false
			}
			_, ok = x.Child("destroy")
			return ok
		})
		if err != nil {
			t.Fatalf("participant %d got no destroy presence: %v", i, err)
		}
		if !strings.Contains(n.String(), "Class is over") {
			t.Errorf("participant %d: the reason is not in %s", i, n.String())
		}
	}
	if running, _ := status("Standup"); running {
		t.Error("status says running after end")
	}
	code, b = call("POST", "/api/v1/live/streams/Standup/end", "")
	if code != 200 || !strings.Contains(string(b), `"ended":false`) {
		t.Errorf("second end: %d %s", code, b)
	}

	// A regex room claim (token mint --room-pattern) in the real Prosody:
	// the matching room admits it, another room refuses it.
	pat, rc := e.Agent("token", "mint", SpecPath, "--room-pattern", "^team%-%d+$")
	if rc != 0 {
		t.Fatalf("mint --room-pattern: %s", pat)
	}
	patTok := strings.TrimSpace(pat[strings.LastIndex(strings.TrimSpace(pat), "\n")+1:])
	for _, r := range []string{"team-42", "teamwork"} {
		if err := focus.JoinMUC(ctx, e.MUC(r), "focus"); err != nil {
			t.Fatalf("focus creates %s: %v", r, err)
		}
	}
	pc, err := e.Websocket(ctx, e.Domain, "team-42", patTok)
	if err != nil {
		t.Fatalf("login with a pattern token: %v", err)
	}
	defer pc.Close()
	if err := pc.JoinMUC(ctx, e.MUC("team-42"), "p1"); err != nil {
		t.Errorf("pattern token in team-42: %v", err)
	}
	// Prosody refuses with the reason token verify predicts.
	err = pc.JoinMUC(ctx, e.MUC("teamwork"), "p1")
	if err == nil || !strings.Contains(err.Error(), "Room name cannot be matched to the one from token.") {
		t.Errorf("pattern token in teamwork: %v", err)
	}
	if v, rc := e.Agent("token", "verify", SpecPath, patTok, "--room", "teamwork"); rc == 0 || !strings.Contains(v, "Room name cannot be matched to the one from token.") {
		t.Errorf("token verify does not predict Prosody's refusal: %d %s", rc, v)
	}

	// A profile's rules reach the token: "webinar" refuses hosts and lasts 4h.
	if code, b := call("POST", "/api/v1/live/streams/Standup/join", `{"identity":"p","is_host":true,"profile":"webinar"}`); code != 403 {
		t.Errorf("webinar host: %d %s", code, b)
	}
	code, b = call("POST", "/api/v1/live/streams/Standup/join", `{"identity":"p","profile":"webinar"}`)
	if code != 200 {
		t.Fatalf("webinar join: %d %s", code, b)
	}
	var out struct {
		Token string `json:"token"`
	}
	_ = json.Unmarshal(b, &out)
	if v, rc := e.Agent("token", "verify", SpecPath, out.Token, "--room", roomName); rc != 0 || !strings.Contains(v, "moderator=false") {
		t.Errorf("webinar token: %d %s", rc, v)
	}
}
