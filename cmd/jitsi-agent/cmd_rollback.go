package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"

	"github.com/jitsi-agent/jitsi-agent/internal/apply"
	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/firewall"
)

func runRollback(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	to, quiet := c.Int("to"), c.Bool("q")
	specPath := c.Args[0]
	root, ok := rootArg(c)
	if !ok {
		return exitError
	}
	d, ok := loadSpec(c, specPath)
	if !ok {
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A running daemon would put the spec's files back within a second:
	// ask it to roll back (and reload) and hold that generation until the
	// spec changes; it refuses with the reason otherwise.
	ans, err := daemon.RequestRollback(ctx, daemon.DefaultSocketPath(root), to)
	switch {
	case errors.Is(err, daemon.ErrNoDaemon):
	case err != nil:
		printError(stderr, err)
		return exitError
	case !ans.OK:
		fmt.Fprintf(stderr, "Error: the running daemon refused the rollback: %s\n", ans.Error)
		return exitError
	default:
		if !quiet {
			fmt.Fprintf(stdout, "jitsi-agent: the running daemon rolled back (%d file(s)) and reloaded: %s\n", ans.Written, ans.Held)
		}
		return exitOK
	}
	opts := apply.Options{Root: root, StateDir: d.StateDir, Keep: d.Backups}
	if !quiet {
		opts.Progress = stdout
	}
	res, err := apply.Rollback(ctx, to, opts)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	if quiet {
		for _, n := range res.Notices {
			fmt.Fprintf(stderr, "jitsi-agent: notice: %s\n", n)
		}
	} else if len(res.Units) > 0 {
		fmt.Fprintf(stdout, "jitsi-agent: reload needed: %s\n", strings.Join(res.Units, " "))
	}
	for _, c := range res.Changes {
		if c.Path == firewall.Path && !quiet {
			fmt.Fprintf(stdout, "jitsi-agent: firewall: load the restored table with: nft -f %s (it replaces only table inet jitsi_agent)\n", firewall.Path)
		}
	}
	return exitOK
}
