package main

import (
	"context"
	"fmt"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"os"
	"os/signal"

	"github.com/hashicorp/hcl/v2"

	"github.com/jitsi-agent/jitsi-agent/internal/doctor"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// doctorEnv connects the doctor to the packages that own plan, systemd,
// token and certificate state. The wiring (pipeline.go or a wiring file)
// replaces it in an init(); fields it leaves nil make their checks "skip".
// The returned func releases whatever it opened (a D-Bus connection).
var doctorEnv = func(ctx context.Context, d *spec.Deployment, set *render.Set, root string) (doctor.Env, func()) {
	return doctor.Env{}, func() {}
}

func runDoctor(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	asJSON, ascii, timeout := c.Bool("json"), c.Bool("ascii"), c.Duration("timeout")
	specPath := c.Args[0]
	root, ok := rootArg(c)
	if !ok {
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	res, ok := loadSpecResult(c, specPath)
	info := doctor.SpecInfo{Path: specPath, Valid: ok}
	var d *spec.Deployment
	if res != nil {
		d = res.Deployment
		for _, diag := range res.Diags {
			if diag.Severity == hcl.DiagWarning {
				info.Warnings++
			}
		}
	}
	opts := doctor.Options{Root: root, Timeout: timeout, Spec: info}
	var env doctor.Env
	if ok {
		// Read-only: the doctor never generates or writes secrets.
		set, err := desiredStateReadOnly(d, root)
		if err != nil {
			opts.RenderErr = err
		}
		var release func()
		env, release = doctorEnv(ctx, d, set, root)
		defer release()
	}
	rep := doctor.Run(ctx, d, env, opts)
	var err error
	if asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout, doctor.TextOptions{ASCII: ascii})
	}
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
	switch rep.ExitCode() {
	case 0:
		return exitOK
	case 2:
		return exitChanges
	default:
		return exitError
	}
}
