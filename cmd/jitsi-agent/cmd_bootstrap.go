package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/accounts"
	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/bootstrap"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/logging"
	"github.com/jitsi-agent/jitsi-agent/internal/luamod"
	"github.com/jitsi-agent/jitsi-agent/internal/prosody"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

func runBootstrap(c *cli.Call) int {
	specPath := c.Args[0]
	// The options the daemon's unit has: none (see the command's help).
	loaded, ok := loadSpecOpts(c, specPath, spec.Options{})
	if !ok {
		fmt.Fprintf(c.Stderr, "jitsi-agent: %s is not valid; nothing was changed.\n", specPath)
		return exitError
	}
	d := loaded.Deployment
	abs, err := filepath.Abs(specPath)
	if err != nil {
		printError(c.Stderr, err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := io.Writer(c.Stdout)
	if c.Bool("q") {
		progress = io.Discard
	}
	opts := bootstrap.Options{
		SpecPath: abs,
		Apply: func(ctx context.Context, installed []string) (string, error) {
			return bootstrapApply(ctx, d, progress, c.Bool("no-acme"), installed)
		},
		ProsodyInterpreter: func() string { return luamod.Interpreter("/") },
		Secrets:            func(d *spec.Deployment) error { return agent.LoadSecrets(d, "/") },
	}
	steps := bootstrap.Plan(d, opts)
	if c.Bool("dry-run") {
		fmt.Fprintf(c.Stdout, "jitsi-agent bootstrap %s would, in this order (each step changes nothing when the host is already in its state):\n", specPath)
		bootstrap.PrintPlan(c.Stdout, steps)
		return exitOK
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(c.Stderr, "Error: bootstrap installs packages and writes /etc: run it as root (sudo). Nothing was changed.\n(-dry-run shows the steps without root.)")
		return exitError
	}
	sys := &bootstrap.System{}
	defer sys.Close()
	res, err := bootstrap.Run(ctx, steps, sys, progress)
	if err != nil {
		printError(c.Stderr, err)
		return exitError
	}
	if len(res.Changed) == 0 {
		fmt.Fprintln(c.Stdout, "jitsi-agent: bootstrap: no changes; this host is in the spec's state")
	} else {
		fmt.Fprintf(c.Stdout, "jitsi-agent: bootstrap: done, %d step(s) changed the host\n", len(res.Changed))
	}
	return exitOK
}

// bootstrapApply is one apply on this host, as 'jitsi-agent apply SPEC'
// does it, except that a unit the spec needs that is not installed is an
// error (bootstrap just installed the packages).
//
// The components whose packages this run installed (the component table's
// Package) are restarted now whatever their restart policy: the packages'
// postinsts started them a moment ago, so no meeting runs on them, and a
// deferred restart would leave them on the packages' configuration.
func bootstrapApply(ctx context.Context, d *spec.Deployment, progress io.Writer, noACME bool, installed []string) (string, error) {
	var fresh []string
	for _, c := range files.Components() {
		if slices.Contains(installed, c.Package) {
			fresh = append(fresh, c.Name)
		}
	}
	log, red := logging.CLI(progress)
	red.Add(d.SecretValues()...)
	readOnly, err := agent.DesiredStateReadOnly(d, "/", time.Now())
	if err != nil {
		return "", err
	}
	var bus agent.Bus
	defer bus.Close()
	env := agent.Env{Units: bus.Units, Accounts: accounts.System(), Prosody: prosody.System(),
		Trust: agent.UpdateCACertificates, Firewall: agent.SystemFirewall(), Probes: agent.LiveProbes}
	if d.TLS.ACME != nil && !noACME {
		readOnly = nil
		if err := (agent.CertManager{}).Obtain(ctx, d, "/", log); err != nil {
			fmt.Fprintf(progress, "jitsi-agent: warning: certificates not obtained, keeping the current (or placeholder) certificate: %v\n", err)
		}
	}
	set, err := agent.Persisted(d, "/", time.Now(), readOnly)
	if err != nil {
		return "", err
	}
	res, err := agent.Apply(ctx, env, d, set, agent.ApplyOptions{Root: "/", Progress: io.Discard, Log: log, Always: true, RestartNow: fresh})
	if err != nil {
		return "", err
	}
	if res.UnitsErr != nil {
		return "", fmt.Errorf("systemd: %w", res.UnitsErr)
	}
	var missing []string
	if out := res.Services; out != nil && out.Report != nil {
		for _, u := range out.Report.Missing() {
			missing = append(missing, u.Unit)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("units the spec needs are not installed: %s", strings.Join(missing, " "))
	}
	if res.Files == nil {
		return "", errors.New("apply wrote nothing")
	}
	var what []string
	if n := len(res.Files.Changes); n > 0 {
		what = append(what, fmt.Sprintf("%d file(s) written", n))
	}
	if out := res.Services; out != nil && out.Report != nil {
		for _, u := range out.Report.Units {
			if u.Action != systemd.ActionNone && u.Action != systemd.ActionSkipped {
				what = append(what, fmt.Sprintf("%s %s", u.Action, u.Unit))
			}
		}
	}
	for _, a := range res.Accounts {
		if a.Action != accounts.Unchanged {
			what = append(what, "account "+a.JID)
		}
	}
	return strings.Join(what, ", "), nil
}
