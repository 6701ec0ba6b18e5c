package plan

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/secrets"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

type fixture struct {
	t    *testing.T
	root string
	host fsys.Host
	m    *manifest.Manifest
	// history, when set, masks old secrets in diffs (Options.Mask).
	history *secrets.History
}

func newFixture(t *testing.T) *fixture {
	root := t.TempDir()
	h, err := fsys.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, root: root, host: h, m: manifest.New()}
}

func (f *fixture) write(p, content string, mode os.FileMode) {
	f.t.Helper()
	rp := filepath.Join(f.root, p)
	os.MkdirAll(filepath.Dir(rp), 0o755)
	if err := os.WriteFile(rp, []byte(content), mode); err != nil {
		f.t.Fatal(err)
	}
	os.Chmod(rp, mode)
}

// record pretends content was applied at p (serial 1).
func (f *fixture) record(p, content string, mode os.FileMode) {
	e := manifest.Entry{Path: p, Kind: "file", SHA256: fsys.SHA256([]byte(content)), Size: int64(len(content)),
		Mode: manifest.ModeString(mode), Owner: f.host.UserName(f.host.Euid()), Group: f.host.GroupName(f.host.Egid()),
		Marker: strings.Contains(content, Marker), Serial: 1, AppliedAt: time.Unix(0, 0),
		Component: "jvb", Units: []string{"jitsi-videobridge2.service"}}
	files := append(f.m.Files, e)
	f.m.SetFiles(files)
	f.m.Serial = 1
}

func (f *fixture) plan(set *render.Set) *Plan {
	f.t.Helper()
	var mask func(string) string
	if f.history != nil {
		mask = func(s string) string { return f.history.Mask(s, Redacted) }
	}
	p, err := Compute(set, Options{Host: f.host, Manifest: f.m, Redact: set.Redact, Diff: true, Mask: mask})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func one(t *testing.T, p *Plan) Change {
	t.Helper()
	if len(p.Changes) != 1 {
		t.Fatalf("want one change, got %+v", p.Changes)
	}
	return p.Changes[0]
}

func file(p, content string) render.File {
	return render.File{Path: p, Kind: render.KindFile, Content: []byte(content), Mode: 0o644, Component: "jvb", Units: []string{"jitsi-videobridge2.service"}}
}

func TestReasons(t *testing.T) {
	const applied = "# Managed by jitsi-agent\nold = 1\n"
	const want = "# Managed by jitsi-agent\nnew = 1\n"
	cases := []struct {
		name   string
		setup  func(f *fixture)
		action Action
		reason Reason
	}{
		{"new missing", func(f *fixture) {}, ActionCreate, ReasonNew},
		{"new existing", func(f *fixture) { f.write("/etc/x.conf", "package default\n", 0o644) }, ActionUpdate, ReasonNew},
		{"spec-changed", func(f *fixture) { f.write("/etc/x.conf", applied, 0o644); f.record("/etc/x.conf", applied, 0o644) }, ActionUpdate, ReasonSpecChanged},
		{"drift", func(f *fixture) {
			f.write("/etc/x.conf", applied+"hand = edit\n", 0o644)
			f.record("/etc/x.conf", applied, 0o644)
		}, ActionUpdate, ReasonDrift},
		{"missing", func(f *fixture) {
			os.MkdirAll(filepath.Join(f.root, "etc"), 0o755)
			f.record("/etc/x.conf", applied, 0o644)
		}, ActionCreate, ReasonMissing},
		{"package-replaced marker", func(f *fixture) {
			f.write("/etc/x.conf", "# shipped by the package\n", 0o644)
			f.record("/etc/x.conf", applied, 0o644)
		}, ActionUpdate, ReasonPackageReplaced},
		{"package-replaced dpkg conffile", func(f *fixture) {
			pkg := "# packaged, mentions jitsi-agent but is the conffile\n"
			sum := md5.Sum([]byte(pkg))
			f.write("/var/lib/dpkg/status", "Package: jitsi-videobridge2\nStatus: install ok installed\nConffiles:\n /etc/other 0123\n /etc/x.conf "+hex.EncodeToString(sum[:])+"\nDescription: x\n", 0o644)
			f.write("/etc/x.conf", pkg, 0o644)
			f.record("/etc/x.conf", applied, 0o644)
		}, ActionUpdate, ReasonPackageReplaced},
		{"package-replaced dpkg-old", func(f *fixture) {
			f.write("/etc/x.conf", "new jitsi-agent-ish package file\n", 0o644)
			f.write("/etc/x.conf.dpkg-old", applied, 0o644)
			f.record("/etc/x.conf", applied, 0o644)
		}, ActionUpdate, ReasonPackageReplaced},
		{"mode", func(f *fixture) { f.write("/etc/x.conf", want, 0o600); f.record("/etc/x.conf", want, 0o644) }, ActionMode, ReasonMode},
		{"symlink-planted", func(f *fixture) {
			os.MkdirAll(filepath.Join(f.root, "etc"), 0o755)
			os.Symlink("/etc/shadow", filepath.Join(f.root, "etc/x.conf"))
			f.record("/etc/x.conf", want, 0o644)
		}, ActionUpdate, ReasonSymlinkPlanted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.setup(f)
			p := f.plan(&render.Set{Files: []render.File{file("/etc/x.conf", want)}})
			c := one(t, p)
			if c.Action != tc.action || c.Reason != tc.reason {
				t.Fatalf("got %s/%s, want %s/%s", c.Action, c.Reason, tc.action, tc.reason)
			}
			if p.ExitCode() != 2 {
				t.Fatalf("exit code %d, want 2", p.ExitCode())
			}
		})
	}
}

