package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/input"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

// RunsFile, in the state directory, lists the units this host's applies
// keep running: the component table's services the spec enabled here
// (systemd.ServicesFor, Service.Enabled), as of the last apply that ran
// the reload pass. It is the agent's record of what it owns, like
// Terraform's state: a unit listed there that the spec no longer runs on
// this host (TURN or recording turned off, its role moved to another
// host, `enabled = false`) is stopped and disabled by the next apply; a
// unit never listed (installed and run by hand, or by the package while
// the spec did not want it) is never touched.
const RunsFile = "units.json"

// maxRunsFile bounds the record (a few lines per component).
const maxRunsFile = 64 << 10

type runsRecord struct {
	// Units maps component -> unit.
	Units map[string]string `json:"units"`
}

// loadRuns reads the record; ok is false when there is none yet (a
// host's first apply, or one by an agent from before the record).
func loadRuns(state string) (map[string]string, bool, error) {
	p := filepath.Join(state, RunsFile)
	b, err := input.ReadFile(p, maxRunsFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading the units record: %w", err)
	}
	var r runsRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, false, fmt.Errorf("reading the units record %s: %w (remove the file: the next apply records what runs and retires nothing)", p, err)
	}
	return r.Units, true, nil
}

func saveRuns(state string, units map[string]string) error {
	b, err := json.MarshalIndent(runsRecord{Units: units}, "", "  ")
	if err != nil {
		return err
	}
	if err := fsys.WriteAtomic(filepath.Join(state, RunsFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("recording the units this host runs: %w", err)
	}
	return nil
}

// wantedUnits are the units the spec runs on this host: the enabled
// services of the component table that name a unit.
func wantedUnits(svcs map[string]spec.Service) map[string]string {
	out := map[string]string{}
	for c, s := range svcs {
		if s.Enabled && s.Unit != "" {
			out[c] = s.Unit
		}
	}
	return out
}

// runsChanged reports whether the units the spec runs here differ from
// the record (a service's enabled flipped without any file changing):
// the reload pass then runs although no file changed, starting or
// retiring them. No record: false (the next pass that reloads writes it).
func runsChanged(d *spec.Deployment, root string) bool {
	had, ok, err := loadRuns(StateDir(d, root))
	return err == nil && ok && !maps.Equal(had, wantedUnits(systemd.ServicesFor(d)))
}

// retireUnits stops and disables the units the last record lists and the
// spec no longer runs here, then records what runs now. A unit whose stop
// fails stays recorded, so the next apply tries again.
func retireUnits(ctx context.Context, r *systemd.Reloader, svcs map[string]spec.Service, state string, log logrus.FieldLogger) (*systemd.Report, error) {
	want := wantedUnits(svcs)
	had, ok, err := loadRuns(state)
	if err != nil {
		return nil, err
	}
	running := map[string]bool{}
	for _, u := range want {
		running[u] = true
	}
	var retire []systemd.Change
	for _, c := range slices.Sorted(maps.Keys(had)) {
		u := had[c]
		if ok && want[c] != u && !running[u] {
			retire = append(retire, systemd.Change{Unit: u, Component: c})
		}
	}
	var rep *systemd.Report
	var rerr error
	if len(retire) > 0 {
		rep, rerr = r.Retire(ctx, retire)
		if rep != nil {
			for _, u := range rep.Failed() {
				want[u.Component] = u.Unit // still ours: try again next time
			}
		}
	}
	if !ok || !maps.Equal(had, want) {
		if err := saveRuns(state, want); err != nil {
			return rep, errors.Join(rerr, err)
		}
	}
	if rerr != nil {
		log.Warnf("stopping units the spec no longer runs here: %v", rerr)
		return rep, fmt.Errorf("stopping units the spec no longer runs here: %w", rerr)
	}
	return rep, nil
}
