package prosody

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Sync brings the running Prosody to the new config without a restart: it
// reloads the config, runs the plan's live steps, then reconciles against
// the live server (every host of the new config active, every module the
// config names for it loaded; hosts only the old config had deactivated),
// and finally verifies. A plan that needs a restart is the caller's to run
// (through systemd, under the service's restart policy); Sync refuses it.
// It returns the steps it ran.
func Sync(ctx context.Context, a Admin, p Plan, old, new *Model) ([]Action, error) {
	if r, why := p.Restart(); r {
		return nil, fmt.Errorf("the change needs a Prosody restart (%s)", strings.Join(why, "; "))
	}
	var done []Action
	if err := a.ReloadConfig(ctx); err != nil {
		return nil, err
	}
	done = append(done, Action{Kind: ActConfigReload, Why: "the config file changed"})
	state, err := a.State(ctx)
	if err != nil {
		return done, err
	}
	live := make([]string, 0, len(state))
	for h := range state {
		live = append(live, h)
	}
	var errs []error
	run := func(act Action, f func() error) {
		if err := f(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", act, err))
			return
		}
		done = append(done, act)
	}
	// Deactivate what the old config had and the new one does not.
	if old != nil {
		for _, n := range old.Names {
			if _, keep := new.Hosts[n]; !keep && slices.Contains(live, n) {
				act := Action{Kind: ActDeactivate, Host: n, Why: "removed from the config"}
				run(act, func() error { return a.Deactivate(ctx, n) })
			}
		}
	}
	// Planned re-activations (a host whose type changed).
	for _, act := range p.Actions {
		if act.Kind == ActDeactivate && new.Hosts[act.Host] != nil && slices.Contains(live, act.Host) {
			run(act, func() error { return a.Deactivate(ctx, act.Host) })
			live = slices.DeleteFunc(live, func(h string) bool { return h == act.Host })
		}
	}
	activated := map[string]bool{}
	for _, n := range new.Names {
		if !slices.Contains(live, n) {
			act := Action{Kind: ActActivate, Host: n, Why: "in the config, not served"}
			run(act, func() error { return a.Activate(ctx, n) })
			activated[n] = true
		}
	}
	for _, act := range p.Actions {
		if act.Kind == ActUnload && !activated[act.Host] {
			run(act, func() error { return a.UnloadModule(ctx, act.Module, act.Host) })
		}
	}
	// Load what the config names and the host lacks; reload what reads a
	// changed setting at load (a module just loaded already has it).
	loaded := map[string]bool{}
	for _, n := range new.Names {
		if activated[n] {
			continue
		}
		mods := state[n]
		for _, m := range new.Hosts[n].Modules {
			if !slices.Contains(mods, m) {
				act := Action{Kind: ActLoad, Host: n, Module: m, Why: "named by the config, not loaded"}
				run(act, func() error { return a.LoadModule(ctx, m, n) })
				loaded[n+"\x00"+m] = true
			}
		}
	}
	for _, act := range p.Actions {
		if act.Kind == ActReload && !activated[act.Host] && !loaded[act.Host+"\x00"+act.Module] {
			run(act, func() error { return a.ReloadModule(ctx, act.Module, act.Host) })
		}
	}
	if len(errs) > 0 {
		return done, errors.Join(errs...)
	}
	return done, Verify(ctx, a, new)
}

// Verify checks that the running Prosody serves every host of the config
// and has every module the config names loaded on it.
func Verify(ctx context.Context, a Admin, m *Model) error {
	state, err := a.State(ctx)
	if err != nil {
		return err
	}
	var problems []string
	for _, n := range m.Names {
		mods, ok := state[n]
		if !ok {
			problems = append(problems, n+" is not active")
			continue
		}
		var missing []string
		for _, want := range m.Hosts[n].Modules {
			if !slices.Contains(mods, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 {
			problems = append(problems, n+" lacks "+strings.Join(missing, ", ")+" (see Prosody's log for why it did not load)")
		}
	}
	if len(problems) > 0 {
		return &VerifyError{Problems: problems}
	}
	return nil
}

// VerifyError lists what the running Prosody does not serve.
type VerifyError struct{ Problems []string }

func (e *VerifyError) Error() string {
	return "the running Prosody does not match its config: " + strings.Join(e.Problems, "; ")
}
