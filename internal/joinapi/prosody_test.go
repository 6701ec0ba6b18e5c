package joinapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/prosody"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
	"github.com/jitsi-agent/jitsi-agent/internal/token"
)

// localProsody runs a real Prosody on loopback with Jitsi's mod_muc_size
// (token verification on, as the rendered config has it) and the admin
// shell, and returns ProsodyRooms pointed at it.
func localProsody(t testing.TB) *ProsodyRooms {
	t.Helper()
	bin := testenv.LookPath(t, "prosody", "apt-get install prosody lua-basexx lua-cjson lua-luaossl")
	ctl := testenv.LookPath(t, "prosodyctl", "apt-get install prosody")
	const rel = "jitsi-meet/resources/prosody-plugins"
	plugins := filepath.Join(testenv.Upstream(t, rel+"/mod_muc_size.lua"), rel)
	dir, err := os.MkdirTemp("", "jitsi-agent-rooms-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pp := testenv.FreePorts(t, testenv.TCP, 2)
	port := func() int { return pp[1] }
	httpPort := pp[0]
	cfg := fmt.Sprintf(`pidfile = %q
data_path = %q
run_as_root = true
daemonize = false
admin_socket = %q
plugin_paths = { %q }
muc_mapper_domain_base = "meet.test"
c2s_ports = { %d }
c2s_interfaces = { "127.0.0.1" }
http_ports = { %d }
http_interfaces = { "127.0.0.1" }
https_ports = { }
s2s_ports = { }
component_ports = { }
log = { info = %q }
modules_enabled = { "admin_shell" }
VirtualHost "meet.test"
    authentication = "anonymous"
    app_id = "my-app"
    app_secret = %q
    asap_accepted_audiences = { "my-app" }
    enable_roomsize_token_verification = true
    modules_enabled = { "http", "muc_size" }
Component "conference.meet.test" "muc"
`, filepath.Join(dir, "p.pid"), dir, filepath.Join(dir, "prosody.sock"), plugins, port(), httpPort, filepath.Join(dir, "prosody.log"), appSecret)
	cfgPath := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgPath, "-F")
	// Debian's lua-basexx is installed for Lua 5.1 only (jitsi-agent apply
	// links it for Prosody's 5.4; here the path is enough).
	cmd.Env = append(os.Environ(), "LUA_PATH=/usr/share/lua/5.1/?.lua;;")
	out, _ := os.Create(filepath.Join(dir, "stdout"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		out.Close()
	})
	for deadline := time.Now().Add(60 * time.Second); ; {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "prosody.log"))
			t.Fatalf("Prosody's HTTP never listened:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tk, err := token.New(token.Config{Domain: "meet.test", AppID: "my-app", Secret: spec.NewSecret(appSecret), Audiences: []string{"my-app"}, DomainVerification: true})
	if err != nil {
		t.Fatal(err)
	}
	d := &spec.Deployment{Domain: "meet.test", Prosody: spec.ProsodyListeners{HTTPPort: httpPort}}
	return NewProsodyRooms(d, tk, prosody.ProsodyCtl{Path: ctl, Config: cfgPath})
}

// TestProsodyRooms: status and end against a real Prosody running Jitsi's
// mod_muc_size: a room that does not exist, an empty room, end, end again.
// (Real occupants: internal/systemtest TestMeetingManagement.)
func TestProsodyRooms(t *testing.T) {
	pr := localProsody(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if st, err := pr.Status(ctx, "standup"); err != nil || st.Running {
		t.Fatalf("no room yet: %+v %v", st, err)
	}
	// Prosody listens before its hosts and components are all active:
	// the conference component may not take the room at once (bounded).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := pr.Shell.Run(ctx, "muc:create('standup@conference.meet.test')")
		if err == nil && strings.Contains(out, "MUC room") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create: %v %s", err, out)
		}
	}
	if st, err := pr.Status(ctx, "standup"); err != nil || !st.Running || st.Participants != 0 {
		t.Fatalf("empty room: %+v %v", st, err)
	}
	if ended, err := pr.End(ctx, "standup", `Over "now"`); err != nil || !ended {
		t.Fatalf("end: %v %v", ended, err)
	}
	if st, err := pr.Status(ctx, "standup"); err != nil || st.Running {
		t.Fatalf("after end: %+v %v", st, err)
	}
	if ended, err := pr.End(ctx, "standup", ""); err != nil || ended {
		t.Fatalf("second end: %v %v", ended, err)
	}
	// A stale app secret: Prosody refuses the status token, which cannot be
	// told from a missing room (documented); a dead Prosody is an error.
	pr.HTTPBase = "http://127.0.0.1:1"
	if _, err := pr.Status(ctx, "standup"); err == nil {
		t.Error("status against nothing succeeded")
	}
}

