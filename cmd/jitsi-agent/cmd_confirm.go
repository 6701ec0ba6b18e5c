package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/firewall"
)

func runConfirm(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	specPath := c.Args[0]
	d, ok := loadSpec(c, specPath)
	if !ok {
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := agent.SystemFirewall().Manager(d, "/").Confirm(ctx)
	switch {
	case errors.Is(err, firewall.ErrReverted):
		fmt.Fprintf(stderr, "Error: %v: the previous rules are live again.\nIf the change is right, run 'jitsi-agent apply %s -confirm 2m' again and confirm it in time.\n", err, specPath)
		return exitError
	case errors.Is(err, firewall.ErrNothingPending):
		fmt.Fprintf(stderr, "Error: %v.\n", err)
		return exitError
	case err != nil:
		printError(stderr, err)
		return exitError
	}
	fmt.Fprintf(stdout, "jitsi-agent: firewall change confirmed (it would have reverted at %s)\n", p.Deadline.Local().Format("15:04:05 MST"))
	return exitOK
}