func TestNoChangesExitZero(t *testing.T) {
	f := newFixture(t)
	f.write("/etc/x.conf", "a\n", 0o644)
	f.record("/etc/x.conf", "a\n", 0o644)
	p := f.plan(&render.Set{Files: []render.File{file("/etc/x.conf", "a\n")}})
	if p.HasChanges() || p.ExitCode() != 0 || p.ManifestStale {
		t.Fatalf("changes %+v stale %v", p.Changes, p.ManifestStale)
	}
	var sb strings.Builder
	p.WriteText(&sb)
	if !strings.Contains(sb.String(), "No changes.") {
		t.Fatalf("text: %q", sb.String())
	}
	// Host matches but never recorded: no change, but the manifest is stale.
	f.m = manifest.New()
	if p := f.plan(&render.Set{Files: []render.File{file("/etc/x.conf", "a\n")}}); p.HasChanges() || !p.ManifestStale {
		t.Fatalf("want stale manifest only: %+v", p)
	}
}

func TestSymlinkReasons(t *testing.T) {
	link := render.File{Path: "/etc/nginx/sites-enabled/x.conf", Kind: render.KindSymlink, Target: "../sites-available/x.conf", Component: "nginx"}
	f := newFixture(t)
	os.MkdirAll(filepath.Join(f.root, "etc/nginx/sites-enabled"), 0o755)
	lp := filepath.Join(f.root, link.Path)
	c := one(t, f.plan(&render.Set{Files: []render.File{link}}))
	if c.Action != ActionCreate || c.Reason != ReasonNew {
		t.Fatalf("%s/%s", c.Action, c.Reason)
	}
	// Equivalent absolute link text is not a change.
	os.Symlink("/etc/nginx/sites-available/x.conf", lp)
	if p := f.plan(&render.Set{Files: []render.File{link}}); p.HasChanges() {
		t.Fatalf("equivalent link reported: %+v", p.Changes)
	}
	os.Remove(lp)
	os.Symlink("../sites-available/old.conf", lp)
	f.m.SetFiles([]manifest.Entry{{Path: link.Path, Kind: "symlink", Target: "../sites-available/old.conf"}})
	if c := one(t, f.plan(&render.Set{Files: []render.File{link}})); c.Reason != ReasonSpecChanged || c.Action != ActionSymlink {
		t.Fatalf("%s/%s", c.Action, c.Reason)
	}
	f.m.SetFiles([]manifest.Entry{{Path: link.Path, Kind: "symlink", Target: "../sites-available/x.conf"}})
	if c := one(t, f.plan(&render.Set{Files: []render.File{link}})); c.Reason != ReasonDrift || !c.HostChanged {
		t.Fatalf("%s/%s", c.Action, c.Reason)
	}
	os.Remove(lp)
	os.WriteFile(lp, []byte("copy\n"), 0o644)
	if c := one(t, f.plan(&render.Set{Files: []render.File{link}})); c.Reason != ReasonDrift || c.Action != ActionSymlink {
		t.Fatalf("%s/%s", c.Action, c.Reason)
	}
}

