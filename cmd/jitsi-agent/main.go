// Command jitsi-agent renders, applies and keeps a self-hosted Jitsi Meet
// deployment in the state one HCL spec describes.

// GOMAXPROCS is the number of usable CPUs, as before Go 1.25: the cgroup
// CPU-limit lookup (reading /proc/self/cgroup and mountinfo) cost every
// start about 0.3 ms of a 3.5 ms `version`, and jitsi-agent is I/O-bound
// with no CPU quota in its unit.
//
//go:debug containermaxprocs=0
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"
)

// Exit codes, Terraform-style.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2 // plan: changes pending (not a failure); doctor: warnings
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run parses args with the command table (commands.go) and runs the
// command; -chdir DIR switches directory first.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return newApp().Run(args, stdin, stdout, stderr, func(g *cli.Values) int {
		if dir := g.String("chdir"); dir != "" {
			if err := os.Chdir(dir); err != nil {
				fmt.Fprintf(stderr, "Error: -chdir: %v\n", err)
				return exitError
			}
		}
		return exitOK
	})
}

// printError is the one way commands report an error: "Error: ..." on
// stderr, Terraform-style, followed by optional lines (what was or was not
// changed, how to fix it).
func printError(w io.Writer, err error, more ...string) {
	fmt.Fprintf(w, "Error: %v\n", err)
	for _, m := range more {
		fmt.Fprintln(w, m)
	}
}
