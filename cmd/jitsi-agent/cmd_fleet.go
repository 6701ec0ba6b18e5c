package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/doctor"
	"github.com/jitsi-agent/jitsi-agent/internal/fleet"
	"github.com/jitsi-agent/jitsi-agent/internal/fleetstore"
	"github.com/jitsi-agent/jitsi-agent/internal/input"
	"github.com/jitsi-agent/jitsi-agent/internal/logging"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// etcdFlags are the options of every command that talks to the fleet's
// store.
func etcdFlags(more ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		{Name: "etcd", Kind: cli.String, Arg: "URLS", Usage: "the etcd cluster's client URLs, comma-separated (https://10.0.0.5:2379,...)"},
		{Name: "etcd-ca", Kind: cli.String, Arg: "FILE", Complete: cli.CompleteFile, Usage: "CA certificate (PEM) that signed the etcd members' certificates"},
		{Name: "etcd-cert", Kind: cli.String, Arg: "FILE", Complete: cli.CompleteFile, Usage: "this host's etcd client certificate (PEM)"},
		{Name: "etcd-key", Kind: cli.String, Arg: "FILE", Complete: cli.CompleteFile, Usage: "the client certificate's key (PEM)"},
		{Name: "etcd-prefix", Kind: cli.String, Arg: "PREFIX", Default: fleetstore.DefaultPrefix, Usage: "key prefix of this fleet in etcd"},
		{Name: "etcd-user", Kind: cli.String, Arg: "NAME", Usage: "etcd auth user (run: default jitsi-agent-host-NAME when --etcd-password-file is given)"},
		{Name: "etcd-password-file", Kind: cli.String, Arg: "FILE", Complete: cli.CompleteFile, Usage: "file holding the etcd auth user's password (etcd auth on; client certificates then carry no common name)"},
	}, more...)
}

var flagFleetKey = cli.Flag{Name: "fleet-key", Kind: cli.String, Arg: "FILE", Default: fleet.DefaultKeyFile, Complete: cli.CompleteFile,
	Usage: "the fleet key (64 hex characters, mode 0600, the same file on every host; never stored in etcd)"}

// openStore opens the store from the call's etcd flags.
func openStore(c *cli.Call, defaultUser string) (*fleetstore.Etcd, error) {
	urls := c.String("etcd")
	if strings.TrimSpace(urls) == "" {
		return nil, errors.New("--etcd is required (the etcd client URLs, e.g. https://10.0.0.5:2379)")
	}
	tlsCfg, err := fleetstore.TLSFiles(c.String("etcd-ca"), c.String("etcd-cert"), c.String("etcd-key"))
	if err != nil {
		return nil, err
	}
	var eps []string
	for _, u := range strings.Split(urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			eps = append(eps, u)
		}
	}
	cfg := fleetstore.Config{Endpoints: eps, TLS: tlsCfg, Prefix: c.String("etcd-prefix"), Username: c.String("etcd-user")}
	if pf := c.String("etcd-password-file"); pf != "" {
		pw, err := readSecretFile(pf)
		if err != nil {
			return nil, fmt.Errorf("--etcd-password-file: %w", err)
		}
		cfg.Password = pw
		if cfg.Username == "" {
			cfg.Username = defaultUser
		}
		if cfg.Username == "" {
			return nil, errors.New("--etcd-password-file needs --etcd-user NAME")
		}
	}
	return fleetstore.Open(cfg)
}

// readSecretFile reads a small secret file (trailing white space dropped).
func readSecretFile(p string) (string, error) {
	b, err := input.ReadFile(p, 4096)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s is empty", p)
	}
	return v, nil
}

