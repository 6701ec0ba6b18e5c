package adopt

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// The quick install, reproduced: the Debian packages' postinst scripts copy
// the examples in jitsi-meet/doc/debian (and the web client's config.js)
// and substitute the domain and secrets with sed; jicofo's and the
// videobridge's postinst write their HOCON files. The functions below do
// what those scripts do, step by step, on the upstream files.

const (
	qiDomain = "meet.example.org"
	qiFocus  = "FocusPw1234abcd"  // generateRandomPassword: 16 of [a-zA-Z0-9]
	qiJVB    = "JvbPw5678"        // jvb postinst: 8 random characters
	qiTURN   = "TurnSecret9012xy" // generateRandomPassword
	qiNick   = "3f1e5c2a-9b7d-4e11-8a2f-6c0d9e8b7a65"
	qiAppID  = "example_app"
	qiAppSec = "cb5749cbb72ab5a8379329e88461cb01233a"
)

// upstreamDir finds ../shared/upstream (next to the repository, as on the
// developers' machines and in CI).
func upstreamDir(t testing.TB) string {
	t.Helper()
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "shared", "upstream")
		if st, err := os.Stat(filepath.Join(p, "jitsi-meet", "doc", "debian")); err == nil && st.IsDir() {
			return p
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	testenv.Unavailable(t, "the upstream Jitsi packaging files (shared/upstream next to the repository) are missing", "copy shared/ next to the repository")
	return ""
}

