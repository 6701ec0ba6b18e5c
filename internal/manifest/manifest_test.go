package manifest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := Path(dir)
	m, err := Load(p)
	if err != nil || m.Serial != 0 || len(m.Files) != 0 {
		t.Fatalf("missing manifest: %+v %v", m, err)
	}
	m.Serial, m.AppliedAt, m.Operation = 3, time.Unix(100, 0).UTC(), "apply"
	m.SetFiles([]Entry{
		{Path: "/z", Kind: "file", SHA256: "ab", Mode: "0640", Serial: 3},
		{Path: "/a", Kind: "symlink", Target: "../b", Serial: 2},
	})
	if err := m.Save(p); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("manifest mode %v", fi.Mode())
	}
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != 3 || got.Files[0].Path != "/a" || !got.AppliedAt.Equal(m.AppliedAt) {
		t.Fatalf("round trip: %+v", got)
	}
	if e, ok := got.Lookup("/z"); !ok || !e.SameState(m.Files[1]) {
		t.Fatalf("lookup: %+v", e)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
	os.WriteFile(p, []byte(`{"version": 99}`), 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("want version error, got %v", err)
	}
	os.WriteFile(p, []byte(`{`), 0o600)
	if _, err := Load(p); err == nil {
		t.Fatal("corrupt manifest accepted")
	}
	_ = filepath.Join
}

func TestModes(t *testing.T) {
	for _, v := range []uint32{0o644, 0o600, 0o4755, 0o2750, 0o1777} {
		m := FromUnixMode(v)
		if ToUnixMode(m) != v {
			t.Fatalf("%o round trip: %o", v, ToUnixMode(m))
		}
		e := Entry{Mode: ModeString(m)}
		if got, err := e.FileMode(); err != nil || got != m {
			t.Fatalf("%s: %v %v", e.Mode, got, err)
		}
	}
	if ModeString(0o640) != "0640" || ModeString(fs.ModeSetuid|0o755) != "4755" {
		t.Fatal("ModeString")
	}
}