func TestDirectoryInPlaceIsError(t *testing.T) {
	f := newFixture(t)
	os.MkdirAll(filepath.Join(f.root, "etc/x.conf"), 0o755)
	_, err := Compute(&render.Set{Files: []render.File{file("/etc/x.conf", "a\n")}}, Options{Host: f.host})
	if err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("want error, got %v", err)
	}
}

func TestBadPaths(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"etc/x", "/etc/../x", "/etc//x"} {
		if _, err := Compute(&render.Set{Files: []render.File{file(p, "a")}}, Options{Host: f.host}); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
	if _, err := Compute(&render.Set{Files: []render.File{file("/a", "a"), file("/a", "b")}}, Options{Host: f.host}); err == nil {
		t.Error("duplicate path accepted")
	}
}

// TestNoSecretLeaks renders text and JSON plans of sensitive and plain
// files whose old and new versions carry secrets.
func TestNoSecretLeaks(t *testing.T) {
	const cur, old = "CURRENT-secret-value-123", "ROTATED-old-secret-999"
	f := newFixture(t)
	f.write("/etc/prosody/x.cfg.lua", "-- jitsi-agent\napp_secret = \""+old+"\"\nother = 1\n", 0o640)
	f.record("/etc/prosody/x.cfg.lua", "-- jitsi-agent\napp_secret = \""+old+"\"\nother = 1\n", 0o640)
	f.write("/etc/plain.conf", "token="+cur+"\n", 0o644)
	f.write("/etc/key.pem", "-----BEGIN PRIVATE KEY-----\nMIIabc\n-----END PRIVATE KEY-----\n", 0o600)
	set := &render.Set{Files: []render.File{
		{Path: "/etc/prosody/x.cfg.lua", Kind: render.KindFile, Mode: 0o640, Sensitive: true, Component: "prosody",
			Content: []byte("-- jitsi-agent\napp_secret = \"" + cur + "\"\nother = 2\n")},
		{Path: "/etc/plain.conf", Kind: render.KindFile, Content: []byte("token=" + cur + "\nx=" + cur + cur + "\n")},
		{Path: "/etc/new.conf", Kind: render.KindFile, Content: []byte("pw=" + cur + "\n")},
		{Path: "/etc/key.pem", Kind: render.KindFile, Mode: 0o600, Sensitive: true, Content: []byte("-----BEGIN PRIVATE KEY-----\nMIIdef\n-----END PRIVATE KEY-----\n")},
	}, Redact: []string{cur}}
	hist, _ := secrets.LoadHistory(t.TempDir())
	hist.Add(old)
	p, err := Compute(set, Options{Host: f.host, Manifest: f.m, Diff: true, Redact: set.Redact,
		Mask: func(s string) string { return hist.Mask(s, Redacted) }})
	if err != nil {
		t.Fatal(err)
	}
	var text, js bytes.Buffer
	p.WriteText(&text)
	p.WriteJSON(&js)
	for name, out := range map[string]string{"text": text.String(), "json": js.String()} {
		for _, s := range []string{cur, old, "MIIabc", "MIIdef", "CURRENT", "ROTATED"} {
			if strings.Contains(out, s) {
				t.Errorf("%s output leaks %q:\n%s", name, s, out)
			}
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s output has no redaction marker", name)
		}
	}
	if !strings.Contains(text.String(), "+app_secret = \"(sensitive)\"") || !strings.Contains(text.String(), "+other = 2") ||
		!strings.Contains(text.String(), "-other = 1") || !strings.Contains(text.String(), "-app_secret = \"(sensitive)\"") {
		t.Errorf("redacted diff lost its structure:\n%s", text.String())
	}
}

