package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/jitsi-agent/jitsi-agent/internal/doctor"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func init() {
	register(command{
		name:    "doctor",
		summary: "check that this host is ready to serve the spec (exit 0 ready, 2 warnings, 1 failures)",
		usage:   "doctor SPEC [--json] [--root DIR] [--host H] [--ascii] [--timeout D]",
		run:     runDoctor,
	})
}

// doctorEnv connects the doctor to the packages that own plan, systemd,
// token and certificate state. The wiring (pipeline.go or a wiring file)
// replaces it in an init(); fields it leaves nil make their checks "skip".
// The returned func releases whatever it opened (a D-Bus connection).
var doctorEnv = func(ctx context.Context, d *spec.Deployment, set *render.Set, root string) (doctor.Env, func()) {
	return doctor.Env{}, func() {}
}

func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var host, root string
	var asJSON, ascii bool
	var timeout time.Duration
	addSpecFlags(fs, &host)
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON (schema version "+fmt.Sprint(doctor.JSONVersion)+") for machines")
	fs.StringVar(&root, "root", "/", "check files under this directory instead of /")
	fs.BoolVar(&ascii, "ascii", false, "print PASS/WARN/FAIL/SKIP instead of ✓ ! ✗ -")
	fs.DurationVar(&timeout, "timeout", 5*time.Second, "time limit for each check")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: jitsi-agent doctor SPEC [--json] [--root DIR] [--host H] [--ascii] [--timeout D]")
		fmt.Fprintln(stderr, "Checks DNS, ports, certificate, services, health endpoints, Prosody's token setup, clock and resources.")
		fmt.Fprintln(stderr, "Exit status: 0 all checks passed, 2 warnings only, 1 at least one failure.")
		fs.PrintDefaults()
	}
	specPath, ok := specArgs(fs, args, &root, stderr)
	if !ok {
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	d, ok := loadSpec(specPath, host, stderr)
	info := doctor.SpecInfo{Path: specPath, Valid: ok}
	if lastLoad != nil {
		for _, diag := range lastLoad.Diags {
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
