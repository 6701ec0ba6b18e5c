package main

import (
	"errors"
	"fmt"
	"os/exec"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/execpath"
)

// runImport checks the arguments and runs the jitsi-agent-import program
// (cmd/jitsi-agent-import) with them: import's JavaScript and Lua engines
// stay out of every other command's start-up (see that program's doc).
func runImport(c *cli.Call) int {
	out := c.String("out")
	if out == "" {
		return c.Usagef("import needs -out SPEC")
	}
	root, err := hostRoot(c.String("root"))
	if err != nil {
		printError(c.Stderr, err)
		return exitError
	}
	helper, err := importProgram()
	if err != nil {
		printError(c.Stderr, err, "Nothing was written.")
		return exitError
	}
	args := []string{"-root", root, "-out", out}
	if d := c.String("domain"); d != "" {
		args = append(args, "-domain", d)
	}
	if c.Bool("force") {
		args = append(args, "-force")
	}
	if c.Bool("dry-run") {
		args = append(args, "-dry-run")
	}
	cmd := exec.Command(helper, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return exit.ExitCode()
	default:
		printError(c.Stderr, fmt.Errorf("running %s: %w", helper, err), "Nothing was written.")
		return exitError
	}
}

// importProgram finds jitsi-agent-import (internal/execpath).
func importProgram() (string, error) {
	p, err := execpath.Find("jitsi-agent-import")
	if err != nil {
		return "", fmt.Errorf("import needs another program: %w", err)
	}
	return p, nil
}
