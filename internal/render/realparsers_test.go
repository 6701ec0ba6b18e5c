package render

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
	"github.com/jitsi-agent/jitsi-agent/templates"
)

// Every rendered file of every matrix combination (plus a deployment full of
// hostile values) is handed to the program that reads it on a real host:
// luac + prosodyctl + a real Prosody, nginx -t, Typesafe Config (java),
// node, and turnserver. Slow tools run once over all combinations.

// realCombo is one rendered deployment written to disk.
type realCombo struct {
	name string
	d    *spec.Deployment
	set  *Set
	root string // the tree as it would sit under /
}

func (r realCombo) path(p string) string { return filepath.Join(r.root, filepath.FromSlash(p)) }

func (r realCombo) file(p string) (File, bool) { return r.set.Lookup(p) }

// hostile fills every string the templates quote with characters that break
// out of naive quoting in some target language.
func hostile(certDir string) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		recording(d)
		guests(d)
		d.Meeting.MaxParticipants = 7
		d.Auth.JWT.AppID = "app\"id'\n]]--[[${x}\\"
		d.Auth.JWT.AppSecret = spec.NewSecret("s3cr\"et'\\]]--[==[${HOME}\n\r\t<!--#echo var=\"x\" -->\u2028end")
		d.Auth.JWT.Issuers = []string{"iss\"]]", "${iss}"}
		d.Auth.JWT.Audiences = []string{"aud'\n", "\\"}
		d.Secrets.SetPassword("focus", spec.NewSecret("pa\"ss${USER}\\w\n#x"))
		d.Secrets.SetPassword("jvb", spec.NewSecret("${HOSTNAME}\"\\ //x"))
		d.Secrets.SetPassword("jibri", spec.NewSecret("jib\"ri${x}\\ #y"))
		d.Videobridge.Nickname = "nick ${x} \"y\""
		d.Meeting.Recording.RecorderDomain = "rec</script><!--#exec cmd=\"id\" -->\"'.example.com"
		d.Meeting.Recording.Whitelist = []string{"w\"]]\n"}
		d.TURN.Host = "turn\"host'</script>"
		d.TURN.Realm = "realm\"x y"
		d.TURN.Secret = spec.NewSecret("turn\"secret#x'${y}")
		dir := filepath.Join(certDir, "we\"ird dir;{}")
		d.TLS.Certificate = filepath.Join(dir, "cert.pem")
		d.TLS.Key = filepath.Join(dir, "key.pem")
	}
}

// writeCert writes a throwaway self-signed ECDSA pair.
func writeCert(t *testing.T, certPath, keyPath string) {
	t.Helper()
	testenv.WriteSelfSigned(t, certPath, keyPath, "meet.example.com", "auth.meet.example.com")
}

