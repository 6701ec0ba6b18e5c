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
