package apply

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

func reasons(p *plan.Plan) map[string]plan.Reason {
	out := map[string]plan.Reason{}
	for _, c := range p.Changes {
		out[c.Path+" "+string(c.Action)] = c.Reason
	}
	return out
}

func TestApplyFreshThenIdempotent(t *testing.T) {
	e := newEnv(t)
	set := sampleSet("a")
	p := e.plan(set)
	if p.ExitCode() != 2 || p.Summary.Create != len(set.Files) {
		t.Fatalf("fresh plan: exit %d, summary %+v", p.ExitCode(), p.Summary)
	}
	for _, c := range p.Changes {
		if c.Reason != plan.ReasonNew {
			t.Errorf("%s: reason %s, want new", c.Path, c.Reason)
		}
	}
	res := e.apply(set)
	if res.Serial != 1 || len(res.Changes) != len(set.Files) {
		t.Fatalf("first apply: serial %d, %d changes", res.Serial, len(res.Changes))
	}
	want := []string{"prosody.service", "jicofo.service", "jitsi-videobridge2.service", "nginx.service", "coturn.service", "app.service"}
	if strings.Join(res.Units, " ") != strings.Join(want, " ") {
		t.Fatalf("units %v, want %v", res.Units, want)
	}
	if !strings.Contains(e.log.String(), "jitsi-agent: create /etc/turnserver.conf (new)\n") {
		t.Fatalf("progress lines missing:\n%s", e.log.String())
	}
	fi, err := os.Stat(e.real("/etc/prosody/conf.avail/meet.cfg.lua"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode: %v %v", fi.Mode(), err)
	}
	e.assertConverged(set)

	// Second apply: no writes at all (mtimes and the manifest untouched).
	mtimes := map[string]time.Time{}
	filepath.Walk(e.root, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			mtimes[p] = fi.ModTime()
		}
		return nil
	})
	time.Sleep(20 * time.Millisecond) // make a rewrite visible in mtimes
	e.log.Reset()
	res = e.apply(set)
	if res.Changed() || res.Serial != 1 {
		t.Fatalf("second apply changed %v (serial %d)", res.Paths(), res.Serial)
	}
	if !strings.Contains(e.log.String(), "jitsi-agent: no changes") {
		t.Fatalf("want 'no changes', got %q", e.log.String())
	}
	filepath.Walk(e.root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.ModTime().Equal(mtimes[p]) {
			t.Errorf("%s was rewritten by a no-op apply", p)
		}
		return nil
	})
	if p := e.plan(set); p.ExitCode() != 0 {
		t.Fatalf("plan after apply: exit %d", p.ExitCode())
	}
}

func TestSpecChangedUpdatesEverything(t *testing.T) {
	e := newEnv(t)
	e.apply(sampleSet("a"))
	b := sampleSet("b")
	p := e.plan(b)
	got := reasons(p)
	for _, k := range []string{
		"/etc/prosody/conf.avail/meet.cfg.lua update", "/etc/jitsi/jicofo/jicofo.conf update",
		"/etc/nginx/sites-enabled/meet.conf symlink", "/etc/turnserver.conf update",
	} {
		if got[k] != plan.ReasonSpecChanged {
			t.Errorf("%s: reason %q, want spec-changed (all: %v)", k, got[k], got)
		}
	}
	if got["/etc/nginx/sites-available/meet-b.conf create"] != plan.ReasonNew {
		t.Errorf("new site: %v", got)
	}
	if got["/etc/nginx/sites-available/meet-a.conf unmanage"] != plan.ReasonRemovedFromSpec {
		t.Errorf("old site: %v", got)
	}
	res := e.apply(b)
	if res.Serial != 2 {
		t.Fatalf("serial %d", res.Serial)
	}
	e.assertConverged(b)
	// Never deleted: the old site stays on disk, unmanaged.
	if _, err := os.Stat(e.real("/etc/nginx/sites-available/meet-a.conf")); err != nil {
		t.Fatalf("unmanaged file was deleted: %v", err)
	}
}

