package firewall

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Path is where the rendered ruleset is written (the files table's
// firewall row: planned, backed up, rolled back like the other files).
// Loading it by hand (nft -f PATH) replaces only the agent's table.
const Path = files.FirewallPath

// StateDir is the firewall's state directory under the spec's state_dir.
func StateDir(d *spec.Deployment) string { return filepath.Join(d.StateDir, "firewall") }

// Script renders the spec's ruleset; nil when the firewall is off.
func Script(d *spec.Deployment) ([]byte, error) {
	if !d.Firewall.Enabled {
		return nil, nil
	}
	return Render(RulesFor(d))
}

// Sync actions.
const (
	ActionNone      = ""          // the firewall is off and was never loaded
	ActionUnchanged = "unchanged" // the live table is the rendered one
	ActionApplied   = "applied"
	ActionRemoved   = "removed"
	// ActionHeld: the daemon left the table as it is (Reason says why).
	ActionHeld = "held"
)

// SyncOptions say how Sync runs.
type SyncOptions struct {
	// Confirm > 0 arms the automatic revert (apply --confirm).
	Confirm time.Duration
	// Daemon: an unattended run. It does not put back a ruleset that was
	// reverted for want of confirmation, does not disturb one waiting for
	// confirmation, and only reports a hand-edited table when the spec's
	// drift policy is "report".
	Daemon bool
}

// SyncResult is what Sync did to the live table.
type SyncResult struct {
	Action string
	// State is the live table before Sync (Daemon runs).
	State DriftState
	// Reason explains ActionHeld.
	Reason string
	// Restore undoes it (nil when nothing changed).
	Restore []byte
	// Pending is set for a confirmed apply.
	Pending *Pending
}

// Sync makes the live table match the rendered ruleset (the content of the
// file at Path; nil when the firewall is off): checked, loaded atomically,
// recorded, and armed for revert with o.Confirm > 0. With the firewall off
// the table is deleted if the agent loaded one before; a host where it
// never did is left alone. drift is the spec's drift policy.
func Sync(ctx context.Context, m *Manager, script []byte, drift string, o SyncOptions) (SyncResult, error) {
	confirm := o.Confirm
	var err error
	if script == nil {
		if confirm > 0 {
			return SyncResult{}, errors.New("--confirm: the spec's firewall is off, there is nothing to confirm")
		}
		if _, err := os.Stat(m.path(appliedFile)); errors.Is(err, fs.ErrNotExist) {
			return SyncResult{Action: ActionNone}, nil
		}
		listed, existed, err := m.Nft.Table(ctx)
		if err != nil {
			return SyncResult{}, fmt.Errorf("read the live firewall table: %w", err)
		}
		if _, err := m.Remove(ctx); err != nil {
			return SyncResult{}, err
		}
		if !existed {
			return SyncResult{Action: ActionNone}, nil
		}
		return SyncResult{Action: ActionRemoved, Restore: RestoreScript(listed, true)}, nil
	}
	var state DriftState
	if o.Daemon {
		if state, err = m.Drift(ctx, script); err != nil {
			return SyncResult{}, err
		}
		switch {
		case state == InSync:
			return SyncResult{Action: ActionUnchanged, State: state}, nil
		case state == Reverted:
			return SyncResult{Action: ActionHeld, State: state, Reason: "this ruleset was applied with --confirm, not confirmed and reverted; apply it again by hand"}, nil
		case state == Unconfirmed:
			return SyncResult{Action: ActionHeld, State: state, Reason: "waiting for 'jitsi-agent confirm'"}, nil
		case state == Edited && drift == spec.DriftReport:
			return SyncResult{Action: ActionHeld, State: state, Reason: "the table was edited by hand and drift = \"report\"; 'jitsi-agent apply' restores it"}, nil
		}
	}
	res, err := m.Apply(ctx, script, confirm)
	if err != nil {
		return SyncResult{}, err
	}
	if !res.Changed {
		return SyncResult{Action: ActionUnchanged, State: state}, nil
	}
	return SyncResult{Action: ActionApplied, State: state, Restore: res.Restore, Pending: res.Pending}, nil
}

// Validate runs nft -c on script unless the live table already is exactly
// it (the common case costs one listing).
func (m *Manager) Validate(ctx context.Context, script []byte) error {
	if ok, _ := m.upToDate(ctx, fsys.SHA256(script)); ok {
		return nil
	}
	if err := m.Nft.Check(ctx, script); err != nil {
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return nil
}
