package apply

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// Backup layout under the state directory:
//
//	backups/<serial>/index.json        what apply <serial> replaced
//	backups/<serial>/files/<path>      previous content of each file (0600)
//
// index.json also holds the manifest as it was before apply <serial>, so a
// rollback restores both the files and the record.

const indexVersion = 1

type backupIndex struct {
	Version   int                `json:"version"`
	Serial    int                `json:"serial"`
	Operation string             `json:"operation"`
	CreatedAt time.Time          `json:"created_at"`
	Previous  *manifest.Manifest `json:"previous_manifest"`
	Entries   []backupEntry      `json:"entries"`
}

type backupEntry struct {
	Path    string `json:"path"` // managed path
	Dest    string `json:"dest"` // path written
	Existed bool   `json:"existed"`
	Kind    string `json:"kind,omitempty"` // file | symlink
	Target  string `json:"target,omitempty"`
	Mode    string `json:"mode,omitempty"`
	UID     int    `json:"uid"`
	GID     int    `json:"gid"`
	SHA256  string `json:"sha256,omitempty"`
	// NewSHA256 is what the operation meant to write (a crashed run's
	// entry is kept only if the host holds exactly that).
	NewSHA256 string   `json:"new_sha256,omitempty"`
	Component string   `json:"component,omitempty"`
	Units     []string `json:"units,omitempty"`
}

func (t *txn) backupDir() string { return backupDir(t.r.state, t.serial) }

func backupDir(state string, serial int) string {
	return filepath.Join(state, "backups", strconv.Itoa(serial))
}

func loadIndex(dir string) (*backupIndex, error) {
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, err
	}
	var idx backupIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("backup index %s: %w", dir, err)
	}
	if idx.Version != indexVersion {
		return nil, fmt.Errorf("backup index %s: unsupported version %d", dir, idx.Version)
	}
	return &idx, nil
}

func (idx *backupIndex) save(dir string) error {
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("backup index: %w", err)
	}
	return fsys.WriteAtomic(filepath.Join(dir, "index.json"), append(b, '\n'), 0o600)
}

// backup records the pre-image of every destination the transaction
// touches. A directory left by a crashed run with the same serial is merged:
// its entries win where the host still holds what that run wrote.
func (t *txn) backup() error {
	r := t.r
	dir := t.backupDir()
	if _, err := fsys.MkdirAll(filepath.Join(dir, "files"), 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	os.Chmod(filepath.Join(r.state, "backups"), 0o700)
	idx, err := loadIndex(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("backup: %w", err)
		}
		idx = &backupIndex{Version: indexVersion, Serial: t.serial, Operation: t.op, Previous: t.prev}
	}
	idx.CreatedAt = r.o.Now().UTC()
	byDest := map[string]int{}
	syncDirs := map[string]bool{}
	for i, e := range idx.Entries {
		byDest[e.Dest] = i
	}
	for _, o := range t.ops {
		if !o.hostOp() {
			continue
		}
		newSum := fsys.SHA256(o.content)
		if o.kind == render.KindSymlink {
			newSum = "link:" + o.target
		}
		cur, content, err := r.snapshot(o.dest)
		if err != nil {
			return fmt.Errorf("backup %s: %w", o.dest, err)
		}
		cur.Path, cur.Component, cur.Units = o.path, o.change.Component, o.change.Units
		cur.NewSHA256 = newSum
		switch {
		case o.attrs:
			cur.NewSHA256 = cur.SHA256
		case o.remove:
			cur.NewSHA256 = absent
		}
		if i, ok := byDest[o.dest]; ok {
			old := idx.Entries[i]
			hostSum := cur.SHA256
			if cur.Kind == string(render.KindSymlink) {
				hostSum = "link:" + cur.Target
			}
			if old.NewSHA256 == hostSum || (old.Existed == cur.Existed && old.SHA256 == cur.SHA256) {
				continue // keep the earlier pre-image
			}
			idx.Entries[i] = cur
		} else {
			idx.Entries = append(idx.Entries, cur)
			byDest[o.dest] = len(idx.Entries) - 1
		}
		if content != nil {
			bp := filepath.Join(dir, "files", filepath.Clean("/"+o.dest))
			if _, err := fsys.MkdirAll(filepath.Dir(bp), 0o700); err != nil {
				return fmt.Errorf("backup %s: %w", o.dest, err)
			}
			tmp, err := fsys.Stage(bp, content, 0o600, -1, -1)
			if err != nil {
				return fmt.Errorf("backup %s: %w", o.dest, err)
			}
			if err := os.Rename(tmp, bp); err != nil {
				os.Remove(tmp)
				return fmt.Errorf("backup %s: %w", o.dest, err)
			}
			syncDirs[filepath.Dir(bp)] = true
		}
		r.hook("backup", o.dest)
	}
	for d := range syncDirs {
		if err := fsys.SyncDir(d); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	for _, o := range t.ops {
		if i, ok := byDest[o.dest]; ok && o.hostOp() {
			e := idx.Entries[i]
			o.backup = &e
		}
	}
	if err := idx.save(dir); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// snapshot describes what is at dest now; content is the file's bytes.
func (r *runner) snapshot(dest string) (backupEntry, []byte, error) {
	e := backupEntry{Dest: dest, UID: -1, GID: -1}
	fi, err := r.host.Lstat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return e, nil, nil
	}
	if err != nil {
		return e, nil, err
	}
	e.Existed = true
	e.UID, e.GID = fsys.Owner(fi)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		e.Kind = string(render.KindSymlink)
		e.Target, err = r.host.Readlink(dest)
		return e, nil, err
	case fi.Mode().IsRegular():
		b, err := r.host.ReadFile(dest)
		if err != nil {
			return e, nil, err
		}
		e.Kind = string(render.KindFile)
		e.Mode = manifest.ModeString(fsys.Perm(fi))
		e.SHA256 = fsys.SHA256(b)
		return e, b, nil
	}
	return e, nil, fmt.Errorf("%s is neither a regular file nor a symlink", dest)
}

