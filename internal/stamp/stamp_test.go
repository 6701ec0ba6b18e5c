package stamp

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/planfile"
)

// fixture is a root with two managed files, a state directory with a
// secret, a spec input, and one looked-up environment variable.
type fixture struct {
	root, spec string
	env        map[string]string
	facts      Facts
}

const stateDir = "/var/lib/jitsi-agent"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{root: filepath.Join(dir, "root"), spec: filepath.Join(dir, "meet.hcl"), env: map[string]string{"APP_SECRET": "s1"}}
	write := func(p, content string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(f.spec, `domain = "meet.example.com"`, 0o644)
	write(filepath.Join(f.root, "etc/prosody/conf.avail/meet.cfg.lua"), "VirtualHost", 0o640)
	write(filepath.Join(f.root, "etc/nginx/sites-available/meet.conf"), "server {}", 0o644)
	write(filepath.Join(f.root, stateDir, "secrets/focus_password"), "pw", 0o600)
	rec := &planfile.EnvRecorder{Env: f.lookup}
	rec.Lookup("APP_SECRET")
	f.facts = Facts{Key: Key{Program: "jitsi-agent v1 /usr/bin/jitsi-agent ino=1", Args: []string{"digest-of-args"}, Dir: dir},
		Root: f.root, StateDir: stateDir, Inputs: []string{f.spec}, Env: rec.Digests(),
		Managed: []string{"/etc/nginx/sites-available/meet.conf", "/etc/prosody/conf.avail/meet.cfg.lua"}}
	return f
}

func (f *fixture) lookup(name string) (string, bool) { v, ok := f.env[name]; return v, ok }

