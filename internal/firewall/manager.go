package firewall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
)

// State file names under Manager.Dir.
const (
	appliedFile  = "applied.json"  // what the last apply loaded, as read back
	revertFile   = "revert.nft"    // the previous table, for a confirmed apply
	pendingFile  = "pending.json"  // a confirmed apply waiting for "confirm"
	revertedFile = "reverted.json" // pending.json, renamed by the revert unit
)

// RevertUnit is the transient systemd unit that reverts an unconfirmed apply.
const RevertUnit = "jitsi-agent-firewall-revert"

// Errors callers match.
var (
	// ErrRejected: nft -c refused the script; nothing was applied.
	ErrRejected = errors.New("nft rejected the ruleset")
	// ErrNothingPending: confirm found no confirmed apply waiting.
	ErrNothingPending = errors.New("no firewall change is waiting for confirmation")
	// ErrReverted: the change was not confirmed in time and was reverted.
	ErrReverted = errors.New("the firewall change was not confirmed in time and has been reverted")
)

// Timer runs a command once, later, in a unit the service manager owns, so
// it runs even if the agent is killed.
type Timer interface {
	Arm(ctx context.Context, name string, after time.Duration, argv []string) error
	// Disarm cancels it; no error when it is already gone.
	Disarm(ctx context.Context, name string) error
}

