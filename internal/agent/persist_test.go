package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/secrets"
)

// TestPersistedRendersOnceWhenStateIsComplete: on a fresh host Persisted
// creates the secrets and the internal CA (and renders again); afterwards
// the read-only render is the desired state as it is, and equals what
// DesiredState renders.
func TestPersistedRendersOnceWhenStateIsComplete(t *testing.T) {
	f := newFixture(t)
	d := f.load()
	now := time.Now()
	ro, err := DesiredStateReadOnly(d, f.root, now)
	if err != nil {
		t.Fatal(err)
	}
	set, err := Persisted(d, f.root, now, ro)
	if err != nil {
		t.Fatal(err)
	}
	if set == ro {
		t.Fatal("fresh host: the read-only render (throwaway secrets) was kept")
	}
	if _, ok, err := secrets.Load(secrets.Dir(StateDir(d, f.root))); !ok || err != nil {
		t.Fatalf("secrets not created: %v", err)
	}
	if _, err := os.Stat(filepath.Join(StateDir(d, f.root), "internal-ca", "ca.key")); err != nil {
		t.Fatalf("internal CA not created: %v", err)
	}
	// Second run: complete state, one render.
	d = f.load()
	ro, err = DesiredStateReadOnly(d, f.root, now)
	if err != nil {
		t.Fatal(err)
	}
	set, err = Persisted(d, f.root, now, ro)
	if err != nil || set != ro {
		t.Fatalf("complete state: rendered again (%v)", err)
	}
	full, err := DesiredState(f.load(), f.root, now)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := full.Lookup(prosodyConf)
	b, ok := set.Lookup(prosodyConf)
	if !ok || string(a.Content) != string(b.Content) {
		t.Error("the kept read-only render differs from DesiredState's")
	}
	// A missing secret makes it render with DesiredState again.
	os.Remove(filepath.Join(secrets.Dir(StateDir(d, f.root)), secrets.TURNSecret))
	if set, _ := Persisted(d, f.root, now, ro); set == ro {
		t.Error("a missing secret was not recreated")
	}
	if set, _ := Persisted(d, f.root, now, nil); set == nil {
		t.Error("nil read-only set")
	}
}
