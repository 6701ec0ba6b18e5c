package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"

	"github.com/hashicorp/hcl/v2"

	"github.com/jitsi-agent/jitsi-agent/internal/doctor"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func runDoctor(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	asJSON, ascii, timeout, selfTest := c.Bool("json"), c.Bool("ascii"), c.Duration("timeout"), c.Bool("self-test")
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
		set, err := agent.DesiredStateReadOnly(d, root, time.Now())
		if err != nil {
			opts.RenderErr = err
		}
		var release func()
		env, release = agent.DoctorEnv(ctx, d, set, root)
		defer release()
		if selfTest && root == "/" {
			env.FirewallProbe = agent.FirewallSelfTest
		}
	}
	return writeReport(doctor.Run(ctx, d, env, opts), asJSON, ascii, stdout, stderr)
}

// writeReport prints a doctor report (JSON or text) and returns its exit
// code: 0 all passed, 2 warnings, 1 failures or a write error.
func writeReport(rep *doctor.Report, asJSON, ascii bool, stdout, stderr io.Writer) int {
	var err error
	if asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout, doctor.TextOptions{ASCII: ascii})
	}
	if err != nil {
		printError(stderr, err)
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
