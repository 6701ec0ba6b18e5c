package firewall

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func TestSync(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	d := load(t, "../../examples/meet.hcl", "")
	m := newManager(t, l)
	step := func(d *spec.Deployment, o SyncOptions, want string) SyncResult {
		t.Helper()
		script, err := Script(d)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Sync(ctx, m, script, d.Drift, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Action != want {
			t.Fatalf("action %q (%s), want %q", res.Action, res.Reason, want)
		}
		return res
	}
	step(d, SyncOptions{}, ActionApplied)
	step(d, SyncOptions{}, ActionUnchanged)
	step(d, SyncOptions{Daemon: true}, ActionUnchanged)

	// A hand edit: restored by the daemon, or only reported.
	l.load(t, "add rule inet jitsi_agent input tcp dport 5222 accept\n")
	report := *d
	report.Drift = spec.DriftReport
	if res := step(&report, SyncOptions{Daemon: true}, ActionHeld); res.State != Edited {
		t.Fatalf("state %s", res.State)
	}
	if res := step(d, SyncOptions{Daemon: true}, ActionApplied); res.State != Edited {
		t.Fatalf("state %s", res.State)
	}
	// Flushed by "systemctl restart nftables": the daemon puts it back.
	l.load(t, "flush ruleset\n")
	step(d, SyncOptions{Daemon: true}, ActionApplied)

	// A reverted confirm is not put back by the daemon, but by a manual apply.
	m.Timer, m.RevertArgv = &fakeTimer{}, l.nft.Argv
	other := *d
	other.Firewall.SSHPort = 2222
	res := step(&other, SyncOptions{Confirm: time.Minute}, ActionApplied)
	if res.Pending == nil {
		t.Fatal("no pending confirm")
	}
	step(&other, SyncOptions{Daemon: true}, ActionHeld)
	m.Timer.(*fakeTimer).fire(t)
	if res := step(&other, SyncOptions{Daemon: true}, ActionHeld); res.State != Reverted {
		t.Fatalf("state %s", res.State)
	}
	step(&other, SyncOptions{}, ActionApplied)

	// Firewall switched off: the table goes, then nothing more happens.
	off := *d
	off.Firewall.Enabled = false
	step(&off, SyncOptions{}, ActionRemoved)
	step(&off, SyncOptions{}, ActionNone)
	if _, ok, _ := l.nft.Table(ctx); ok {
		t.Fatal("table still there")
	}
	// A host that never had the table does not even need nft.
	never := &Manager{Nft: Nft{Argv: []string{"/nonexistent/nft"}}, Dir: filepath.Join(t.TempDir(), "fw")}
	if res, err := Sync(ctx, never, nil, off.Drift, SyncOptions{Daemon: true}); err != nil || res.Action != ActionNone {
		t.Fatalf("firewall off, never loaded: %+v %v", res, err)
	}
	if _, err := os.Stat(never.Dir); err == nil {
		t.Fatal("state dir created for a firewall that is off")
	}
}
