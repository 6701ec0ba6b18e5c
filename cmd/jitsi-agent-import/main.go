// Command jitsi-agent-import is the program behind `jitsi-agent import`,
// the way git runs git-foo for `git foo`: jitsi-agent parses the command
// line with its command table (help, completion and the man page come from
// there) and runs this program with the parsed values.
//
// It is a separate binary because import evaluates config.js with a
// JavaScript engine (goja) and Prosody's configuration with a Lua one
// (gopher-lua). Their package initialisation (regexp tables, Unicode
// collation, a profiler's regexps) cost every jitsi-agent start about
// 0.6 ms of CPU, while only this one rarely used command needs them.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/jitsi-agent/jitsi-agent/internal/adopt"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run takes the flags jitsi-agent's import command passes: -root DIR (already
// absolute), -out SPEC, and optionally -domain DOMAIN, -force, -dry-run.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("jitsi-agent-import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "/", "directory the host's / is under")
	domain := fs.String("domain", "", "the domain to import when the host configures several")
	out := fs.String("out", "", "spec file to write")
	force := fs.Bool("force", false, "replace an existing spec, app secret file or stored secret")
	dryRun := fs.Bool("dry-run", false, "print the spec and the report; write nothing")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintln(stderr, "Run 'jitsi-agent import -h' for the options.")
		return 1
	}
	if *out == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "Error: jitsi-agent-import needs -out SPEC and no arguments; run it as 'jitsi-agent import'.")
		return 1
	}
	res, err := adopt.Import(adopt.Options{Root: *root, Domain: *domain, Out: *out})
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\nNothing was written.\n", err)
		return 1
	}
	if *dryRun {
		stdout.Write(res.Spec)
		fmt.Fprintln(stdout)
		res.WriteReport(stdout)
		return 0
	}
	if err := res.Write(*out, *force); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Wrote %s.\n", *out)
	res.WriteReport(stdout)
	next := "jitsi-agent plan " + *out
	if *root != "/" {
		next += " -root " + *root
	}
	fmt.Fprintf(stdout, "\nNext: %s\n", next)
	return 0
}