// TestOrdinaryLinesNotMasked: masking is by value history, not by shape;
// long tokens and quoted strings that are not secrets stay visible.
func TestOrdinaryLinesNotMasked(t *testing.T) {
	f := newFixture(t)
	old := "-- jitsi-agent\nmuc_max_occupants = 50\nmodules = { \"muc_meeting_id\", \"muc_domain_mapper\" }\n"
	f.write("/etc/prosody/x.cfg.lua", old, 0o640)
	f.record("/etc/prosody/x.cfg.lua", old, 0o640)
	set := &render.Set{Files: []render.File{
		{Path: "/etc/prosody/x.cfg.lua", Kind: render.KindFile, Mode: 0o640, Sensitive: true, Component: "prosody",
			Content: []byte("-- jitsi-agent\nmuc_max_occupants = 100\nmodules = { \"muc_meeting_id\" }\n")},
	}}
	hist, _ := secrets.LoadHistory(t.TempDir())
	hist.Add("some-unrelated-old-secret-value")
	p, err := Compute(set, Options{Host: f.host, Manifest: f.m, Diff: true, Mask: func(s string) string { return hist.Mask(s, Redacted) }})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	p.WriteText(&text)
	for _, want := range []string{"-muc_max_occupants = 50", "+muc_max_occupants = 100", `-modules = { "muc_meeting_id", "muc_domain_mapper" }`} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), Redacted) {
		t.Errorf("an ordinary line was masked:\n%s", text.String())
	}
}

func TestJSONSchema(t *testing.T) {
	f := newFixture(t)
	p := f.plan(&render.Set{Files: []render.File{file("/etc/x.conf", "a\n")}})
	var buf bytes.Buffer
	if err := p.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"format_version", "root", "serial", "changes", "summary", "units", "notices"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("missing key %q", k)
		}
	}
	if doc["format_version"] != float64(FormatVersion) {
		t.Errorf("format_version %v", doc["format_version"])
	}
	ch := doc["changes"].([]any)[0].(map[string]any)
	for _, k := range []string{"path", "action", "reason", "kind", "host_changed", "diff", "units"} {
		if _, ok := ch[k]; !ok {
			t.Errorf("change lacks %q: %v", k, ch)
		}
	}
	// No internal fields leak into the report.
	for _, k := range []string{"File", "FileMode", "UID", "GID", "HostExists", "Desired"} {
		if strings.Contains(buf.String(), `"`+k+`"`) {
			t.Errorf("internal field %s in JSON", k)
		}
	}
	// An empty plan still has arrays, not nulls.
	f.write("/etc/x.conf", "a\n", 0o644)
	p = f.plan(&render.Set{Files: []render.File{file("/etc/x.conf", "a\n")}})
	buf.Reset()
	p.WriteJSON(&buf)
	if strings.Contains(buf.String(), "null") {
		t.Errorf("null in empty report: %s", buf.String())
	}
}

func TestUnitsOrder(t *testing.T) {
	ch := []Change{
		{Component: "template:zz", Units: []string{"zz.service"}, Action: ActionUpdate},
		{Component: "nginx", Units: []string{"nginx.service"}, Action: ActionUpdate},
		{Component: "template:aa", Units: []string{"aa.service", "nginx.service"}, Action: ActionUpdate},
		{Component: "coturn", Units: []string{"coturn.service"}, Action: ActionMode},
		{Component: "prosody", Units: []string{"prosody.service"}, Action: ActionCreate},
		{Component: "jvb", Units: []string{"jitsi-videobridge2.service"}, Action: ActionUpdate},
		{Component: "jicofo", Units: []string{"jicofo.service"}, Action: ActionUnmanage},
		{Component: "jicofo", Units: []string{"jicofo.service"}, Action: ActionOwner},
	}
	got := strings.Join(Units(ch), " ")
	want := "prosody.service jicofo.service jitsi-videobridge2.service nginx.service coturn.service aa.service zz.service"
	if got != want {
		t.Fatalf("units\n got %s\nwant %s", got, want)
	}
}

// nonRoot is the real host seen by an unprivileged user.
type nonRoot struct{ fsys.Host }

func (nonRoot) CanChown() bool { return false }
func (nonRoot) Euid() int      { return 65534 }
func (nonRoot) Egid() int      { return 65534 }