func (f *fixture) record(t *testing.T, now time.Time) {
	t.Helper()
	s, err := Collect(f.facts, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(f.root, stateDir, s, "out\n", "notice\n"); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) check(now time.Time) *Stamp {
	return Check(f.root, stateDir, f.facts.Key, f.lookup, now)
}

func TestStampMatchesUntouchedHost(t *testing.T) {
	f := newFixture(t)
	now := time.Now().Add(2 * racyWindow) // every file is older than the window: compared by Lstat
	f.record(t, now)
	s := f.check(now.Add(time.Minute))
	if s == nil {
		t.Fatal("an untouched host does not match its stamp")
	}
	if s.Stdout != "out\n" || s.Stderr != "notice\n" {
		t.Fatalf("replayed output: %q %q", s.Stdout, s.Stderr)
	}
	// The stamp is a cache, not state: a saved plan's fingerprint of the
	// state directory does not see it.
	host, err := planfile.HostFiles(f.root, nil, stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := host[filepath.Join(stateDir, Name)]; ok {
		t.Error("planfile.HostFiles fingerprints the no-op stamp")
	}
}

// Every kind of change the stamp stands for sends the apply down the full
// path.
func TestStampMismatch(t *testing.T) {
	// Recorded as if a moment later, so that the files count as settled
	// (compared by Lstat first): each change below must show there.
	now := time.Now().Add(2 * racyWindow)
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, f *fixture)
		at     time.Time
	}{
		{"spec input edited", func(t *testing.T, f *fixture) { appendTo(t, f.spec, " ") }, now},
		{"environment value changed", func(t *testing.T, f *fixture) { f.env["APP_SECRET"] = "s2" }, now},
		{"environment variable unset", func(t *testing.T, f *fixture) { delete(f.env, "APP_SECRET") }, now},
		{"managed file edited", func(t *testing.T, f *fixture) {
			appendTo(t, filepath.Join(f.root, "etc/prosody/conf.avail/meet.cfg.lua"), "x")
		}, now},
		{"managed file mode", func(t *testing.T, f *fixture) {
			chmod(t, filepath.Join(f.root, "etc/nginx/sites-available/meet.conf"), 0o600)
		}, now},
		{"managed file removed", func(t *testing.T, f *fixture) {
			if err := os.Remove(filepath.Join(f.root, "etc/nginx/sites-available/meet.conf")); err != nil {
				t.Fatal(err)
			}
		}, now},
		{"same size, modification time put back", func(t *testing.T, f *fixture) {
			p := filepath.Join(f.root, "etc/nginx/sites-available/meet.conf")
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("server {x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}, now},
		{"parent directory mode", func(t *testing.T, f *fixture) { chmod(t, filepath.Join(f.root, "etc/prosody"), 0o700) }, now},
		{"state file added (a journal left by a crash)", func(t *testing.T, f *fixture) {
			if err := os.WriteFile(filepath.Join(f.root, stateDir, "journal.json"), []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, now},
		{"stored secret changed", func(t *testing.T, f *fixture) {
			appendTo(t, filepath.Join(f.root, stateDir, "secrets/focus_password"), "2")
		}, now},
		{"other command line", func(t *testing.T, f *fixture) { f.facts.Key.Args = []string{"other"} }, now},
		{"other program", func(t *testing.T, f *fixture) { f.facts.Key.Program += "2" }, now},
		{"other working directory", func(t *testing.T, f *fixture) { f.facts.Key.Dir += "/x" }, now},
		{"stamp too old", func(*testing.T, *fixture) {}, now.Add(MaxAge + time.Second)},
		{"clock went back", func(*testing.T, *fixture) {}, now.Add(-time.Second)},
		{"Prosody's Lua modules changed under root", func(t *testing.T, f *fixture) {
			// Prosody runs under lua5.4; basexx exists only for 5.1: render
			// would link it. Then luarocks installs it for 5.4: no link.
			for p, c := range map[string]string{"usr/bin/prosody": "#!/usr/bin/lua5.4\n", "usr/share/lua/5.1/basexx.lua": "return {}\n"} {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(f.root, p)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(f.root, p), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}, now},
		{"stamp corrupt", func(t *testing.T, f *fixture) {
			if err := os.WriteFile(filepath.Join(f.root, stateDir, Name), []byte("{"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.record(t, now)
			if f.check(now) == nil {
				t.Fatal("the untouched fixture does not match")
			}
			tc.change(t, f)
			if f.check(tc.at) != nil {
				t.Fatal("the stamp still matches")
			}
		})
	}
}

func appendTo(t *testing.T, p, s string) {
	t.Helper()
	fh, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// The racy rule: a file whose change time is within racyWindow of the
// stamp is compared by content even when its Lstat is as recorded; an
// older one is trusted by its Lstat.
func TestRacyFilesAreHashed(t *testing.T) {
	f := newFixture(t)
	p := "/etc/prosody/conf.avail/meet.cfg.lua"
	s, err := Collect(f.facts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Pretend the recorded content differs while the Lstat is the same
	// (what a second write within the same clock tick would leave).
	fs := s.Files[p]
	fs.Content = "file:640:0:0:other"
	s.Files[p] = fs
	cur, err := walk(f.root, f.facts.Managed, stateDir)
	if err != nil {
		t.Fatal(err)
	}
	s.Verified = cur[p].ctime
	if ok, _ := s.filesMatch(f.root, stateDir, s.Verified); ok {
		t.Error("a file changed within the racy window was trusted by its Lstat")
	}
	s.Verified = cur[p].ctime.Add(2 * racyWindow)
	if ok, _ := s.filesMatch(f.root, stateDir, s.Verified); !ok {
		t.Error("a settled file with its recorded Lstat was not trusted (content read every time)")
	}
}

// Files too recent to be trusted by their Lstat are read; once they have
// settled, one check rewrites the stamp so that later ones need not.
func TestRacyFilesSettleOnce(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	f.record(t, now) // the files were just written: all racy
	st := func() os.FileInfo {
		fi, err := os.Stat(filepath.Join(f.root, stateDir, Name))
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	before := st()
	if f.check(now) == nil {
		t.Fatal("no match")
	}
	if st().ModTime() != before.ModTime() || st().Size() != before.Size() {
		t.Fatal("the stamp was rewritten while its files are still too recent")
	}
	later := now.Add(3 * racyWindow)
	s := f.check(later)
	if s == nil || !s.Verified.Equal(later.UTC()) {
		t.Fatalf("settled files did not refresh the stamp: %+v", s)
	}
	got, err := Load(f.root, stateDir)
	if err != nil || !got.Verified.Equal(later.UTC()) || !got.Created.Equal(now.UTC()) || got.Stdout != "out\n" {
		t.Fatalf("rewritten stamp: %+v (%v)", got, err)
	}
	if ok, refresh := got.filesMatch(f.root, stateDir, later.Add(time.Second)); !ok || refresh {
		t.Fatalf("after the refresh: match %v, refresh again %v", ok, refresh)
	}
}

// SameHost: two fingerprints of an untouched host agree; any write between
// them (here a state file) shows.
func TestSameHost(t *testing.T) {
	f := newFixture(t)
	a, err := Collect(f.facts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Collect(f.facts, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !a.SameHost(b) {
		t.Fatal("an untouched host differs from itself")
	}
	appendTo(t, filepath.Join(f.root, stateDir, "secrets/focus_password"), "x")
	c, err := Collect(f.facts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a.SameHost(c) {
		t.Fatal("a changed state file was not seen")
	}
}

// The line format keeps every field, whatever characters it holds.
func TestCodecRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 27, 13, 0, 0, 123456789, time.UTC)
	s := &Stamp{Format: FormatVersion, Created: now, Verified: now.Add(time.Second),
		Key:    Key{Program: "jitsi-agent v1 \"x\" dev=1", Args: []string{"a b", "", "\x00\n"}, Dir: "/tmp/d i r"},
		Inputs: map[string]string{"/etc/a b.hcl": "file:644:0:0:ab"}, Env: map[string]string{"X": "unset"},
		Managed: []string{"/etc/x", "/etc/y"},
		Files:   map[string]FileState{"/etc/x": {Stat: "file:1:2", Content: "file:644:0:0:cd"}, "/etc/y": {Stat: "absent", Content: "absent"}},
		Dirs:    map[string]string{"/etc": "drwxr-xr-x:0:0"}, System: map[string]string{"hostname": "h\tost"},
		Stdout: "line 1\nline \"2\"\n", Stderr: "",
	}
	got, err := decode(s.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, s)
	}
	for _, bad := range []string{"", "jitsi-agent-noop-stamp 2\n", header + " 1\nfile \"a\"\n", header + " 1\nnosuch \"a\"\n", header + " 1\ncreated \"x\n"} {
		if _, err := decode([]byte(bad)); err == nil {
			t.Errorf("decoded %q", bad)
		}
	}
}
