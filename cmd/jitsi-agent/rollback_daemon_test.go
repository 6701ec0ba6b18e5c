package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
)

// TestRollbackWithRunningDaemon: `rollback` asks the running daemon (over
// its socket) to roll back and hold that generation; the daemon does not
// re-apply the spec a second later, a rescan or SIGHUP keeps the hold, and
// a change of the spec releases it. Without a daemon the CLI rolls back
// itself, as before.
func TestRollbackWithRunningDaemon(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	bin := agentBinary(t)
	dir := t.TempDir()
	copyTree(t, "../../examples", filepath.Join(dir, "examples"))
	specPath := filepath.Join(dir, "examples", "meet.hcl")
	v1, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	v2 := bytes.Replace(v1, []byte("max_participants     = 50"), []byte("max_participants     = 60"), 1)
	if bytes.Equal(v1, v2) {
		t.Fatal("the example changed: no max_participants = 50 to edit")
	}
	root := filepath.Join(dir, "root")
	sock := daemon.DefaultSocketPath(root)
	writeSelfSigned(t, filepath.Join(root, "etc/jitsi/meet/meet.example.com.crt"), filepath.Join(root, "etc/jitsi/meet/meet.example.com.key"))
	prosody := filepath.Join(root, "etc/prosody/conf.avail/meet.example.com.cfg.lua")

	// No daemon yet: the spec's two generations are applied by the CLI.
	if code, out, errs := runCLI(t, "apply", specPath, "--root", root); code != exitOK {
		t.Fatalf("apply v1: %d\n%s%s", code, out, errs)
	}
	gen1, _ := os.ReadFile(prosody)
	os.WriteFile(specPath, v2, 0o644)
	if code, out, errs := runCLI(t, "apply", specPath, "--root", root); code != exitOK {
		t.Fatalf("apply v2: %d\n%s%s", code, out, errs)
	}
	gen2, _ := os.ReadFile(prosody)
	if bytes.Equal(gen1, gen2) {
		t.Fatal("the two generations render the same Prosody file")
	}

	cmd := exec.Command(bin, "run", specPath, "--root", root, "--socket", sock, "--metrics", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = append(os.Environ(), "JITSI_APP_SECRET="+cliSecret, "NOTIFY_SOCKET=", "WATCHDOG_USEC=")
	var logs lockedBuffer
	cmd.Stderr, cmd.Stdout = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	waitStatus(t, sock, "ready", func(s *daemon.Status) bool { return s.Ready })

	code, out, errs := runCLI(t, "rollback", specPath, "--root", root)
	if code != exitOK || !strings.Contains(out, "the running daemon rolled back") || !strings.Contains(out, "held until the spec") {
		t.Fatalf("rollback with a daemon: %d\n%s%s", code, out, errs)
	}
	if b, _ := os.ReadFile(prosody); !bytes.Equal(b, gen1) {
		t.Fatal("the daemon did not restore the previous generation")
	}
	st := waitStatus(t, sock, "held", func(s *daemon.Status) bool { return s.Held != "" })
	applies := st.Applies
	// A SIGHUP re-reads everything: the hold stays (the spec did not change).
	cmd.Process.Signal(syscall.SIGHUP)
	waitStatus(t, sock, "re-read", func(s *daemon.Status) bool { return s.Applies > applies })
	time.Sleep(1500 * time.Millisecond)
	if b, _ := os.ReadFile(prosody); !bytes.Equal(b, gen1) {
		t.Fatal("the daemon undid the rollback without a spec change")
	}
	// A change of the spec releases the hold and is applied.
	os.WriteFile(specPath, append(append([]byte{}, v2...), []byte("\n# edited\n")...), 0o644)
	waitStatus(t, sock, "released", func(s *daemon.Status) bool { return s.Held == "" && s.State == daemon.StateOK })
	deadline := time.Now().Add(runBound)
	for {
		if b, _ := os.ReadFile(prosody); bytes.Equal(b, gen2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the changed spec was not applied after the hold was released")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A refused rollback says why (a serial the backups do not reach).
	code, _, errs = runCLI(t, "rollback", specPath, "--root", root, "--to", "999")
	if code != exitError || !strings.Contains(errs, "refused") {
		t.Fatalf("refused rollback: %d\n%s", code, errs)
	}
	if strings.Contains(logs.String(), cliSecret) {
		t.Fatal("the JWT secret reached the daemon's log")
	}
}
