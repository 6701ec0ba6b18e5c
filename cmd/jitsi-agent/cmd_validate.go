package main

import (
	"flag"
	"fmt"
	"io"
)

func init() {
	register(command{
		name:    "validate",
		summary: "check a spec and render it in memory; prints every problem at once",
		usage:   "validate SPEC [--host H] [-var name=value]",
		run:     runValidate,
	})
}

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var host string
	addSpecFlags(fs, &host)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: jitsi-agent validate SPEC [--host H] [-var name=value]")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitError
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitError
	}
	d, ok := loadSpec(pos[0], host, stderr)
	if !ok {
		fmt.Fprintf(stderr, "jitsi-agent: %s is not valid; nothing was changed.\n", pos[0])
		return exitError
	}
	set, err := desiredStateReadOnly(d, "/nonexistent-state-for-validate")
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "Success! %s is valid: %d files for host %q (%s auth).\n", pos[0], len(set.Files), d.Host.Name, d.Auth.Mode)
	return exitOK
}