func TestDriftLabelsAndRepair(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(e *env)
		key    string
		reason plan.Reason
		root   bool
	}{
		{"hand edit", func(e *env) {
			e.write("/etc/jitsi/videobridge/jvb.conf", "# Managed by jitsi-agent (a)\nvideobridge { edited = true }\n")
		}, "/etc/jitsi/videobridge/jvb.conf update", plan.ReasonDrift, false},
		{"deleted", func(e *env) { os.Remove(e.real("/etc/turnserver.conf")) }, "/etc/turnserver.conf create", plan.ReasonMissing, false},
		{"mode", func(e *env) { os.Chmod(e.real("/etc/jitsi/jicofo/jicofo.conf"), 0o666) }, "/etc/jitsi/jicofo/jicofo.conf mode", plan.ReasonMode, false},
		{"owner", func(e *env) { os.Chown(e.real("/etc/prosody/conf.avail/meet.cfg.lua"), 65534, 65534) }, "/etc/prosody/conf.avail/meet.cfg.lua owner", plan.ReasonOwner, true},
		{"planted symlink", func(e *env) {
			os.WriteFile(e.real("/victim"), []byte("do not touch\n"), 0o600)
			os.Remove(e.real("/etc/jitsi/jicofo/jicofo.conf"))
			os.Symlink("/victim", e.real("/etc/jitsi/jicofo/jicofo.conf"))
		}, "/etc/jitsi/jicofo/jicofo.conf update", plan.ReasonSymlinkPlanted, false},
		{"package replaced", func(e *env) {
			e.write("/etc/jitsi/videobridge/jvb.conf", "# default config shipped by the package\n")
		}, "/etc/jitsi/videobridge/jvb.conf update", plan.ReasonPackageReplaced, false},
		{"link removed", func(e *env) { os.Remove(e.real("/etc/prosody/conf.d/meet.cfg.lua")) }, "/etc/prosody/conf.d/meet.cfg.lua create", plan.ReasonMissing, false},
		{"link retargeted", func(e *env) {
			os.Remove(e.real("/etc/prosody/conf.d/meet.cfg.lua"))
			os.Symlink("../conf.avail/other.cfg.lua", e.real("/etc/prosody/conf.d/meet.cfg.lua"))
		}, "/etc/prosody/conf.d/meet.cfg.lua symlink", plan.ReasonDrift, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				testenv.Root(t, "changing a file's owner")
			}
			e := newEnv(t)
			set := sampleSet("a")
			e.apply(set)
			tc.mutate(e)
			p := e.plan(set)
			if p.ExitCode() != 2 {
				t.Fatalf("exit code %d, want 2", p.ExitCode())
			}
			if got := reasons(p); got[tc.key] != tc.reason || len(got) != 1 {
				t.Fatalf("changes %v, want only %s: %s", got, tc.key, tc.reason)
			}
			if hc := p.HostChanged(); len(hc) != 1 {
				t.Fatalf("host_changed paths %v", hc)
			}
			e.apply(set)
			e.assertConverged(set)
			if tc.name == "planted symlink" {
				if b, _ := os.ReadFile(e.real("/victim")); string(b) != "do not touch\n" {
					t.Fatalf("wrote through a planted symlink: %q", b)
				}
			}
			if tc.name == "owner" {
				fi, _ := os.Stat(e.real("/etc/prosody/conf.avail/meet.cfg.lua"))
				if uid, gid := ownerOf(fi); uid != 0 || gid != 1 { // root:daemon
					t.Fatalf("owner %d:%d, want 0:1", uid, gid)
				}
			}
		})
	}
}

func TestWriteThroughDebianLink(t *testing.T) {
	e := newEnv(t)
	// The package installed conf.d/x -> ../conf.avail/x; the set has only
	// the conf.d path as a regular file.
	os.MkdirAll(e.real("/etc/prosody/conf.avail"), 0o755)
	os.MkdirAll(e.real("/etc/prosody/conf.d"), 0o755)
	e.write("/etc/prosody/conf.avail/x.cfg.lua", "-- from the package\n")
	os.Symlink("../conf.avail/x.cfg.lua", e.real("/etc/prosody/conf.d/x.cfg.lua"))
	set := &render.Set{Files: []render.File{{Path: "/etc/prosody/conf.d/x.cfg.lua", Kind: render.KindFile, Mode: 0o644,
		Content: []byte("-- jitsi-agent\n"), Component: "prosody"}}}
	p := e.plan(set)
	if len(p.Changes) != 1 || p.Changes[0].WritePath != "/etc/prosody/conf.avail/x.cfg.lua" || p.Changes[0].Reason != plan.ReasonNew {
		t.Fatalf("changes %+v", p.Changes)
	}
	e.apply(set)
	if got, _ := os.Readlink(e.real("/etc/prosody/conf.d/x.cfg.lua")); got != "../conf.avail/x.cfg.lua" {
		t.Fatalf("link replaced: %q", got)
	}
	if e.read("/etc/prosody/conf.avail/x.cfg.lua") != "-- jitsi-agent\n" {
		t.Fatal("target not written")
	}
	e.assertConverged(set)
}