func TestOwnershipNoticeWithoutRoot(t *testing.T) {
	f := newFixture(t)
	f.host = nonRoot{f.host}
	x := file("/etc/x.conf", "a\n")
	x.Owner, x.Group = "root", "daemon"
	p := f.plan(&render.Set{Files: []render.File{x}})
	if len(p.Notices) != 1 || !strings.Contains(p.Notices[0], "/etc/x.conf") || !strings.Contains(p.Notices[0], "not running as root") {
		t.Fatalf("notices %v", p.Notices)
	}
	if c := one(t, p); c.UID != -1 || c.GID != -1 {
		t.Fatalf("non-root plan wants chown %d:%d", c.UID, c.GID)
	}
	// An existing file with the wrong owner: no owner change is planned
	// (it could not be applied), but the notice names the file.
	f.write("/etc/x.conf", "a\n", 0o644)
	p = f.plan(&render.Set{Files: []render.File{x}})
	if p.HasChanges() || len(p.Notices) != 1 {
		t.Fatalf("changes %+v notices %v", p.Changes, p.Notices)
	}
}

func TestOwnerChange(t *testing.T) {
	f := newFixture(t)
	if !f.host.CanChown() {
		testenv.Root(t, "changing a file's owner")
	}
	f.write("/etc/x.conf", "a\n", 0o644)
	x := file("/etc/x.conf", "a\n")
	x.Owner, x.Group = "root", "daemon"
	c := one(t, f.plan(&render.Set{Files: []render.File{x}}))
	if c.Action != ActionOwner || c.Owner == nil || c.Owner.To != "root:daemon" {
		t.Fatalf("%+v", c)
	}
	x.Owner, x.Group = "no-such-user-xyz", ""
	p := f.plan(&render.Set{Files: []render.File{x}})
	if p.HasChanges() || len(p.Notices) != 1 || !strings.Contains(p.Notices[0], "does not exist") {
		t.Fatalf("unknown user: %+v %v", p.Changes, p.Notices)
	}
}

func TestParseConffiles(t *testing.T) {
	out := map[string][]string{}
	ParseConffiles([]byte("Package: a\nConffiles:\n /etc/a 111\n /etc/b 222 obsolete\nDescription: d\n more text /etc/c 333\nPackage: b\nConffiles:\n /etc/a 444\n"), out)
	if len(out["/etc/a"]) != 2 || out["/etc/b"][0] != "222" || out["/etc/c"] != nil {
		t.Fatalf("%v", out)
	}
}

func TestNormMode(t *testing.T) {
	if NormMode(0) != 0o644 || NormMode(0o640) != 0o640 {
		t.Fatal("plain modes")
	}
	if m := NormMode(0o4755); m.Perm() != 0o755 || m&os.ModeSetuid == 0 {
		t.Fatalf("unix setuid: %v", m)
	}
}

func TestRotatedSecretInAnyQuotingIsMasked(t *testing.T) {
	f := newFixture(t)
	old := "correct.horse.battery.staple.one.two"
	body := func(v string) string { return "class C {\n  static const String s = '" + v + "';\n}\n" }
	f.write("/srv/c.dart", body(old), 0o644)
	f.record("/srv/c.dart", body(old), 0o644)
	f.history, _ = secrets.LoadHistory(t.TempDir())
	f.history.Add(render.RedactionForms(old)...)
	cur := "another.horse.battery.staple.three"
	p := f.plan(&render.Set{Files: []render.File{{Path: "/srv/c.dart", Kind: render.KindFile, Mode: 0o644, Sensitive: true, Content: []byte(body(cur))}}, Redact: []string{cur}})
	var out bytes.Buffer
	p.WriteText(&out)
	if strings.Contains(out.String(), old) || strings.Contains(out.String(), cur) {
		t.Fatalf("a secret leaked:\n%s", out.String())
	}
}

func TestLiveEffectsInText(t *testing.T) {
	p := &Plan{Live: []LiveEffect{
		{Unit: "prosody.service", Effect: "live", Steps: []string{"activate on guest.meet.example.com (added to the config)"}},
		{Unit: "prosody2.service", Effect: "restart", Steps: []string{"restart (plugin_paths is read when Prosody starts)"}},
		{Unit: "prosody3.service", Effect: "deferred-restart", Steps: []string{"restart (x)"}},
	}}
	var sb strings.Builder
	if err := p.WriteText(&sb); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	for _, want := range []string{
		"Live effect on prosody.service: applied live, no session ends:\n    activate on guest.meet.example.com (added to the config)\n",
		"Live effect on prosody2.service: RESTART (ends every session and meeting):\n",
		"Live effect on prosody3.service: restart needed, deferred (restart = \"defer\")",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