// writeTree writes a Set under root (files and symlinks).
func writeTree(t *testing.T, root string, set *Set) {
	t.Helper()
	for _, f := range set.Files {
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch f.Kind {
		case KindFile:
			if err := os.WriteFile(p, f.Content, 0o644); err != nil {
				t.Fatal(err)
			}
		case KindSymlink:
			if err := os.Symlink(f.Target, p); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// renderReal renders every combination with TLS paths pointing at a
// throwaway certificate, plus the hostile deployment, into one temp dir.
func renderReal(t *testing.T) []realCombo {
	t.Helper()
	base := t.TempDir()
	certDir := filepath.Join(base, "certs")
	cert, key := filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem")
	writeCert(t, cert, key)
	useCert := func(d *spec.Deployment) { d.TLS.Certificate, d.TLS.Key = cert, key }

	all := append([]combo(nil), matrix...)
	all = append(all, combo{"hostile", []func(*spec.Deployment){hostile(certDir)}})
	var out []realCombo
	for _, c := range all {
		mods := append([]func(*spec.Deployment){useCert}, c.mods...)
		d := newDeployment(mods...)
		if c.name == "hostile" {
			writeCert(t, d.TLS.Certificate, d.TLS.Key)
		}
		set, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: userSources})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		root := filepath.Join(base, c.name)
		writeTree(t, root, set)
		out = append(out, realCombo{name: c.name, d: d, set: set, root: root})
	}
	return out
}

func TestRealConsumers(t *testing.T) {
	combos := renderReal(t)
	t.Run("luac", func(t *testing.T) { checkLuac(t, combos) })
	t.Run("prosody-values", func(t *testing.T) { checkProsodyValues(t, combos) })
	t.Run("prosodyctl", func(t *testing.T) { checkProsodyctl(t, combos) })
	t.Run("prosody-start", func(t *testing.T) { checkProsodyStart(t, combos) })
	t.Run("nginx", func(t *testing.T) { checkNginx(t, combos) })
	t.Run("hocon", func(t *testing.T) { checkHOCON(t, combos) })
	t.Run("node", func(t *testing.T) { checkConfigJS(t, combos) })
	t.Run("turnserver", func(t *testing.T) { checkTurnserver(t, combos) })
	t.Run("sip-communicator", func(t *testing.T) { checkLegacyProperties(t, combos) })
}

func prosodyPath(r realCombo) string { return "/etc/prosody/conf.avail/" + r.d.Domain + ".cfg.lua" }

func run(t *testing.T, timeout time.Duration, name string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	return cmd.CombinedOutput()
}

func checkLuac(t *testing.T, combos []realCombo) {
	luac := testenv.LookPath(t, "luac5.4", "apt-get install lua5.4")
	var files []string
	for _, r := range combos {
		if _, ok := r.file(prosodyPath(r)); ok {
			files = append(files, r.path(prosodyPath(r)))
		}
	}
	if len(files) == 0 {
		t.Fatal("no prosody files rendered")
	}
	// One file per run: luac 5.4.4 double-frees with several files and -p.
	for _, f := range files {
		if out, err := run(t, time.Minute, luac, "-p", f); err != nil {
			t.Errorf("luac -p %s: %v\n%s", f, err, out)
		}
	}
}

// jitsiModules are Prosody modules shipped by jitsi-meet-prosody (not
// installed in the test environment). Any other module must load.
var jitsiModules = map[string]bool{
	"token_verification": true, "token_affiliation": true, "muc_max_occupants": true,
	"muc_password_whitelist": true, "muc_meeting_id": true, "muc_rate_limit": true,
	"muc_domain_mapper": true, "muc_hide_all": true, "room_metadata_component": true,
	"limits_exception": true, "auth_token": true, "auth_jitsi-anonymous": true,
	"muc_lobby_rooms": true, "muc_breakout_rooms": true, "filter_iq_jibri": true,
	"conference_duration": true, "features_identity": true, "speakerstats_component": true,
	"end_conference": true, "av_moderation_component": true, "polls_component": true,
	"client_proxy": true, "muc_wait_for_host": true, "persistent_lobby": true,
}

// stockModules are shipped with Prosody 0.12+ itself.
var stockModules = map[string]bool{
	"bosh": true, "websocket": true, "smacks": true, "ping": true, "external_services": true,
	"muc": true,
}

type luaSections map[string]map[string]any

func checkProsodyValues(t *testing.T, combos []realCombo) {
	lua := testenv.LookPath(t, "lua5.4", "apt-get install lua5.4 lua-cjson")
	var files []string
	byFile := map[string]realCombo{}
	for _, r := range combos {
		if _, ok := r.file(prosodyPath(r)); ok {
			p := r.path(prosodyPath(r))
			files = append(files, p)
			byFile[p] = r
		}
	}
	out, err := run(t, time.Minute, lua, append([]string{"testdata/prosody_dump.lua"}, files...)...)
	if err != nil {
		t.Fatalf("prosody_dump.lua: %v\n%s", err, out)
	}
	var dump map[string]luaSections
	if err := json.Unmarshal(out, &dump); err != nil {
		t.Fatalf("decoding dump: %v", err)
	}
	for file, secs := range dump {
		r := byFile[file]
		t.Run(r.name, func(t *testing.T) { assertProsody(t, r, secs) })
	}
}

func strs(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}

func assertProsody(t *testing.T, r realCombo, secs luaSections) {
	d := r.d
	b, err := newBuiltinData(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	eq := func(sec, key string, want any) {
		t.Helper()
		s, ok := secs[sec]
		if !ok {
			t.Errorf("section %q missing", sec)
			return
		}
		got := s[key]
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %s = %#v, want %#v", sec, key, got, want)
		}
	}
	has := func(sec string, want bool) {
		t.Helper()
		if _, ok := secs[sec]; ok != want {
			t.Errorf("section %q present=%v, want %v", sec, ok, want)
		}
	}
	modules := func(sec string) []string { return strs(secs[sec]["modules_enabled"]) }
	mod := func(sec, m string, want bool) {
		t.Helper()
		if slices.Contains(modules(sec), m) != want {
			t.Errorf("%s: module %q loaded=%v, want %v", sec, m, !want, want)
		}
	}

	eq("*", "muc_mapper_domain_base", d.Domain)
	eq("*", "component_admins_as_room_owners", true)
	eq("*", "unlimited_jids", []any{d.FocusJID(), d.JVBJID()})
	if d.TURN.Enabled {
		eq("*", "external_service_secret", b.TURNSecret)
		svcs, _ := secs["*"]["external_services"].([]any)
		if len(svcs) != 3 {
			t.Errorf("external_services: %v", svcs)
		}
		for _, s := range svcs {
			m, _ := s.(map[string]any)
			if m["host"] != d.TURN.Host {
				t.Errorf("external service host %v, want %q", m["host"], d.TURN.Host)
			}
		}
	} else if _, ok := secs["*"]["external_service_secret"]; ok {
		t.Error("external_service_secret set with TURN off")
	}

	switch d.Auth.Mode {
	case spec.AuthJWT:
		j := d.Auth.JWT
		eq(d.Domain, "authentication", "token")
		eq(d.Domain, "app_id", j.AppID)
		eq(d.Domain, "app_secret", j.AppSecret.Reveal())
		eq(d.Domain, "signature_algorithm", j.Algorithm)
		eq(d.Domain, "asap_accepted_issuers", toAny(j.Issuers))
		eq(d.Domain, "asap_accepted_audiences", toAny(j.Audiences))
		eq(d.Domain, "enable_domain_verification", j.DomainVerification)
		eq(d.Domain, "allow_empty_token", j.AllowEmpty)
	case spec.AuthAnonymous:
		eq(d.Domain, "authentication", "jitsi-anonymous")
	case spec.AuthInternal:
		eq(d.Domain, "authentication", "internal_hashed")
	}
	mod(d.Domain, "features_identity", true)
	mod(d.Domain, "external_services", d.TURN.Enabled)
	mod(d.Domain, "muc_lobby_rooms", b.Lobby)
	// Guests (and wait-for-host) wait for a host in the lobby.
	gate := d.Auth.Moderators == spec.ModeratorsWaitForHost || (d.Auth.Guests && d.Auth.Mode != spec.AuthAnonymous)
	mod(d.Domain, "persistent_lobby", gate)
	mod(d.Domain, "muc_lobby_rooms", d.Meeting.Lobby || gate)
	mod(d.Domain, "muc_breakout_rooms", d.Meeting.BreakoutRooms)
	for _, removed := range []string{"speakerstats", "av_moderation", "end_conference", "room_metadata"} {
		mod(d.Domain, removed, false)
	}
	eq(d.Domain, "main_muc", d.MUCDomain())

	has(d.GuestDomain(), d.Auth.Guests)
	if d.Auth.Guests {
		eq(d.GuestDomain(), "authentication", "jitsi-anonymous")
	}
	rec := d.Meeting.Recording
	has(rec.RecorderDomain, rec.Enabled)
	if rec.Enabled {
		eq(rec.RecorderDomain, "authentication", "internal_hashed")
		if b.Lobby {
			eq(d.Domain, "muc_lobby_whitelist", toAny(b.LobbyWhitelist))
		}
	}

	muc := d.MUCDomain()
	eq(muc, "component_module", "muc")
	eq(muc, "restrict_room_creation", true)
	mod(muc, "token_verification", d.Auth.Mode == spec.AuthJWT)
	mod(muc, "token_affiliation", d.Auth.Mode == spec.AuthJWT && d.Auth.Moderators == spec.ModeratorsToken)
	mod(muc, "muc_wait_for_host", gate)
	if gate {
		// Only wait-for-host makes hosts owners; otherwise the token claim
		// (or jicofo) decides, so not every token holder moderates.
		eq(muc, "wait_for_host_disable_auto_owners", d.Auth.Moderators != spec.ModeratorsWaitForHost)
	}
	mod(muc, "muc_max_occupants", d.Meeting.MaxParticipants > 0)
	mod(muc, "polls", false)
	eq(muc, "admins", []any{d.FocusJID()})
	if d.Meeting.MaxParticipants > 0 {
		eq(muc, "muc_max_occupants", float64(d.Meeting.MaxParticipants))
		wl := strs(secs[muc]["muc_access_whitelist"])
		if !slices.Contains(wl, d.FocusJID()) || (rec.Enabled && !slices.Contains(wl, rec.RecorderDomain)) {
			t.Errorf("muc_access_whitelist %q lacks focus/recorder", wl)
		}
	}
	if d.Auth.Mode == spec.AuthJWT {
		al := strs(secs[muc]["token_verification_allowlist"])
		if rec.Enabled && !slices.Contains(al, rec.RecorderDomain) {
			t.Errorf("token_verification_allowlist %q lacks the recorder domain", al)
		}
		if d.Auth.Guests && !slices.Contains(al, d.GuestDomain()) {
			t.Errorf("token_verification_allowlist %q lacks the guest domain", al)
		}
	}

	eq(d.InternalMUCDomain(), "component_module", "muc")
	eq(d.InternalMUCDomain(), "admins", []any{d.FocusJID(), d.JVBJID()})
	eq(d.AuthDomain(), "authentication", "internal_hashed")
	eq("focus."+d.Domain, "component_module", "client_proxy")
	eq("focus."+d.Domain, "target_address", d.FocusJID())
	eq("speakerstats."+d.Domain, "component_module", "speakerstats_component")
	eq("endconference."+d.Domain, "component_module", "end_conference")
	eq("metadata."+d.Domain, "component_module", "room_metadata_component")
	has("avmoderation."+d.Domain, d.Meeting.ForceMute)
	has("lobby."+d.Domain, b.Lobby)
	has("breakout."+d.Domain, d.Meeting.BreakoutRooms)
	has("polls."+d.Domain, d.Meeting.Polls)
	if d.Meeting.Polls {
		eq("polls."+d.Domain, "component_module", "polls_component")
	}
	has("conferenceduration."+d.Domain, false)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// freePort returns a free loopback TCP port (testenv.FreePort).
func freePort(t *testing.T) int {
	t.Helper()
	return testenv.FreePort(t, testenv.TCP)
}

// prosodyMain writes a minimal main config including the rendered conf.d.
func prosodyMain(t *testing.T, r realCombo, dir string, c2s, http int) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "prosody.cfg.lua")
	cfg := strings.Join([]string{
		`modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "posix"; "ping"; }`,
		fmt.Sprintf("pidfile = %s", luaString(filepath.Join(dir, "prosody.pid"))),
		fmt.Sprintf("data_path = %s", luaString(filepath.Join(dir, "data"))),
		"run_as_root = true",
		fmt.Sprintf("c2s_ports = { %d }", c2s),
		`c2s_interfaces = { "127.0.0.1" }`,
		fmt.Sprintf("http_ports = { %d }", http),
		`http_interfaces = { "127.0.0.1" }`,
		"https_ports = { }",
		"s2s_ports = { }",
		"c2s_direct_tls_ports = { }",
		"s2s_direct_tls_ports = { }",
		"component_ports = { }",
		fmt.Sprintf(`log = { { levels = { min = "info" }, to = "file", filename = %s } }`, luaString(filepath.Join(dir, "prosody.log"))),
		fmt.Sprintf("Include %s", luaString(filepath.Join(r.root, "etc/prosody/conf.d/*.cfg.lua"))),
		"",
	}, "\n")
	if err := os.WriteFile(main, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return main
}

func checkProsodyctl(t *testing.T, combos []realCombo) {
	prosodyctl := testenv.LookPath(t, "prosodyctl", "apt-get install prosody")
	for _, r := range combos {
		if _, ok := r.file(prosodyPath(r)); !ok {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			dir := t.TempDir()
			main := prosodyMain(t, r, dir, 1, 2) // ports unused by check
			out, err := run(t, time.Minute, prosodyctl, "--config", main, "check", "config")
			if err != nil || !bytes.Contains(out, []byte("All checks passed")) {
				t.Fatalf("prosodyctl check config: %v\n%s", err, redactOut(out, r.set))
			}
			if !bytes.Contains(out, []byte(r.d.Domain+".cfg.lua")) {
				t.Errorf("prosodyctl did not load the rendered file through the conf.d link:\n%s", out)
			}
		})
	}
}

