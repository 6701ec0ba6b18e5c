// Package deferred keeps the disruptive restarts that the spec's
// restart = "defer" postponed (state_dir/deferred-restarts.json): the
// reloader records them, plan, status, services and the daemon show them,
// and apply --restart-deferred runs them.
package deferred

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
)

// Restart is a disruptive restart that the spec's `restart = "defer"`
// postponed: the unit runs with older files than the ones on disk until
// `apply --restart-deferred` restarts it.
type Restart struct {
	Unit      string    `json:"unit"`
	Component string    `json:"component"`
	Since     time.Time `json:"since"` // first apply that deferred it
	Reason    string    `json:"reason"`
}

// File is the file name of the deferred restarts in the state dir.
const File = "deferred-restarts.json"

// Path is where a state dir keeps the deferred restarts.
func Path(stateDir string) string { return filepath.Join(stateDir, File) }

// deferredFile is the on-disk form (a version field for later changes).
type deferredFile struct {
	Version int       `json:"version"`
	Units   []Restart `json:"units"`
}

// Load reads the pending deferred restarts (none when the file does not
// exist), sorted in reload order. plan and status show these.
func Load(path string) ([]Restart, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading deferred restarts: %w", err)
	}
	var f deferredFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("reading deferred restarts %s: %w", path, err)
	}
	sort.SliceStable(f.Units, func(i, j int) bool {
		ri, rj := files.Rank(f.Units[i].Component), files.Rank(f.Units[j].Component)
		if ri != rj {
			return ri < rj
		}
		return f.Units[i].Unit < f.Units[j].Unit
	})
	return f.Units, nil
}

// save writes the list atomically (temp file, fsync, rename, fsync
// of the directory); an empty list removes the file.
func save(path string, units []Restart) error {
	if len(units) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clearing deferred restarts: %w", err)
		}
		return nil
	}
	b, err := json.MarshalIndent(deferredFile{Version: 1, Units: units}, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding deferred restarts: %w", err)
	}
	if err := fsys.MkdirPrivate(filepath.Dir(path)); err != nil {
		return fmt.Errorf("saving deferred restarts: %w", err)
	}
	if err := fsys.WriteAtomic(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving deferred restarts: %w", err)
	}
	return nil
}

// Update applies add/remove (units) to the stored list. Entries already
// present keep their Since. An empty path does nothing.
func Update(path string, add []Restart, remove []string) error {
	if path == "" || (len(add) == 0 && len(remove) == 0) {
		return nil
	}
	cur, err := Load(path)
	if err != nil {
		return err
	}
	drop := map[string]bool{}
	for _, u := range remove {
		drop[u] = true
	}
	var out []Restart
	have := map[string]bool{}
	for _, d := range cur {
		if drop[d.Unit] {
			continue
		}
		have[d.Unit] = true
		out = append(out, d)
	}
	for _, d := range add {
		if !have[d.Unit] && !drop[d.Unit] {
			have[d.Unit] = true
			out = append(out, d)
		}
	}
	return save(path, out)
}
