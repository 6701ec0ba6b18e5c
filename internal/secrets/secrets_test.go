package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func TestEnsureGeneratesOnceAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "secrets")
	a, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"focus": a.Password("focus").Reveal(), "jvb": a.Password("jvb").Reveal(), "turn": a.TURNSecret.Reveal()} {
		if len(s) != Length || strings.Trim(s, alphabet) != "" {
			t.Errorf("%s secret has unexpected form (len %d)", name, len(s))
		}
	}
	if a.Password("focus").Reveal() == a.Password("jvb").Reveal() {
		t.Error("focus and jvb passwords are equal")
	}
	b, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Password("focus").Reveal() != b.Password("focus").Reveal() || a.TURNSecret.Reveal() != b.TURNSecret.Reveal() {
		t.Error("second Ensure generated new secrets instead of reusing them")
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %o, want 0700", st.Mode().Perm())
	}
	for _, n := range []string{"focus_password", "jvb_password", TURNSecret, "jibri_password", "recorder_password"} {
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %o, want 0600", n, st.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 5 {
		t.Errorf("want exactly 5 files (no temp leftovers), got %d", len(entries))
	}
}

func TestEnsureTightensModesAndRejectsEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "focus_password"), []byte("kept-value-123\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Password("focus").Reveal() != "kept-value-123" {
		t.Errorf("existing secret not reused")
	}
	st, _ := os.Stat(filepath.Join(dir, "focus_password"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode not tightened: %o", st.Mode().Perm())
	}
	if err := os.WriteFile(filepath.Join(dir, "jvb_password"), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Ensure(dir)
	if err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("want empty-secret error, got %v", err)
	}
}

func TestLoadDoesNotCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "none")
	_, ok, err := Load(dir)
	if err != nil || ok {
		t.Fatalf("Load on missing dir: ok=%v err=%v", ok, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("Load created the directory")
	}
}
func TestEnsureParentsTraversable(t *testing.T) {
	root := t.TempDir()
	state := filepath.Join(root, "var", "lib", "jitsi-agent")
	if _, err := Ensure(Dir(state)); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{filepath.Join(root, "var"): 0o755, filepath.Join(root, "var", "lib"): 0o755, state: 0o700, Dir(state): 0o700} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want %04o", p, fi.Mode().Perm(), err, want)
		}
	}
}

// TestEnsureRaceOneValue: applies racing on a fresh host all get the one
// stored value (first writer wins), never one each.
func TestEnsureRaceOneValue(t *testing.T) {
	for round := 0; round < 20; round++ {
		dir := filepath.Join(t.TempDir(), "secrets")
		const n = 8
		results := make(chan spec.Secrets, n)
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			go func() {
				s, err := Ensure(dir)
				errs <- err
				results <- s
			}()
		}
		var first spec.Secrets
		for i := 0; i < n; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
			s := <-results
			if i == 0 {
				first = s
				continue
			}
			if s.Password("jvb").Reveal() != first.Password("jvb").Reveal() || s.Password("focus").Reveal() != first.Password("focus").Reveal() || s.TURNSecret.Reveal() != first.TURNSecret.Reveal() {
				t.Fatalf("round %d: racing Ensure calls got different secrets", round)
			}
		}
		stored, _, _ := Load(dir)
		if stored.Password("jvb").Reveal() != first.Password("jvb").Reveal() {
			t.Fatalf("round %d: the stored secret differs from the one returned", round)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != len(items(&first)) {
			names := []string{}
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("round %d: entries in the secrets dir: %v (temporary files left?)", round, names)
		}
	}
}
