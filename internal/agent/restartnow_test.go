package agent

import (
	"fmt"
	"os"
	"slices"
	"testing"
)

// RestartNow (bootstrap: packages this run installed) restarts a component
// whose files changed at once, although its restart policy defers.
func TestRestartNowOverridesDefer(t *testing.T) {
	for _, now := range []bool{false, true} {
		f := newFixture(t)
		spec := fmt.Sprintf(testSpec, 50) + "service \"jicofo\" {\n  restart = \"defer\"\n}\n"
		if err := os.WriteFile(f.spec, []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
		f.units.state["jicofo.service"] = "active" // started by its postinst
		f.units.noReload["jicofo.service"] = true
		f.env.Accounts = nil // the accounts already match (the preseeded passwords)
		o := ApplyOptions{Always: true}
		if now {
			o.RestartNow = []string{"jicofo"}
		}
		res, err := f.apply(o)
		if err != nil {
			t.Fatal(err)
		}
		restarted := slices.Contains(f.units.take(), "restart jicofo.service")
		deferred := res.Services != nil && len(res.Services.Report.NewlyDeferred) == 1
		if restarted != now || deferred == now {
			t.Errorf("RestartNow=%v: jicofo restarted %v, deferred %v", now, restarted, deferred)
		}
	}
}
