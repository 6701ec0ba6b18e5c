package apply

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// op is one host operation of a transaction.
type op struct {
	change  plan.Change // reported
	path    string      // managed path, as under /
	dest    string      // path written, as under /
	kind    render.Kind
	content []byte
	target  string
	mode    fs.FileMode // 0 with attrs: leave the mode
	uid     int
	gid     int
	write   bool         // stage content or link, then rename
	attrs   bool         // chmod/chown in place
	remove  bool         // delete dest (rollback of a created file)
	tmp     string       // staged entry's real path (validators read it)
	tmpName string       // staged entry's name in dir
	dir     *fsys.Dir    // dest's directory, opened without following symlinks
	backup  *backupEntry // pre-image, set by backup()
}

func opFromChange(c plan.Change) *op {
	o := &op{change: c, path: c.Path, dest: c.Dest(), kind: c.Kind, uid: c.UID, gid: c.GID}
	switch c.Action {
	case plan.ActionCreate, plan.ActionUpdate, plan.ActionSymlink:
		o.write = true
		o.content, o.target, o.mode = c.File.Content, c.File.Target, c.FileMode
	case plan.ActionMode:
		o.attrs, o.mode, o.uid, o.gid = true, c.FileMode, -1, -1
	case plan.ActionOwner:
		o.attrs = true
	}
	return o
}

// hostOp reports whether the op touches the host.
func (o *op) hostOp() bool { return o.write || o.attrs || o.remove }

type txn struct {
	r       *runner
	serial  int
	set     *render.Set // for checks (nil: built-in checks only)
	prev    *manifest.Manifest
	op      string // "apply" | "rollback"
	ops     []*op
	created []string // directories made while staging
	// pending are changes of an earlier operation whose units were never
	// confirmed reloaded (journal): journaled again, reported with ours.
	pending []plan.Change
}

// changes are what the operation reports (and journals): its own changes,
// then the pending ones it carries.
func (t *txn) changes() []plan.Change {
	own := make([]plan.Change, 0, len(t.ops))
	for _, o := range t.ops {
		c := o.change
		c.File, c.Diff = render.File{}, "" // never content in the journal
		own = append(own, c)
	}
	return mergeChanges(own, t.pending)
}

// run stages, checks, backs up, swaps and records nm.
func (t *txn) run(ctx context.Context, nm *manifest.Manifest, tools bool) (err error) {
	r := t.r
	swapping := false
	defer func() {
		if err != nil && !swapping {
			t.abort()
		}
		for _, o := range t.ops {
			if o.dir != nil {
				o.dir.Close()
				o.dir = nil
			}
		}
	}()
	for _, o := range t.ops {
		if !o.hostOp() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		// Every write goes through the destination directory's descriptor,
		// opened once without following symlinks: a parent swapped for a
		// symlink from here on cannot redirect the staged file or the
		// rename into another directory.
		dir, created, err := r.host.OpenDir(path.Dir(o.dest), o.write, 0o755)
		t.created = append(t.created, created...)
		if err != nil {
			return fmt.Errorf("apply %s: %w", o.dest, err)
		}
		o.dir = dir
		r.hook("dir", o.dest)
		if !o.write {
			continue
		}
		base := path.Base(o.dest)
		if o.kind == render.KindSymlink {
			o.tmpName, err = dir.StageSymlink(base, o.target)
		} else {
			o.tmpName, err = dir.Stage(base, o.content, o.mode, o.uid, o.gid)
		}
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		o.tmp = filepath.Join(dir.Real(), o.tmpName)
		r.hook("stage", o.dest)
	}
	if err := t.check(ctx, tools); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if err := t.backup(); err != nil {
		return err
	}
	// Intent before the first swap: what is about to change, and what
	// must be reloaded, so a crash from here on is finished or reverted.
	if err := r.saveJournal(&journal{Serial: t.serial, From: t.prev.Serial, Operation: t.op, Changes: t.changes()}); err != nil {
		return err
	}
	r.hook("journal", "")
	swapping = true
	for i, o := range t.ops {
		if err := t.swap(o); err != nil {
			t.removeStaged(t.ops[i:])
			if uerr := t.undo(t.ops[:i]); uerr != nil {
				return fmt.Errorf("apply: %w; restoring the files already replaced also failed: %v (previous versions are in %s; the next run puts them back)", err, uerr, t.backupDir())
			}
			r.dropJournal()
			return fmt.Errorf("apply: %w (the files already replaced were restored)", err)
		}
		if o.hostOp() || o.change.Action == plan.ActionUnmanage {
			r.progress("%s", o.change.Line())
		}
		r.hook("swap", o.dest)
	}
	if err := nm.Save(manifest.Path(r.state)); err != nil {
		// Never leave swapped files unrecorded: put them back.
		if uerr := t.undo(t.ops); uerr != nil {
			return fmt.Errorf("apply: recording the new state failed (%w) and restoring the previous files also failed: %v; the next run puts them back from %s", err, uerr, t.backupDir())
		}
		r.dropJournal()
		return fmt.Errorf("apply: recording the new state failed, the previous files were restored: %w", err)
	}
	r.hook("manifest", "")
	if err := t.prune(); err != nil {
		r.notice("pruning old backups: %v", err)
	}
	r.res.BackupDir = t.backupDir()
	return nil
}

func (t *txn) swap(o *op) error {
	base := path.Base(o.dest)
	switch {
	case o.write:
		if err := o.dir.Commit(o.tmpName, base); err != nil {
			return err
		}
		o.tmp, o.tmpName = "", ""
	case o.attrs:
		return setAttrs(o.dir, base, o.mode, o.uid, o.gid)
	case o.remove:
		if err := o.dir.Remove(base); err != nil {
			return err
		}
		return o.dir.Sync()
	}
	return nil
}

// setAttrs changes mode and/or owner of a regular file in place without
// following a symlink (mode 0 / ids -1 leave that attribute).
func setAttrs(dir *fsys.Dir, base string, mode fs.FileMode, uid, gid int) error {
	f, err := dir.OpenFile(base)
	if err != nil {
		return fmt.Errorf("attributes of %s: %w", path.Join(dir.Name(), base), err)
	}
	defer f.Close()
	real := f.Name()
	if uid >= 0 || gid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", real, err)
		}
	}
	if mode != 0 {
		if err := f.Chmod(mode); err != nil {
			return fmt.Errorf("chmod %s: %w", real, err)
		}
	}
	return f.Sync()
}

// abort removes staged files and the directories staging created.
func (t *txn) abort() {
	t.removeStaged(t.ops)
	for i := len(t.created) - 1; i >= 0; i-- {
		os.Remove(t.created[i]) // only succeeds when empty
	}
}

func (t *txn) removeStaged(ops []*op) {
	for _, o := range ops {
		if o.tmpName != "" && o.dir != nil {
			o.dir.Remove(o.tmpName)
		}
		o.tmp, o.tmpName = "", ""
	}
}

// undo puts back the pre-images of ops that were already swapped.
func (t *txn) undo(done []*op) error {
	var errs []error
	for i := len(done) - 1; i >= 0; i-- {
		o := done[i]
		b := o.backup
		if b == nil || !o.hostOp() {
			continue
		}
		if err := t.r.restoreEntry(t.backupDir(), *b); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
