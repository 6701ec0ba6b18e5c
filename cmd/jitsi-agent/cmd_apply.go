package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/apply"
	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

func init() {
	register(command{
		name:    "apply",
		summary: "validate, atomically write, reload what changed, roll back what breaks (safe to re-run)",
		usage:   "apply SPEC [--root DIR] [-q] [--no-reload] [--restart-deferred] [--overwrite-drift] [--host H] [-var name=value]",
		run:     runApply,
	})
}

func runApply(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var host, root string
	var quiet, noReload, restartDeferred, overwriteDrift, noACME bool
	addSpecFlags(fs, &host)
	fs.StringVar(&root, "root", "/", "treat DIR as the filesystem root (implies --no-reload unless DIR is /)")
	fs.BoolVar(&quiet, "q", false, "no progress lines (notices and errors still go to stderr)")
	fs.BoolVar(&noReload, "no-reload", false, "write files only; do not touch systemd units or Prosody accounts")
	fs.BoolVar(&restartDeferred, "restart-deferred", false, "also run the jicofo/videobridge restarts earlier applies deferred (ends running meetings)")
	fs.BoolVar(&overwriteDrift, "overwrite-drift", false, "also overwrite hand-edited files whose drift policy is \"report\"")
	fs.BoolVar(&noACME, "no-acme", false, "do not contact the ACME CA in this run (placeholder or existing certificates are used)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: jitsi-agent apply SPEC [--root DIR] [-q] [--no-reload] [--restart-deferred] [--overwrite-drift] [--host H] [-var name=value]")
		fs.PrintDefaults()
	}
	specPath, ok := specArgs(fs, args, &root, stderr)
	if !ok {
		return exitError
	}
	realHost := root == "/"
	if !realHost {
		noReload = true
	}
	d, ok := loadSpec(specPath, host, stderr)
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
