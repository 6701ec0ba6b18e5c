package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/apply"
	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

func runApply(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	quiet, noReload, restartDeferred, overwriteDrift, noACME := c.Bool("q"), c.Bool("no-reload"), c.Bool("restart-deferred"), c.Bool("overwrite-drift"), c.Bool("no-acme")
	specPath := c.Args[0]
	root, ok := rootArg(c)
	if !ok {
		return exitError
	}
	realHost := root == "/"
	if !realHost {
		noReload = true
	}
	d, ok := loadSpec(c, specPath)
	if !ok {
		fmt.Fprintf(stderr, "jitsi-agent: %s is not valid; nothing was changed.\n", specPath)
		return exitError
	}
	// Render once without touching the state directory: a template error
	// must change nothing at all.
	if _, err := desiredStateReadOnly(d, root); err != nil {
		fmt.Fprintf(stderr, "Error: %v\nNothing was changed.\n", err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := io.Writer(stdout)
	if quiet {
		progress = io.Discard
	}
	logf := func(format string, a ...any) { fmt.Fprintf(progress, "jitsi-agent: "+format+"\n", a...) }

	// Fresh host with ACME: obtain the certificates first (the agent answers
	// HTTP-01 on port 80 itself while nothing else listens there), so nginx
	// starts with the real certificate. Failures keep the placeholder.
	if d.TLS.ACME != nil && realHost && !noACME {
		obtainCertificates(ctx, d, root, logf, stderr)
	}

	set, err := desiredState(d, root)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
	opts := apply.Options{Root: root, StateDir: d.StateDir, Keep: d.Backups, Progress: progress}
	var held []string
	if !overwriteDrift {
		opts.Skip = func(c plan.Change) bool {
			if c.HostChanged && driftPolicy(d, c.File) == spec.DriftReport {
				held = append(held, c.Path)
				return true
			}
			return false
		}
	}
	res, err := apply.Apply(ctx, set, opts)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
	if quiet { // otherwise the progress lines already carried them
		for _, n := range res.Notices {
			fmt.Fprintf(stderr, "jitsi-agent: notice: %s\n", n)
		}
	}
	for _, p := range held {
		fmt.Fprintf(stderr, "jitsi-agent: drift: %s was edited on the host and its drift policy is \"report\": left as is (apply --overwrite-drift replaces it)\n", p)
	}
	if noReload {
		if len(res.Units) > 0 {
			fmt.Fprintf(stderr, "jitsi-agent: notice: not reloading (%s): %s\n", reloadSkipReason(realHost), strings.Join(res.Units, " "))
		}
		return exitOK
	}
	bus, err := systemd.Connect(ctx, systemd.ConnectOptions{})
	if err != nil {
		fmt.Fprintf(stderr, "jitsi-agent: notice: %s\n", systemd.UnavailableNotice(err, res.Units))
		return exitOK
	}
	defer bus.Close()
	step := &serviceStep{d: d, set: set, root: root, opts: opts, res: res, units: bus, logf: logf,
		restartDeferred: restartDeferred, accounts: true}
	out, err := step.run(ctx)
	if out != nil && out.Report != nil {
		for _, u := range out.Report.Units {
			if u.Action != systemd.ActionNone {
				logf("%s %s: %s", u.Action, u.Unit, u.Result)
			}
		}
		for _, u := range out.Report.Missing() {
			fmt.Fprintf(stderr, "jitsi-agent: warning: unit %s is not installed; install its package, then apply again\n", u.Unit)
		}
		for _, df := range out.Report.NewlyDeferred {
			fmt.Fprintf(stderr, "jitsi-agent: deferred: restart of %s (restart = \"defer\"); run 'jitsi-agent apply --restart-deferred' when no meeting is running\n", df.Unit)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		if isRollback(err) {
			fmt.Fprintln(stderr, "jitsi-agent: the change was rolled back; fix the spec and apply again.")
		}
		return exitError
	}
	return exitOK
}

func reloadSkipReason(realHost bool) string {
	if !realHost {
		return "--root is not /"
	}
	return "--no-reload"
}

// obtainCertificates runs one ACME pass with a bounded time.
func obtainCertificates(ctx context.Context, d *spec.Deployment, root string, logf func(string, ...any), stderr io.Writer) {
	cfg, err := certs.ConfigFor(d, root)
	if err != nil {
		fmt.Fprintf(stderr, "jitsi-agent: warning: certificates: %v\n", err)
		return
	}
	m, err := certs.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "jitsi-agent: warning: certificates: %v\n", err)
		return
	}
	defer m.Close()
	if err := m.Start(); err != nil {
		fmt.Fprintf(stderr, "jitsi-agent: warning: certificates: %v\n", err)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	logf("certificates: checking %s with %s", strings.Join(certs.Names(d), ", "), certs.DirectoryURL(d))
	if err := m.ObtainOnce(cctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("the CA did not finish within 3 minutes")
		}
		fmt.Fprintf(stderr, "jitsi-agent: warning: certificates not obtained, keeping the current (or placeholder) certificate: %v\n", err)
	}
}
