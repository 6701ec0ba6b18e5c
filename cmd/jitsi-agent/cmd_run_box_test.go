package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/systembox"
)

// The daemon under a real systemd (../../shared/recipes/systemd-box.md):
// Debian's systemd as PID 1 in private pid/mount/uts/net namespaces, with
// tmpfs over /run, /tmp, /var/tmp and /etc/systemd/system. The daemon runs
// as a Type=notify service with a watchdog, writing under a --root in the
// box's tmpfs; its stderr goes to the box's journald.

const runBoxUnit = `[Unit]
Description=jitsi-agent under test

[Service]
Type=notify
NotifyAccess=main
ExecStart=/run/jt/jitsi-agent run /run/jt/spec/meet.hcl --root /run/jt/root --socket /run/jt/status.sock --metrics off --log-level debug
ExecReload=/bin/kill -HUP $MAINPID
WatchdogSec=10
Restart=no
TimeoutStartSec=60
Environment=JITSI_APP_SECRET=%s
Environment=JOIN_API_KEY=%s
`

type runBox struct {
	*systembox.Box
	root string
}

func (b *runBox) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return b.Run(ctx, args...)
}

func (b *runBox) show(t *testing.T, props ...string) map[string]string {
	t.Helper()
	out, err := b.run("systemctl", "show", "jitsi-agent-test.service", "-p", strings.Join(props, ","))
	if err != nil {
		t.Fatalf("systemctl show: %v: %s", err, out)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// waitProp polls (bounded) until the unit's property contains want.
func (b *runBox) waitProp(t *testing.T, prop, want string) map[string]string {
	t.Helper()
	var m map[string]string
	for i := 0; i < 300; i++ {
		m = b.show(t, prop, "ActiveState", "StatusText", "NRestarts")
		if strings.Contains(m[prop], want) {
			return m
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never contained %q: %v", prop, want, m)
	return nil
}

func bootRunBox(t *testing.T, stage string) *runBox {
	t.Helper()
	b := &runBox{Box: systembox.Boot(t, stage)}
	b.root = b.Root
	t.Cleanup(func() {
		// Runs before the box is torn down (cleanups run last-in first-out).
		if t.Failed() {
			out, _ := b.run("journalctl", "--no-pager", "-u", "jitsi-agent-test", "-o", "cat")
			t.Logf("daemon journal:\n%s", out)
		}
	})
	return b
}

// TestRunUnderRealSystemd: READY only after the first apply (systemctl
// start returns then), watchdog pings keep the service alive, systemctl
// reload completes (RELOADING=1 with MONOTONIC_USEC, then READY=1), a broken
// spec shows as degraded StatusText with the service still active, priorities
// reach journald through the <N> prefixes, and stop is clean.
func TestRunUnderRealSystemd(t *testing.T) {
	systembox.Require(t)
	bin := agentBinary(t)

	stage := t.TempDir()
	copyTree(t, "../../examples", filepath.Join(stage, "spec"))
	// The launcher as jitsi-agent with jitsi-agent-full next to it, as
	// packaged: the unit's main process is the launcher, which replaces
	// itself with jitsi-agent-full (same PID, so sd_notify is accepted).
	launcher, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(fullBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string]string{
		"units/jitsi-agent-test.service": fmt.Sprintf(runBoxUnit, cliSecret, cliAPIKey),
		"jitsi-agent":                    string(launcher),
		"jitsi-agent-full":               string(full),
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(stage, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(stage, p), []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	box := bootRunBox(t, stage)

	if out, err := box.run("systemctl", "start", "jitsi-agent-test.service"); err != nil {
		t.Fatalf("systemctl start: %v: %s", err, out)
	}
	m := box.show(t, "ActiveState", "SubState", "StatusText")
	if m["ActiveState"] != "active" || !strings.HasPrefix(m["StatusText"], "ok: applied") {
		t.Fatalf("after start: %v", m)
	}
	if _, err := os.Stat(box.root + "/run/jt/root/etc/jitsi/jicofo/jicofo.conf"); err != nil {
		t.Fatalf("READY before the files were applied: %v", err)
	}
	if out, err := box.run("sh", "-c", "readlink /proc/$(systemctl show -p MainPID --value jitsi-agent-test.service)/exe"); err != nil || !strings.HasSuffix(strings.TrimSpace(out), "/run/jt/jitsi-agent-full") {
		t.Fatalf("the unit's main process is not jitsi-agent-full: %v %q", err, out)
	}

	// The pings arrive: systemd records each one (WatchdogTimestamp), so
	// the test waits for the record to move on (the daemon pings every
	// WatchdogSec/2) instead of betting that the service outlives a short
	// watchdog on a loaded machine.
	first := box.show(t, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]
	if first == "" || first == "0" {
		t.Fatalf("no watchdog armed after start: %v", box.show(t, "WatchdogTimestampMonotonic", "WatchdogUSec"))
	}
	for deadline := time.Now().Add(time.Minute); ; {
		m := box.show(t, "WatchdogTimestampMonotonic", "ActiveState", "Result")
		if m["ActiveState"] != "active" || m["Result"] != "success" {
			t.Fatalf("waiting for a watchdog ping: %v", m)
		}
		if m["WatchdogTimestampMonotonic"] != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no watchdog ping reached systemd in a minute (WatchdogSec=10): %v", m)
		}
		time.Sleep(250 * time.Millisecond)
	}

	if out, err := box.run("systemctl", "reload", "jitsi-agent-test.service"); err != nil {
		t.Fatalf("systemctl reload: %v: %s", err, out)
	}
	box.waitProp(t, "ActiveState", "active")

	specFile := box.root + "/run/jt/spec/meet.hcl"
	good, err := os.ReadFile(specFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(specFile, append(append([]byte{}, good...), "\nbogus = 1\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	m = box.waitProp(t, "StatusText", "degraded: invalid spec")
	if m["ActiveState"] != "active" || !strings.Contains(m["StatusText"], "meet.hcl:") {
		t.Fatalf("while degraded: %v", m)
	}
	if err := os.WriteFile(specFile, good, 0o644); err != nil {
		t.Fatal(err)
	}
	box.waitProp(t, "StatusText", "ok: applied")

	// The error line reached journald at priority err, as JSON. journald
	// reads the service's stderr stream on its own schedule: --sync first
	// (everything logged before it is stored and readable).
	if out, err := box.run("journalctl", "--sync"); err != nil {
		t.Fatalf("journalctl --sync: %v: %s", err, out)
	}
	out, err := box.run("journalctl", "--no-pager", "-u", "jitsi-agent-test", "-p", "err", "-o", "cat")
	if err != nil || !strings.Contains(out, `"message":"spec is invalid`) {
		t.Fatalf("journal at priority err: %v\n%s", err, out)
	}
	out, _ = box.run("journalctl", "--no-pager", "-u", "jitsi-agent-test", "-o", "cat")
	t.Logf("daemon journal:\n%s", out)
	if strings.Contains(out, cliSecret) {
		t.Fatal("the JWT secret reached the journal")
	}
	if strings.Contains(out, "\n<") || strings.HasPrefix(out, "<") {
		t.Fatalf("priority prefixes were not consumed by journald:\n%s", out)
	}

	if out, err := box.run("systemctl", "stop", "jitsi-agent-test.service"); err != nil {
		t.Fatalf("systemctl stop: %v: %s", err, out)
	}
	if m := box.show(t, "ActiveState", "Result", "ExecMainStatus"); m["ActiveState"] != "inactive" || m["Result"] != "success" || m["ExecMainStatus"] != "0" {
		t.Fatalf("after stop: %v", m)
	}
}
