package main

import (
	"fmt"
	"io"

	systemdunit "github.com/jitsi-agent/jitsi-agent/systemd"
)

func init() {
	register(command{
		name:    "unit",
		summary: "print the hardened systemd unit for the daemon (see systemd/README.md)",
		usage:   "unit",
		run: func(args []string, stdout, stderr io.Writer) int {
			if len(args) != 0 {
				fmt.Fprintln(stderr, "Usage: jitsi-agent unit > /etc/systemd/system/jitsi-agent.service")
				return exitError
			}
			_, err := stdout.Write(systemdunit.Service)
			if err != nil {
				return exitError
			}
			return exitOK
		},
	})
}