func TestParentSymlinkRefused(t *testing.T) {
	e := newEnv(t)
	os.MkdirAll(e.real("/elsewhere"), 0o755)
	os.MkdirAll(e.real("/etc"), 0o755)
	os.Symlink("/elsewhere", e.real("/etc/nginx"))
	set := &render.Set{Files: []render.File{{Path: "/etc/nginx/sites-available/x.conf", Kind: render.KindFile, Content: []byte("x\n")}}}
	_, err := Apply(context.Background(), set, e.opts)
	if err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Fatalf("want refusal, got %v", err)
	}
	if ents, _ := os.ReadDir(e.real("/elsewhere")); len(ents) != 0 {
		t.Fatalf("wrote through a symlinked directory: %v", ents)
	}
}

// TestFailingCheckChangesNothing: a File.Check of `false` on one file of an
// update touching every file leaves all files byte-identical.
func TestFailingCheckChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.apply(sampleSet("a"))
	before := e.snapshot()
	b := sampleSet("b")
	for i := range b.Files {
		if b.Files[i].Path == "/etc/jitsi/videobridge/jvb.conf" {
			b.Files[i].Check = "echo checking {{.Path}}; echo bad value " + secretB + " >&2; false"
		}
	}
	// New parent directories must not survive a failed check either.
	b.Files = append(b.Files, render.File{Path: "/opt/new/dir/file.txt", Kind: render.KindFile, Content: []byte("x\n"), Component: "template:x"})
	b.Sort()
	_, err := Apply(context.Background(), b, e.opts)
	var ce *CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("want *CheckError, got %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "/etc/jitsi/videobridge/jvb.conf") || !strings.Contains(msg, "bad value") || !strings.Contains(msg, "checking /etc/jitsi/videobridge/jvb.conf (staged)") {
		t.Fatalf("error does not name the file and output: %s", msg)
	}
	if strings.Contains(msg, secretB) {
		t.Fatalf("secret leaked into the error: %s", msg)
	}
	after := e.snapshot()
	if len(after) != len(before) {
		t.Fatalf("files appeared/disappeared: %d -> %d", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("%s changed by a failed apply", k)
		}
	}
	if _, err := os.Stat(e.real("/opt")); err == nil {
		t.Fatal("parent directories created for the failed apply remain")
	}
	e.assertNoTemps()
	if _, err := os.Stat(e.real(stateDir + "/backups/2")); err == nil {
		t.Fatal("backup recorded for a failed apply")
	}
}

func TestBuiltinCheckRejectsEmpty(t *testing.T) {
	e := newEnv(t)
	set := &render.Set{Files: []render.File{{Path: "/etc/jitsi/jicofo/jicofo.conf", Kind: render.KindFile, Component: "jicofo"}}}
	_, err := Apply(context.Background(), set, e.opts)
	if err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("want empty-content failure, got %v", err)
	}
	e.assertNoTemps()
}

func TestCheckTimeout(t *testing.T) {
	e := newEnv(t)
	e.opts.CheckTimeout = 200 * time.Millisecond
	set := &render.Set{Files: []render.File{{Path: "/etc/x.conf", Kind: render.KindFile, Content: []byte("x\n"), Check: "sleep 30"}}}
	start := time.Now()
	_, err := Apply(context.Background(), set, e.opts)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("want timeout, got %v", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatal("check timeout not enforced")
	}
	if _, err := os.Stat(e.real("/etc/x.conf")); err == nil {
		t.Fatal("file written despite failed check")
	}
}

func TestCheckPassesWithStagedPath(t *testing.T) {
	e := newEnv(t)
	set := &render.Set{Files: []render.File{{Path: "/etc/x.conf", Kind: render.KindFile, Content: []byte("hello\n"), Check: "grep -q hello {{.Path}}"}}}
	e.apply(set)
	e.assertConverged(set)
}

func TestLeftoverTempCleaned(t *testing.T) {
	e := newEnv(t)
	set := sampleSet("a")
	e.apply(set)
	leftover := e.real("/etc/jitsi/jicofo/.jicofo.conf.jitsi-agent-tmp-123456")
	os.WriteFile(leftover, []byte("half"), 0o600)
	res := e.apply(set)
	if _, err := os.Stat(leftover); err == nil {
		t.Fatal("leftover temp file not removed")
	}
	if len(res.Notices) == 0 || !strings.Contains(res.Notices[0], "leftover") {
		t.Fatalf("notices %v", res.Notices)
	}
	e.assertConverged(set)
}

