package apply

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// The intent journal closes the window between swapping files and
// recording them. Before the first swap, an operation writes
// <state>/journal.json: its serial, the manifest serial it started from,
// and every change it is about to make (with the units to reload). Then:
//
//   - the manifest is saved with that serial: the journal is committed; it
//     stays until the caller confirms the units were reloaded (Settle);
//   - a later run (Apply, Rollback, Undo) finds an uncommitted journal: the
//     operation died between swap and record, so every file it swapped is
//     put back from the backup (the host is again exactly the recorded
//     state, and the next plan changes, and reloads, all of it);
//   - a later run finds a committed, unsettled journal: the files are
//     recorded but their units may never have been reloaded, so the
//     journal's changes are added to that run's Result (reason
//     "interrupted") and reloaded with it.
//
// So a crash never leaves a service on an old file while another got the
// new one, rollback always has the true previous set, and nothing swapped
// is adopted silently as "already matching".

// JournalFile is the journal's name in the state directory.
const JournalFile = "journal.json"

const journalVersion = 1

// A journal is committed when the manifest carries its serial (the
// manifest is saved right after the last swap).
type journal struct {
	Version   int           `json:"version"`
	Serial    int           `json:"serial"`      // the operation's serial
	From      int           `json:"from_serial"` // manifest serial it started from
	Operation string        `json:"operation"`
	Changes   []plan.Change `json:"changes"` // what to reload (and revert)
}

func (r *runner) journalPath() string { return filepath.Join(r.state, JournalFile) }

func (r *runner) loadJournal() (*journal, error) {
	b, err := os.ReadFile(r.journalPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil || j.Version != journalVersion {
		return nil, fmt.Errorf("journal %s is unreadable (%v); the files it describes are listed in backups/: inspect, then remove it", r.journalPath(), err)
	}
	return &j, nil
}

func (r *runner) saveJournal(j *journal) error {
	j.Version = journalVersion
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := fsys.WriteAtomic(r.journalPath(), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

func (r *runner) removeJournal() error {
	if err := os.Remove(r.journalPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("journal: %w", err)
	}
	return fsys.SyncDir(r.state)
}

// dropJournal removes the journal after an operation undid itself; a
// failure leaves it for the next run, which finds nothing to revert.
func (r *runner) dropJournal() {
	if err := r.removeJournal(); err != nil {
		r.notice("%v", err)
	}
}

// recover finishes or reverts what an interrupted operation left (see the
// comment above) and returns the changes whose units still need a reload.
// It runs under the lock before anything else reads the host.
func (r *runner) recover(m *manifest.Manifest) ([]plan.Change, error) {
	j, err := r.loadJournal()
	if err != nil || j == nil {
		return nil, err
	}
	if j.Serial == m.Serial {
		r.notice("operation %d was recorded but its units were not confirmed reloaded: reloading them with this run", j.Serial)
		pending := make([]plan.Change, 0, len(j.Changes))
		for _, c := range j.Changes {
			c.Reason = plan.ReasonInterrupted
			pending = append(pending, c)
		}
		return pending, nil
	}
	if j.Serial < m.Serial || j.From != m.Serial {
		// Superseded (a later operation was recorded): nothing to do.
		return nil, r.removeJournal()
	}
	// Not recorded: put back what was swapped.
	dir := backupDir(r.state, j.Serial)
	idx, err := loadIndex(dir)
	if errors.Is(err, fs.ErrNotExist) {
		// The journal is written after the backup: without one, no swap
		// happened.
		return nil, r.removeJournal()
	}
	if err != nil {
		return nil, fmt.Errorf("recover interrupted operation %d: %w", j.Serial, err)
	}
	reverted := 0
	for _, e := range idx.Entries {
		cur, _, err := r.snapshot(e.Dest)
		if err != nil {
			return nil, fmt.Errorf("recover interrupted operation %d: %w", j.Serial, err)
		}
		if r.sameState(cur, e) {
			continue // never swapped
		}
		hostSum := cur.SHA256
		if cur.Kind == string(render.KindSymlink) {
			hostSum = "link:" + cur.Target
		}
		swapped := (cur.Existed && hostSum == e.NewSHA256) || (!cur.Existed && e.NewSHA256 == absent)
		if !swapped {
			r.notice("%s changed after operation %d was interrupted; left as it is", e.Dest, j.Serial)
			continue
		}
		if err := r.restoreEntry(dir, e); err != nil {
			return nil, fmt.Errorf("recover interrupted operation %d: restore %s: %w", j.Serial, e.Dest, err)
		}
		reverted++
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("recover interrupted operation %d: %w", j.Serial, err)
	}
	r.notice("operation %d was interrupted before it was recorded: %d file(s) put back as recorded in serial %d", j.Serial, reverted, m.Serial)
	return nil, r.removeJournal()
}

// absent is the NewSHA256 of an entry the operation removes.
const absent = "absent"

// sameState reports whether the host entry cur is the pre-image e.
func (r *runner) sameState(cur, e backupEntry) bool {
	if cur.Existed != e.Existed {
		return false
	}
	if !cur.Existed {
		return true
	}
	if cur.Kind != e.Kind || cur.SHA256 != e.SHA256 || cur.Target != e.Target || cur.Mode != e.Mode {
		return false
	}
	return !r.host.CanChown() || (cur.UID == e.UID && cur.GID == e.GID)
}

// Settle tells the journal that the units of every operation up to serial
// were reloaded (or deliberately not: --root, no systemd). Until then a
// later run reloads them again.
func Settle(opts Options, serial int) error {
	r, unlock, err := newRunner(opts, nil)
	if err != nil {
		return err
	}
	defer unlock()
	j, err := r.loadJournal()
	if err != nil || j == nil {
		return err
	}
	m, err := manifest.Load(manifest.Path(r.state))
	if err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	if j.Serial <= serial && j.Serial <= m.Serial {
		return r.removeJournal()
	}
	return nil
}

// mergeChanges adds pending changes (from a journal) to changes, skipping
// paths changes already has.
func mergeChanges(changes, pending []plan.Change) []plan.Change {
	have := map[string]bool{}
	for _, c := range changes {
		have[c.Path] = true
	}
	out := append([]plan.Change(nil), changes...)
	for _, c := range pending {
		if !have[c.Path] {
			out = append(out, c)
			have[c.Path] = true
		}
	}
	return out
}
