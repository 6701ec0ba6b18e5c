// Package systembox boots a real systemd for tests: Debian's systemd as PID 1
// in private pid/mount/uts/net namespaces, with tmpfs over /run, /tmp,
// /var/tmp and /etc/systemd/system, so the host is never touched (the recipe
// in shared/recipes/systemd-box.md). The host is never written: / is
// remounted read-only inside the box's mount namespace, /etc, /var, /srv,
// /usr, /root and /opt are overlays with their writable layers on the box's
// tmpfs, and /dev is the box's own. Each box has its own cgroup namespace.
// Units that would change host-wide state (sysctl, sysusers, tmpfiles
// cleaning, getty...) are masked.
//
// Only root can do this; Boot skips the test otherwise (and fails it under
// JITSI_AGENT_REQUIRE_REAL=1, as CI runs).
package systembox

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

// StageDir is where the stage directory appears inside the box.
const StageDir = "/run/jt"

const bootScript = `set -e
STAGE=$1
ip link set lo up
# Nothing the box does may write the host: / is read-only in this mount
# namespace, /etc /var /srv /usr /root /opt are overlays whose writable
# layers live on the box's own tmpfs, and /dev is the box's own.
mount -t tmpfs tmpfs /run
mkdir -p /run/jt
cp -a "$STAGE"/. /run/jt/
mount -o remount,bind,ro /
mkdir -p /run/.ovl
for d in etc var srv usr root opt; do
  [ -d /$d ] || continue
  mkdir -p /run/.ovl/$d/u /run/.ovl/$d/w
  mount -t overlay overlay -o lowerdir=/$d,upperdir=/run/.ovl/$d/u,workdir=/run/.ovl/$d/w /$d
done
mount -t tmpfs -o mode=0755,nosuid,size=1m tmpfs /dev
mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5; mknod -m 666 /dev/full c 1 7
mknod -m 666 /dev/random c 1 8; mknod -m 666 /dev/urandom c 1 9; mknod -m 666 /dev/tty c 5 0
mkdir /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts; ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/0 /dev/stdin; ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
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
if [ -d /run/jt/units ]; then cp -a /run/jt/units/. /etc/systemd/system/; fi
if [ -f /run/jt/setup.sh ]; then . /run/jt/setup.sh; fi
printf "[Unit]\nRequires=dbus.socket basic.target systemd-journald.socket\nAfter=dbus.socket basic.target systemd-journald.socket\n" > /etc/systemd/system/box.target
exec env container=box /lib/systemd/systemd --system --unit=box.target --log-target=console
`

// Box is a booted systemd.
type Box struct {
	// PID1 is the box's init, as seen from the host.
	PID1 int
	// Root is /proc/PID1/root: the box's view of the filesystem.
	Root string
}

// Require skips (or fails under JITSI_AGENT_REQUIRE_REAL=1) when the box
// cannot be booted here.
func Require(t testing.TB) {
	t.Helper()
	testenv.Root(t, "booting systemd in namespaces")
	testenv.File(t, "/lib/systemd/systemd", "apt-get install systemd")
	for _, tool := range []string{"unshare", "nsenter", "ip", "pgrep"} {
		testenv.LookPath(t, tool, "apt-get install util-linux iproute2 procps")
	}
	testenv.LookPath(t, "dbus-daemon", "apt-get install dbus")
}

// Boot boots a box. The stage directory is copied to /run/jt inside it
// (tmpfs); stage/units/ is installed into /etc/systemd/system before boot
// and stage/setup.sh, if present, is sourced just before systemd starts.
// The box is torn down (kill -9 of its PID 1 ends every process in it) when
// the test ends; on failure the console tail is logged.
func Boot(t testing.TB, stage string) *Box {
	t.Helper()
	Require(t)
	script := filepath.Join(stage, ".boot.sh")
	if err := os.WriteFile(script, []byte(bootScript), 0o755); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount", "--uts", "--net", "--cgroup", "--mount-proc", "--propagation", "private",
		"bash", script, stage)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &Box{}
	t.Cleanup(func() {
		if b.PID1 > 0 {
			_ = exec.Command("kill", "-9", strconv.Itoa(b.PID1)).Run()
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
			t.Logf("box console (last 3000 bytes):\n%s", s)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for b.PID1 == 0 && time.Now().Before(deadline) {
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(cmd.Process.Pid)).Output()
		if f := strings.Fields(string(out)); len(f) > 0 {
			b.PID1, _ = strconv.Atoi(f[0])
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b.PID1 == 0 {
		t.Fatal("the box's PID 1 did not appear within 30s")
	}
	b.Root = fmt.Sprintf("/proc/%d/root", b.PID1)
	var state string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, _ := b.Run(ctx, "systemctl", "is-system-running")
		cancel()
		state = strings.TrimSpace(out)
		if state == "running" || state == "degraded" {
			return b
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the box did not finish booting within 30s (state %q)", state)
	return nil
}

// Nsenter returns the command line that runs args inside the box.
func (b *Box) Nsenter(args ...string) []string {
	return append([]string{"nsenter", "-t", strconv.Itoa(b.PID1), "-m", "-p", "-u", "-n", "--"}, args...)
}

// Run runs a command inside the box and returns its combined output.
func (b *Box) Run(ctx context.Context, args ...string) (string, error) {
	full := b.Nsenter(args...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}