func fleetCommand() *cli.Command {
	return &cli.Command{
		Name: "fleet", Synopsis: "run many hosts from one spec through etcd: push a generation, follow its rollout, roll back",
		Help: `Every host runs 'jitsi-agent run --etcd URLS --host NAME'; 'fleet push SPEC' publishes a generation
(the spec, the files it reads and the environment values it looks up, sealed with the fleet key), which
rolls out to the non-bridge hosts one at a time, then to the bridges --max-unavailable at a time, each
step waiting for the hosts before it to run it and report healthy. In a fleet spec,
cluster_secret = env("` + fleet.ClusterSecretEnv + `") is the fleet's own cluster secret (created once by the first agent).`,
		Sub: []*cli.Command{
			{
				Name: "keygen", Synopsis: "write a new fleet key file (copy it to every host, mode 0600)",
				Args: []cli.Arg{{Name: "FILE", Complete: cli.CompleteFile}},
				Exit: "0 written, 1 error (an existing file is never overwritten).",
				Run:  runFleetKeygen,
			},
			{
				Name: "push", Synopsis: "validate the spec for every host and publish it as the next generation",
				Args: []cli.Arg{specArg},
				Flags: etcdFlags(flagFleetKey, flagVar, flagVarFile,
					cli.Flag{Name: "max-unavailable", Kind: cli.Int, Arg: "N", Default: "1", Usage: "bridges updated at the same time"},
					cli.Flag{Name: "timeout", Kind: cli.Duration, Arg: "DURATION", Default: "1m", Usage: "give up when etcd does not take the generation within DURATION"}),
				Help: "Nothing is published unless the spec loads and renders for every host block. Publishing the inputs of the current generation again publishes nothing.",
				Exit: "0 published (or unchanged), 1 invalid spec or error.",
				Run:  runFleetPush,
			},
			{
				Name: "status", Synopsis: "every host: roles, rollout wave, generation, state, health, drift, lease age, last error",
				Flags: etcdFlags(flagJSON),
				Exit:  "0 every host of the current generation runs it, healthy and without drift; 2 rollout in progress, stopped, or a host down/unhealthy; 1 error.",
				Run:   runFleetStatus,
			},
			{
				Name: "doctor", Synopsis: "check the fleet: etcd members, fleet key, rollout, each host's generation lag and lease",
				Flags: etcdFlags(flagJSON,
					cli.Flag{Name: "host", Kind: cli.String, Arg: "NAME", Usage: "also check that this host is registered"},
					cli.Flag{Name: "fleet-key", Kind: cli.String, Arg: "FILE", Complete: cli.CompleteFile, Usage: "also check that this fleet key opens the current generation and the cluster secret"},
					cli.Flag{Name: "ascii", Kind: cli.Bool, Usage: "print PASS/WARN/FAIL/SKIP instead of symbols"},
					cli.Flag{Name: "timeout", Kind: cli.Duration, Arg: "DURATION", Default: "10s", Usage: "time limit for the checks"}),
				Exit: "0 all checks passed, 2 warnings only, 1 at least one failure.",
				Run:  runFleetDoctor,
			},
			{
				Name: "grant", Synopsis: "create a host's etcd user (read the fleet, write only its registration) or a pusher's",
				Flags: etcdFlags(
					cli.Flag{Name: "host", Kind: cli.String, Arg: "NAME", Usage: "create user jitsi-agent-host-NAME for this host"},
					cli.Flag{Name: "pusher", Kind: cli.String, Arg: "USER", Usage: "create USER allowed to push and roll back"},
					cli.Flag{Name: "password-file", Kind: cli.String, Arg: "FILE", Complete: cli.CompleteFile, Usage: "the new user's password (give the same file to its 'run --etcd-password-file')"}),
				Help: "Run it signed in as etcd's root (--etcd-user root --etcd-password-file ROOTPW) after 'etcdctl user add root && etcdctl auth enable'. etcd refuses JSON-gateway requests whose client certificate carries a common name once auth is on: give the hosts client certificates without one.",
				Exit: "0 granted, 1 error.",
				Run:  runFleetGrant,
			},
			{
				Name: "rollback", Synopsis: "make the previous generation (or --to N) current again; it rolls out like a push",
				Flags: etcdFlags(cli.Flag{Name: "to", Kind: cli.Int, Arg: "N", Default: "0", Usage: "generation to return to (default: the one before the current)"}),
				Exit:  "0 done (or already current), 1 error.",
				Run:   runFleetRollback,
			},
		},
	}
}

