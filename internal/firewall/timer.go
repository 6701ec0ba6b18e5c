package firewall

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// SystemdRun arms the revert as a transient timer + service
// (systemd-run --on-active): systemd owns it, so it fires even when the agent
// was killed, and it is gone after a reboot together with the kernel's
// ruleset.
type SystemdRun struct {
	// Prefix runs systemd-run/systemctl elsewhere (tests: nsenter into a box).
	Prefix []string
}

func (s SystemdRun) cmd(ctx context.Context, args ...string) *exec.Cmd {
	full := append(append([]string{}, s.Prefix...), args...)
	c := exec.CommandContext(ctx, full[0], full[1:]...)
	c.WaitDelay = time.Second
	return c
}

// Arm implements Timer.
func (s SystemdRun) Arm(ctx context.Context, name string, after time.Duration, argv []string) error {
	secs := int64((after + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	args := []string{"systemd-run", "--quiet", "--collect",
		"--unit=" + name,
		"--description=jitsi-agent: revert an unconfirmed firewall change",
		"--on-active=" + strconv.FormatInt(secs, 10) + "s",
		"--timer-property=AccuracySec=1s",
		"--"}
	args = append(args, argv...)
	out, err := s.cmd(ctx, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemd-run: %s: %w", strings.TrimSpace(string(out)), err)
	}
	return nil
}

// Disarm implements Timer: stop the timer and a revert already running.
func (s SystemdRun) Disarm(ctx context.Context, name string) error {
	out, err := s.cmd(ctx, "systemctl", "stop", name+".timer", name+".service").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "not loaded") {
		return fmt.Errorf("systemctl stop %s.timer: %s: %w", name, strings.TrimSpace(string(out)), err)
	}
	_ = s.cmd(ctx, "systemctl", "reset-failed", name+".timer", name+".service").Run()
	return nil
}
