package apply

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// Previous asks Rollback for the applied set before the current one.
const Previous = -1

// Rollback restores the files as they were after apply serial `to`
// (Previous: the one before the last), from the backups of every later
// apply, through the same staged, atomic swap. Files those applies created
// are removed; a symlink planted in a managed file's place is not restored.
// The rollback gets its own serial (so it can itself be rolled back) and the
// manifest records the restored state with operation "rollback".
//
// The daemon calls Rollback(ctx, Previous, opts) when reloading the units of
// the last Apply failed, then reloads Result.Units again.
func Rollback(ctx context.Context, to int, opts Options) (*Result, error) {
	return rollback(ctx, to, -1, opts)
}

// Undo rolls back exactly the operation with the given serial (an Apply's
// Result.Serial): it fails if another operation came after it. This is what
// the daemon calls when reloading the units of that apply failed.
func Undo(ctx context.Context, serial int, opts Options) (*Result, error) {
	if serial <= 0 {
		return nil, fmt.Errorf("rollback: nothing to undo (serial %d)", serial)
	}
	return rollback(ctx, serial-1, serial, opts)
}

func rollback(ctx context.Context, to, expectLast int, opts Options) (*Result, error) {
	r, unlock, err := newRunner(opts, nil)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, err := manifest.Load(manifest.Path(r.state))
	if err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	pending, err := r.recover(m)
	if err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	last := m.Serial
	if expectLast >= 0 && last != expectLast {
		return nil, fmt.Errorf("rollback: the last operation is serial %d, not %d; not undoing", last, expectLast)
	}
	if last == 0 {
		return nil, errors.New("rollback: nothing has been applied yet")
	}
	if to == Previous {
		to = last - 1
	}
	if to < 0 || to >= last {
		return nil, fmt.Errorf("rollback: --to %d: want a serial from 0 to %d", to, last-1)
	}
	type src struct {
		e   backupEntry
		dir string
	}
	restore := map[string]src{}
	var prev *manifest.Manifest
	for j := last; j > to; j-- {
		dir := backupDir(r.state, j)
		idx, err := loadIndex(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("rollback to %d needs the backup of serial %d, which is no longer kept (backups keep the last %d operations; reachable: %s)",
				to, j, r.o.Keep, reachable(backupSerials(r.state), last))
		}
		if err != nil {
			return nil, fmt.Errorf("rollback: %w", err)
		}
		for _, e := range idx.Entries {
			restore[e.Dest] = src{e, dir}
		}
		if j == to+1 {
			prev = idx.Previous
		}
	}
	if prev == nil {
		prev = manifest.New()
	}
	dests := make([]string, 0, len(restore))
	for d := range restore {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	if err := r.cleanTemps(dests); err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	t := &txn{r: r, serial: last + 1, prev: m, op: "rollback", pending: pending}
	var files, links, removes []*op
	for _, d := range dests {
		s := restore[d]
		e := s.e
		cur, _, err := r.snapshot(d)
		if err != nil {
			return nil, fmt.Errorf("rollback %s: %w", d, err)
		}
		ch := plan.Change{Path: e.Path, Action: plan.ActionRestore, Reason: plan.ReasonRollback,
			Component: e.Component, Units: e.Units, UID: -1, GID: -1}
		if d != e.Path {
			ch.WritePath = d
		}
		o := &op{path: e.Path, dest: d, uid: -1, gid: -1}
		switch {
		case !e.Existed:
			if !cur.Existed {
				continue
			}
			ch.Action, ch.Kind = plan.ActionRemove, render.Kind(cur.Kind)
			o.remove, o.kind = true, render.Kind(cur.Kind)
			o.change = ch
			removes = append(removes, o)
		case e.Kind == string(render.KindSymlink):
			if pe, ok := prev.Lookup(e.Path); !ok || pe.Kind != string(render.KindSymlink) {
				r.notice("%s was a symlink not managed as one; not restoring it", d)
				continue
			}
			if cur.Kind == e.Kind && cur.Target == e.Target {
				continue
			}
			ch.Kind, ch.Target = render.KindSymlink, &plan.Transition{From: cur.Target, To: e.Target}
			o.write, o.kind, o.target, o.change = true, render.KindSymlink, e.Target, ch
			links = append(links, o)
		default:
			content, err := readBackup(s.dir, e)
			if err != nil {
				return nil, fmt.Errorf("rollback: %w", err)
			}
			mode, err := manifest.Entry{Path: d, Mode: e.Mode}.FileMode()
			if err != nil {
				return nil, fmt.Errorf("rollback: %w", err)
			}
			same := cur.Existed && cur.Kind == e.Kind && cur.SHA256 == e.SHA256 && cur.Mode == e.Mode
			if r.host.CanChown() {
				same = same && cur.UID == e.UID && cur.GID == e.GID
				o.uid, o.gid = e.UID, e.GID
			}
			if same {
				continue
			}
			ch.Kind, ch.File = render.KindFile, render.File{Path: e.Path, Kind: render.KindFile, Content: content, Mode: mode}
			o.write, o.kind, o.content, o.mode, o.change = true, render.KindFile, content, mode, ch
			files = append(files, o)
		}
	}
	t.ops = append(append(append(t.ops, files...), links...), removes...)
	nm := prev.Clone()
	nm.Serial, nm.AppliedAt, nm.Operation, nm.RolledBackTo = last+1, r.o.Now().UTC(), "rollback", to
	if err := t.run(ctx, nm, false); err != nil {
		return nil, err
	}
	for _, o := range t.ops {
		r.res.Changes = append(r.res.Changes, o.change)
	}
	r.res.Changes = mergeChanges(r.res.Changes, pending)
	r.res.Units = plan.Units(r.res.Changes)
	r.res.Serial = last + 1
	r.progress("rolled back to serial %d as serial %d: %d change(s)%s", to, last+1, len(r.res.Changes), unitsNote(r.res.Units))
	return r.res, nil
}

func reachable(serials []int, last int) string {
	if len(serials) == 0 {
		return "none"
	}
	return fmt.Sprintf("--to %d or later", serials[0]-1)
}
