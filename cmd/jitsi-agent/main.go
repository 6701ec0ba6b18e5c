// Command jitsi-agent renders, applies and keeps a self-hosted Jitsi Meet
// deployment in the state one HCL spec describes. Installed as
// jitsi-agent-full: the jitsi-agent users run is the launcher
// (cmd/jitsi-agent-launcher), which answers version, help, completion, man
// and no-op applies itself and runs this program for everything else. It
// is a complete jitsi-agent on its own.
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