func TestBackupsKeptAndRollback(t *testing.T) {
	e := newEnv(t)
	e.opts.Keep = 3
	a, b := sampleSet("a"), sampleSet("b")
	e.apply(a) // 1
	snapA := e.snapshot()
	e.apply(b) // 2
	snapB := e.snapshot()
	// Roll back the last apply: the host is as after serial 1.
	res, err := Rollback(context.Background(), Previous, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Serial != 3 || len(res.Units) == 0 {
		t.Fatalf("rollback result: serial %d units %v", res.Serial, res.Units)
	}
	got := e.snapshot()
	for k, v := range snapA {
		if got[k] != v {
			t.Fatalf("%s not restored", k)
		}
	}
	// meet-b.conf was created by apply 2 and is removed again.
	if _, err := os.Stat(e.real("/etc/nginx/sites-available/meet-b.conf")); err == nil {
		t.Fatal("file created by the rolled-back apply still exists")
	}
	e.assertConverged(a) // the manifest records the restored state
	p := e.plan(b)
	if r := reasons(p)["/etc/turnserver.conf update"]; r != plan.ReasonSpecChanged {
		t.Fatalf("after rollback, plan of b: %v", reasons(p))
	}
	// Undo the rollback.
	if _, err := Rollback(context.Background(), Previous, e.opts); err != nil {
		t.Fatal(err)
	}
	got = e.snapshot()
	for k, v := range snapB {
		if got[k] != v {
			t.Fatalf("%s not restored by the second rollback", k)
		}
	}
	// Rollback to 0 needs backups 1..4; Keep=3 pruned serial 1.
	_, err = Rollback(context.Background(), 0, e.opts)
	if err == nil || !strings.Contains(err.Error(), "no longer kept") {
		t.Fatalf("want pruned-backup error, got %v", err)
	}
	if n := len(backupSerials(e.real(stateDir))); n != 3 {
		t.Fatalf("%d backups kept, want 3", n)
	}
}

func TestRollbackNothingApplied(t *testing.T) {
	e := newEnv(t)
	if _, err := Rollback(context.Background(), Previous, e.opts); err == nil {
		t.Fatal("rollback without applies must fail")
	}
}

func TestApplyGoldenWithRealTools(t *testing.T) {
	testenv.LookPath(t, "nginx", "apt-get install nginx-light")
	testenv.LookPath(t, "luac5.4", "apt-get install lua5.4")
	e := newEnv(t)
	e.opts.NoTools = false
	set := goldenSet(t, "everything")
	localOwners(set)
	res := e.apply(set)
	if !res.Changed() {
		t.Fatal("nothing applied")
	}
	e.assertConverged(set)
	for _, n := range res.Notices {
		if strings.Contains(n, "not installed") {
			t.Fatalf("tool missing: %s", n)
		}
	}
}

func TestNginxCheckFailureChangesNothing(t *testing.T) {
	testenv.LookPath(t, "nginx", "apt-get install nginx-light")
	e := newEnv(t)
	e.opts.NoTools = false
	set := goldenSet(t, "everything")
	localOwners(set)
	e.apply(set)
	before := e.snapshot()
	bad := goldenSet(t, "everything")
	localOwners(bad)
	for i := range bad.Files {
		f := &bad.Files[i]
		if strings.HasPrefix(f.Path, "/etc/nginx/sites-available/") {
			f.Content = append(append([]byte{}, f.Content...), []byte("\nserver { listen 80; bogus_directive on; }\n")...)
		} else if f.Kind == render.KindFile {
			f.Content = append(append([]byte{}, f.Content...), []byte("\n")...)
		}
	}
	_, err := Apply(context.Background(), bad, e.opts)
	if err == nil || !strings.Contains(err.Error(), "nginx -t") || !strings.Contains(err.Error(), "bogus_directive") ||
		!strings.Contains(err.Error(), "/etc/nginx/sites-available/meet.example.com.conf") {
		t.Fatalf("want nginx -t failure naming the site, got %v", err)
	}
	after := e.snapshot()
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("%s changed by a failed apply", k)
		}
	}
	e.assertNoTemps()
}

func TestLuacCheckFailure(t *testing.T) {
	testenv.LookPath(t, "luac5.4", "apt-get install lua5.4")
	e := newEnv(t)
	e.opts.NoTools = false
	set := &render.Set{Files: []render.File{{Path: "/etc/prosody/conf.avail/x.cfg.lua", Kind: render.KindFile,
		Content: []byte("VirtualHost \"x\"\n  modules_enabled = { \"a\", \n"), Component: "prosody"}}}
	_, err := Apply(context.Background(), set, e.opts)
	if err == nil || !strings.Contains(err.Error(), "luac -p") || !strings.Contains(err.Error(), "/etc/prosody/conf.avail/x.cfg.lua (staged)") {
		t.Fatalf("want luac failure, got %v", err)
	}
	e.assertNoTemps()
}