// restoreEntry puts a pre-image back (used by undo after a failed swap and
// by recovery), through the destination directory's descriptor.
func (r *runner) restoreEntry(dir string, e backupEntry) error {
	d, _, err := r.host.OpenDir(path.Dir(e.Dest), e.Existed, 0o755)
	if err != nil {
		if !e.Existed && errors.Is(err, fs.ErrNotExist) {
			return nil // nothing was created there
		}
		return err
	}
	defer d.Close()
	base := path.Base(e.Dest)
	if !e.Existed {
		if err := d.Remove(base); err != nil {
			return err
		}
		return d.Sync()
	}
	var tmp string
	if e.Kind == string(render.KindSymlink) {
		tmp, err = d.StageSymlink(base, e.Target)
	} else {
		var b []byte
		b, err = readBackup(dir, e)
		if err != nil {
			return err
		}
		mode, merr := manifest.Entry{Path: e.Dest, Mode: e.Mode}.FileMode()
		if merr != nil {
			return merr
		}
		uid, gid := e.UID, e.GID
		if !r.host.CanChown() {
			uid, gid = -1, -1
		}
		tmp, err = d.Stage(base, b, mode, uid, gid)
	}
	if err != nil {
		return err
	}
	if err := d.Commit(tmp, base); err != nil {
		d.Remove(tmp)
		return err
	}
	return nil
}

func readBackup(dir string, e backupEntry) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, "files", filepath.Clean("/"+e.Dest)))
	if err != nil {
		return nil, fmt.Errorf("backup of %s: %w", e.Dest, err)
	}
	if fsys.SHA256(b) != e.SHA256 {
		return nil, fmt.Errorf("backup of %s in %s is corrupt (sha256 mismatch)", e.Dest, dir)
	}
	return b, nil
}

// backupSerials lists the serials that have a backup directory, ascending.
func backupSerials(state string) []int {
	ents, err := os.ReadDir(filepath.Join(state, "backups"))
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() && n > 0 {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

// prune keeps the backups of the last Keep operations (up to t.serial).
func (t *txn) prune() error {
	var errs []error
	kept := 0
	serials := backupSerials(t.r.state)
	for i := len(serials) - 1; i >= 0; i-- {
		s := serials[i]
		if s > t.serial {
			continue
		}
		kept++
		if kept <= t.r.o.Keep {
			continue
		}
		if err := os.RemoveAll(backupDir(t.r.state, s)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
