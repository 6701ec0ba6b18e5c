package systemtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/xmpptest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func wantCondition(t *testing.T, err error, cond string) {
	t.Helper()
	var se *xmpptest.StanzaError
	if !errors.As(err, &se) || se.Condition != cond {
		t.Fatalf("want the server to refuse with %s, got %v", cond, err)
	}
}

// TestFreshBootstrap: on a host right after `apt-get install prosody nginx
// coturn` (plus Jitsi's plugins and users), one `jitsi-agent apply` gives a
// working deployment: every VirtualHost and Component served, a token from
// `token mint` logs in over BOSH and websocket through nginx and joins its
// room, a token for another room is refused at the MUC, focus and jvb log in
// on auth.DOMAIN with STARTTLS (certificate verified against the agent's
// internal CA) and jvb joins the brewery, and TURN credentials handed out by
// Prosody (XEP-0215) allocate on the real coturn.
func TestFreshBootstrap(t *testing.T) {
	e := Boot(t, Options{})
	// Before apply, doctor names what is missing for Prosody.
	before := e.Doctor()
	if c := before["prosody.lua-deps"]; c.Status != "fail" || !strings.Contains(c.Fix, "/usr/local/share/lua/5.4/basexx.lua") {
		t.Errorf("doctor before apply, Lua modules: %+v", c)
	}
	out := e.Apply()
	if !strings.Contains(out, "restart prosody.service: ok") {
		t.Errorf("a fresh Prosody needs one restart (plugin_paths is read at start):\n%s", out)
	}
	hosts := e.ProsodyShell("host:list()")
	for _, h := range []string{e.Domain, "auth." + e.Domain, "conference." + e.Domain, "internal.auth." + e.Domain, "focus." + e.Domain} {
		if !strings.Contains(hosts, h+"\n") && !strings.Contains(hosts, h+" (") {
			t.Errorf("Prosody does not serve %s:\n%s", h, hosts)
		}
	}
	ctx := ctxT(t, 2*time.Minute)

	focus, err := e.Component(ctx, "focus")
	if err != nil {
		t.Fatalf("focus login on auth.%s with STARTTLS: %v", e.Domain, err)
	}
	defer focus.Close()
	jvb, err := e.Component(ctx, "jvb")
	if err != nil {
		t.Fatalf("jvb login: %v", err)
	}
	defer jvb.Close()
	if err := jvb.JoinMUC(ctx, "JvbBrewery@internal.auth."+e.Domain, "jvb-box"); err != nil {
		t.Fatalf("jvb joins the brewery: %v", err)
	}
	// jicofo creates the rooms (restrict_room_creation: only focus may).
	for _, r := range []string{"room1", "room2"} {
		if err := focus.JoinMUC(ctx, e.MUC(r), "focus"); err != nil {
			t.Fatalf("focus creates %s: %v", r, err)
		}
	}

	tok := e.Token("room1")
	bosh, err := e.BOSH(ctx, e.Domain, tok)
	if err != nil {
		t.Fatalf("BOSH login through nginx with a minted token: %v", err)
	}
	defer bosh.Close()
	if err := bosh.JoinMUC(ctx, e.MUC("room1"), "alice"); err != nil {
		t.Fatalf("BOSH user joins room1: %v", err)
	}
	ws, err := e.Websocket(ctx, e.Domain, "room1", tok)
	if err != nil {
		t.Fatalf("websocket login through nginx: %v", err)
	}
	defer ws.Close()
	if err := ws.JoinMUC(ctx, e.MUC("room1"), "bob"); err != nil {
		t.Fatalf("websocket user joins room1: %v", err)
	}
	wantCondition(t, ws.JoinMUC(ctx, e.MUC("room2"), "bob"), "not-allowed")

	if _, err := e.BOSH(ctx, e.Domain, tok[:len(tok)-4]+"AAAA"); err == nil {
		t.Error("a token with a forged signature logged in")
	}

	svcs, err := bosh.ExternalServices(ctx)
	if err != nil {
		t.Fatalf("XEP-0215: %v", err)
	}
	var turn *xmpptest.Service
	for i := range svcs {
		if svcs[i].Type == "turn" && svcs[i].Transport == "udp" {
			turn = &svcs[i]
		}
	}
	if turn == nil || turn.Username == "" || turn.Password == "" {
		t.Fatalf("no TURN credentials from Prosody: %+v", svcs)
	}
	// An allocation is "Received relay addr"; coturn then refuses the
	// channel bind to a private peer (denied-peer-ip), which is expected.
	alloc, err := e.Exec(ctx, "turnutils_uclient", "-v", "-u", turn.Username, "-w", turn.Password, "-n", "1", "-X", "-c",
		"-p", "3478", "-e", TURNAddr, TURNAddr)
	if !strings.Contains(alloc, "Received relay addr") {
		t.Fatalf("TURN allocation with Prosody's credentials on coturn failed (%v):\n%s", err, alloc)
	}
	bad, _ := e.Exec(ctx, "turnutils_uclient", "-v", "-u", turn.Username, "-w", "wrong-password", "-n", "1", "-X", "-c",
		"-p", "3478", "-e", TURNAddr, TURNAddr)
	if strings.Contains(bad, "Received relay addr") {
		t.Errorf("coturn allocated with a wrong password:\n%s", bad)
	}

	// jicofo and the videobridge verify auth.DOMAIN with the system trust
	// store: the internal CA is in it.
	ca := strings.TrimSpace(string(e.ReadFile(AuthCAFile)))
	if !strings.Contains(string(e.ReadFile("/etc/ssl/certs/ca-certificates.crt")), ca) {
		t.Error("the internal CA is not in the system trust store after apply")
	}
	after := e.Doctor()
	for _, id := range []string{"prosody.lua-deps", "prosody.plugins", "prosody.internal-certs", "prosody.trust", "prosody.live"} {
		if c := after[id]; c.Status != "pass" {
			t.Errorf("doctor after apply: %s: %s: %s (fix: %s)", id, c.Status, c.Seen, c.Fix)
		}
	}

	// A host deactivated behind the agent's back (the state a reload-only
	// agent left): doctor names it, apply puts it back without a restart.
	pid0 := e.MainPID("prosody.service")
	e.ProsodyShell(`host:deactivate("` + e.Domain + `")`)
	if c := e.Doctor()["prosody.live"]; c.Status != "fail" || !strings.Contains(c.Seen, e.Domain+" is not active") {
		t.Errorf("doctor with the domain deactivated: %+v", c)
	}
	if out := e.Apply(); !strings.Contains(out, "prosody: activate on "+e.Domain) {
		t.Errorf("apply did not re-activate %s:\n%s", e.Domain, out)
	}
	if c, err := e.BOSH(ctx, e.Domain, e.Token("room1")); err != nil {
		t.Errorf("BOSH after the repair: %v", err)
	} else {
		_ = c.Close()
	}
	if p := e.MainPID("prosody.service"); p != pid0 {
		t.Errorf("the repair restarted Prosody")
	}

	// Idempotent: a second apply changes nothing and leaves Prosody running.
	pid := e.MainPID("prosody.service")
	if out := e.Apply(); !strings.Contains(out, "no changes") {
		t.Errorf("second apply:\n%s", out)
	}
	if p := e.MainPID("prosody.service"); p != pid {
		t.Errorf("Prosody restarted on a no-op apply (%d -> %d)", pid, p)
	}
}
