package systemd

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Journal returns the last lines a unit logged, for failure reports.
type Journal interface {
	// Tail returns up to n of the unit's last lines, logged at or after
	// since (zero: no lower bound).
	Tail(ctx context.Context, unit string, n int, since time.Time) ([]string, error)
}

// JournalCtl reads the journal with `journalctl -u UNIT -n N --no-pager`.
// Reading the journal is the one thing done by exec: go-systemd/sdjournal
// needs cgo and libsystemd.
type JournalCtl struct {
	// Command is the program and leading arguments; default
	// ["journalctl"]. Tests prefix it with nsenter to read a box's journal.
	Command []string
	// Timeout bounds the run (default 5 s).
	Timeout time.Duration
}

// Tail implements Journal. A missing journalctl is an error the reloader
// reports next to the unit state rather than a failure of its own.
func (j JournalCtl) Tail(ctx context.Context, unit string, n int, since time.Time) ([]string, error) {
	cmd := j.Command
	if len(cmd) == 0 {
		cmd = []string{"journalctl"}
	}
	timeout := j.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The unit's last words (nginx -s reload's "emerg" line) reach
	// journald through a stream it reads asynchronously: a tail read right
	// after the failed job can miss them. --sync returns once everything
	// logged before it is stored. It needs root; without, the tail is read
	// as it is.
	sync := exec.CommandContext(ctx, cmd[0], append(append([]string{}, cmd[1:]...), "--sync")...)
	sync.WaitDelay = time.Second
	_ = sync.Run()
	args := append(append([]string{}, cmd[1:]...), "-u", unit, "-n", strconv.Itoa(n), "--no-pager", "--quiet", "-o", "short-iso")
	if !since.IsZero() {
		args = append(args, "--since", "@"+strconv.FormatInt(since.Unix(), 10))
	}
	c := exec.CommandContext(ctx, cmd[0], args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	c.WaitDelay = time.Second
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("journalctl -u %s: %w: %s", unit, err, strings.TrimSpace(errb.String()))
	}
	s := strings.TrimRight(out.String(), "\n")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}
