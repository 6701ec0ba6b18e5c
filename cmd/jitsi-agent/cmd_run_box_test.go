package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// The daemon under a real systemd (../../shared/recipes/systemd-box.md):
// Debian's systemd as PID 1 in private pid/mount/uts/net namespaces, with
// tmpfs over /run, /tmp, /var/tmp and /etc/systemd/system. The daemon runs
// as a Type=notify service with a watchdog, writing under a --root in the
// box's tmpfs; its stderr goes to the box's journald.

const runBoxScript = `set -e
STAGE=$1
ip link set lo up
mount -t tmpfs tmpfs /run
mkdir -p /run/jt
cp -a "$STAGE"/. /run/jt/
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /var/tmp
mount -t tmpfs tmpfs /etc/systemd/system
for u in systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service systemd-tmpfiles-clean.timer \
         systemd-sysusers.service systemd-sysctl.service systemd-remount-fs.service systemd-binfmt.service \
         systemd-modules-load.service console-getty.service getty@.service systemd-logind.service \
         systemd-update-utmp.service systemd-journal-flush.service systemd-random-seed.service \
         proc-sys-fs-binfmt_misc.automount sys-kernel-config.mount sys-kernel-debug.mount \
         sys-kernel-tracing.mount sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount \
         systemd-hwdb-update.service systemd-machine-id-commit.service systemd-firstboot.service \
         ldconfig.service systemd-journal-catalog-update.service; do
  ln -sf /dev/null /etc/systemd/system/$u
done
cp /run/jt/jitsi-agent-test.service /etc/systemd/system/
printf "[Unit]\nRequires=dbus.socket basic.target systemd-journald.socket\nAfter=dbus.socket basic.target systemd-journald.socket\n" > /etc/systemd/system/box.target
exec env container=box /lib/systemd/systemd --system --unit=box.target --log-target=console
`

const runBoxUnit = `[Unit]
Description=jitsi-agent under test

[Service]
Type=notify
NotifyAccess=main
ExecStart=/run/jt/jitsi-agent run /run/jt/spec/meet.hcl --root /run/jt/root --socket /run/jt/status.sock --metrics off --log-level debug
ExecReload=/bin/kill -HUP $MAINPID
WatchdogSec=2
Restart=no
TimeoutStartSec=60
Environment=JITSI_APP_SECRET=%s
`

type runBox struct {
	pid1 int
	root string
}

func (b *runBox) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{"-t", strconv.Itoa(b.pid1), "-m", "-p", "-u", "-n", "--"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
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
	var log bytes.Buffer
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount", "--uts", "--net", "--mount-proc", "--propagation", "private",
		"bash", filepath.Join(stage, "boot.sh"), stage)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &runBox{}
	t.Cleanup(func() {
		if b.pid1 > 0 {
			if t.Failed() {
				out, _ := b.run("journalctl", "--no-pager", "-u", "jitsi-agent-test", "-o", "cat")
				t.Logf("daemon journal:\n%s", out)
			}
			// Killing the pid namespace's init ends every process in it.
			_ = exec.Command("kill", "-9", strconv.Itoa(b.pid1)).Run()
		} else {
			_ = cmd.Process.Kill()
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			s := log.String()
			if len(s) > 3000 {
				s = s[len(s)-3000:]
			}
			t.Logf("box console:\n%s", s)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for b.pid1 == 0 && time.Now().Before(deadline) {
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(cmd.Process.Pid)).Output()
		if f := strings.Fields(string(out)); len(f) > 0 {
			b.pid1, _ = strconv.Atoi(f[0])
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b.pid1 == 0 {
		t.Fatal("the box's PID 1 did not appear within 30s")
	}
	b.root = fmt.Sprintf("/proc/%d/root", b.pid1)
	for time.Now().Before(deadline) {
		out, _ := b.run("systemctl", "is-system-running")
		if s := strings.TrimSpace(out); s == "running" || s == "degraded" {
			return b
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the box did not finish booting within 30s")
	return nil
}

// TestRunUnderRealSystemd: READY only after the first apply (systemctl
// start returns then), watchdog pings keep the service alive, systemctl
// reload completes (RELOADING=1 with MONOTONIC_USEC, then READY=1), a broken
// spec shows as degraded StatusText with the service still active, priorities
// reach journald through the <N> prefixes, and stop is clean.
func TestRunUnderRealSystemd(t *testing.T) {
	testenv.Root(t, "booting systemd in namespaces")
	testenv.File(t, "/lib/systemd/systemd", "apt-get install systemd")
	for _, tool := range []string{"unshare", "nsenter", "ip", "pgrep"} {
		testenv.LookPath(t, tool, "apt-get install util-linux iproute2 procps")
	}
	testenv.LookPath(t, "dbus-daemon", "apt-get install dbus")
	bin := agentBinary(t)

	stage := t.TempDir()
	copyTree(t, "../../examples", filepath.Join(stage, "spec"))
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string]string{
		"boot.sh":                  runBoxScript,
		"jitsi-agent-test.service": fmt.Sprintf(runBoxUnit, cliSecret),
		"jitsi-agent":              string(b),
	} {
		if err := os.WriteFile(filepath.Join(stage, p), []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	box := bootRunBox(t, stage)

	start := time.Now()
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

	// WatchdogSec=2: alive well past it means the pings arrive.
	for time.Since(start) < 5*time.Second {
		time.Sleep(250 * time.Millisecond)
	}
	if m := box.show(t, "ActiveState", "NRestarts", "Result"); m["ActiveState"] != "active" || m["Result"] != "success" {
		t.Fatalf("after 5s with WatchdogSec=2: %v", m)
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

	// The error line reached journald at priority err, as JSON.
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
