package main

import (
	"context"
	"path/filepath"

	"github.com/jitsi-agent/jitsi-agent/internal/accounts"
	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/prosody"

	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/logging"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func runRun(c *cli.Call) int {
	stderr := c.Stderr
	root, noReload, noACME, socket, metricsAddr := c.String("root"), c.Bool("no-reload"), c.Bool("no-acme"), c.String("socket"), c.String("metrics")
	specOpts, err := specOptions(c)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	pos := c.Args
	if c.String("etcd") != "" {
		if len(pos) > 0 {
			return c.Usagef("with --etcd the spec comes from etcd ('jitsi-agent fleet push SPEC'); give no SPEC")
		}
		return runFleetHost(c, specOpts)
	}
	if len(pos) == 0 {
		return c.Usagef("give SPEC (or --etcd URLS --host NAME for fleet mode)")
	}
	specPath, err := filepath.Abs(pos[0])
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	rootDir, err := hostRoot(root)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	log, red, err := logging.New(logging.Options{Level: c.String("log-level"), Format: c.String("log-format"), Out: stderr})
	if err != nil {
		printError(stderr, err)
		return exitError
	}

	bv := buildVersion()
	// Metrics and health listen even when the spec is broken at start (on
	// the default address): the daemon then reports why it is degraded.
	cfg := daemon.Config{SpecPaths: []string{specPath}, Version: bv.Version, Commit: bv.Commit, BuildDate: bv.Date,
		MetricsAddr: spec.DefaultMetricsListen}
	// The daemon's own settings come from the spec as it is at start; a
	// spec that does not load yet starts the daemon with the defaults (it
	// then reports itself degraded until the spec is fixed). Changing
	// watch/metrics settings takes a restart.
	if res := spec.Load(specPath, specOpts); !res.HasErrors() {
		d := res.Deployment
		red.Add(res.Redactions()...)
		red.Add(d.SecretValues()...)
		cfg.Quiet, cfg.Max, cfg.Rescan = d.Watch.Quiet, d.Watch.Max, d.Watch.Rescan
		cfg.MetricsAddr = d.Metrics.Listen
	}
	switch metricsAddr {
	case "":
	case "off":
		cfg.MetricsAddr = ""
	default:
		cfg.MetricsAddr = metricsAddr
	}
	switch socket {
	case "":
		cfg.SocketPath = daemon.DefaultSocketPath(rootDir)
	case "off":
	default:
		cfg.SocketPath = socket
	}

	noUnits := noReload || rootDir != "/"
	env, closeEnv := hostEnv(noUnits, noACME)
	defer closeEnv()
	a := agent.NewDaemon(agent.DaemonConfig{Spec: specPath, Load: specOpts, Root: rootDir, Env: env, Log: log,
		SuperviseEvery: agent.DefaultSuperviseEvery})
	defer a.Close()
	if noUnits {
		log.Info("unit reloads are off (--no-reload or --root): files are kept in shape, services are not touched")
	}
	err = daemon.Run(context.Background(), cfg, daemon.Deps{
		Applier: a, Log: log, Redact: red.Redact, AddSecrets: red.Add, Deferred: a, Certs: a, Live: a, Triggers: a.Triggers(),
	})
	if err != nil {
		log.WithError(err).Error("cannot run")
		return exitError
	}
	return exitOK
}

// hostEnv is the daemon's side effects on this host: systemd, Prosody's
// accounts, the trust store, the firewall and probes unless noUnits; the
// ACME manager unless noACME. Call close when done.
func hostEnv(noUnits, noACME bool) (env agent.Env, close func()) {
	close = func() {}
	if !noUnits {
		bus := &agent.Bus{}
		close = func() { bus.Close() }
		env.Units = bus.Units
		env.Accounts = accounts.System()
		env.Prosody = prosody.System()
		env.Trust = agent.UpdateCACertificates
		env.Firewall = agent.SystemFirewall()
		env.Probes = agent.LiveProbes
	}
	if !noACME {
		env.ACME = agent.CertManager{}
	}
	return env, close
}
