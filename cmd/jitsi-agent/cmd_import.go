package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"
)

// importCommand is the command table's entry for import.
func importCommand() *cli.Command {
	return &cli.Command{
		Name: "import", Synopsis: "write the spec that reproduces this host's existing Jitsi configuration",
		Flags: []cli.Flag{
			rootFlag("directory the host's / is under (a copy of a host, or / for this machine)"),
			{Name: "domain", Kind: cli.String, Arg: "DOMAIN", Usage: "the domain to import when the host configures several"},
			{Name: "out", Kind: cli.String, Arg: "SPEC", Complete: cli.CompleteFile, Ext: []string{".hcl"}, Usage: "spec file to write; the app secret goes next to it as NAME.app_secret (required)"},
			{Name: "force", Kind: cli.Bool, Usage: "replace an existing spec, app secret file or stored secret"},
			{Name: "dry-run", Kind: cli.Bool, Usage: "print the spec and the report; write nothing"},
		},
		Help: `Reads Prosody's conf.avail/DOMAIN.cfg.lua (evaluated as Lua in a sandbox), jicofo.conf and jvb.conf
(HOCON) with the legacy sip-communicator.properties and /etc/jitsi/jicofo/config, DOMAIN-config.js
(evaluated as JavaScript), the nginx site and turnserver.conf. Writes the spec (commented, fmt-clean), the
JWT app secret (0600, referenced with file()), the focus/jvb passwords and the TURN secret into the state
directory under -root, then prints the report: every setting kept verbatim in the spec's extra block, and
every setting apply would change, add or remove, with file:line and the reason.`,
		Exit: "0 imported, 1 error (an unparsable or missing file, several domains, an existing output).",
		Run:  runImport,
	}
}

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

// importProgramName is the program behind `jitsi-agent import`.
const importProgramName = "jitsi-agent-import"

// importProgram finds jitsi-agent-import, the way git finds git-foo: in
// $JITSI_AGENT_EXEC_PATH when set, else next to this executable (make
// build, the release tarball's usr/bin), else in ../libexec/jitsi-agent
// from it (the Debian package: /usr/libexec/jitsi-agent).
func importProgram() (string, error) {
	var dirs []string
	if d := os.Getenv("JITSI_AGENT_EXEC_PATH"); d != "" {
		dirs = append(dirs, d)
	} else if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dir := filepath.Dir(exe)
		dirs = append(dirs, dir, filepath.Join(dir, "..", "libexec", "jitsi-agent"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, importProgramName)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("import needs the %s program, which was not found in %s; install the jitsi-agent package, or build it with 'make build' (it goes next to jitsi-agent), or set JITSI_AGENT_EXEC_PATH to its directory", importProgramName, strings.Join(dirs, ", "))
}
