// Command jitsi-agent-launcher is installed as jitsi-agent: the program
// users, scripts and the systemd unit run. It answers by itself what needs
// nothing but the command table and the no-op stamp:
//
//   - version, help (-h, --help, help CMD, usage errors), completion, man;
//   - an apply that the no-op stamp (internal/stamp) shows would change
//     nothing.
//
// For everything else it runs jitsi-agent-full (cmd/jitsi-agent, the
// program with every command) in its place, the way git runs git-foo:
// found by internal/execpath, started with execve(2) so it keeps this
// process (its PID for systemd, its arguments, environment, descriptors
// and exit status).
//
// The split exists for start-up time: jitsi-agent-full links the HTTP
// server and client, ACME, D-Bus, etcd, the probes, HCL, cty and
// text/template, whose package initialisation and 20 MB of code cost every
// start about 2 ms of CPU before main runs. TestStartupStaysLean lists what
// this program may link.
package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/commands"
	"github.com/jitsi-agent/jitsi-agent/internal/execpath"
	"github.com/jitsi-agent/jitsi-agent/internal/planfile"
	"github.com/jitsi-agent/jitsi-agent/internal/stamp"
)

// Set at build time like jitsi-agent-full's (see cmd/jitsi-agent): the two
// programs of one build must agree, or no stamp is ever trusted.
var (
	version = ""
	commit  = ""
	date    = ""
)

// fullProgram is the program with every command.
const fullProgram = "jitsi-agent-full"

func main() {
	l := launcher{build: commands.ResolveBuild(version, commit, date), argv0: os.Args[0], exec: syscall.Exec}
	os.Exit(l.run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// launcher is one run of the program.
type launcher struct {
	build commands.Build
	argv0 string
	// exec replaces the process (syscall.Exec); it returns only on error.
	exec func(path string, argv, env []string) error
}

// run parses args with the command table, as jitsi-agent-full does (-chdir
// DIR switches directory first), and runs the command.
func (l launcher) run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := commands.App(l.build, commands.Runners{"apply": l.apply}, l.full)
	return app.Run(args, stdin, stdout, stderr, func(g *cli.Values) int {
		if dir := g.String("chdir"); dir != "" {
			if err := os.Chdir(dir); err != nil {
				fmt.Fprintf(stderr, "Error: -chdir: %v\n", err)
				return 1
			}
		}
		return 0
	})
}

// full runs jitsi-agent-full with the command line from the command on:
// -chdir was done here, and the working directory carries over.
func (l launcher) full(c *cli.Call) int {
	p, err := execpath.Find(fullProgram)
	if err != nil {
		fmt.Fprintf(c.Stderr, "Error: %s %s needs another program: %v\nNothing was done.\n", c.App.Name, c.Path, err)
		return 1
	}
	err = l.exec(p, append([]string{l.argv0}, c.Raw...), os.Environ())
	fmt.Fprintf(c.Stderr, "Error: running %s: %v\nNothing was done.\n", p, err)
	return 1
}

// apply answers a file-only apply that the no-op stamp shows would change
// nothing, with what that apply printed; any other apply runs in full.
func (l launcher) apply(c *cli.Call) int {
	if l.noop(c) {
		return 0
	}
	return l.full(c)
}

func (l launcher) noop(c *cli.Call) bool {
	if planfile.Is(c.Args[0]) {
		return false
	}
	root, err := commands.HostRoot(c.String("root"))
	if err != nil {
		return false // jitsi-agent-full reports it
	}
	// The stamp names the program that recorded it: jitsi-agent-full.
	exe, err := execpath.Find(fullProgram)
	if err != nil {
		return false
	}
	key, ok := commands.NoopKey(c, c.Args[0], root, exe, l.build)
	if !ok {
		return false
	}
	s := stamp.Check(root, commands.StateDir, key, os.LookupEnv, time.Now())
	if s == nil {
		return false
	}
	io.WriteString(c.Stdout, s.Stdout)
	io.WriteString(c.Stderr, s.Stderr)
	return true
}
