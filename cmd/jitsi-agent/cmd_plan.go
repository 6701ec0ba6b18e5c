package main

import (
	"fmt"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/deferred"
	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/planfile"
)

func runPlan(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	asJSON := c.Bool("json")
	specPath := c.Args[0]
	root, ok := rootArg(c)
	if !ok {
		return exitError
	}
	opts, err := specOptions(c)
	if err != nil {
		return c.Usagef("%v", err)
	}
	rec := &planfile.EnvRecorder{}
	opts.LookupEnv = rec.Lookup
	res, ok := loadSpecOpts(c, specPath, opts)
	if !ok {
		return exitError
	}
	d := res.Deployment
	// plan writes nothing: not even the internal secrets of a fresh host.
	set, err := agent.DesiredStateReadOnly(d, root, time.Now())
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	h, err := fsys.New(root)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	m, err := manifest.Load(manifest.Path(h.Real(d.StateDir)))
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	mask, err := agent.SecretMask(d, root)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	p, err := plan.Compute(set, plan.Options{
		Host: h, Manifest: m, Redact: append(append([]string{}, set.Redact...), d.SecretValues()...), Diff: true, Mask: mask,
	})
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	pending, err := deferred.Load(deferred.Path(h.Real(d.StateDir)))
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	if le, err := agent.ProsodyEffect(d, set, root); err != nil {
		printError(stderr, err)
		return exitError
	} else if le != nil {
		p.Live = append(p.Live, *le)
	}
	p.PendingRestarts = append(p.PendingRestarts, pending...)
	if out := c.String("out"); out != "" {
		if err := savePlan(out, specPath, opts, root, res, rec, set, m, p); err != nil {
			printError(stderr, err)
			return exitError
		}
		defer fmt.Fprintf(stderr, "jitsi-agent: saved the plan to %s (mode 0600: it holds the -var values; no secret in clear). Apply exactly this with: jitsi-agent apply %s\n", out, out)
	}
	if asJSON {
		err = p.WriteJSON(stdout)
	} else {
		err = p.WriteText(stdout)
	}
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	return p.ExitCode()
}