// BenchmarkRoomStatus measures Status against the local Prosody; p50 and
// p99 are reported as metrics.
func BenchmarkRoomStatus(b *testing.B) {
	pr := localProsody(b)
	ctx := context.Background()
	if _, err := pr.Shell.Run(ctx, "muc:create('bench@conference.meet.test')"); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		st, err := pr.Status(ctx, "bench")
		lat = append(lat, time.Since(start))
		if err != nil || !st.Running {
			b.Fatalf("%+v %v", st, err)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// countingTransport counts the requests that reach Prosody.
type countingTransport struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// BenchmarkRoomStatusEndpoint measures GET /api/v1/live/streams/{id}
// through the join API's HTTP server (loopback, keep-alive clients) against
// the local Prosody: one client asking again and again; 8 clients at a time
// asking about one room (concurrent calls share Prosody's answer); 8
// clients each asking about its own room (nothing to share). Reported: p50
// and p99 latency, requests/s and the requests that reached Prosody per
// call.
func BenchmarkRoomStatusEndpoint(b *testing.B) {
	pr := localProsody(b)
	ct := &countingTransport{rt: pr.Client.Transport}
	pr.Client = &http.Client{Timeout: pr.Client.Timeout, Transport: ct}
	const clients = 8
	for i := 0; i < clients; i++ {
		if _, err := pr.Shell.Run(context.Background(), fmt.Sprintf("muc:create('bench%d@conference.meet.test')", i)); err != nil {
			b.Fatal(err)
		}
	}
	e := startLog(b, func(c *Config) { c.RateRPS = -1; c.Rooms = pr; c.Unguessable = false }, nil, discard{})
	// ask runs one client's calls for room while more() and returns their
	// latencies.
	ask := func(b *testing.B, room string, more func() bool) []time.Duration {
		var lat []time.Duration
		for more() {
			req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/live/streams/"+room, nil)
			req.Header.Set("Authorization", "Bearer "+guestKey)
			start := time.Now()
			resp, err := e.client.Do(req)
			if err != nil {
				b.Error(err)
				return lat
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(start))
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"running":true`) {
				b.Errorf("%d %s", resp.StatusCode, body)
				return lat
			}
		}
		return lat
	}
	for _, mode := range []string{"one-client", "same-room", "own-room"} {
		b.Run(mode, func(b *testing.B) {
			var mu sync.Mutex
			var all []time.Duration
			var next atomic.Int32
			ct.n.Store(0)
			b.ResetTimer()
			begin := time.Now()
			if mode == "one-client" {
				i := 0
				all = ask(b, "bench0", func() bool { i++; return i <= b.N })
			} else {
				b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.RunParallel(func(pb *testing.PB) {
					room := "bench0"
					if mode == "own-room" {
						room = fmt.Sprintf("bench%d", next.Add(1)%clients)
					}
					lat := ask(b, room, pb.Next)
					mu.Lock()
					all = append(all, lat...)
					mu.Unlock()
				})
			}
			elapsed := time.Since(begin)
			b.StopTimer()
			if len(all) == 0 {
				return
			}
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(ct.n.Load())/float64(len(all)), "prosody-calls/op")
		})
	}
}
