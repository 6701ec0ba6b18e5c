package stamp

import (
	"os"
	"path/filepath"
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
	now := time.Now()
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
	now := time.Now()
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