// redactOut keeps fixture secrets out of test logs, as the real code must.
func redactOut(out []byte, set *Set) string {
	s := string(out)
	for _, v := range set.Redact {
		s = strings.ReplaceAll(s, v, "(redacted)")
	}
	return s
}

func checkProsodyStart(t *testing.T, combos []realCombo) {
	prosody := testenv.LookPath(t, "prosody", "apt-get install prosody")
	var r realCombo
	for _, c := range combos {
		if c.name == "everything" {
			r = c
		}
	}
	dir := t.TempDir()
	// Point the XMPP certificates at throwaway ones in a copy of the tree.
	certs := filepath.Join(dir, "certs")
	src := r.path(prosodyPath(r))
	content, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{r.d.Domain, r.d.AuthDomain(), r.d.GuestDomain(), r.d.Meeting.Recording.RecorderDomain} {
		writeCert(t, filepath.Join(certs, h+".crt"), filepath.Join(certs, h+".key"))
	}
	content = bytes.ReplaceAll(content, []byte(`"/etc/prosody/certs/`), []byte(`"`+certs+"/"))
	// The rendered listeners (the port model) win over the main config:
	// move them to free ports for this test.
	pp := testenv.FreePorts(t, testenv.TCP, 2)
	c2s, httpPort := pp[0], pp[1]
	for _, l := range []struct {
		from string
		port int
	}{{"c2s_ports = { 5222 }", c2s}, {"http_ports = { 5280 }", httpPort}} {
		if !bytes.Contains(content, []byte(l.from)) {
			t.Fatalf("rendered Prosody config lacks %q", l.from)
		}
		content = bytes.ReplaceAll(content, []byte(l.from), []byte(strings.Replace(l.from, strings.Fields(l.from)[3], strconv.Itoa(l.port), 1)))
	}
	copyRoot := filepath.Join(dir, "tree")
	cp := r
	cp.root = copyRoot
	writeTree(t, copyRoot, r.set)
	if err := os.WriteFile(cp.path(prosodyPath(r)), content, 0o644); err != nil {
		t.Fatal(err)
	}
	main := prosodyMain(t, cp, dir, c2s, httpPort)
	cmd := exec.Command(prosody, "-F", "--config", main)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c2s))
	var conn net.Conn
	for i := 0; i < 100; i++ {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("prosody exited: %v\n%s\n%s", err, stdout.String(), readLog(dir))
		default:
		}
		if conn, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("prosody never listened on %s: %v\n%s", addr, err, readLog(dir))
	}
	// Prosody opens the c2s port before every host is activated (each
	// host loads its modules first; under load that takes seconds), so a
	// host may answer host-unknown or nothing at first: poll (bounded)
	// until it offers stream features.
	hosts := []string{r.d.Domain, r.d.AuthDomain(), r.d.GuestDomain(), r.d.Meeting.Recording.RecorderDomain}
	for _, h := range hosts {
		var resp string
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			resp = xmppOpen(t, addr, h)
			if strings.Contains(resp, "stream:features") || time.Now().After(deadline) {
				break
			}
		}
		if !strings.Contains(resp, "stream:features") {
			t.Errorf("vhost %s: no stream features from real Prosody within 30 s: %q", h, resp)
		}
	}
	if resp := xmppOpen(t, addr, "nope.example.org"); !strings.Contains(resp, "host-unknown") {
		t.Errorf("unknown host not rejected: %q", resp)
	}
	// The log: stock modules all loaded, no errors besides missing Jitsi
	// plugins, no warnings about our options.
	missing := regexp.MustCompile(`Unable to load module '([^']+)'`)
	for _, line := range strings.Split(readLog(dir), "\n") {
		if !strings.Contains(line, "\terror\t") && !strings.Contains(line, "\twarn\t") {
			continue
		}
		if m := missing.FindStringSubmatch(line); m != nil && jitsiModules[m[1]] {
			continue
		}
		if m := missing.FindStringSubmatch(line); m != nil && stockModules[m[1]] {
			t.Errorf("stock Prosody module failed to load: %s", line)
			continue
		}
		if strings.Contains(line, "Error indexing certificate directory") {
			continue
		}
		// Follows from the missing Jitsi auth providers.
		if strings.Contains(line, "No available SASL mechanisms") &&
			(strings.Contains(line, "module 'token'") || strings.Contains(line, "module 'jitsi-anonymous'")) {
			continue
		}
		t.Errorf("prosody: %s", line)
	}
}

func readLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "prosody.log"))
	return string(b)
}

// xmppOpen opens a client stream to host and returns the server's first
// reply (features or a stream error).
func xmppOpen(t *testing.T, addr, host string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var hb bytes.Buffer
	_ = xmlEscape(&hb, host)
	fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", hb.String())
	var resp bytes.Buffer
	buf := make([]byte, 4096)
	for resp.Len() < 1<<16 {
		n, err := conn.Read(buf)
		resp.Write(buf[:n])
		s := resp.String()
		if strings.Contains(s, "</stream:features>") || strings.Contains(s, "</stream:error>") || err != nil {
			break
		}
	}
	return resp.String()
}

func xmlEscape(w io.Writer, s string) error {
	r := strings.NewReplacer("&", "&amp;", "'", "&apos;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	_, err := io.WriteString(w, r.Replace(s))
	return err
}

func checkNginx(t *testing.T, combos []realCombo) {
	nginx := testenv.LookPath(t, "nginx", "apt-get install nginx-light")
	for _, r := range combos {
		site := "/etc/nginx/sites-enabled/" + r.d.Domain + ".conf"
		if _, ok := r.file(site); !ok {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			dir := t.TempDir()
			// Keep nginx -t away from /var/log: a copy of the site logs here.
			content, err := os.ReadFile(r.path(site))
			if err != nil {
				t.Fatal(err)
			}
			content = bytes.ReplaceAll(content, []byte("/var/log/nginx/"), []byte(dir+"/"))
			siteCopy := filepath.Join(dir, "site.conf")
			if err := os.WriteFile(siteCopy, content, 0o644); err != nil {
				t.Fatal(err)
			}
			var conf bytes.Buffer
			fmt.Fprintf(&conf, "pid %s;\nerror_log %s;\nevents {}\nhttp {\n%s    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n    include %s;\n}\n",
				nginxQ(t, filepath.Join(dir, "nginx.pid")), nginxQ(t, filepath.Join(dir, "error.log")), testenv.NginxTempPaths(dir), nginxQ(t, siteCopy))
			confPath := filepath.Join(dir, "nginx.conf")
			if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := run(t, time.Minute, nginx, "-t", "-c", confPath, "-p", dir+"/")
			if err != nil || !bytes.Contains(out, []byte("test is successful")) {
				t.Fatalf("nginx -t: %v\n%s\n--- site ---\n%s", err, out, content)
			}
			if bytes.Contains(out, []byte("[warn]")) || bytes.Contains(out, []byte("[emerg]")) {
				t.Errorf("nginx -t warns:\n%s", out)
			}
		})
	}
}

