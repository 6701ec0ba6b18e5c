package sdnotify

import (
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// listen sets NOTIFY_SOCKET to a unixgram socket of the test's own and
// returns a function that reads the next datagram.
func listen(t *testing.T) func() string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", p)
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reading notify socket: %v", err)
		}
		return string(buf[:n])
	}
}

func TestMessages(t *testing.T) {
	read := listen(t)
	n := New()
	if err := n.Ready("applied 12 files"); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "READY=1\nSTATUS=applied 12 files\n" {
		t.Fatalf("ready: %q", got)
	}
	if err := n.Reloading("re-applying"); err != nil {
		t.Fatal(err)
	}
	got := read()
	if !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[0-9]+\nSTATUS=re-applying\n$`).MatchString(got) {
		t.Fatalf("reloading: %q", got)
	}
	if err := n.Status("degraded: line 1\nline 2"); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "STATUS=degraded: line 1 line 2\n" {
		t.Fatalf("status with a newline: %q", got)
	}
	if err := n.Watchdog(); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "WATCHDOG=1\n" {
		t.Fatalf("watchdog: %q", got)
	}
	if err := n.Stopping(""); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "STOPPING=1\n" {
		t.Fatalf("stopping: %q", got)
	}
}

func TestNoSocketIsANoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := New()
	for _, err := range []error{n.Ready("x"), n.Reloading(""), n.Stopping(""), n.Status("s"), n.Watchdog()} {
		if err != nil {
			t.Fatalf("without NOTIFY_SOCKET: %v", err)
		}
	}
}

func TestDeadSocketIsAnError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	if err := New().Ready(""); err == nil || !strings.Contains(err.Error(), "sdnotify") {
		t.Fatalf("err = %v", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "4000000")
	t.Setenv("WATCHDOG_PID", "")
	if d, err := WatchdogInterval(); err != nil || d != 4*time.Second {
		t.Fatalf("= %v, %v", d, err)
	}
	t.Setenv("WATCHDOG_PID", "1") // another process's watchdog
	if d, err := WatchdogInterval(); err != nil || d != 0 {
		t.Fatalf("other pid: %v, %v", d, err)
	}
	t.Setenv("WATCHDOG_USEC", "")
	if d, err := WatchdogInterval(); err != nil || d != 0 {
		t.Fatalf("unset: %v, %v", d, err)
	}
	t.Setenv("WATCHDOG_USEC", "soon")
	if _, err := WatchdogInterval(); err == nil {
		t.Fatal("bad WATCHDOG_USEC accepted")
	}
}
