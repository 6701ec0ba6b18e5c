package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
	"golang.org/x/sys/unix"
)

// coturnCalls are the unit calls about coturn.
func coturnCalls(calls []string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasSuffix(c, " coturn.service") {
			out = append(out, c)
		}
	}
	return out
}

// The component table decides which units run (coturn only with TURN on),
// and the units record decides what the agent may stop: a coturn it never
// ran is left alone, the one it ran is stopped and disabled when the spec
// turns TURN off, and left alone again afterwards.
func TestTURNOffRetiresOnlyTheCoturnTheAgentRan(t *testing.T) {
	f := newFixture(t)
	write := func(turn bool, max int) {
		t.Helper()
		s := fmt.Sprintf(testSpec, max)
		if turn {
			s = strings.Replace(s, "turn {\n  enabled = false\n}", "turn {\n  enabled = true\n}", 1)
		}
		if err := os.WriteFile(f.spec, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	apply := func(what string) []string {
		t.Helper()
		if _, err := f.apply(ApplyOptions{}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return coturnCalls(f.units.take())
	}
	// A coturn running from its package, TURN off from day 1: not touched.
	f.units.state["coturn.service"] = "active"
	if c := apply("day 1, TURN off"); len(c) != 0 {
		t.Fatalf("day 1 with TURN off touched coturn: %v", c)
	}
	write(false, 51)
	if c := apply("another change, TURN off"); len(c) != 0 {
		t.Fatalf("a change with TURN off touched the coturn the agent never ran: %v", c)
	}
	// Day 2: TURN on: coturn takes the rendered configuration.
	write(true, 51)
	if c := apply("TURN on"); !slices.Equal(c, []string{"reload coturn.service"}) {
		t.Fatalf("TURN on: %v", c)
	}
	// TURN off: the coturn the agent ran is stopped and disabled.
	write(false, 51)
	if c := apply("TURN off"); !slices.Equal(c, []string{"stop coturn.service", "disable coturn.service"}) {
		t.Fatalf("TURN off: %v, want stop and disable", c)
	}
	// The administrator starts it by hand afterwards: not the agent's.
	f.units.state["coturn.service"] = "active"
	delete(f.units.off, "coturn.service")
	write(false, 52)
	if c := apply("a change after TURN off"); len(c) != 0 {
		t.Fatalf("the agent touched a coturn it no longer runs: %v", c)
	}
	// The service block alone (no file changes): the next pass still
	// retires it, and starts it again when the block goes.
	write(true, 52)
	apply("TURN on again")
	if err := os.WriteFile(f.spec, append(must(os.ReadFile(f.spec)), "service \"coturn\" {\n  enabled = false\n}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := apply("enabled = false"); !slices.Equal(c, []string{"stop coturn.service", "disable coturn.service"}) {
		t.Fatalf("enabled = false: %v, want stop and disable", c)
	}
	write(true, 52)
	if c := apply("enabled again"); !slices.Equal(c, []string{"start coturn.service"}) {
		t.Fatalf("enabled again: %v, want start", c)
	}
	// A failed stop is tried again by the next apply.
	f.units.failStop = true
	write(false, 52)
	if _, err := f.apply(ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "coturn.service") {
		t.Fatalf("a failed stop: %v", err)
	}
	f.units.take()
	f.units.failStop = false
	write(false, 53)
	if c := apply("after a failed stop"); !slices.Equal(c, []string{"stop coturn.service", "disable coturn.service"}) {
		t.Fatalf("after a failed stop: %v, want stop and disable again", c)
	}
}

// The units a host runs come from the component table: its roles, then
// each component's condition (coturn: TURN on), then the service block.
func TestWantedUnitsFromTheTable(t *testing.T) {
	f := newFixture(t)
	d := f.load() // TURN off, no roles
	if _, ok := wantedUnits(systemd.ServicesFor(d))["coturn"]; ok {
		t.Fatal("coturn wanted with TURN off")
	}
	d.TURN.Enabled = true
	d.Services["coturn"] = spec.Service{Component: "coturn", Unit: "coturn.service", Enabled: d.Feature(files.TURN)}
	if u := wantedUnits(systemd.ServicesFor(d))["coturn"]; u != "coturn.service" {
		t.Fatalf("coturn not wanted with TURN on: %q", u)
	}
	// TURN served by another host: this one has no coturn role.
	d.Host.Roles = []string{"prosody", "jicofo", "jvb", "nginx"}
	w := wantedUnits(systemd.ServicesFor(d))
	if _, ok := w["coturn"]; ok || w["nginx"] != "nginx.service" {
		t.Fatalf("a host without the coturn role: %v", w)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A damaged units record is refused with the way out, and a FIFO or an
// oversized file in its place is refused without hanging or reading it
// all.
func TestUnitsRecordRefusedWithAFix(t *testing.T) {
	state := t.TempDir()
	p := filepath.Join(state, RunsFile)
	if _, ok, err := loadRuns(state); ok || err != nil {
		t.Fatalf("no record: ok %v err %v", ok, err)
	}
	if err := os.WriteFile(p, []byte(`{"units": {"turn": `), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := loadRuns(state)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "remove the file") {
		t.Fatalf("damaged record: %v", err)
	}
	if err := os.WriteFile(p, []byte(`{"units": {"turn": "`+strings.Repeat("x", maxRunsFile)+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadRuns(state); err == nil {
		t.Fatal("an oversized record was read")
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadRuns(state); err == nil {
		t.Fatal("a FIFO was read as the record")
	}
}
