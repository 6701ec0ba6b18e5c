// Command jitsi-agent renders, applies and keeps a self-hosted Jitsi Meet
// deployment in the state one HCL spec describes.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Exit codes, Terraform-style.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2 // plan: changes pending (not a failure); doctor: warnings
)

// command is one subcommand. Each lives in its own cmd_*.go file and
// registers itself in init().
type command struct {
	name    string
	summary string
	usage   string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("duplicate command " + c.name)
	}
	commands[c.name] = c
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 2 && args[0] == "help" {
			if c, ok := commands[args[1]]; ok { // help CMD prints CMD's usage
				c.run([]string{"-h"}, stdout, stderr)
				return exitOK
			}
			fmt.Fprintf(stderr, "jitsi-agent: unknown command %q\n", args[1])
			return exitError
		}
		usage(stdout)
		if len(args) == 0 {
			return exitError
		}
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "jitsi-agent: unknown command %q\n", args[0])
		if s := suggest(args[0]); s != "" {
			fmt.Fprintf(stderr, "Did you mean %q?\n", s)
		}
		fmt.Fprintln(stderr, "Run 'jitsi-agent help' for the list of commands.")
		return exitError
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: jitsi-agent <command> [options]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'jitsi-agent <command> -h' for a command's options.")
}

func suggest(s string) string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return spec.Suggest(s, names)
}
