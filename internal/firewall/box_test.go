package firewall

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/systembox"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// childEnv makes the test binary act as the agent inside the box.
const childEnv = "JITSI_AGENT_FIREWALL_CHILD"

const boxStateDir = "/var/lib/jitsi-agent/firewall"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(boxChild(mode, os.Args[len(os.Args)-2:]))
	}
	os.Exit(m.Run())
}

// boxChild runs inside the box. "apply SCRIPT SECONDS" applies with
// --confirm, prints "applied PID" and hangs until it is killed; "confirm - -"
// confirms.
func boxChild(mode string, args []string) int {
	ctx := context.Background()
	nftPath, err := exec.LookPath("nft")
	if err != nil {
		nftPath = "/usr/sbin/nft"
	}
	m := &Manager{Nft: Nft{Argv: []string{nftPath}}, Dir: boxStateDir, Timer: SystemdRun{}, RevertArgv: []string{nftPath}}
	switch mode {
	case "apply":
		script, err := os.ReadFile(args[0])
		if err != nil {
			fmt.Println("error:", err)
			return 2
		}
		secs, _ := strconv.Atoi(args[1])
		if _, err := m.Apply(ctx, script, time.Duration(secs)*time.Second); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Printf("applied %d\n", os.Getpid())
		if secs == 0 {
			return 0
		}
		select {} // wait for SIGKILL
	case "confirm":
		if _, err := m.Confirm(ctx); err != nil {
			if errors.Is(err, ErrReverted) {
				fmt.Println("reverted")
				return 3
			}
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("confirmed")
		return 0
	}
	return 2
}

type fwBox struct {
	*systembox.Box
	exe string
}

func bootFirewallBox(t *testing.T) *fwBox {
	t.Helper()
	testenv.LookPath(t, "nft", "apt-get install nftables")
	testenv.LookPath(t, "systemd-run", "apt-get install systemd")
	stage := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stage, "firewall.test"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]Rules{"old.nft": testRules(22), "new.nft": testRules(2222)} {
		if err := os.WriteFile(filepath.Join(stage, name), mustRender(t, r), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &fwBox{Box: systembox.Boot(t, stage), exe: systembox.StageDir + "/firewall.test"}
}

// child starts the agent stand-in inside the box and returns its first
// output line and the running command.
func (b *fwBox) child(t *testing.T, mode, a1, a2 string) (string, *exec.Cmd) {
	t.Helper()
	full := b.Nsenter("env", childEnv+"="+mode, b.exe, "-test.run=^$", a1, a2)
	cmd := exec.Command(full[0], full[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return strings.TrimSpace(line), cmd
}

func (b *fwBox) ruleset(t *testing.T) string {
	t.Helper()
	out, err := b.Run(context.Background(), "nft", "list", "table", "inet", Table)
	if err != nil {
		t.Fatalf("nft list in the box: %v\n%s", err, out)
	}
	return out
}

// unit returns systemd's properties of one of the box's units.
func (b *fwBox) unit(t *testing.T, name string, props ...string) map[string]string {
	t.Helper()
	args := []string{"systemctl", "show", name}
	for _, p := range props {
		args = append(args, "-p", p)
	}
	out, err := b.Run(context.Background(), args...)
	if err != nil {
		t.Fatalf("systemctl show %s in the box: %v\n%s", name, err, out)
	}
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// applyAndKill runs the agent stand-in's confirmed apply of new.nft with a
// window of secs and SIGKILLs it once it reports the apply; it returns when
// the process is gone.
func (b *fwBox) applyAndKill(t *testing.T, secs int) {
	t.Helper()
	line, cmd := b.child(t, "apply", systembox.StageDir+"/new.nft", strconv.Itoa(secs))
	pid, ok := strings.CutPrefix(line, "applied ")
	if !ok {
		t.Fatalf("confirmed apply (%d s window): %q", secs, line)
	}
	if out, err := b.Run(context.Background(), "kill", "-9", pid); err != nil {
		t.Fatalf("kill -9 %s: %v %s", pid, err, out)
	}
	// nsenter forks the stand-in and waits for it: its end is the agent's.
	_ = cmd.Wait()
}

// waitRevertDone waits until the revert unit has finished its last step
// (it renames pending.json to reverted.json after nft loaded the saved
// table). The deadline only bounds a broken revert; a working one ends the
// wait as soon as it has run.
func (b *fwBox) waitRevertDone(t *testing.T) {
	t.Helper()
	marker := b.Root + boxStateDir + "/" + revertedFile
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(marker); err == nil {
			return
		}
		if time.Now().After(deadline) {
			st, _ := b.Run(context.Background(), "systemctl", "status", "--no-pager", RevertUnit+".timer", RevertUnit+".service")
			t.Fatalf("the revert never marked the apply as reverted (%s missing 2 min later); live table:\n%s\nunits:\n%s", revertedFile, b.ruleset(t), st)
		}
		time.Sleep(100 * time.Millisecond) // polling a file; the deadline above bounds it
	}
}

// An unconfirmed --confirm reverts through the transient systemd timer,
// although the agent that armed it was SIGKILLed; a confirmed one stays.
//
// Nothing here depends on how fast the machine is: the test reads systemd's
// own state of the timer instead of timing the revert, waits for the
// revert's completion marker instead of sleeping, and checks that a
// confirmed apply cannot revert any more (its timer is gone) instead of
// waiting past its window.
func TestBoxConfirmRevertsAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("systemd box skipped in -short mode")
	}
	b := bootFirewallBox(t)
	applyOld := func() {
		t.Helper()
		if line, _ := b.child(t, "apply", systembox.StageDir+"/old.nft", "0"); !strings.HasPrefix(line, "applied") {
			t.Fatalf("unconfirmed apply of old.nft: %q", line)
		}
	}
	applyOld()
	old := b.ruleset(t)
	if !strings.Contains(old, "tcp dport 22 accept") {
		t.Fatalf("old ruleset:\n%s", old)
	}

	// Apply with a confirm window, then SIGKILL the agent. The run proves
	// something only if the kill and the check of the new ruleset happen
	// while the timer is still waiting; a machine slow enough to let the
	// window pass before that gets a run with a longer window (a timer
	// that fires at once fails every run).
	var armed string
	for secs := 3; ; secs *= 2 {
		b.applyAndKill(t, secs)
		live := b.ruleset(t)
		timer := b.unit(t, RevertUnit+".timer", "SubState", "TimersMonotonic")
		if timer["SubState"] == "waiting" {
			if !strings.Contains(live, "tcp dport 2222 accept") {
				t.Fatalf("new ruleset not live after the apply:\n%s", live)
			}
			if want := "OnActiveUSec=" + strconv.Itoa(secs) + "s"; !strings.Contains(timer["TimersMonotonic"], want) {
				t.Fatalf("revert timer %q, want %s", timer["TimersMonotonic"], want)
			}
			armed = timer["TimersMonotonic"]
			break
		}
		// Not waiting: it fired already (the timer is collected once its
		// revert has run), or it never was armed. Either way a longer
		// window must get a waiting timer; a product that never gets
		// there fails below.
		if secs >= 48 {
			t.Fatalf("the revert timer was %q (not waiting) right after the agent was killed, in every run up to a %d s window: it does not wait for the window", timer["SubState"], secs)
		}
		t.Logf("the %d s window passed before the test could check the timer (state %q; slow machine): again with %d s", secs, timer["SubState"], 2*secs)
		// Let the revert finish (the timer is gone and pending.json was
		// renamed), then start again from the old table.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			s := b.unit(t, RevertUnit+".timer", "SubState")["SubState"]
			_, err := os.Stat(b.Root + boxStateDir + "/" + pendingFile)
			if s != "waiting" && s != "running" && errors.Is(err, fs.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the revert did not complete within 2 min (timer %q, %s: %v)", s, pendingFile, err)
			}
			time.Sleep(100 * time.Millisecond) // polling systemd; bounded by the deadline
		}
		applyOld()
	}
	t.Logf("armed: %s", armed)

	// The agent is gone; systemd reverts on its own.
	b.waitRevertDone(t)
	if got := b.ruleset(t); got != old {
		t.Fatalf("reverted table differs from the one before the apply:\n%s\nwant:\n%s", got, old)
	}
	if _, err := os.Stat(b.Root + boxStateDir + "/" + pendingFile); err == nil {
		t.Fatalf("%s still there after the revert", pendingFile)
	}
	if line, _ := b.child(t, "confirm", "-", "-"); line != "reverted" {
		t.Fatalf("late confirm: %q, want reverted", line)
	}

	// Confirmed within the window: the revert is cancelled, so the new
	// ruleset stays. The window is long enough for any machine to confirm
	// in time; the test does not wait for it to pass but checks that
	// nothing is left that could revert.
	b.applyAndKill(t, 600)
	if s := b.unit(t, RevertUnit+".timer", "SubState")["SubState"]; s != "waiting" {
		t.Fatalf("revert timer %q after the second apply, want waiting", s)
	}
	if line, _ := b.child(t, "confirm", "-", "-"); line != "confirmed" {
		t.Fatalf("confirm: %q", line)
	}
	for _, u := range []string{RevertUnit + ".timer", RevertUnit + ".service"} {
		if st := b.unit(t, u, "ActiveState", "SubState"); st["ActiveState"] == "active" || st["ActiveState"] == "activating" {
			t.Fatalf("%s still %s/%s after confirm: the revert can still fire", u, st["ActiveState"], st["SubState"])
		}
	}
	if out, _ := b.Run(context.Background(), "systemctl", "list-timers", "--all", "--no-legend", "jitsi-agent*"); strings.TrimSpace(out) != "" {
		t.Fatalf("a jitsi-agent timer is left after confirm:\n%s", out)
	}
	if got := b.ruleset(t); !strings.Contains(got, "tcp dport 2222 accept") {
		t.Fatalf("confirmed ruleset not live:\n%s", got)
	}
	for _, f := range []string{pendingFile, revertedFile, revertFile} {
		if _, err := os.Stat(b.Root + boxStateDir + "/" + f); err == nil {
			t.Fatalf("%s left after confirm", f)
		}
	}
}