func nginxQ(t *testing.T, s string) string {
	q, err := nginxString(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// checkJibri checks the parsed jibri.conf: Jibri logs in to this
// deployment's Prosody and joins the brewery the parsed jicofo.conf (when
// this host renders it) watches.
func checkJibri(t *testing.T, d *spec.Deployment, b *BuiltinData, tree, jicofo map[string]any) {
	t.Helper()
	envs, ok := hoconGet(tree, "jibri.api.xmpp.environments")
	list, _ := envs.([]any)
	if !ok || len(list) != 1 {
		t.Fatalf("jibri.api.xmpp.environments = %v, want one environment", envs)
	}
	env, _ := list[0].(map[string]any)
	eq := func(path string, want any) {
		t.Helper()
		got, ok := hoconGet(env, path)
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if !ok || !bytes.Equal(gj, wj) {
			t.Errorf("environment %s = %s, want %s", path, gj, wj)
		}
	}
	rec := d.Meeting.Recording
	eq("xmpp-server-hosts", []string{b.XMPPServer})
	eq("xmpp-domain", d.Domain)
	eq("control-login.domain", d.AuthDomain())
	eq("control-login.username", "jibri")
	eq("control-login.password", d.Secrets.Password("jibri").Reveal())
	eq("control-muc.domain", d.InternalMUCDomain())
	eq("control-muc.room-name", rec.Brewery)
	eq("call-login.domain", rec.RecorderDomain)
	eq("call-login.username", "recorder")
	eq("call-login.password", d.Secrets.Password("recorder").Reveal())
	eq("strip-from-room-domain", "conference.")
	room, _ := hoconGet(env, "control-muc.room-name")
	dom, _ := hoconGet(env, "control-muc.domain")
	brewery := fmt.Sprint(room) + "@" + fmt.Sprint(dom)
	if brewery != rec.BreweryJID(d) {
		t.Errorf("Jibri joins %s, the spec's brewery is %s", brewery, rec.BreweryJID(d))
	}
	if jicofo != nil {
		if got, _ := hoconGet(jicofo, "jicofo.jibri.brewery-jid"); !strings.EqualFold(fmt.Sprint(got), brewery) {
			t.Errorf("Jibri joins %s, Jicofo watches %v", brewery, got)
		}
		trusted, _ := hoconGet(jicofo, "jicofo.xmpp.trusted-domains")
		if tl, _ := trusted.([]any); !slices.Contains(tl, any(rec.RecorderDomain)) {
			t.Errorf("Jicofo's trusted-domains %v lack Jibri's call-login domain %s", trusted, rec.RecorderDomain)
		}
	}
	if _, ok := hoconGet(tree, "jibri.streaming"); ok != rec.Livestreaming {
		t.Errorf("streaming section present %v, livestreaming %v", ok, rec.Livestreaming)
	}
}

// hoconTree walks a decoded HOCON document by dotted path.
func hoconGet(tree map[string]any, path string) (any, bool) {
	var cur any = tree
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func checkHOCON(t *testing.T, combos []realCombo) {
	java := testenv.LookPath(t, "java", "apt-get install default-jre-headless")
	jar := testenv.File(t, "/usr/share/java/typesafe-config.jar", "apt-get install libtypesafe-config-java")
	type fileRef struct {
		r    realCombo
		kind string
	}
	refs := map[string]fileRef{}
	var files []string
	for _, r := range combos {
		for kind, p := range map[string]string{"jicofo": "/etc/jitsi/jicofo/jicofo.conf", "jvb": "/etc/jitsi/videobridge/jvb.conf", "jibri": "/etc/jitsi/jibri/jibri.conf"} {
			if _, ok := r.file(p); ok {
				files = append(files, r.path(p))
				refs[r.path(p)] = fileRef{r, kind}
			}
		}
		_, hasJibri := r.file("/etc/jitsi/jibri/jibri.conf")
		if want := r.d.Meeting.Recording.Enabled && r.d.Host.HasRole(spec.Jibri); hasJibri != want {
			t.Errorf("%s: jibri.conf rendered %v, want %v (recording %v)", r.name, hasJibri, want, r.d.Meeting.Recording.Enabled)
		}
	}
	slices.Sort(files)
	out, err := run(t, 3*time.Minute, java, append([]string{"-cp", jar, "testdata/Check.java"}, files...)...)
	if err != nil {
		t.Fatalf("Typesafe Config: %v\n%s", err, out)
	}
	trees := map[string]map[string]any{}
	durations := map[string]map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "\t")
		switch {
		case len(parts) == 2:
			var tree map[string]any
			if err := json.Unmarshal([]byte(parts[1]), &tree); err != nil {
				t.Fatalf("decoding %s: %v", parts[0], err)
			}
			trees[parts[0]] = tree
		case len(parts) == 4 && parts[1] == "DURATION":
			ms, _ := strconv.ParseInt(parts[3], 10, 64)
			if durations[parts[0]] == nil {
				durations[parts[0]] = map[string]int64{}
			}
			durations[parts[0]][parts[2]] = ms
		default:
			t.Errorf("unexpected output: %s", line)
		}
	}
	for _, f := range files {
		ref := refs[f]
		tree, ok := trees[f]
		if !ok {
			t.Errorf("%s: not loaded", f)
			continue
		}
		t.Run(ref.r.name+"/"+ref.kind, func(t *testing.T) {
			d := ref.r.d
			b, err := newBuiltinData(d, nil)
			if err != nil {
				t.Fatal(err)
			}
			eq := func(path string, want any) {
				t.Helper()
				got, ok := hoconGet(tree, path)
				if !ok {
					t.Errorf("%s missing", path)
					return
				}
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(want)
				if !bytes.Equal(gj, wj) {
					t.Errorf("%s = %s, want %s", path, gj, wj)
				}
			}
			if ref.kind == "jicofo" {
				eq("jicofo.xmpp.client.hostname", b.XMPPServer)
				eq("jicofo.xmpp.client.domain", d.AuthDomain())
				eq("jicofo.xmpp.client.xmpp-domain", d.Domain)
				eq("jicofo.xmpp.client.username", "focus")
				eq("jicofo.xmpp.client.password", d.Secrets.Password("focus").Reveal())
				eq("jicofo.xmpp.client.client-proxy", "focus."+d.Domain)
				eq("jicofo.xmpp.client.conference-muc-jid", d.MUCDomain())
				eq("jicofo.xmpp.trusted-domains", append([]string{}, b.TrustedDomains...))
				eq("jicofo.bridge.brewery-jid", d.JVBBreweryJID())
				eq("jicofo.authentication.enabled", false)
				eq("jicofo.conference.enable-auto-owner", d.Auth.Moderators == spec.ModeratorsFirstJoiner)
				eq("jicofo.conference.max-audio-senders", d.Jicofo.MaxAudioSenders)
				eq("jicofo.conference.max-video-senders", d.Jicofo.MaxVideoSenders)
				rec := d.Meeting.Recording
				if rec.Enabled {
					eq("jicofo.jibri.brewery-jid", rec.BreweryJID(d))
					if got := durations[f]["jicofo.jibri.pending-timeout"]; got != rec.PendingTimeout.Milliseconds() {
						t.Errorf("jibri pending-timeout %d ms, want %d", got, rec.PendingTimeout.Milliseconds())
					}
					if !slices.Contains(b.TrustedDomains, rec.RecorderDomain) {
						t.Errorf("trusted-domains lack the recorder domain")
					}
				} else if _, ok := hoconGet(tree, "jicofo.jibri"); ok {
					t.Error("jibri section with recording off")
				}
				return
			}
			if ref.kind == "jibri" {
				checkJibri(t, d, b, tree, trees[ref.r.path("/etc/jitsi/jicofo/jicofo.conf")])
				return
			}
			shard := "videobridge.apis.xmpp-client.configs.shard."
			eq(shard+"HOSTNAME", b.XMPPServer)
			eq(shard+"DOMAIN", d.AuthDomain())
			eq(shard+"USERNAME", "jvb")
			eq(shard+"PASSWORD", d.Secrets.Password("jvb").Reveal())
			// The bridge joins the brewery jicofo watches.
			eq(shard+"MUC_JIDS", d.JVBBreweryJID())
			eq(shard+"MUC_NICKNAME", d.Videobridge.Nickname)
			eq("videobridge.ice.udp.port", d.Videobridge.UDPPort)
			eq("videobridge.websockets.enabled", d.Videobridge.Websockets)
			eq("videobridge.http-servers.private.host", "127.0.0.1")
			eq("videobridge.http-servers.private.port", 8080)
			eq("ice4j.harvest.mapping.aws.enabled", false)
			if len(d.Videobridge.StunServers) > 0 {
				eq("ice4j.harvest.mapping.stun.addresses", d.Videobridge.StunServers)
			} else {
				eq("ice4j.harvest.mapping.stun.enabled", false)
				eq("ice4j.harvest.mapping.stun.addresses", []string{})
			}
			if len(d.Host.PrivateIPs) > 0 {
				var want []map[string]string
				for i := range d.Host.PrivateIPs {
					want = append(want, map[string]string{
						"local-address": d.Host.PrivateIPs[i], "name": "nat" + strconv.Itoa(i),
						"public-address": d.Host.PublicIPs[i],
					})
				}
				eq("ice4j.harvest.mapping.static-mappings", want)
			}
			if d.Videobridge.Websockets {
				eq("videobridge.websockets.domains", []string{b.JVBWebsocketDomain})
				id := "default-id"
				if d.MultiHost() {
					id = d.Host.Name // each bridge its own id, routed by nginx
				}
				eq("videobridge.websockets.server-id", id)
				eq("videobridge.http-servers.public.host", b.BridgePublicHost)
			}
		})
	}
}

func checkConfigJS(t *testing.T, combos []realCombo) {
	node := testenv.LookPath(t, "node", "apt-get install nodejs")
	dir := t.TempDir()
	type variant struct {
		r      realCombo
		tenant string
	}
	variants := map[string]variant{}
	type entry struct {
		Name string `json:"name"`
		File string `json:"file"`
	}
	var list []entry
	ssi := regexp.MustCompile(`<!--# echo var="(subdir|subdomain)" default="" -->`)
	for _, r := range combos {
		p := "/etc/jitsi/meet/" + r.d.Domain + "-config.js"
		f, ok := r.file(p)
		if !ok {
			continue
		}
		tenantsToTry := []string{""}
		if r.d.Tenants {
			tenantsToTry = append(tenantsToTry, "acme")
		}
		for _, tenant := range tenantsToTry {
			// Do what nginx's SSI does for /config.js and /<tenant>/config.js.
			content := ssi.ReplaceAllFunc(f.Content, func(m []byte) []byte {
				if tenant == "" {
					return nil
				}
				if bytes.Contains(m, []byte(`"subdir"`)) {
					return []byte(tenant + "/")
				}
				return []byte(tenant + ".")
			})
			name := r.name + "@" + tenant
			file := filepath.Join(dir, strings.ReplaceAll(name, "@", "_")+".js")
			if err := os.WriteFile(file, content, 0o644); err != nil {
				t.Fatal(err)
			}
			list = append(list, entry{name, file})
			variants[name] = variant{r, tenant}
		}
	}
	listJSON, _ := json.Marshal(list)
	listFile := filepath.Join(dir, "list.json")
	if err := os.WriteFile(listFile, listJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, time.Minute, node, "testdata/configjs.js", listFile)
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var cfgs map[string]map[string]any
	if err := json.Unmarshal(out, &cfgs); err != nil {
		t.Fatalf("decoding node output: %v", err)
	}
	for _, e := range list {
		v := variants[e.Name]
		cfg := cfgs[e.Name]
		t.Run(e.Name, func(t *testing.T) {
			if msg, ok := cfg["__error"]; ok {
				t.Fatalf("config.js does not evaluate: %v", msg)
			}
			d := v.r.d
			b, err := newBuiltinData(d, nil)
			if err != nil {
				t.Fatal(err)
			}
			get := func(path string) (any, bool) { return hoconGet(cfg, path) }
			eq := func(path string, want any) {
				t.Helper()
				got, ok := get(path)
				if !ok {
					t.Errorf("config.%s missing", path)
					return
				}
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(want)
				if !bytes.Equal(gj, wj) {
					t.Errorf("config.%s = %s, want %s", path, gj, wj)
				}
			}
			absent := func(path string) {
				t.Helper()
				if got, ok := get(path); ok {
					t.Errorf("config.%s = %v, want it unset", path, got)
				}
			}
			sub, dirp := "", ""
			if v.tenant != "" {
				sub, dirp = v.tenant+".", v.tenant+"/"
			}
			eq("hosts.domain", d.Domain)
			eq("hosts.muc", "conference."+sub+d.Domain)
			if d.Auth.Guests {
				eq("hosts.anonymousdomain", d.GuestDomain())
			} else {
				absent("hosts.anonymousdomain")
			}
			rec := d.Meeting.Recording
			if rec.Enabled {
				eq("hiddenDomain", rec.RecorderDomain)
			} else {
				absent("hiddenDomain")
			}
			eq("bosh", d.ServerURL()+"/"+dirp+"http-bind")
			eq("websocket", b.WebsocketURL+"/"+dirp+"xmpp-websocket")
			m := d.Meeting
			eq("startWithAudioMuted", m.StartAudioMuted)
			eq("startWithVideoMuted", m.StartVideoMuted)
			if m.StartAudioMutedAfter > 0 {
				eq("startAudioMuted", m.StartAudioMutedAfter)
			} else {
				absent("startAudioMuted")
			}
			if m.StartVideoMutedAfter > 0 {
				eq("startVideoMuted", m.StartVideoMutedAfter)
			} else {
				absent("startVideoMuted")
			}
			if m.Chat && m.ScreenSharing {
				absent("toolbarButtons")
			} else {
				got, _ := get("toolbarButtons")
				btns := strs(got)
				if len(btns) == 0 || slices.Contains(btns, "chat") != m.Chat || slices.Contains(btns, "desktop") != m.ScreenSharing {
					t.Errorf("toolbarButtons %q for chat=%v screen sharing=%v", btns, m.Chat, m.ScreenSharing)
				}
			}
			eq("disableChat", !m.Chat)
			eq("disablePolls", !m.Polls)
			eq("disableReactions", !m.Reactions)
			eq("breakoutRooms.hideAddRoomButton", !m.BreakoutRooms)
			eq("securityUi.hideLobbyButton", !b.Lobby)
			eq("prejoinConfig.enabled", m.Prejoin)
			eq("requireDisplayName", m.RequireDisplayName)
			eq("recordingService.enabled", rec.Enabled)
			eq("liveStreaming.enabled", rec.Enabled && rec.Livestreaming)
			eq("p2p.enabled", m.P2P)
			var wantStun []map[string]string
			if d.TURN.Enabled {
				wantStun = append(wantStun, map[string]string{"urls": "stun:" + net.JoinHostPort(d.TURN.Host, strconv.Itoa(d.TURN.Port))})
			} else {
				for _, s := range d.Videobridge.StunServers {
					wantStun = append(wantStun, map[string]string{"urls": "stun:" + s})
				}
			}
			if wantStun == nil {
				wantStun = []map[string]string{}
			}
			eq("p2p.stunServers", wantStun)
		})
	}
}

func checkTurnserver(t *testing.T, combos []realCombo) {
	turnserver := testenv.LookPath(t, "turnserver", "apt-get install coturn")
	for _, r := range combos {
		f, ok := r.file("/etc/coturn/turnserver.conf")
		if !ok {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			dir := t.TempDir()
			// syslog would hide the messages; the test reads stdout instead.
			content := bytes.ReplaceAll(f.Content, []byte("\nsyslog\n"), []byte("\n"))
			// coturn reads its own copies of the certificate (deployed by
			// internal/certs); point the test copy at the throwaway pair.
			coturnCert := "cert=/etc/coturn/certs/" + r.d.Domain + ".fullchain.pem\n"
			coturnKey := "pkey=/etc/coturn/certs/" + r.d.Domain + ".privkey.pem\n"
			if !bytes.Contains(content, []byte(coturnCert)) || !bytes.Contains(content, []byte(coturnKey)) {
				t.Fatalf("turnserver.conf does not read coturn's certificate copies (%s%s)", coturnCert, coturnKey)
			}
			content = bytes.Replace(content, []byte(coturnCert), []byte("cert="+r.d.TLS.Certificate+"\n"), 1)
			content = bytes.Replace(content, []byte(coturnKey), []byte("pkey="+r.d.TLS.Key+"\n"), 1)
			conf := filepath.Join(dir, "turnserver.conf")
			if err := os.WriteFile(conf, content, 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, turnserver, "-c", conf,
				"--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
				"--listening-port", strconv.Itoa(freePort(t)), "--tls-listening-port", strconv.Itoa(freePort(t)),
				"--log-file", "stdout", "--pidfile", filepath.Join(dir, "turnserver.pid"),
				"--db", filepath.Join(dir, "turndb"), "--no-cli")
			pipe, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = cmd.Stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}()
			var log strings.Builder
			started := false
			sc := bufio.NewScanner(pipe)
			for sc.Scan() {
				line := sc.Text()
				log.WriteString(line + "\n")
				if strings.Contains(line, "Bad configuration format") || strings.Contains(line, "CONFIG ERROR") ||
					strings.Contains(line, "cannot find") || strings.Contains(line, "ERROR:") {
					t.Errorf("turnserver: %s", redactOut([]byte(line), r.set))
				}
				// The last start-up step: the server threads are running.
				if strings.Contains(line, "Total General servers") {
					started = true
					break
				}
			}
			if !started {
				t.Fatalf("turnserver did not start:\n%s", redactOut([]byte(log.String()), r.set))
			}
			l := log.String()
			if !strings.Contains(l, "Default realm: "+r.d.TURN.Realm) {
				t.Errorf("turnserver did not take realm %q:\n%s", r.d.TURN.Realm, redactOut([]byte(l), r.set))
			}
			if !strings.Contains(l, "Certificate file found: "+r.d.TLS.Certificate) {
				t.Errorf("turnserver did not find the certificate:\n%s", redactOut([]byte(l), r.set))
			}
			for _, p := range r.d.Host.PrivateIPs {
				if !strings.Contains(l, "external-ip private part: "+p) {
					t.Errorf("turnserver did not take external-ip for %s", p)
				}
			}
			if r.d.TURN.DeniedPeerPrivate && !strings.Contains(l, "Black listing: 10.0.0.0-10.255.255.255") {
				t.Error("turnserver did not take the denied-peer-ip list")
			}
		})
	}
}

func checkLegacyProperties(t *testing.T, combos []realCombo) {
	for _, r := range combos {
		f, ok := r.file("/etc/jitsi/videobridge/sip-communicator.properties")
		if !ok {
			continue
		}
		for i, l := range strings.Split(string(f.Content), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				t.Errorf("%s: line %d of sip-communicator.properties is a setting: %q", r.name, i+1, l)
			}
		}
	}
}
