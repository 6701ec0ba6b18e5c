package systemtest

import (
	"path"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/xmpptest"
)

// day2Spec is DefaultSpec with guests and the occupant limit set.
func day2Spec(domain string, guests bool, maxParticipants int) string {
	s := DefaultSpec(domain)
	if guests {
		s = strings.Replace(s, `moderators = "token"`, "moderators = \"token\"\n  guests     = true", 1)
	}
	s = strings.Replace(s, "max_participants = 10", "max_participants = "+itoa(maxParticipants), 1)
	return s + `
template "backend-env" {
  source      = "templates/backend.env.tmpl"
  destination = "/srv/app/.env"
  mode        = "0640"
  notify      = ["app-backend.service"]
}
`
}

// The app team's backend: reads /srv/app/.env at start (a unit the
// template notifies), and the drop-in README documents so the hardened
// daemon may write there.
var backendFiles = map[string]string{
	"/etc/jitsi-agent/templates/backend.env.tmpl":        "JITSI_APP_ID={{ .AppID }}\nJITSI_APP_SECRET={{ .AppSecret }}\nJITSI_SERVER_URL={{ .ServerURL }}\n",
	"/etc/systemd/system/jitsi-agent.service.d/app.conf": "[Service]\nReadWritePaths=/srv/app\n",
	"/etc/systemd/system/app-backend.service":            "[Unit]\nDescription=the app's backend (test stand-in)\n[Service]\nExecStart=/bin/sleep infinity\n",
	"/srv/app/.keep": "",
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestDay2WithoutRestart: the daemon (the shipped hardened unit) takes
// day-2 changes to the running Prosody without restarting it (its PID never
// changes) and without dropping a session: guests on activates guest.DOMAIN;
// max_participants 10 -> 2 refuses the third occupant; rotating the app
// secret in the file the spec reads with file() makes new tokens work and
// old ones fail within 5 seconds. Sessions dropped per change are reported.
func TestDay2WithoutRestart(t *testing.T) {
	e := Boot(t, Options{Spec: day2Spec("meet.test", false, 10), Files: backendFiles})
	e.MustRun("systemctl", "daemon-reload")
	e.MustRun("systemctl", "start", "app-backend.service")
	e.Apply()
	e.StartDaemon()
	st := e.WaitApply(0, time.Minute)
	if st.Degraded {
		t.Fatalf("daemon degraded after start: %s", st.DegradedReason)
	}
	ctx := ctxT(t, 4*time.Minute)
	sess := NewSessions()
	t.Cleanup(func() {
		t.Logf("XMPP sessions dropped per change:\n%s", sess.Report())
		sess.Close()
	})

	focus, err := e.Component(ctx, "focus")
	if err != nil {
		t.Fatalf("focus: %v", err)
	}
	sess.Add("focus (c2s STARTTLS)", focus)
	jvb, err := e.Component(ctx, "jvb")
	if err != nil {
		t.Fatalf("jvb: %v", err)
	}
	if err := jvb.JoinMUC(ctx, "JvbBrewery@internal.auth."+e.Domain, "jvb-box"); err != nil {
		t.Fatalf("jvb brewery: %v", err)
	}
	sess.Add("jvb (c2s STARTTLS, brewery)", jvb)
	for _, r := range []string{"room1", "cap"} {
		if err := focus.JoinMUC(ctx, e.MUC(r), "focus"); err != nil {
			t.Fatalf("focus creates %s: %v", r, err)
		}
	}
	oldTok := e.Token("room1")
	bosh, err := e.BOSH(ctx, e.Domain, oldTok)
	if err != nil {
		t.Fatalf("BOSH: %v", err)
	}
	if err := bosh.JoinMUC(ctx, e.MUC("room1"), "alice"); err != nil {
		t.Fatalf("BOSH join: %v", err)
	}
	sess.Add("alice (BOSH, in room1)", bosh)
	ws, err := e.Websocket(ctx, e.Domain, "room1", oldTok)
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	if err := ws.JoinMUC(ctx, e.MUC("room1"), "bob"); err != nil {
		t.Fatalf("websocket join: %v", err)
	}
	sess.Add("bob (websocket, in room1)", ws)
	if dc := sess.Check("(baseline)"); dc.Dropped != 0 {
		t.Fatalf("sessions dead before any change: %v", dc.Names)
	}
	pid := e.MainPID("prosody.service")
	samePID := func(change string) {
		t.Helper()
		if p := e.MainPID("prosody.service"); p != pid {
			t.Errorf("%s restarted Prosody (PID %d -> %d)", change, pid, p)
			pid = p
		}
	}
	apply := func(change, hcl string) Status {
		t.Helper()
		written := time.Now()
		e.SetSpec(hcl)
		st = e.WaitApplyAfter(written, time.Minute)
		if st.Degraded || st.LastApply == nil || st.LastApply.Error != "" {
			t.Fatalf("%s: daemon apply failed: %+v", change, st)
		}
		return st
	}

	// 1. guests on: guest.DOMAIN is activated and serves anonymous logins.
	if _, err := e.BOSH(ctx, "guest."+e.Domain, ""); err == nil {
		t.Fatal("guest.DOMAIN served before guests were turned on")
	}
	apply("guests on", day2Spec(e.Domain, true, 10))
	guest, err := e.BOSH(ctx, "guest."+e.Domain, "")
	if err != nil {
		t.Fatalf("guests on: anonymous login on guest.%s: %v", e.Domain, err)
	}
	_ = guest.Close()
	if dc := sess.Check("guests on (host:activate)"); dc.Dropped != 0 {
		t.Errorf("guests on dropped %d session(s): %v", dc.Dropped, dc.Names)
	}
	samePID("guests on")

	// 2. max_participants 2: a third occupant is refused.
	apply("max_participants 2", day2Spec(e.Domain, true, 2))
	capTok := e.Token("cap")
	var occupants []*xmpptest.Client
	for i, nick := range []string{"c1", "c2", "c3"} {
		c, err := e.BOSH(ctx, e.Domain, capTok)
		if err != nil {
			t.Fatalf("login %s: %v", nick, err)
		}
		occupants = append(occupants, c)
		err = c.JoinMUC(ctx, e.MUC("cap"), nick)
		if i < 2 && err != nil {
			t.Fatalf("occupant %d refused under a limit of 2: %v", i+1, err)
		}
		if i == 2 {
			wantCondition(t, err, "service-unavailable")
		}
	}
	for _, c := range occupants {
		_ = c.Close()
	}
	if dc := sess.Check("max_participants 10 -> 2 (module:reload)"); dc.Dropped != 0 {
		t.Errorf("max_participants dropped %d session(s): %v", dc.Dropped, dc.Names)
	}
	samePID("max_participants")

	// 3. secret rotation through file(): the daemon watches the file.
	// The interval is the product's: from the write until a login with a
	// token signed by the new secret succeeds. That token is minted before
	// the write, from a copy of the spec that reads the new secret from a
	// scratch file, so minting (the agent binary in the box) is not in the
	// interval; each poll is one login, so the interval holds at most one
	// login and one poll step of the test's own time.
	backendPID := e.MainPID("app-backend.service")
	const newSecret = "4f9a1c7e2b8d3065a9e1f4c7b2d8a3e6f0c5b9d2"
	const scratch = "/etc/jitsi-agent-rotation"
	cur := string(e.ReadFile(SpecPath))
	if !strings.Contains(cur, AppSecretFile) || !strings.Contains(cur, `"templates/`) {
		t.Fatalf("the spec no longer reads %s or its templates as this test expects:\n%s", AppSecretFile, cur)
	}
	e.WriteFile(scratch+"/app_secret", []byte(newSecret+"\n"), 0o600)
	e.WriteFile(scratch+"/meet.hcl", []byte(strings.NewReplacer(AppSecretFile, scratch+"/app_secret",
		`"templates/`, `"`+path.Dir(SpecPath)+`/templates/`).Replace(cur)), 0o644)
	mintOut, code := e.Agent("token", "mint", scratch+"/meet.hcl", "--room", "room1")
	if code != 0 {
		t.Fatalf("token mint with the new secret exited %d: %s", code, mintOut)
	}
	lines := strings.Split(strings.TrimSpace(mintOut), "\n")
	newTok := strings.TrimSpace(lines[len(lines)-1])
	if !strings.Contains(newTok, ".") || newTok == oldTok {
		t.Fatalf("token minted with the new secret: %q", newTok)
	}
	if c, err := e.BOSH(ctx, e.Domain, newTok); err == nil {
		_ = c.Close()
		t.Fatal("Prosody accepted a token signed by the new secret before the rotation")
	}
	rotated := time.Now()
	e.WriteFile(AppSecretFile, []byte(newSecret+"\n"), 0o600)
	var took time.Duration
	for {
		c, err := e.BOSH(ctx, e.Domain, newTok)
		if err == nil {
			took = time.Since(rotated)
			_ = c.Close()
			break
		}
		if time.Since(rotated) > 20*time.Second {
			t.Fatalf("20 s after rotating the secret Prosody still refuses tokens signed by it: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The interval is reported, not asserted (README's table has the
	// measured range against its 5 s target): on a loaded machine it grows
	// with the load (2.1 s seen at load 10 on 2 cores, in a suite where
	// nothing else failed), and a timed assertion turns that into a failure.
	// The 20 s bound above is the failure: the running Prosody never took it.
	t.Logf("secret rotation: a token signed by the new secret accepted %s after the write", took.Round(10*time.Millisecond))
	if c, err := e.BOSH(ctx, e.Domain, oldTok); err == nil {
		_ = c.Close()
		t.Error("Prosody still accepts a token signed by the old secret after the rotation")
	}
	if tok := e.Token("room1"); tok == oldTok || tok == "" {
		t.Errorf("token mint with the rotated spec: %q", tok)
	}
	st = e.WaitApplyAfter(rotated, 30*time.Second)
	// One apply took the rotation to every dependent: Prosody's modules and
	// the backend's .env, whose unit was restarted.
	if la := st.LastApply; la == nil || !containsAll(la.Written, "/etc/prosody/conf.avail/meet.test.cfg.lua", "/srv/app/.env") ||
		!containsAll(la.Reloaded, "prosody.service", "app-backend.service") {
		t.Errorf("the rotation did not reach every dependent in one apply: %+v", st.LastApply)
	}
	if env := string(e.ReadFile("/srv/app/.env")); !strings.Contains(env, "JITSI_APP_SECRET="+newSecret) {
		t.Errorf("backend .env not rotated")
	}
	if p := e.MainPID("app-backend.service"); p == backendPID || p == 0 {
		t.Errorf("app-backend.service was not restarted with the new .env (PID %d -> %d)", backendPID, p)
	}
	if dc := sess.Check("app_secret rotated via file() (module:reload)"); dc.Dropped != 0 {
		t.Errorf("secret rotation dropped %d session(s): %v", dc.Dropped, dc.Names)
	}
	samePID("secret rotation")

	// 4. A change only a restart takes (Prosody binds ports at start),
	// under restart = "defer": recorded, shown by plan, the running server
	// untouched; `apply --restart-deferred` runs it and its sessions end.
	restartSpec := day2Spec(e.Domain, true, 2) + "\nservice \"prosody\" { restart = \"defer\" }\nprosody { s2s_port = 5269 }\n"
	apply("s2s on (deferred restart)", restartSpec)
	if dc := sess.Check("s2s_port set, restart deferred"); dc.Dropped != 0 {
		t.Errorf("a deferred restart dropped %d session(s): %v", dc.Dropped, dc.Names)
	}
	samePID("a deferred restart")
	planOut, code := e.Agent("plan", SpecPath)
	if code != 2 || !strings.Contains(planOut, "Deferred restart pending: prosody.service") {
		t.Errorf("plan after a deferred Prosody restart: exit %d\n%s", code, planOut)
	}
	if c, err := e.Dial(ctx, "tcp", "127.0.0.1:5269"); err == nil {
		_ = c.Close()
		t.Error("s2s listens before the deferred restart ran")
	}
	out, code := e.Agent("apply", SpecPath, "--restart-deferred")
	if code != 0 || !strings.Contains(out, "prosody.service") {
		t.Fatalf("apply --restart-deferred: exit %d\n%s", code, out)
	}
	if p := e.MainPID("prosody.service"); p == pid {
		t.Errorf("apply --restart-deferred did not restart Prosody:\n%s", out)
	}
	c, err := e.Dial(ctx, "tcp", "127.0.0.1:5269")
	if err != nil {
		t.Errorf("s2s does not listen after the restart: %v", err)
	} else {
		_ = c.Close()
	}
	dc := sess.Check("declared restart (apply --restart-deferred)")
	if dc.Dropped != dc.Open {
		t.Errorf("a Prosody restart dropped %d of %d sessions (all expected)", dc.Dropped, dc.Open)
	}
	user, err := e.BOSH(ctx, e.Domain, e.Token("room1"))
	if err != nil {
		t.Fatalf("login after the restart: %v", err)
	}
	sess.Add("carol (BOSH, after the restart)", user)

	// 5. guests off: guest.DOMAIN is deactivated; only its sessions end.
	guest, err = e.BOSH(ctx, "guest."+e.Domain, "")
	if err != nil {
		t.Fatalf("guest login: %v", err)
	}
	sess.Add("guest (BOSH on guest.DOMAIN)", guest)
	pid = e.MainPID("prosody.service")
	apply("guests off", strings.Replace(restartSpec, "  guests     = true\n", "", 1))
	dc = sess.Check("guests off (host:deactivate)")
	if dc.Dropped != 1 || len(dc.Names) != 1 || !strings.HasPrefix(dc.Names[0], "guest ") {
		t.Errorf("guests off should end exactly the guest's session: %v", dc.Names)
	}
	if _, err := e.BOSH(ctx, "guest."+e.Domain, ""); err == nil {
		t.Error("guest.DOMAIN still served after guests were turned off")
	}
	samePID("guests off")
}

func containsAll(list []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, l := range list {
			if strings.HasSuffix(l, w) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
