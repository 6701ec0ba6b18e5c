package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/logging"
	"github.com/jitsi-agent/jitsi-agent/internal/planfile"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

func runApply(c *cli.Call) int {
	quiet, noReload, restartDeferred, overwriteDrift, noACME := c.Bool("q"), c.Bool("no-reload"), c.Bool("restart-deferred"), c.Bool("overwrite-drift"), c.Bool("no-acme")
	confirm := c.Duration("confirm")
	specPath := c.Args[0]
	var d *spec.Deployment
	var root string
	var loaded *spec.Result
	var noop *noopRun // a file-only apply: the no-op stamp may answer it
	if planfile.Is(specPath) {
		var ok bool
		if d, root, ok = loadSavedPlan(c, specPath); !ok {
			return exitError
		}
	} else {
		var ok bool
		if root, ok = rootArg(c); !ok {
			return exitError
		}
		if noop = newNoopRun(c, specPath, root); noop != nil && noop.replay() {
			return exitOK
		}
		opts, err := specOptions(c)
		if err != nil {
			printError(c.Stderr, err)
			return exitError
		}
		if noop != nil {
			opts.LookupEnv = noop.env.Lookup
		}
		if loaded, ok = loadSpecOpts(c, specPath, opts); !ok {
			fmt.Fprintf(c.Stderr, "jitsi-agent: %s is not valid; nothing was changed.\n", specPath)
			return exitError
		}
		d = loaded.Deployment
	}
	stdout, stderr := c.Stdout, c.Stderr
	realHost := root == "/"
	if !realHost {
		noReload = true
	}
	if confirm != 0 {
		switch {
		case confirm < 10*time.Second || confirm > time.Hour:
			fmt.Fprintf(stderr, "Error: -confirm %s: give 10s to 1h (time to open a new SSH session and run 'jitsi-agent confirm').\nNothing was changed.\n", confirm)
			return exitError
		case !d.Firewall.Enabled:
			fmt.Fprintln(stderr, "Error: -confirm: the spec's firewall is off (no firewall block, or enabled = false), so there is nothing to confirm.\nNothing was changed.")
			return exitError
		case noReload:
			fmt.Fprintf(stderr, "Error: -confirm needs the live firewall, which is not touched with %s.\nNothing was changed.\n", reloadSkipReason(realHost))
			return exitError
		}
	}
	// Render once without touching the state directory: a template error
	// must change nothing at all.
	readOnly, err := agent.DesiredStateReadOnly(d, root, time.Now())
	if err != nil {
		printError(stderr, err, "Nothing was changed.")
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := io.Writer(stdout)
	if quiet {
		progress = io.Discard
	}
	log, red := logging.CLI(progress)
	red.Add(d.SecretValues()...)

	// The same host side effects as the daemon's, without its ACME manager:
	// apply obtains certificates itself below.
	env, closeEnv := hostEnv(noReload, true)
	defer closeEnv()
	// Fresh host with ACME: obtain the certificates first (the agent answers
	// HTTP-01 on port 80 itself while nothing else listens there), so nginx
	// starts with the real certificate. Failures keep the placeholder.
	if d.TLS.ACME != nil && realHost && !noACME {
		readOnly = nil // the certificates may have changed: render again
		if err := (agent.CertManager{}).Obtain(ctx, d, root, log); err != nil {
			fmt.Fprintf(stderr, "jitsi-agent: warning: certificates not obtained, keeping the current (or placeholder) certificate: %v\n", err)
		}
	}

	set, err := agent.Persisted(d, root, time.Now(), readOnly)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	if noop != nil {
		noop.before(d, loaded, set)
	}
	res, err := agent.Apply(ctx, env, d, set, agent.ApplyOptions{Root: root, Progress: progress, Log: log,
		OverwriteDrift: overwriteDrift, Always: true, RestartDeferred: restartDeferred, Confirm: confirm})
	if fw := res.Firewall; fw != nil && err == nil {
		switch {
		case fw.Pending != nil:
			fmt.Fprintf(stdout, "jitsi-agent: firewall: the change reverts at %s unless confirmed. From a NEW ssh session (proving you can still log in), run:\n  jitsi-agent confirm %s\n",
				fw.Pending.Deadline.Local().Format("15:04:05 MST"), specPath)
		case confirm > 0:
			fmt.Fprintln(stdout, "jitsi-agent: firewall: unchanged, nothing to confirm")
		}
	}
	if res.Files == nil {
		printError(stderr, err)
		return exitError
	}
	if quiet { // otherwise the progress lines already carried them
		for _, n := range res.Files.Notices {
			fmt.Fprintf(stderr, "jitsi-agent: notice: %s\n", n)
		}
	}
	for _, c := range res.Held {
		fmt.Fprintf(stderr, "jitsi-agent: drift: %s was edited on the host and its drift policy is \"report\": left as is (apply --overwrite-drift replaces it)\n", c.Path)
	}
	if noReload {
		if len(res.Files.Units) > 0 {
			fmt.Fprintf(stderr, "jitsi-agent: notice: not reloading (%s): %s\n", reloadSkipReason(realHost), strings.Join(res.Files.Units, " "))
		}
		if noop != nil && err == nil && !res.Files.Changed() && len(res.Held) == 0 && res.Firewall == nil {
			noop.record(d, loaded, set)
		}
		return exitOK
	}
	if res.UnitsErr != nil {
		fmt.Fprintf(stderr, "jitsi-agent: notice: %s\n", systemd.UnavailableNotice(res.UnitsErr, res.Files.Units))
		return exitOK
	}
	if out := res.Services; out != nil && out.Report != nil {
		for _, u := range out.Report.Units {
			if u.Action != systemd.ActionNone {
				log.Infof("%s %s: %s", u.Action, u.Unit, u.Result)
			}
		}
		for _, u := range out.Report.Missing() {
			fmt.Fprintf(stderr, "jitsi-agent: warning: unit %s is not installed; install its package, then apply again\n", u.Unit)
		}
		for _, df := range out.Report.NewlyDeferred {
			fmt.Fprintf(stderr, "jitsi-agent: deferred: restart of %s (restart = \"defer\"); run 'jitsi-agent apply --restart-deferred' when no meeting is running\n", df.Unit)
		}
	}
	if rt := res.Retired; rt != nil {
		for _, u := range rt.Units {
			if u.Action == systemd.ActionStop || u.Disabled || u.Result == systemd.ResultFailed {
				log.Infof("stop %s: %s (disabled: %v; the spec no longer runs it on this host)", u.Unit, u.Result, u.Disabled)
			}
		}
	}
	if err != nil {
		printError(stderr, err)
		if agent.IsRollback(err) {
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