// Manager applies rendered rulesets and keeps their state in Dir.
type Manager struct {
	Nft Backend
	// Dir holds applied.json and the confirm state (state_dir/firewall).
	Dir string
	// Timer arms the revert of a confirmed apply (nil: --confirm refused).
	Timer Timer
	// RevertArgv is the nft command the revert unit runs (absolute path;
	// default /usr/sbin/nft).
	RevertArgv []string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Pending describes a confirmed apply waiting for "jitsi-agent confirm".
type Pending struct {
	Deadline time.Time `json:"deadline"`
	SHA256   string    `json:"sha256"`
	Unit     string    `json:"unit"`
}

type applied struct {
	SHA256 string          `json:"sha256"`
	Live   json.RawMessage `json:"live"`
	At     time.Time       `json:"at"`
}

// Result is what Apply did.
type Result struct {
	// Changed is false when the live table already was the rendered one.
	Changed bool
	// Restore puts back the table as it was before (for a rollback).
	Restore []byte
	// Pending is set for a confirmed apply.
	Pending *Pending
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) path(name string) string { return filepath.Join(m.Dir, name) }

// Apply checks the script with nft -c, snapshots the live table, loads the
// script in one transaction and records what the kernel now holds. With
// confirm > 0 the revert to the snapshot is armed first (it survives the
// agent) and fires unless Confirm is called within confirm.
func (m *Manager) Apply(ctx context.Context, script []byte, confirm time.Duration) (Result, error) {
	sum := fsys.SHA256(script)
	// The common case (a daemon pass, a re-run) costs one nft call.
	if ok, _ := m.upToDate(ctx, sum); ok {
		_ = os.Remove(m.path(revertedFile))
		return Result{}, nil
	}
	if err := m.Nft.Check(ctx, script); err != nil {
		return Result{}, fmt.Errorf("%w (nothing applied): %w", ErrRejected, err)
	}
	listed, existed, err := m.Nft.Table(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("read the live firewall table: %w", err)
	}
	restore := RestoreScript(listed, existed)
	if existed {
		if err := m.Nft.Check(ctx, restore); err != nil {
			return Result{}, fmt.Errorf("the live table %s %s cannot be restored as listed, so it is not replaced (nothing applied): %w", Family, Table, err)
		}
	}
	if err := os.MkdirAll(m.Dir, 0o700); err != nil {
		return Result{}, fmt.Errorf("firewall state: %w", err)
	}
	res := Result{Changed: true, Restore: restore}
	if confirm > 0 {
		p, err := m.arm(ctx, restore, sum, confirm)
		if err != nil {
			return Result{}, err
		}
		res.Pending = p
	}
	if err := m.Nft.Load(ctx, script); err != nil {
		if res.Pending != nil {
			m.disarm(ctx)
		}
		return Result{}, fmt.Errorf("load the firewall (nothing applied: nft applies all or nothing): %w", err)
	}
	if err := m.record(ctx, sum); err != nil {
		if rerr := m.Nft.Load(ctx, restore); rerr != nil {
			err = fmt.Errorf("%w; restoring the previous table also failed: %w", err, rerr)
		}
		if res.Pending != nil {
			m.disarm(ctx)
		}
		return Result{}, err
	}
	_ = os.Remove(m.path(revertedFile))
	return res, nil
}

// Rollback loads a Restore script from Apply and forgets the record.
func (m *Manager) Rollback(ctx context.Context, restore []byte) error {
	if err := m.Nft.Load(ctx, restore); err != nil {
		return fmt.Errorf("restore the previous firewall table: %w", err)
	}
	m.disarm(ctx)
	if err := os.Remove(m.path(appliedFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("firewall state: %w", err)
	}
	return nil
}

// Remove deletes the agent's table (the firewall was switched off) and its
// record. Other tables are not touched.
func (m *Manager) Remove(ctx context.Context) (bool, error) {
	_, existed, err := m.Nft.Table(ctx)
	if err != nil {
		return false, fmt.Errorf("read the live firewall table: %w", err)
	}
	if existed {
		if err := m.Nft.Load(ctx, DeleteScript()); err != nil {
			return false, fmt.Errorf("remove table %s %s: %w", Family, Table, err)
		}
	}
	for _, f := range []string{appliedFile, revertedFile} {
		if err := os.Remove(m.path(f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return existed, fmt.Errorf("firewall state: %w", err)
		}
	}
	return existed, nil
}

func (m *Manager) arm(ctx context.Context, restore []byte, sum string, after time.Duration) (*Pending, error) {
	if m.Timer == nil {
		return nil, errors.New("--confirm needs systemd (a transient timer reverts the change if the agent is gone); nothing applied")
	}
	if err := fsys.WriteAtomic(m.path(revertFile), restore, 0o600); err != nil {
		return nil, fmt.Errorf("save the previous firewall table: %w", err)
	}
	p := &Pending{Deadline: m.now().Add(after).UTC().Round(time.Second), SHA256: sum, Unit: RevertUnit}
	js, _ := json.Marshal(p)
	if err := fsys.WriteAtomic(m.path(pendingFile), js, 0o600); err != nil {
		return nil, fmt.Errorf("firewall state: %w", err)
	}
	_ = os.Remove(m.path(revertedFile))
	nft := m.RevertArgv
	if len(nft) == 0 {
		nft = []string{"/usr/sbin/nft"}
	}
	// The unit loads the saved table, then marks the apply as reverted (so
	// the daemon does not put the unconfirmed ruleset back).
	argv := append([]string{"/bin/sh", "-c", `p=$1 r=$2; shift 2; "$@" && mv -f "$p" "$r"`, "sh",
		m.path(pendingFile), m.path(revertedFile)}, nft...)
	argv = append(argv, "-f", m.path(revertFile))
	m.disarm(ctx) // a stale timer from an earlier apply
	if err := m.Timer.Arm(ctx, RevertUnit, after, argv); err != nil {
		_ = os.Remove(m.path(pendingFile))
		return nil, fmt.Errorf("arm the automatic revert (nothing applied): %w", err)
	}
	return p, nil
}

func (m *Manager) disarm(ctx context.Context) {
	if m.Timer != nil {
		_ = m.Timer.Disarm(ctx, RevertUnit)
	}
}

// Confirm keeps a confirmed apply: the revert is cancelled. It returns
// ErrReverted when the deadline passed (the previous table is back) and
// ErrNothingPending when no confirmed apply waits.
func (m *Manager) Confirm(ctx context.Context) (*Pending, error) {
	js, err := os.ReadFile(m.path(pendingFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(m.path(revertedFile)); err == nil {
			return nil, ErrReverted
		}
		return nil, ErrNothingPending
	}
	if err != nil {
		return nil, fmt.Errorf("firewall state: %w", err)
	}
	var p Pending
	if err := json.Unmarshal(js, &p); err != nil {
		return nil, fmt.Errorf("firewall state %s: %w", m.path(pendingFile), err)
	}
	if m.Timer == nil {
		return nil, errors.New("confirm needs systemd to cancel the revert timer")
	}
	if err := m.Timer.Disarm(ctx, RevertUnit); err != nil {
		return nil, fmt.Errorf("cancel the automatic revert: %w", err)
	}
	// The timer may have fired just before it was stopped: trust the
	// kernel, not the files.
	if ok, err := m.upToDate(ctx, p.SHA256); err != nil {
		return nil, err
	} else if !ok {
		_ = os.Rename(m.path(pendingFile), m.path(revertedFile))
		return nil, ErrReverted
	}
	for _, f := range []string{pendingFile, revertFile} {
		if err := os.Remove(m.path(f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("firewall state: %w", err)
		}
	}
	return &p, nil
}

// PendingConfirm returns the confirmed apply waiting, if any.
func (m *Manager) PendingConfirm() (*Pending, error) {
	js, err := os.ReadFile(m.path(pendingFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("firewall state: %w", err)
	}
	var p Pending
	if err := json.Unmarshal(js, &p); err != nil {
		return nil, fmt.Errorf("firewall state %s: %w", m.path(pendingFile), err)
	}
	return &p, nil
}

// DriftState is the live table compared with the rendered one.
type DriftState string

// Drift states.
const (
	InSync  DriftState = "in-sync"
	Missing DriftState = "missing" // no table jitsi_agent
	Edited  DriftState = "edited"  // the table differs from what was loaded
	Changed DriftState = "changed" // the spec renders another ruleset (apply it)
	// Reverted: this ruleset was applied with --confirm, not confirmed,
	// and reverted; it is not put back automatically.
	Reverted DriftState = "reverted"
	// Unconfirmed: a confirmed apply is waiting for "jitsi-agent confirm".
	Unconfirmed DriftState = "unconfirmed"
)

// Drift compares the live table with the one script renders.
func (m *Manager) Drift(ctx context.Context, script []byte) (DriftState, error) {
	sum := fsys.SHA256(script)
	if js, err := os.ReadFile(m.path(revertedFile)); err == nil {
		var p Pending
		if json.Unmarshal(js, &p) == nil && p.SHA256 == sum {
			return Reverted, nil
		}
	}
	if p, err := m.PendingConfirm(); err != nil {
		return "", err
	} else if p != nil && p.SHA256 == sum {
		return Unconfirmed, nil
	}
	live, existed, err := m.Nft.TableJSON(ctx)
	if err != nil {
		return "", fmt.Errorf("read the live firewall table: %w", err)
	}
	if !existed {
		return Missing, nil
	}
	rec, err := m.readApplied()
	if err != nil {
		return "", err
	}
	if rec == nil || rec.SHA256 != sum {
		return Changed, nil
	}
	norm, err := Normalize(live)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(norm, rec.Live) {
		return Edited, nil
	}
	return InSync, nil
}

func (m *Manager) upToDate(ctx context.Context, sum string) (bool, error) {
	rec, err := m.readApplied()
	if err != nil || rec == nil || rec.SHA256 != sum {
		return false, err
	}
	live, existed, err := m.Nft.TableJSON(ctx)
	if err != nil || !existed {
		return false, err
	}
	norm, err := Normalize(live)
	if err != nil {
		return false, err
	}
	return bytes.Equal(norm, rec.Live), nil
}

func (m *Manager) readApplied() (*applied, error) {
	js, err := os.ReadFile(m.path(appliedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("firewall state: %w", err)
	}
	var a applied
	if err := json.Unmarshal(js, &a); err != nil {
		return nil, nil // a damaged record: treat the table as changed and re-apply
	}
	return &a, nil
}

func (m *Manager) record(ctx context.Context, sum string) error {
	live, existed, err := m.Nft.TableJSON(ctx)
	if err != nil {
		return fmt.Errorf("read back the firewall table: %w", err)
	}
	if !existed {
		return fmt.Errorf("table %s %s is missing right after it was loaded", Family, Table)
	}
	norm, err := Normalize(live)
	if err != nil {
		return err
	}
	js, _ := json.Marshal(applied{SHA256: sum, Live: norm, At: m.now().UTC()})
	if err := fsys.WriteAtomic(m.path(appliedFile), js, 0o600); err != nil {
		return fmt.Errorf("firewall state: %w", err)
	}
	return nil
}
