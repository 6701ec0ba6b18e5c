package main

import (
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	systemdunit "github.com/jitsi-agent/jitsi-agent/systemd"
)

func runUnit(c *cli.Call) int {
	if _, err := c.Stdout.Write(systemdunit.Service); err != nil {
		return exitError
	}
	return exitOK
}