func readUp(t testing.TB, up, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(up, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeRoot(t testing.TB, root, p, content string, mode os.FileMode) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// quickInstall lays out what the packages write for qiDomain; tokens adds
// jitsi-meet-tokens' edits.
func quickInstall(t testing.TB, tokens bool) string {
	t.Helper()
	up := upstreamDir(t)
	root := t.TempDir()

	// jitsi-meet-prosody.postinst
	p := readUp(t, up, "jitsi-meet/doc/debian/jitsi-meet-prosody/prosody.cfg.lua-jvb.example")
	p = strings.ReplaceAll(p, "jitmeet.example.com", qiDomain)
	p = strings.ReplaceAll(p, "focusUser", "focus")
	p = strings.ReplaceAll(p, "__turnSecret__", qiTURN)
	if !strings.Contains(p, `--"polls";`) {
		p = strings.ReplaceAll(p, `"polls";`, `--"polls";`)
	}
	// the auth domain's certificate (sed on VirtualHost "auth.DOMAIN")
	auth := "auth." + qiDomain
	p = strings.Replace(p, `VirtualHost "`+auth+`"`, `VirtualHost "`+auth+`"`+"\n    ssl = {\n        key = \"/etc/prosody/certs/"+auth+".key\";\n        certificate = \"/etc/prosody/certs/"+auth+".crt\";\n    }", 1)
	if tokens { // jitsi-meet-tokens.postinst
		p = strings.ReplaceAll(p, `authentication = "jitsi-anonymous" -- do not delete me`, `authentication = "token" -- do not delete me`)
		p = strings.ReplaceAll(p, ` --app_id="example_app_id"`, ` app_id="`+qiAppID+`"`)
		p = strings.ReplaceAll(p, ` --app_secret="example_app_secret"`, ` app_secret="`+qiAppSec+`"`)
		p = regexp.MustCompile(`(?m)^(\s*)--\s*("token_verification")`).ReplaceAllString(p, `$1$2`)
	}
	cfg := "/etc/prosody/conf.avail/" + qiDomain + ".cfg.lua"
	writeRoot(t, root, cfg, p, 0o644)
	if err := os.MkdirAll(filepath.Join(root, "/etc/prosody/conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(cfg, filepath.Join(root, "/etc/prosody/conf.d/"+qiDomain+".cfg.lua")); err != nil {
		t.Fatal(err)
	}
	jaas := strings.ReplaceAll(readUp(t, up, "jitsi-meet/doc/debian/jitsi-meet-prosody/jaas.cfg.lua"), "jitmeet.example.com", qiDomain)
	writeRoot(t, root, "/etc/prosody/conf.avail/jaas.cfg.lua", jaas, 0o644)

	// jicofo.postinst: an empty jicofo.conf, then `hocon -f set` for each
	// key (pyhocon rewrites the file in its own layout).
	writeRoot(t, root, "/etc/jitsi/jicofo/jicofo.conf", `jicofo {
  xmpp {
    client {
      client-proxy = "focus.`+qiDomain+`"
      xmpp-domain = "`+qiDomain+`"
      domain = "auth.`+qiDomain+`"
      username = "focus"
      password = "`+qiFocus+`"
    }
    trusted-domains = [
      "recorder.`+qiDomain+`"
    ]
  }
  bridge {
    brewery-jid = "JvbBrewery@internal.auth.`+qiDomain+`"
  }
}
`, 0o640)

	// jitsi-videobridge2.postinst: the default HOCON config (echo).
	writeRoot(t, root, "/etc/jitsi/videobridge/jvb.conf", `videobridge {
    apis.xmpp-client.configs {
        shard {
            HOSTNAME=localhost
            DOMAIN="auth.`+qiDomain+`"
            USERNAME=jvb
            PASSWORD="`+qiJVB+`"
            MUC_JIDS="jvbbrewery@internal.auth.`+qiDomain+`"
            MUC_NICKNAME=`+qiNick+`
        }
    }
}
ice4j {
    harvest {
        mapping {
            aws {
                enabled = false
            }
            stun {
                addresses = ["meet-jit-si-turnrelay.jitsi.net:443"]
            }
        }
    }
}
`, 0o640)

	// jitsi-meet-web-config.postinst (nginx chosen: FORCE_NGINX=true)
	js := readUp(t, up, "jitsi-meet/config.js")
	js = strings.ReplaceAll(js, "conference.jitsi-meet.example.com", `conference.<!--# echo var="subdomain" default="" -->jitsi-meet.example.com`)
	js = strings.ReplaceAll(js, "jitsi-meet.example.com", qiDomain)
	writeRoot(t, root, "/etc/jitsi/meet/"+qiDomain+"-config.js", js, 0o644)
	ngx := strings.ReplaceAll(readUp(t, up, "jitsi-meet/doc/debian/jitsi-meet/jitsi-meet.example"), "jitsi-meet.example.com", qiDomain)
	site := "/etc/nginx/sites-available/" + qiDomain + ".conf"
	writeRoot(t, root, site, ngx, 0o644)
	if err := os.MkdirAll(filepath.Join(root, "/etc/nginx/sites-enabled"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(site, filepath.Join(root, "/etc/nginx/sites-enabled/"+qiDomain+".conf")); err != nil {
		t.Fatal(err)
	}

	// jitsi-meet-turnserver.postinst
	turn := readUp(t, up, "jitsi-meet/doc/debian/jitsi-meet-turn/turnserver.conf")
	turn = strings.ReplaceAll(turn, "jitsi-meet.example.com", qiDomain)
	turn = strings.ReplaceAll(turn, "__turnSecret__", qiTURN)
	writeRoot(t, root, "/etc/turnserver.conf", turn, 0o644)
	return root
}

func importRoot(t *testing.T, root string) (*Result, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "jitsi.hcl")
	res, err := Import(Options{Root: root, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	return res, out
}

func findingFor(res *Result, file string, kind FindingKind, settingPart string) *Finding {
	for i, f := range res.Findings {
		if strings.HasSuffix(f.File, file) && f.Kind == kind && strings.Contains(f.Setting, settingPart) {
			return &res.Findings[i]
		}
	}
	return nil
}

func specHas(t *testing.T, res *Result, lines ...string) {
	t.Helper()
	norm := regexp.MustCompile(`[ \t]+`).ReplaceAllString(string(res.Spec), " ")
	for _, l := range lines {
		if !strings.Contains(norm, l) {
			t.Errorf("spec lacks %q", l)
		}
	}
}

func TestQuickInstallPlain(t *testing.T) {
	root := quickInstall(t, false)
	res, out := importRoot(t, root)
	if res.Domain != qiDomain {
		t.Fatalf("domain %q", res.Domain)
	}
	d := res.Deployment
	if d.Auth.Mode != "anonymous" || !d.Meeting.Lobby || !d.Meeting.BreakoutRooms || !d.Meeting.Polls || !d.Meeting.ForceMute || !d.TURN.Enabled {
		t.Errorf("features not understood: auth %s lobby %t breakout %t polls %t forcemute %t turn %t",
			d.Auth.Mode, d.Meeting.Lobby, d.Meeting.BreakoutRooms, d.Meeting.Polls, d.Meeting.ForceMute, d.TURN.Enabled)
	}
	if d.Videobridge.Nickname != qiNick || d.Videobridge.Brewery != "JvbBrewery" {
		t.Errorf("videobridge: nickname %q brewery %q", d.Videobridge.Nickname, d.Videobridge.Brewery)
	}
	// Secrets: found with file and line, never in the spec.
	if res.Secrets.FocusPassword.Reveal() != qiFocus || res.Secrets.JVBPassword.Reveal() != qiJVB || res.Secrets.TURNSecret.Reveal() != qiTURN {
		t.Errorf("secrets not imported")
	}
	for _, s := range []string{qiFocus, qiJVB, qiTURN} {
		if strings.Contains(string(res.Spec), s) {
			t.Errorf("spec contains a secret")
		}
	}
	// The unknown filesharing component and config.js options are kept.
	if findingFor(res, ".cfg.lua", KindKept, `Component "filesharing.`+qiDomain+`"`) == nil {
		t.Errorf("filesharing component not kept")
	}
	if f := findingFor(res, "-config.js", KindKept, "enableNoAudioDetection"); f == nil || f.Line == 0 {
		t.Errorf("config.js option not kept with its line: %+v", f)
	}
	// coturn's option that coturn 4.6 refuses is reported as removed.
	if f := findingFor(res, "turnserver.conf", KindRemoved, "no-loopback-peers"); f == nil || f.Line != 10 {
		t.Errorf("no-loopback-peers: %+v", f)
	}
	// /etc/turnserver.conf becomes the link to /etc/coturn/turnserver.conf
	if findingFor(res, "/etc/turnserver.conf", KindChanged, "file type") == nil {
		t.Errorf("turnserver link change not reported")
	}
	if err := res.Write(out, false); err != nil {
		t.Fatal(err)
	}
	checkWritten(t, root, res, out)
	checkPlanClean(t, root, res, out)
}

func TestQuickInstallTokens(t *testing.T) {
	root := quickInstall(t, true)
	res, out := importRoot(t, root)
	d := res.Deployment
	if d.Auth.Mode != "jwt" || d.Auth.JWT.AppID != qiAppID || d.Auth.JWT.AppSecret.Reveal() != qiAppSec {
		t.Fatalf("jwt not understood: %+v", d.Auth)
	}
	// mod_auth_token's defaults: audiences "*", domain verification on.
	specHas(t, res, `app_id = "`+qiAppID+`"`, `app_secret = trimspace(file("jitsi.app_secret"))`, `accepted_audiences = ["*"]`, `moderators = "first-joiner"`)
	if strings.Contains(string(res.Spec), qiAppSec) {
		t.Fatal("app secret inline in the spec")
	}
	if err := res.Write(out, false); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(filepath.Dir(out), "jitsi.app_secret"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("app secret file: %v %v", st, err)
	}
	checkPlanClean(t, root, res, out)
}

func handEditedQuickInstall(t testing.TB) string {
	t.Helper()
	root := quickInstall(t, true)
	cfg := filepath.Join(root, "/etc/prosody/conf.avail/"+qiDomain+".cfg.lua")
	b, _ := os.ReadFile(cfg)
	p := string(b)
	// a changed muc_max_occupants (with its module) and an unknown module
	p = strings.Replace(p, `        "muc_password_whitelist";
    }
    admins = { "focus@auth.`+qiDomain+`" }`, `        "muc_password_whitelist";
        "muc_max_occupants";
        "my_custom_module";
    }
    muc_max_occupants = 30
    admins = { "focus@auth.`+qiDomain+`" }`, 1)
	if !strings.Contains(p, "my_custom_module") {
		t.Fatal("fixture edit did not apply")
	}
	os.WriteFile(cfg, []byte(p), 0o644)
	// config.js: lobby and breakout stay on; start muted, display name
	js := filepath.Join(root, "/etc/jitsi/meet/"+qiDomain+"-config.js")
	b, _ = os.ReadFile(js)
	os.WriteFile(js, append(b, []byte("\nconfig.startWithAudioMuted = true;\nconfig.requireDisplayName = true;\n")...), 0o644)
	// nginx: a custom location in the HTTPS server
	site := filepath.Join(root, "/etc/nginx/sites-available/"+qiDomain+".conf")
	b, _ = os.ReadFile(site)
	s := strings.Replace(string(b), "    location = /xmpp-websocket {", "    location /custom/ {\n        return 204;\n    }\n\n    location = /xmpp-websocket {", 1)
	if !strings.Contains(s, "/custom/") {
		t.Fatal("nginx fixture edit did not apply")
	}
	os.WriteFile(site, []byte(s), 0o644)

	return root
}

func TestQuickInstallHandEdits(t *testing.T) {
	root := handEditedQuickInstall(t)
	res, out := importRoot(t, root)
	d := res.Deployment
	if d.Meeting.MaxParticipants != 30 || !d.Meeting.Lobby || !d.Meeting.BreakoutRooms || !d.Meeting.StartAudioMuted || !d.Meeting.RequireDisplayName {
		t.Errorf("hand edits not understood: %+v", d.Meeting)
	}
	if f := findingFor(res, ".cfg.lua", KindKept, "module my_custom_module"); f == nil || f.Line == 0 {
		t.Errorf("unknown module not kept with its line: %+v", f)
	}
	if m := d.Extra.ProsodyModules["conference."+qiDomain]; len(m) != 1 || m[0] != "my_custom_module" {
		t.Errorf("extra.prosody_modules: %v", d.Extra.ProsodyModules)
	}
	specHas(t, res, `prosody_modules = {`, `"conference.`+qiDomain+`" = ["my_custom_module"]`)
	if f := findingFor(res, ".conf", KindKept, "location /custom/"); f == nil || f.Line == 0 {
		t.Errorf("custom location not kept: %+v", f)
	}
	if !strings.Contains(d.Extra.NginxServer, "location /custom/ {") {
		t.Errorf("extra.nginx_server lacks the location:\n%s", d.Extra.NginxServer)
	}
	// the rendered site has the location inside the HTTPS server block
	rendered := renderedFile(res.Rendered, nginxPath(qiDomain))
	nf, err := parseNginx("rendered", rendered.Content)
	if err != nil {
		t.Fatal(err)
	}
	if nf.tlsServer().location("/custom/") == nil {
		t.Errorf("custom location not in the rendered HTTPS server")
	}
	if err := res.Write(out, false); err != nil {
		t.Fatal(err)
	}
	checkPlanClean(t, root, res, out)
}

func TestLegacyCredentials(t *testing.T) {
	root := quickInstall(t, false)
	// An older videobridge: credentials in sip-communicator.properties, a
	// jvb.conf without the shard; an older jicofo: the shell config.
	writeRoot(t, root, pathJVB, "videobridge {\n}\n", 0o640)
	writeRoot(t, root, pathJVBLegacy, `org.ice4j.ice.harvest.DISABLE_AWS_HARVESTER=true
org.ice4j.ice.harvest.STUN_MAPPING_HARVESTER_ADDRESSES=meet-jit-si-turnrelay.jitsi.net:443
org.jitsi.videobridge.ENABLE_STATISTICS=true
org.jitsi.videobridge.STATISTICS_TRANSPORT=muc
org.jitsi.videobridge.xmpp.user.shard.HOSTNAME=localhost
org.jitsi.videobridge.xmpp.user.shard.DOMAIN=auth.`+qiDomain+`
org.jitsi.videobridge.xmpp.user.shard.USERNAME=jvb
org.jitsi.videobridge.xmpp.user.shard.PASSWORD=LegacyJvbPw
org.jitsi.videobridge.xmpp.user.shard.MUC_JIDS=JvbBrewery@internal.auth.`+qiDomain+`
org.jitsi.videobridge.xmpp.user.shard.MUC_NICKNAME=legacy-bridge
`, 0o640)
	writeRoot(t, root, "/etc/jitsi/jicofo/jicofo.conf", "jicofo {\n}\n", 0o640)
	writeRoot(t, root, pathJicofoShell, `JICOFO_HOST=localhost
JICOFO_HOSTNAME=`+qiDomain+`
JICOFO_AUTH_DOMAIN=auth.`+qiDomain+`
JICOFO_AUTH_USER=focus
JICOFO_AUTH_PASSWORD=LegacyFocusPw
`, 0o640)
	res, out := importRoot(t, root)
	if res.Secrets.JVBPassword.Reveal() != "LegacyJvbPw" || res.Secrets.FocusPassword.Reveal() != "LegacyFocusPw" {
		t.Fatalf("legacy credentials not imported")
	}
	if f := findingFor(res, "sip-communicator.properties", KindRemoved, "shard.PASSWORD"); f == nil || f.Line != 8 || f.Old != "(sensitive)" {
		t.Errorf("legacy password move not reported (masked, line 8): %+v", f)
	}
	if f := findingFor(res, "sip-communicator.properties", KindKept, "ENABLE_STATISTICS"); f == nil {
		t.Errorf("unknown legacy property not kept")
	}
	if res.Deployment.Videobridge.Nickname != "legacy-bridge" {
		t.Errorf("nickname %q", res.Deployment.Videobridge.Nickname)
	}
	if err := res.Write(out, false); err != nil {
		t.Fatal(err)
	}
	checkWritten(t, root, res, out)
}

func checkWritten(t *testing.T, root string, res *Result, out string) {
	t.Helper()
	dir := filepath.Join(root, "/var/lib/jitsi-agent/secrets")
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("secrets dir: %v %v", st, err)
	}
	for name, want := range map[string]string{"focus_password": res.Secrets.FocusPassword.Reveal(), "jvb_password": res.Secrets.JVBPassword.Reveal(), "turn_secret": res.Secrets.TURNSecret.Reveal()} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s not stored", name)
		}
		st, _ := os.Stat(filepath.Join(dir, name))
		if st != nil && st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", name, st.Mode())
		}
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	// A second import refuses to overwrite the spec.
	if err := res.Write(out, false); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second write: %v", err)
	}
}

// checkPlanClean loads the written spec as the CLI would, renders it with
// the stored secrets and compares every host file with the result, setting
// by setting: every difference must be in the report.
func checkPlanClean(t *testing.T, root string, res *Result, out string) {
	t.Helper()
	h, err := readHost(root, res.Domain)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "extra {") && len(res.Deployment.Extra.Prosody) > 0 {
		t.Fatal("extra block missing from the written spec")
	}
	d, set, err := loadAndRender(out, src, res)
	if err != nil {
		t.Fatal(err)
	}
	diffs, _, err := compareHost(h, set, d, false)
	if err != nil {
		t.Fatal(err)
	}
	reported := map[string]bool{}
	for _, f := range res.Findings {
		reported[f.File+"|"+string(f.Kind)+"|"+f.Setting] = true
	}
	for _, f := range diffs {
		if !reported[f.File+"|"+string(f.Kind)+"|"+f.Setting] {
			t.Errorf("plan would change %s (%s %s) without a report line", f.where(), f.Kind, f.Setting)
		}
	}
}

// TestSecretKeptInExtra: a secret among the kept settings is never printed
// in the report, which warns that the spec now holds it inline.
func TestSecretKeptInExtra(t *testing.T) {
	root := quickInstall(t, false)
	cfg := filepath.Join(root, "/etc/prosody/conf.avail/"+qiDomain+".cfg.lua")
	b, _ := os.ReadFile(cfg)
	const sec = "external-component-secret-7f3a"
	os.WriteFile(cfg, append(b, []byte("\nComponent \"ext."+qiDomain+"\"\n    component_secret = \""+sec+"\"\n")...), 0o644)
	res, out := importRoot(t, root)
	f := findingFor(res, ".cfg.lua", KindKept, `Component "ext.`+qiDomain+`"`)
	if f == nil || !strings.Contains(f.Reason, "secret") {
		t.Fatalf("kept secret not flagged: %+v", f)
	}
	var rep strings.Builder
	res.WriteReport(&rep)
	if strings.Contains(rep.String(), sec) {
		t.Error("the report prints a secret")
	}
	if !strings.Contains(string(res.Spec), sec) {
		t.Error("the component's secret was not kept")
	}
	if err := res.Write(out, false); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("spec holding a secret: %v %v", st, err)
	}
}