func runFleetKeygen(c *cli.Call) int {
	k, err := fleet.WriteNewKey(c.Args[0])
	if err != nil {
		printError(c.Stderr, err)
		return exitError
	}
	fmt.Fprintf(c.Stdout, "Wrote fleet key %s (id %s). Copy it to every host as %s, mode 0600.\n", c.Args[0], k.ID, fleet.DefaultKeyFile)
	return exitOK
}

func runFleetPush(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	key, err := fleet.ReadKey(c.String("fleet-key"))
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	opts, err := varOptions(c)
	if err != nil {
		return c.Usagef("%v", err)
	}
	path := c.Args[0]
	b, hosts, err := fleet.Build(path, opts, c.Int("max-unavailable"))
	if err != nil {
		var be *fleet.BuildError
		if errors.As(err, &be) && be.Result != nil {
			fmt.Fprintf(stderr, "For host %s:\n", be.Host)
			be.Result.WriteDiagnostics(stderr)
			fmt.Fprintf(stderr, "\njitsi-agent: %s is not valid for host %s; nothing was published.\n", path, be.Host)
			return exitError
		}
		printError(stderr, err, "Nothing was published.")
		return exitError
	}
	st, err := openStore(c, "")
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.Duration("timeout"))
	defer cancel()
	by, _ := os.Hostname()
	res, err := fleet.Push(ctx, st, key, b, hosts, fleet.Generation{By: by, Version: buildVersion().Version, MaxUnavailable: c.Int("max-unavailable")})
	if err != nil {
		printError(stderr, err, "Nothing was published.")
		return exitError
	}
	if res.Unchanged {
		fmt.Fprintf(stdout, "Generation %d already has these inputs; nothing published.\n", res.Generation)
		return exitOK
	}
	waves := 0
	for _, h := range hosts {
		waves = max(waves, h.Wave+1)
	}
	fmt.Fprintf(stdout, "Published generation %d (previous %d): %d hosts in %d rollout waves.\n", res.Generation, res.Previous, len(hosts), waves)
	fmt.Fprintf(stdout, "Sealed with fleet key %s: %d input files, environment %s.\n", key.ID, len(b.Files), listOrNone(b.EnvNames()))
	fmt.Fprintln(stdout, "Follow it with 'jitsi-agent fleet status --etcd ...'.")
	return exitOK
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func runFleetStatus(c *cli.Call) int {
	st, err := openStore(c, "")
	if err != nil {
		printError(c.Stderr, err)
		return exitError
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rep, err := fleet.BuildReport(ctx, st, time.Now())
	if err != nil {
		printError(c.Stderr, err, "Is etcd reachable with these certificates? (jitsi-agent doctor checks it)")
		return exitError
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			printError(c.Stderr, err)
			return exitError
		}
	} else {
		rep.WriteText(c.Stdout)
	}
	if !rep.Converged() {
		return exitChanges
	}
	return exitOK
}

