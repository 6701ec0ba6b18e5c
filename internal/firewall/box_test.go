package firewall

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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

// An unconfirmed --confirm reverts on time through the transient systemd
// timer, although the agent that armed it was SIGKILLed; a confirmed one
// stays.
func TestBoxConfirmRevertsAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("systemd box skipped in -short mode")
	}
	b := bootFirewallBox(t)
	ctx := context.Background()
	if line, _ := b.child(t, "apply", systembox.StageDir+"/old.nft", "0"); !strings.HasPrefix(line, "applied") {
		t.Fatalf("initial apply: %q", line)
	}
	old := b.ruleset(t)
	if !strings.Contains(old, "tcp dport 22 accept") {
		t.Fatalf("old ruleset:\n%s", old)
	}

	// Apply with a 3 s confirm window, then SIGKILL the agent.
	line, _ := b.child(t, "apply", systembox.StageDir+"/new.nft", "3")
	pid, ok := strings.CutPrefix(line, "applied ")
	if !ok {
		t.Fatalf("confirmed apply: %q", line)
	}
	armedAt := time.Now()
	if out, err := b.Run(ctx, "kill", "-9", pid); err != nil {
		t.Fatalf("kill -9 %s: %v %s", pid, err, out)
	}
	if got := b.ruleset(t); !strings.Contains(got, "tcp dport 2222 accept") {
		t.Fatalf("new ruleset not live:\n%s", got)
	}
	if out, _ := b.Run(ctx, "systemctl", "is-active", RevertUnit+".timer"); strings.TrimSpace(out) != "active" {
		t.Fatalf("revert timer after the kill: %q", out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for b.ruleset(t) != old {
		if time.Now().After(deadline) {
			t.Fatalf("not reverted 20 s after the 3 s window:\n%s", b.ruleset(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if took := time.Since(armedAt); took < 2*time.Second {
		t.Fatalf("reverted after %s, before the 3 s window ended", took)
	}
	if _, err := os.Stat(b.Root + boxStateDir + "/" + revertedFile); err != nil {
		t.Fatalf("the revert did not mark the apply as reverted: %v", err)
	}
	if line, _ := b.child(t, "confirm", "-", "-"); line != "reverted" {
		t.Fatalf("late confirm: %q, want reverted", line)
	}

	// Confirmed within the window: the new ruleset stays past it.
	line, _ = b.child(t, "apply", systembox.StageDir+"/new.nft", "3")
	pid, ok = strings.CutPrefix(line, "applied ")
	if !ok {
		t.Fatalf("second confirmed apply: %q", line)
	}
	_, _ = b.Run(ctx, "kill", "-9", pid)
	if line, _ := b.child(t, "confirm", "-", "-"); line != "confirmed" {
		t.Fatalf("confirm: %q", line)
	}
	time.Sleep(5 * time.Second)
	if got := b.ruleset(t); !strings.Contains(got, "tcp dport 2222 accept") {
		t.Fatalf("confirmed ruleset reverted anyway:\n%s", got)
	}
	if out, _ := b.Run(ctx, "systemctl", "is-active", RevertUnit+".timer"); strings.TrimSpace(out) == "active" {
		t.Fatal("revert timer still active after confirm")
	}
}