// A built-in file gets the validators its files-table row lists
// (render.File.Validators), not what its path would suggest: a row without
// luac and prosodyctl at a Prosody vhost path is not run through them,
// while the same file without a row (a user template) is.
func TestValidatorsComeFromTheRow(t *testing.T) {
	testenv.LookPath(t, "luac5.4", "apt-get install lua5.4")
	bad := []byte("VirtualHost \"x\"\n  modules_enabled = { \"a\", \n")
	for _, tc := range []struct {
		name       string
		validators []files.Validator
		wantLuac   bool
	}{
		{"row without luac", []files.Validator{files.Builtin}, false},
		{"row with luac", []files.Validator{files.Builtin, files.Luac}, true},
		{"no row (path rules)", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.opts.NoTools = false
			set := &render.Set{Files: []render.File{{Path: "/etc/prosody/conf.avail/x.cfg.lua", Kind: render.KindFile,
				Content: bad, Component: "prosody", Validators: tc.validators}}}
			_, err := Apply(context.Background(), set, e.opts)
			if ran := err != nil && strings.Contains(err.Error(), "luac -p"); ran != tc.wantLuac {
				t.Fatalf("luac ran: %v, want %v (err %v)", ran, tc.wantLuac, err)
			}
		})
	}
}

func TestUndoGuardsSerial(t *testing.T) {
	e := newEnv(t)
	a, b := sampleSet("a"), sampleSet("b")
	e.apply(a)
	res := e.apply(b)
	if _, err := Undo(context.Background(), res.Serial-1, e.opts); err == nil {
		t.Fatal("undo of a non-last serial must fail")
	}
	u, err := Undo(context.Background(), res.Serial, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if u.Serial != res.Serial+1 {
		t.Fatalf("undo serial %d", u.Serial)
	}
	e.assertConverged(a)
}

func TestProsodyctlCheckFailure(t *testing.T) {
	testenv.LookPath(t, "prosodyctl", "apt-get install prosody")
	e := newEnv(t)
	e.opts.NoTools = false
	// Valid Lua, invalid Prosody config: a Component without a type where
	// a VirtualHost's option is expected is fine for luac, but a call of an
	// undefined global fails when Prosody loads the file.
	set := &render.Set{Files: []render.File{{Path: "/etc/prosody/conf.avail/x.cfg.lua", Kind: render.KindFile,
		Content: []byte("VirtualHost \"x.example.com\"\n    no_such_function_in_prosody_config()\n"), Component: "prosody"}}}
	_, err := Apply(context.Background(), set, e.opts)
	if err == nil || !strings.Contains(err.Error(), "prosodyctl check config") || !strings.Contains(err.Error(), "/etc/prosody/conf.avail/x.cfg.lua") {
		t.Fatalf("want prosodyctl failure naming the file, got %v", err)
	}
	t.Log(err)
	e.assertNoTemps()
	good := goldenSet(t, "everything")
	localOwners(good)
	e.apply(good)
	e.assertConverged(good)
}

func TestSkipKeepsDriftReported(t *testing.T) {
	e := newEnv(t)
	set := sampleSet("a")
	e.apply(set)
	e.write("/etc/jitsi/videobridge/jvb.conf", "# Managed by jitsi-agent\nlocal edit\n")
	os.Chmod(e.real("/etc/turnserver.conf"), 0o600)
	e.opts.Skip = func(c plan.Change) bool { return c.HostChanged && c.Path == "/etc/jitsi/videobridge/jvb.conf" }
	res := e.apply(set)
	if len(res.Skipped) != 1 || len(res.Changes) != 1 || res.Changes[0].Path != "/etc/turnserver.conf" {
		t.Fatalf("changes %v skipped %v", res.Paths(), res.Skipped)
	}
	if e.read("/etc/jitsi/videobridge/jvb.conf") != "# Managed by jitsi-agent\nlocal edit\n" {
		t.Fatal("skipped file was written")
	}
	p := e.plan(set)
	if r := reasons(p); len(r) != 1 || r["/etc/jitsi/videobridge/jvb.conf update"] != plan.ReasonDrift {
		t.Fatalf("drift no longer reported: %v", r)
	}
}
