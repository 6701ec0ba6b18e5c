package fsys

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

func TestRealAndReadFileNoFollow(t *testing.T) {
	root := t.TempDir()
	h, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Real("/etc/../etc/x"); got != filepath.Join(root, "etc/x") {
		t.Fatalf("Real: %s", got)
	}
	if got := h.Real("../../outside"); !strings.HasPrefix(got, root) {
		t.Fatalf("Real escapes the root: %s", got)
	}
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/x"), []byte("data"), 0o644)
	os.Symlink("x", filepath.Join(root, "etc/link"))
	if b, err := h.ReadFile("/etc/x"); err != nil || string(b) != "data" {
		t.Fatalf("ReadFile: %q %v", b, err)
	}
	if _, err := h.ReadFile("/etc/link"); err == nil {
		t.Fatal("ReadFile followed a symlink")
	}
	if _, err := New(filepath.Join(root, "etc/x")); err == nil {
		t.Fatal("a file accepted as root")
	}
}

func TestStageCommit(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "f.conf")
	os.WriteFile(dest, []byte("old"), 0o644)
	tmp, err := Stage(dest, []byte("new"), 0o640, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if base := filepath.Base(tmp); !strings.HasPrefix(base, ".f.conf"+TempMarker) || !IsTemp(base) {
		t.Fatalf("temp name %s", base)
	}
	fi, _ := os.Stat(tmp)
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("staged mode %v", fi.Mode())
	}
	if b, _ := os.ReadFile(dest); string(b) != "old" {
		t.Fatal("stage touched the destination")
	}
	if err := Commit(tmp, dest); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dest); string(b) != "new" {
		t.Fatal("commit did not replace")
	}
	// A symlink at the destination is replaced, never followed.
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	os.Remove(dest)
	os.Symlink(victim, dest)
	tmp, _ = Stage(dest, []byte("mine"), 0o644, -1, -1)
	if err := Commit(tmp, dest); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatal("wrote through a symlink")
	}
	if fi, _ := os.Lstat(dest); !fi.Mode().IsRegular() {
		t.Fatal("link not replaced by a file")
	}
}

func TestStageChownAsRoot(t *testing.T) {
	testenv.Root(t, "changing a file's owner")
	dest := filepath.Join(t.TempDir(), "f")
	tmp, err := Stage(dest, []byte("x"), 0o640, 65534, 65534)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Lstat(tmp)
	if uid, gid := Owner(fi); uid != 65534 || gid != 65534 {
		t.Fatalf("owner %d:%d", uid, gid)
	}
}

func TestMkdirAllAndCleanTemps(t *testing.T) {
	dir := t.TempDir()
	created, err := MkdirAll(filepath.Join(dir, "a/b/c"), 0o755)
	if err != nil || len(created) != 3 || created[0] != filepath.Join(dir, "a") {
		t.Fatalf("created %v %v", created, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "a/b")); fi.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v", fi.Mode())
	}
	os.WriteFile(filepath.Join(dir, "a/.x"+TempMarker+"1"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "a/keep"), nil, 0o600)
	removed, err := CleanTemps(filepath.Join(dir, "a"))
	if err != nil || len(removed) != 1 {
		t.Fatalf("removed %v %v", removed, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a/keep")); err != nil {
		t.Fatal("removed a non-temp file")
	}
	if r, err := CleanTemps(filepath.Join(dir, "missing")); err != nil || r != nil {
		t.Fatal("missing dir")
	}
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o600)
	if _, err := MkdirAll(filepath.Join(dir, "file/sub"), 0o755); err == nil {
		t.Fatal("mkdir under a file")
	}
}

func TestLookups(t *testing.T) {
	h, _ := New("/")
	if id, err := h.LookupUser("root"); err != nil || id != 0 {
		t.Fatalf("root: %d %v", id, err)
	}
	if h.UserName(0) != "root" || h.GroupName(0) != "root" {
		t.Fatal("names of 0")
	}
	if _, err := h.LookupGroup("no-such-group-xyz"); err == nil {
		t.Fatal("unknown group resolved")
	}
	if h.UserName(987654) != "987654" {
		t.Fatal("unknown uid should print as a number")
	}
	_, err := h.Lstat("/no/such")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
}

func TestMkdirPrivateParents0755(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "var", "lib", "jitsi-agent")
	if err := MkdirPrivate(dir); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{filepath.Join(root, "var"): 0o755, filepath.Join(root, "var", "lib"): 0o755, dir: 0o700} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want %04o", p, fi.Mode().Perm(), err, want)
		}
	}
	if err := MkdirPrivate(dir); err != nil { // existing: fine
		t.Fatal(err)
	}
	f := filepath.Join(root, "file")
	os.WriteFile(f, nil, 0o600)
	if err := MkdirPrivate(f); err == nil {
		t.Fatal("a file accepted as directory")
	}
}

func TestTempMarkerMatchesSpec(t *testing.T) {
	if TempMarker != spec.TempMarker {
		t.Fatalf("fsys.TempMarker %q != spec.TempMarker %q: the destination guard would miss temporary names", TempMarker, spec.TempMarker)
	}
}

func TestOpenDirNeverFollowsSymlinks(t *testing.T) {
	root := t.TempDir()
	o, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	d, created, err := o.OpenDir("/srv/app/frontend", true, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 3 {
		t.Fatalf("created %v", created)
	}
	for _, c := range created {
		if fi, _ := os.Stat(c); fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v", c, fi.Mode().Perm())
		}
	}
	name, err := d.Stage("x.conf", []byte("x"), 0o640, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !IsTemp(name) {
		t.Fatalf("staged name %q is not a temp name", name)
	}
	if err := d.Commit(name, "x.conf"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if b, _ := os.ReadFile(filepath.Join(root, "srv/app/frontend/x.conf")); string(b) != "x" {
		t.Fatalf("content %q", b)
	}
	victim := t.TempDir()
	os.Symlink(victim, filepath.Join(root, "srv/link"))
	for _, p := range []string{"/srv/link", "/srv/link/sub"} {
		if _, _, err := o.OpenDir(p, true, 0o755); err == nil || !strings.Contains(err.Error(), "symlink") {
			t.Errorf("%s: want a refusal, got %v", p, err)
		}
	}
	if ents, _ := os.ReadDir(victim); len(ents) != 0 {
		t.Fatal("OpenDir created something in a symlink's target")
	}
}
