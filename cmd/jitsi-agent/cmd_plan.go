package main

import (
	"fmt"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

func runPlan(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	asJSON := c.Bool("json")
	specPath := c.Args[0]
	root, ok := rootArg(c)
	if !ok {
		return exitError
	}
	d, ok := loadSpec(c, specPath)
	if !ok {
		return exitError
	}
	// plan writes nothing: not even the internal secrets of a fresh host.
	set, err := agent.DesiredStateReadOnly(d, root, time.Now())
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
	if le, err := agent.ProsodyEffect(d, set, root); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	} else if le != nil {
		p.Live = append(p.Live, *le)
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
