package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

func init() {
	register(command{
		name:    "plan",
		summary: "show what apply would change (exit 0: nothing, 2: changes pending, 1: error)",
		usage:   "plan SPEC [--root DIR] [--json] [--host H] [-var name=value]",
		run:     runPlan,
	})
}

func runPlan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var host, root string
	var asJSON bool
	addSpecFlags(fs, &host)
	fs.StringVar(&root, "root", "/", "treat DIR as the filesystem root")
	fs.BoolVar(&asJSON, "json", false, "print the machine-readable report (format_version 1)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: jitsi-agent plan SPEC [--root DIR] [--json] [--host H] [-var name=value]")
		fmt.Fprintln(stderr, "Exit status: 0 no changes, 2 changes pending (not a failure), 1 error.")
		fs.PrintDefaults()
	}
	specPath, ok := specArgs(fs, args, &root, stderr)
	if !ok {
		return exitError
	}
	d, ok := loadSpec(specPath, host, stderr)
	if !ok {
		return exitError
	}
	// plan writes nothing: not even the internal secrets of a fresh host.
	set, err := desiredStateReadOnly(d, root)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
	h, err := fsys.New(root)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
	m, err := manifest.Load(manifest.Path(h.Real(d.StateDir)))
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
	p, err := plan.Compute(set, plan.Options{
		Host: h, Manifest: m, Redact: append(append([]string{}, set.Redact...), d.SecretValues()...), Diff: true,
	})
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
	deferred, err := systemd.LoadDeferred(systemd.DeferredPath(h.Real(d.StateDir)))
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
	for _, df := range deferred {
		p.PendingRestarts = append(p.PendingRestarts, plan.PendingRestart{Unit: df.Unit, Reason: df.Reason, Since: df.Since})
	}
	if asJSON {
		err = p.WriteJSON(stdout)
	} else {
		err = p.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
	return p.ExitCode()
}
