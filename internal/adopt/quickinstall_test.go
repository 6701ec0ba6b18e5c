package adopt

import (
	"github.com/jitsi-agent/jitsi-agent/internal/adopt/adopttest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

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
	root := adopttest.QuickInstall(t, false)
	res, out := importRoot(t, root)
	if res.Domain != adopttest.Domain {
		t.Fatalf("domain %q", res.Domain)
	}
	d := res.Deployment
	if d.Auth.Mode != "anonymous" || !d.Meeting.Lobby || !d.Meeting.BreakoutRooms || !d.Meeting.Polls || !d.Meeting.ForceMute || !d.TURN.Enabled {
		t.Errorf("features not understood: auth %s lobby %t breakout %t polls %t forcemute %t turn %t",
			d.Auth.Mode, d.Meeting.Lobby, d.Meeting.BreakoutRooms, d.Meeting.Polls, d.Meeting.ForceMute, d.TURN.Enabled)
	}
	if d.Videobridge.Nickname != adopttest.Nickname || d.Videobridge.Brewery != "JvbBrewery" {
		t.Errorf("videobridge: nickname %q brewery %q", d.Videobridge.Nickname, d.Videobridge.Brewery)
	}
	// Secrets: found with file and line, never in the spec.
	if res.Secrets.Password("focus").Reveal() != adopttest.FocusPassword || res.Secrets.Password("jvb").Reveal() != adopttest.JVBPassword || res.Secrets.TURNSecret.Reveal() != adopttest.TURNSecret {
		t.Errorf("secrets not imported")
	}
	for _, s := range []string{adopttest.FocusPassword, adopttest.JVBPassword, adopttest.TURNSecret} {
		if strings.Contains(string(res.Spec), s) {
			t.Errorf("spec contains a secret")
		}
	}
	// The unknown filesharing component and config.js options are kept.
	if findingFor(res, ".cfg.lua", KindKept, `Component "filesharing.`+adopttest.Domain+`"`) == nil {
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
	root := adopttest.QuickInstall(t, true)
	res, out := importRoot(t, root)
	d := res.Deployment
	if d.Auth.Mode != "jwt" || d.Auth.JWT.AppID != adopttest.AppID || d.Auth.JWT.AppSecret.Reveal() != adopttest.AppSecret {
		t.Fatalf("jwt not understood: %+v", d.Auth)
	}
	// mod_auth_token's defaults: audiences "*", domain verification on.
	specHas(t, res, `app_id = "`+adopttest.AppID+`"`, `app_secret = trimspace(file("jitsi.app_secret"))`, `accepted_audiences = ["*"]`, `moderators = "first-joiner"`)
	if strings.Contains(string(res.Spec), adopttest.AppSecret) {
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

func TestQuickInstallHandEdits(t *testing.T) {
	root := adopttest.HandEdited(t)
	res, out := importRoot(t, root)
	d := res.Deployment
	if d.Meeting.MaxParticipants != 30 || !d.Meeting.Lobby || !d.Meeting.BreakoutRooms || !d.Meeting.StartAudioMuted || !d.Meeting.RequireDisplayName {
		t.Errorf("hand edits not understood: %+v", d.Meeting)
	}
	if f := findingFor(res, ".cfg.lua", KindKept, "module my_custom_module"); f == nil || f.Line == 0 {
		t.Errorf("unknown module not kept with its line: %+v", f)
	}
	if m := d.Extra.ProsodyModules["conference."+adopttest.Domain]; len(m) != 1 || m[0] != "my_custom_module" {
		t.Errorf("extra.prosody_modules: %v", d.Extra.ProsodyModules)
	}
	specHas(t, res, `prosody_modules = {`, `"conference.`+adopttest.Domain+`" = ["my_custom_module"]`)
	if f := findingFor(res, ".conf", KindKept, "location /custom/"); f == nil || f.Line == 0 {
		t.Errorf("custom location not kept: %+v", f)
	}
	if !strings.Contains(d.Extra.NginxServer, "location /custom/ {") {
		t.Errorf("extra.nginx_server lacks the location:\n%s", d.Extra.NginxServer)
	}
	// the rendered site has the location inside the HTTPS server block
	rendered := renderedFile(res.Rendered, nginxPath(adopttest.Domain))
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
	root := adopttest.QuickInstall(t, false)
	// An older videobridge: credentials in sip-communicator.properties, a
	// jvb.conf without the shard; an older jicofo: the shell config.
	adopttest.WriteFile(t, root, pathJVB, "videobridge {\n}\n", 0o640)
	adopttest.WriteFile(t, root, pathJVBLegacy, `org.ice4j.ice.harvest.DISABLE_AWS_HARVESTER=true
org.ice4j.ice.harvest.STUN_MAPPING_HARVESTER_ADDRESSES=meet-jit-si-turnrelay.jitsi.net:443
org.jitsi.videobridge.ENABLE_STATISTICS=true
org.jitsi.videobridge.STATISTICS_TRANSPORT=muc
org.jitsi.videobridge.xmpp.user.shard.HOSTNAME=localhost
org.jitsi.videobridge.xmpp.user.shard.DOMAIN=auth.`+adopttest.Domain+`
org.jitsi.videobridge.xmpp.user.shard.USERNAME=jvb
org.jitsi.videobridge.xmpp.user.shard.PASSWORD=LegacyJvbPw
org.jitsi.videobridge.xmpp.user.shard.MUC_JIDS=JvbBrewery@internal.auth.`+adopttest.Domain+`
org.jitsi.videobridge.xmpp.user.shard.MUC_NICKNAME=legacy-bridge
org.ice4j.ice.harvest.NAT_HARVESTER_LOCAL_ADDRESS=10.0.0.5
org.ice4j.ice.harvest.NAT_HARVESTER_PUBLIC_ADDRESS=203.0.113.5
`, 0o640)
	adopttest.WriteFile(t, root, "/etc/jitsi/jicofo/jicofo.conf", "jicofo {\n}\n", 0o640)
	adopttest.WriteFile(t, root, pathJicofoShell, `JICOFO_HOST=localhost
JICOFO_HOSTNAME=`+adopttest.Domain+`
JICOFO_AUTH_DOMAIN=auth.`+adopttest.Domain+`
JICOFO_AUTH_USER=focus
JICOFO_AUTH_PASSWORD=LegacyFocusPw
`, 0o640)
	res, out := importRoot(t, root)
	if res.Secrets.Password("jvb").Reveal() != "LegacyJvbPw" || res.Secrets.Password("focus").Reveal() != "LegacyFocusPw" {
		t.Fatalf("legacy credentials not imported")
	}
	if f := findingFor(res, "sip-communicator.properties", KindRemoved, "shard.PASSWORD"); f == nil || f.Line != 8 || f.Old != "(sensitive)" {
		t.Errorf("legacy password move not reported (masked, line 8): %+v", f)
	}
	if f := findingFor(res, "sip-communicator.properties", KindKept, "ENABLE_STATISTICS"); f == nil {
		t.Errorf("unknown legacy property not kept")
	}
	if h := res.Deployment.Host; len(h.PublicIPs) != 1 || h.PublicIPs[0] != "203.0.113.5" || len(h.PrivateIPs) != 1 || h.PrivateIPs[0] != "10.0.0.5" {
		t.Errorf("legacy NAT addresses: %v %v", h.PublicIPs, h.PrivateIPs)
	}
	specHas(t, res, `public_ips = ["203.0.113.5"]`, `private_ips = ["10.0.0.5"]`)
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
	for name, want := range map[string]string{"focus_password": res.Secrets.Password("focus").Reveal(), "jvb_password": res.Secrets.Password("jvb").Reveal(), "turn_secret": res.Secrets.TURNSecret.Reveal()} {
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
	root := adopttest.QuickInstall(t, false)
	cfg := filepath.Join(root, "/etc/prosody/conf.avail/"+adopttest.Domain+".cfg.lua")
	b, _ := os.ReadFile(cfg)
	const sec = "external-component-secret-7f3a"
	os.WriteFile(cfg, append(b, []byte("\nComponent \"ext."+adopttest.Domain+"\"\n    component_secret = \""+sec+"\"\n")...), 0o644)
	res, out := importRoot(t, root)
	f := findingFor(res, ".cfg.lua", KindKept, `Component "ext.`+adopttest.Domain+`"`)
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

// TestReimportAfterApplyIsStable: once apply has written what the imported
// spec renders (extras included), importing the host again gives the same
// spec: the extras survive a second import unchanged, and nothing is left
// to change.
func TestReimportAfterApplyIsStable(t *testing.T) {
	root := adopttest.HandEdited(t)
	res1, _ := importRoot(t, root)
	// "apply": replace the host's files with the rendered ones.
	for _, f := range res1.Rendered.Files {
		p := filepath.Join(root, f.Path)
		os.Remove(p)
		if f.Path == "/etc/turnserver.conf" || f.Kind == "symlink" {
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.Symlink(f.Target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, f.Content, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
	res2, _ := importRoot(t, root)
	body := func(b []byte) string { // the spec without its header comment
		s := string(b)
		return s[strings.Index(s, "\ndomain"):]
	}
	if body(res1.Spec) != body(res2.Spec) {
		t.Errorf("second import differs:\n--- first\n%s\n--- second\n%s", res1.Spec, res2.Spec)
	}
	for _, f := range res2.Findings {
		if f.Kind == KindKept || f.Setting == "owner" || strings.Contains(f.Reason, "TLS material") || strings.Contains(f.Reason, "maintains for the services") {
			continue
		}
		t.Errorf("after apply, still a change: %+v", f)
	}
}