func runFleetRollback(c *cli.Call) int {
	st, err := openStore(c, "")
	if err != nil {
		printError(c.Stderr, err)
		return exitError
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := fleet.Rollback(ctx, st, int64(c.Int("to")))
	if err != nil {
		printError(c.Stderr, err, "Nothing was changed.")
		return exitError
	}
	if res.Unchanged {
		fmt.Fprintf(c.Stdout, "Generation %d is already current.\n", res.Generation)
		return exitOK
	}
	fmt.Fprintf(c.Stdout, "Generation %d is current again (was %d); it rolls out like a push.\n", res.Generation, res.Previous)
	return exitOK
}

// runFleetHost is `run --etcd URLS --host NAME`: the daemon, fed by the
// fleet's store instead of a spec file.
func runFleetHost(c *cli.Call, specOpts spec.Options) int {
	stderr := c.Stderr
	if specOpts.Host == "" {
		return c.Usagef("--host NAME is required with --etcd (the host block this machine runs)")
	}
	if len(specOpts.Vars) > 0 || len(specOpts.VarFiles) > 0 {
		return c.Usagef("-var and -var-file belong to 'fleet push': the variables travel with the generation")
	}
	rootDir, ok := rootArg(c)
	if !ok {
		return exitError
	}
	log, red, err := logging.New(logging.Options{Level: c.String("log-level"), Format: c.String("log-format"), Out: stderr})
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	key, err := fleet.ReadKey(c.String("fleet-key"))
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	st, err := openStore(c, fleetstore.HostUser(specOpts.Host))
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	defer st.Close()

	bv := buildVersion()
	cfg := daemon.Config{Version: bv.Version, Commit: bv.Commit, BuildDate: bv.Date, MetricsAddr: spec.DefaultMetricsListen}
	switch m := c.String("metrics"); m {
	case "":
	case "off":
		cfg.MetricsAddr = ""
	default:
		cfg.MetricsAddr = m
	}
	switch s := c.String("socket"); s {
	case "":
		cfg.SocketPath = daemon.DefaultSocketPath(rootDir)
	case "off":
	default:
		cfg.SocketPath = s
	}
	noUnits := c.Bool("no-reload") || rootDir != "/"
	env, closeEnv := hostEnv(noUnits, c.Bool("no-acme"))
	defer closeEnv()
	a := agent.NewDaemon(agent.DaemonConfig{Root: rootDir, Env: env, Log: log, SuperviseEvery: agent.DefaultSuperviseEvery})
	defer a.Close()
	r := fleet.NewRunner(fleet.RunnerConfig{Store: st, Key: key, Host: specOpts.Host, Version: bv.Version, Root: rootDir,
		Daemon: a, Log: log, LeaseTTL: c.Duration("lease-ttl"), Redact: red.Redact})
	log.WithField("host", specOpts.Host).Info("fleet mode: following etcd")
	if noUnits {
		log.Info("unit reloads are off (--no-reload or --root): files are kept in shape, services are not touched")
	}
	err = fleet.RunHost(context.Background(), r, cfg, daemon.Deps{
		Log: log, Redact: red.Redact, AddSecrets: red.Add, Deferred: a, Certs: a, Live: r,
	})
	if err != nil {
		log.WithError(err).Error("cannot run")
		return exitError
	}
	return exitOK
}

func runFleetDoctor(c *cli.Call) int {
	st, err := openStore(c, "")
	if err != nil {
		printError(c.Stderr, err)
		return exitError
	}
	defer st.Close()
	var key *fleet.Key
	if p := c.String("fleet-key"); p != "" {
		k, err := fleet.ReadKey(p)
		if err != nil {
			printError(c.Stderr, err)
			return exitError
		}
		key = &k
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Duration("timeout"))
	defer cancel()
	start := time.Now()
	rep := &doctor.Report{Domain: "fleet " + c.String("etcd-prefix"), Host: c.String("host"), Started: start}
	rep.Results = fleet.Doctor(ctx, st, st, key, c.String("host"), start)
	rep.Duration = time.Since(start)
	return writeReport(rep, c.Bool("json"), c.Bool("ascii"), c.Stdout, c.Stderr)
}

func runFleetGrant(c *cli.Call) int {
	host, pusher := c.String("host"), c.String("pusher")
	if (host == "") == (pusher == "") {
		return c.Usagef("give --host NAME or --pusher USER")
	}
	if c.String("password-file") == "" {
		return c.Usagef("--password-file is required")
	}
	pw, err := readSecretFile(c.String("password-file"))
	if err != nil {
		printError(c.Stderr, err)
		return exitError
	}
	st, err := openStore(c, "")
	if err != nil {
		printError(c.Stderr, err)
		return exitError
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if host != "" {
		err = st.GrantHost(ctx, host, pw)
	} else {
		err = st.GrantPusher(ctx, pusher, pw)
	}
	if err != nil {
		printError(c.Stderr, err, "Nothing else was changed.")
		return exitError
	}
	if host != "" {
		fmt.Fprintf(c.Stdout, "etcd user %s may read the fleet and write only hosts/%s (and create the cluster secret).\n", fleetstore.HostUser(host), host)
	} else {
		fmt.Fprintf(c.Stdout, "etcd user %s may push and roll back.\n", pusher)
	}
	return exitOK
}
