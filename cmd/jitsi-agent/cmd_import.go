package main

import (
	"fmt"

	"github.com/jitsi-agent/jitsi-agent/internal/adopt"
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

func runImport(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	out := c.String("out")
	if out == "" {
		return c.Usagef("import needs -out SPEC")
	}
	root, err := hostRoot(c.String("root"))
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	res, err := adopt.Import(adopt.Options{Root: root, Domain: c.String("domain"), Out: out})
	if err != nil {
		printError(stderr, err, "Nothing was written.")
		return exitError
	}
	if c.Bool("dry-run") {
		stdout.Write(res.Spec)
		fmt.Fprintln(stdout)
		res.WriteReport(stdout)
		return exitOK
	}
	if err := res.Write(out, c.Bool("force")); err != nil {
		printError(stderr, err)
		return exitError
	}
	fmt.Fprintf(stdout, "Wrote %s.\n", out)
	res.WriteReport(stdout)
	next := "jitsi-agent plan " + out
	if root != "/" {
		next += " -root " + root
	}
	fmt.Fprintf(stdout, "\nNext: %s\n", next)
	return exitOK
}
