package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"

	"github.com/jitsi-agent/jitsi-agent/internal/apply"
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
	return exitOK
}
