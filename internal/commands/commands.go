// Package commands is jitsi-agent's command table: every command's
// synopsis, arguments, options, help and exit status, in one place.
// Parsing, -h/--help, "help CMD", shell completion and the man page are all
// generated from it (internal/cli). Both programs build their command line
// from it: jitsi-agent-full, which runs every command, and the jitsi-agent
// launcher (cmd/jitsi-agent-launcher), which answers version, help,
// completion, man and a no-op apply itself and runs jitsi-agent-full for
// the rest. It links nothing heavier than the stamp check (see
// TestStartupStaysLean): what it shows of other packages (defaults,
// environment variable names) is repeated here as constants that the full
// program's tests compare with their sources.
package commands

import (
	"fmt"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"
)

// Values the table shows that belong to other packages (checked against
// them by cmd/jitsi-agent's tests).
const (
	// VarEnvPrefix is VarEnvPrefix.
	VarEnvPrefix = "JITSI_AGENT_VAR_"
	// DoctorJSONVersion is DoctorJSONVersion.
	DoctorJSONVersion = 1
	// FleetKeyFile is fleet.DefaultKeyFile.
	FleetKeyFile = "/etc/jitsi-agent/fleet.key"
	// FleetClusterSecretEnv is fleet.ClusterSecretEnv.
	FleetClusterSecretEnv = "JITSI_AGENT_CLUSTER_SECRET"
	// StateDir is spec.DefaultStateDir, where the no-op stamp is looked up.
	StateDir = "/var/lib/jitsi-agent"
	// EtcdPrefix is fleetstore.DefaultPrefix.
	EtcdPrefix = "/jitsi-agent/"
)

// Runners maps a command's path ("apply", "token mint") to the function
// that runs it.
type Runners map[string]func(*cli.Call) int

var (
	specArg  = cli.Arg{Name: "SPEC", Complete: cli.CompleteFile, Ext: []string{".hcl", ".hcl.json"}}
	flagHost = cli.Flag{Name: "host", Kind: cli.String, Arg: "NAME",
		Usage: "render for this host block (default: the only one, or the one named like this machine)"}
	flagVar = cli.Flag{Name: "var", Kind: cli.Strings, Arg: "NAME=VALUE",
		Usage: "set a variable; overrides -var-file and JITSI_AGENT_VAR_NAME"}
	flagVarFile = cli.Flag{Name: "var-file", Kind: cli.Strings, Arg: "FILE", Complete: cli.CompleteFile, Ext: []string{".hcl"},
		Usage: "read variables from an HCL file of NAME = VALUE lines; later files win, -var wins over them"}
	flagJSON = cli.Flag{Name: "json", Kind: cli.Bool, Usage: "print JSON for machines"}
	flagQ    = cli.Flag{Name: "q", Kind: cli.Bool, Usage: "no progress lines (notices and errors still go to stderr)"}
)

// specFlags are the options of every command that reads a spec.
func specFlags(more ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{flagHost, flagVar, flagVarFile}, more...)
}

func rootFlag(usage string) cli.Flag {
	return cli.Flag{Name: "root", Kind: cli.String, Arg: "DIR", Default: "/", Complete: cli.CompleteDir, Usage: usage}
}

const varsHelp = `Variables: a spec's variable "NAME" {} blocks take their values, lowest precedence
first, from the default, the environment (JITSI_AGENT_VAR_NAME), -var-file files in the order given,
then -var NAME=VALUE flags.`

// App returns the command table for build b. Each command runs run[path];
// a command missing from run runs fallback (with a nil fallback it has no
// Run, which App.Check reports). version, completion and man need nothing
// but the table and run here unless run names them.
func App(b Build, run Runners, fallback func(*cli.Call) int) *cli.App {
	own := Runners{"version": b.Run, "completion": runCompletion, "man": runMan}
	app := table(b.Version)
	var set func(path string, cs []*cli.Command)
	set = func(path string, cs []*cli.Command) {
		for _, c := range cs {
			p := c.Name
			if path != "" {
				p = path + " " + c.Name
			}
			if len(c.Sub) > 0 {
				set(p, c.Sub)
				continue
			}
			switch {
			case run[p] != nil:
				c.Run = run[p]
			case own[p] != nil:
				c.Run = own[p]
			default:
				c.Run = fallback
			}
		}
	}
	set("", app.Commands)
	return app
}

func table(version string) *cli.App {
	return &cli.App{
		Name:     "jitsi-agent",
		Version:  version,
		Synopsis: "Render, apply and keep a self-hosted Jitsi Meet deployment in the state one HCL spec describes.",
		Help: `A spec (examples/meet.hcl) describes the deployment; jitsi-agent renders every configuration file of
Prosody, Jicofo, the videobridge, config.js, nginx and coturn from it, writes them atomically, reloads the
units whose files changed and rolls back what breaks. 'jitsi-agent init' writes a starter spec.

` + varsHelp,
		Global: []cli.Flag{{Name: "chdir", Kind: cli.String, Arg: "DIR", Complete: cli.CompleteDir,
			Usage: "switch to DIR before running the command (relative paths are then relative to DIR)"}},
		Environment: [][2]string{
			{VarEnvPrefix + "NAME", "value of the spec's variable NAME (lowest precedence: -var-file and -var override it)"},
			{"RUNTIME_DIRECTORY", "set by systemd for the daemon: where run puts status.sock (status finds it there)"},
		},
		Commands: []*cli.Command{
			{
				Name: "init", Synopsis: "write a commented starter spec that validates",
				Args:  []cli.Arg{{Name: "DIR", Optional: true, Complete: cli.CompleteDir}},
				Flags: []cli.Flag{{Name: "domain", Kind: cli.String, Arg: "DOMAIN", Default: "meet.example.com", Usage: "the meeting domain to put in the spec"}, {Name: "force", Kind: cli.Bool, Usage: "overwrite an existing jitsi-agent.hcl"}},
				Help:  "Writes DIR/jitsi-agent.hcl (DIR defaults to the current directory) with every block explained. It uses JWT auth with the secret from $JITSI_APP_SECRET; run 'jitsi-agent validate jitsi-agent.hcl' next.",
				Exit:  "0 written, 1 error (an existing file is kept unless -force).",
			},
			{
				Name: "validate", Synopsis: "check a spec and render it in memory; prints every problem at once",
				Args: []cli.Arg{specArg}, Flags: specFlags(cli.Flag{Name: "json", Kind: cli.Bool, Usage: "print the diagnostics as JSON (format_version 1.0, with file ranges) on stdout"}),
				Help: "Nothing is written. With -json, stdout carries one JSON object: valid, error_count, warning_count and diagnostics (severity, summary, detail, range with filename and start/end line, column and byte); secret values are redacted.",
				Exit: "0 valid, 1 invalid or error.",
			},
			{
				Name: "render", Synopsis: "write every file of the deployment under a directory (no root, touches nothing else)",
				Args: []cli.Arg{specArg},
				Flags: specFlags(
					cli.Flag{Name: "out", Kind: cli.String, Arg: "DIR", Complete: cli.CompleteDir, Usage: "directory to write the tree into, laid out as under / (required)"},
					cli.Flag{Name: "q", Kind: cli.Bool, Usage: "print only errors"}),
				Exit: "0 written, 1 error (nothing is written for an invalid spec).",
			},
			{
				Name: "plan", Synopsis: "show what apply would change",
				Args: []cli.Arg{specArg},
				Flags: specFlags(rootFlag("treat DIR as the filesystem root"),
					cli.Flag{Name: "json", Kind: cli.Bool, Usage: "print the machine-readable report (format_version 1)"},
					cli.Flag{Name: "out", Kind: cli.String, Arg: "FILE", Complete: cli.CompleteFile, Usage: "also save the plan to FILE for 'apply FILE'"}),
				Help: `Writes nothing, not even the internal secrets of a fresh host (except FILE with -out).

With -out FILE the plan is saved: the spec path, -host, -var and -var-file, -root, and SHA-256 fingerprints of every input file the spec read, every environment variable it looked up, this jitsi-agent's version and the host's managed files and state. 'jitsi-agent apply FILE' applies it only if none of these changed, so it writes what this plan showed. FILE is written 0600: it holds the -var values as given; environment values and file contents appear only as digests.`,
				Exit: "0 no changes, 2 changes pending (not a failure), 1 error.",
			},
			{
				Name: "apply", Synopsis: "validate, atomically write, reload what changed, roll back what breaks (safe to re-run)",
				Args: []cli.Arg{{Name: "SPEC|PLANFILE", Complete: cli.CompleteFile}},
				Help: "PLANFILE is a plan saved with 'plan -out PLANFILE': apply refuses it, naming what changed, when the spec, an input file, an environment variable it read, the jitsi-agent version or a managed file on the host differs from when the plan was made; -host, -var, -var-file and -root come from the plan and cannot be given.\n\nWith -confirm, a systemd timer puts the previous firewall table back unless 'jitsi-agent confirm SPEC' runs in time, even if this process is killed; confirm from a new SSH session.",
				Flags: specFlags(rootFlag("treat DIR as the filesystem root (implies -no-reload unless DIR is /)"), flagQ,
					cli.Flag{Name: "no-reload", Kind: cli.Bool, Usage: "write files only; do not touch systemd units or Prosody accounts"},
					cli.Flag{Name: "restart-deferred", Kind: cli.Bool, Usage: "also run the jicofo/videobridge restarts earlier applies deferred (ends running meetings)"},
					cli.Flag{Name: "overwrite-drift", Kind: cli.Bool, Usage: `also overwrite hand-edited files whose drift policy is "report"`},
					cli.Flag{Name: "no-acme", Kind: cli.Bool, Usage: "do not contact the ACME CA in this run (placeholder or existing certificates are used)"},
					cli.Flag{Name: "confirm", Kind: cli.Duration, Arg: "DURATION", Default: "0s", Usage: "revert a firewall change by itself unless 'jitsi-agent confirm SPEC' arrives within DURATION (10s-1h, e.g. 2m)"}),
				Exit: "0 applied (or nothing to do), 1 error (a failed change is rolled back).",
			},
			{
				Name: "bootstrap", Synopsis: "install what the spec needs on a fresh Debian 12 / Ubuntu 24.04 host, apply, start the daemon (safe to re-run)",
				Args: []cli.Arg{specArg},
				Flags: []cli.Flag{flagQ,
					{Name: "dry-run", Kind: cli.Bool, Usage: "print the steps and change nothing (no root needed)"},
					{Name: "no-acme", Kind: cli.Bool, Usage: "do not contact the ACME CA in the apply step (placeholder or existing certificates are used)"}},
				Help: `SPEC must be /etc/jitsi-agent/meet.hcl, the file the packaged unit runs (secrets in /etc/jitsi-agent/env). There is no -host, -var or -var-file: bootstrap reads the spec as the daemon will (variables from JITSI_AGENT_VAR_NAME in the environment, the host block named like this machine or the only one), so what it applies is what the daemon keeps. Steps, one progress line each: preflight (dpkg not locked, no package it still has to install held: changes nothing); Jitsi's apt key, fetched and refused unless it is exactly the key whose fingerprint the spec pins (bootstrap.jitsi_repo.key_fingerprint, default 66A9CD0595D6AFA247290D3BEF8B479E2DC1389C), written to /etc/apt/keyrings/jitsi.gpg; the repository in /etc/apt/sources.list.d/jitsi.list with signed-by (Prosody's own repository too with a prosody_repo block); apt-get update of those repositories only; the Jitsi packages' debconf answers from the spec (hostname, own certificate paths, token app id and secret, the secret on debconf-set-selections' stdin only); the packages of this host's roles; the Lua modules of Prosody's Lua version; one apply; systemctl enable --now jitsi-agent.service; a check that every unit the spec needs is installed and active.

Each step first checks the host and changes nothing when it is already in that state: a second run prints "unchanged" for every step. A failing step stops the run; nothing after it is done.`,
				Exit: "0 done (or nothing to do), 1 error (the failing step is named; the steps after it did not run).",
			},
			{
				Name: "confirm", Synopsis: "keep the firewall change 'apply -confirm' made (otherwise it reverts by itself)",
				Args:  []cli.Arg{specArg},
				Flags: specFlags(),
				Help:  "Run it from a new SSH session: that the session connects is the proof the new rules let you in. It cancels the revert timer and checks that the live table is the applied one.",
				Exit:  "0 confirmed, 1 nothing waits for confirmation, or the change was already reverted.",
			},
			{
				Name: "rollback", Synopsis: "restore the files of an earlier apply from the backups (default: the one before the last)",
				Args: []cli.Arg{specArg},
				Flags: specFlags(rootFlag("treat DIR as the filesystem root"),
					cli.Flag{Name: "to", Kind: cli.Int, Arg: "N", Default: "-1", Usage: `serial to restore (see "serial" in plan -json); -1: the one before the last`},
					cli.Flag{Name: "q", Kind: cli.Bool, Usage: "no progress lines"}),
				Exit: "0 restored, 1 error.",
			},
			{
				Name: "run", Synopsis: "run as a daemon: apply, then watch and keep the host in the spec's state",
				Args: []cli.Arg{{Name: "SPEC", Optional: true, Complete: cli.CompleteFile, Ext: []string{".hcl", ".hcl.json"}}},
				Flags: append(specFlags(rootFlag("the directory treated as / (tests, images); implies -no-reload unless it is /"),
					cli.Flag{Name: "no-reload", Kind: cli.Bool, Usage: "write files but never reload or restart units"},
					cli.Flag{Name: "no-acme", Kind: cli.Bool, Usage: "do not run the ACME certificate manager even when the spec has tls.acme"},
					cli.Flag{Name: "socket", Kind: cli.String, Arg: "PATH", Complete: cli.CompleteFile, Usage: `unix status socket (default $RUNTIME_DIRECTORY/status.sock or ROOT/run/jitsi-agent/status.sock; "off" disables)`},
					cli.Flag{Name: "metrics", Kind: cli.String, Arg: "ADDR", Usage: `loopback listener for /metrics, /healthz, /status (default: the spec's metrics.listen; "off" disables)`},
					cli.Flag{Name: "log-level", Kind: cli.String, Arg: "LEVEL", Default: "info", Complete: cli.CompleteWords, Words: []string{"error", "warn", "info", "debug"}, Usage: "log level: error, warn, info, debug"},
					cli.Flag{Name: "log-format", Kind: cli.String, Arg: "FORMAT", Default: "auto", Complete: cli.CompleteWords, Words: []string{"auto", "text", "json"}, Usage: "log format: auto (JSON with priorities under journald, text otherwise), text, json"}),
					etcdFlags(flagFleetKey,
						cli.Flag{Name: "lease-ttl", Kind: cli.Duration, Arg: "DURATION", Default: "10s", Usage: "with --etcd: how long this host stays registered after it stops renewing"})...),
				Help: "The systemd unit ('jitsi-agent unit') runs this. SIGHUP re-reads the spec; SIGTERM stops after the current apply.\n\nFleet mode: with --etcd URLS and --host NAME (no SPEC) the spec comes from etcd: the host takes each generation 'fleet push' publishes when the rollout reaches it, registers itself under a lease (roles, address, version, generation, health, drift, last error), and keeps its last good generation (cached sealed under ROOT/var/lib/jitsi-agent/fleet) while etcd is unreachable, reporting itself stale.",
				Exit: "0 stopped cleanly, 1 error.",
			},
			{
				Name: "status", Synopsis: "ask the running daemon for its state",
				Flags: []cli.Flag{
					{Name: "socket", Kind: cli.String, Arg: "PATH", Complete: cli.CompleteFile, Usage: "the daemon's unix socket (default $RUNTIME_DIRECTORY/status.sock or ROOT/run/jitsi-agent/status.sock)"},
					{Name: "addr", Kind: cli.String, Arg: "HOST:PORT", Usage: "the daemon's loopback listener (the spec's metrics.listen), instead of the socket"},
					rootFlag("the directory treated as / (as given to run -root)"),
					{Name: "json", Kind: cli.Bool, Usage: "print the daemon's JSON status"},
				},
				Exit: "0 healthy, 2 degraded or starting, 1 no answer.",
			},
			{
				Name: "doctor", Synopsis: "check that this host is ready to serve the spec",
				Args: []cli.Arg{specArg},
				Flags: specFlags(
					cli.Flag{Name: "json", Kind: cli.Bool, Usage: fmt.Sprintf("print the report as JSON (schema version %d) for machines", DoctorJSONVersion)},
					rootFlag("check files under this directory instead of /"),
					cli.Flag{Name: "ascii", Kind: cli.Bool, Usage: "print PASS/WARN/FAIL/SKIP instead of symbols"},
					cli.Flag{Name: "timeout", Kind: cli.Duration, Arg: "DURATION", Default: "5s", Usage: "time limit for each check"},
					cli.Flag{Name: "self-test", Kind: cli.Bool, Usage: "also probe the public ports from a second network namespace (a veth pair for a second; root)"}),
				Help: "Checks DNS, ports, the firewall (per public port: allowed, and something listening), certificate, services, health endpoints, Prosody's token setup, clock and resources.",
				Exit: "0 all checks passed, 2 warnings only, 1 at least one failure.",
			},
			{
				Name: "support-bundle", Synopsis: "write one archive for whoever helps you: spec, rendered files, versions, doctor, plan, journals; secrets masked",
				Args: []cli.Arg{specArg},
				Flags: specFlags(
					cli.Flag{Name: "out", Kind: cli.String, Arg: "FILE", Complete: cli.CompleteFile, Usage: "archive to write (default jitsi-agent-support-TIME.tar.gz in the current directory)"},
					rootFlag("read files under this directory instead of / (journals are then not read)"),
					cli.Flag{Name: "lines", Kind: cli.Int, Arg: "N", Default: "300", Usage: "journal lines per unit (at most 5000)"}),
				Help: "A .tar.gz (mode 0600) with the spec and every rendered file, package versions (prosody, jicofo, jvb, nginx, coturn, jitsi-meet, jitsi-agent), 'doctor --json', 'plan' and the last journal lines of each unit. Every secret of the deployment is masked by value in every form (quoted, base64, hex, URL-escaped), and tokens, token=/jwt= parameters, bearer credentials and passwords in logs by shape. Read README.txt inside before sending it.",
				Exit: "0 written, 1 error.",
			},
			{
				Name: "services", Synopsis: "show the state of the spec's systemd units and pending deferred restarts",
				Args: []cli.Arg{specArg},
				Flags: specFlags(
					cli.Flag{Name: "root", Kind: cli.String, Arg: "DIR", Complete: cli.CompleteDir, Usage: "state directory under this root; systemd is not queried for a root other than /"},
					flagJSON),
				Exit: "0 all enabled units active, 2 something needs attention (stopped unit, deferred restart), 1 error.",
			},
			{
				Name: "certs", Synopsis: "show the deployed TLS certificates: names, issuer, expiry, next renewal, last ACME error",
				Args: []cli.Arg{specArg},
				Flags: specFlags(cli.Flag{Name: "json", Kind: cli.Bool, Usage: "print the report as JSON"},
					rootFlag("read files under this directory instead of /")),
				Exit: "0 all certificates fine, 2 something needs attention (placeholder, missing, failing renewal, expiring within 7 days), 1 error.",
			},
			{
				Name: "token", Synopsis: "mint and verify Jitsi JWTs as Prosody judges them; serve the app's join endpoint",
				Sub: []*cli.Command{
					{
						Name: "mint", Synopsis: "print a token (or with -url a meeting link carrying it)",
						Args: []cli.Arg{specArg},
						Flags: specFlags(
							cli.Flag{Name: "room", Kind: cli.String, Arg: "ROOM", Usage: "room name as in the meeting URL, or '*' for every room (this or -room-pattern is required)"},
							cli.Flag{Name: "room-pattern", Kind: cli.String, Arg: "LUA-PATTERN", Usage: "instead of -room: a Lua pattern the room name must match entirely (context.room.regex; needs domain verification)"},
							cli.Flag{Name: "tenant", Kind: cli.String, Arg: "TENANT", Usage: "tenant of https://DOMAIN/<tenant>/<room> (sub becomes the tenant)"},
							cli.Flag{Name: "id", Kind: cli.String, Arg: "ID", Usage: "context.user.id"},
							cli.Flag{Name: "name", Kind: cli.String, Arg: "NAME", Usage: "context.user.name (display name)"},
							cli.Flag{Name: "email", Kind: cli.String, Arg: "EMAIL", Usage: "context.user.email"},
							cli.Flag{Name: "avatar", Kind: cli.String, Arg: "URL", Usage: "context.user.avatar (image URL)"},
							cli.Flag{Name: "moderator", Kind: cli.Bool, Usage: "context.user.moderator = true (read by token_affiliation)"},
							cli.Flag{Name: "ttl", Kind: cli.Duration, Arg: "DURATION", Usage: "lifetime, e.g. 2h (default: the spec's token_lifetime)"},
							cli.Flag{Name: "features", Kind: cli.String, Arg: "LIST", Usage: "context.features, e.g. screen-sharing=false,recording=true"},
							cli.Flag{Name: "url", Kind: cli.Bool, Usage: "print a meeting link https://DOMAIN/[tenant/]room?jwt=TOKEN instead of the bare token"}),
						Exit: "0 printed, 1 error.",
					},
					{
						Name: "verify", Synopsis: "apply Prosody's checks in Prosody's order; on failure print the reason Prosody logs and the fix",
						Args: []cli.Arg{specArg, {Name: "TOKEN|-|MEETING-URL"}},
						Flags: specFlags(
							cli.Flag{Name: "room", Kind: cli.String, Arg: "ROOM", Usage: "also check the MUC join for this room, as in the meeting URL"},
							cli.Flag{Name: "tenant", Kind: cli.String, Arg: "TENANT", Usage: "the room's tenant (https://DOMAIN/<tenant>/<room>)"}),
						Help: `TOKEN "-" reads the token from stdin (one line, at most 1 MiB; nothing is trimmed but the line's end, as Prosody trims nothing); a meeting URL carrying ?jwt= also names the room.`,
						Exit: "0 Prosody would accept it, 1 rejected or error.",
					},
					{
						Name: "serve", Synopsis: "run the join endpoint POST /api/v1/live/streams/{stream_id}/join from the spec's token_api block",
						Args:  []cli.Arg{specArg},
						Flags: specFlags(cli.Flag{Name: "listen", Kind: cli.String, Arg: "ADDR", Usage: "listen address (default: token_api.listen from the spec)"}),
						Exit:  "0 stopped by a signal, 1 error.",
					},
				},
			},
			{
				Name: "fmt", Synopsis: "rewrite specs in canonical HCL style",
				Args: []cli.Arg{{Name: "PATH", Optional: true, Repeat: true, Complete: cli.CompleteFile, Ext: []string{".hcl"}}},
				Flags: []cli.Flag{
					{Name: "check", Kind: cli.Bool, Usage: "do not write; list the files that are not formatted and exit 1"},
					{Name: "recursive", Kind: cli.Bool, Usage: "also format .hcl files in subdirectories of directory arguments"},
				},
				Help: `PATH is a file or a directory (its .hcl files; default: the current directory). "-" reads a spec from stdin and writes the formatted text to stdout. JSON specs are left alone.`,
				Exit: "0 formatted (or already formatted), 1 error or, with -check, unformatted files.",
			},
			fleetCommand(),
			importCommand(),
			{
				Name: "unit", Synopsis: "print the hardened systemd unit for the daemon (see systemd/README.md)",
				Help: "  jitsi-agent unit > /etc/systemd/system/jitsi-agent.service",
			},
			{
				Name: "completion", Synopsis: "print a shell completion script for bash, zsh or fish",
				Args: []cli.Arg{{Name: "SHELL", Complete: cli.CompleteWords, Words: []string{"bash", "zsh", "fish"}}},
				Help: `  jitsi-agent completion bash > /usr/share/bash-completion/completions/jitsi-agent
  jitsi-agent completion zsh > "${fpath[1]}/_jitsi-agent"
  jitsi-agent completion fish > ~/.config/fish/completions/jitsi-agent.fish`,
			},
			{
				Name: "man", Synopsis: "print the man page (roff)",
				Help: "  jitsi-agent man | man -l -\n  jitsi-agent man > /usr/local/share/man/man1/jitsi-agent.1",
			},
			{
				Name: "version", Synopsis: "print the version, commit and build date",
			},
		},
	}
}

// etcdFlags are the options of every command that talks to the fleet's
// store.
func etcdFlags(more ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		{Name: "etcd", Kind: cli.String, Arg: "URLS", Usage: "the etcd cluster's client URLs, comma-separated (https://10.0.0.5:2379,...)"},
		{Name: "etcd-ca", Kind: cli.String, Arg: "FILE", Complete: cli.CompleteFile, Usage: "CA certificate (PEM) that signed the etcd members' certificates"},
		{Name: "etcd-cert", Kind: cli.String, Arg: "FILE", Complete: cli.CompleteFile, Usage: "this host's etcd client certificate (PEM)"},
		{Name: "etcd-key", Kind: cli.String, Arg: "FILE", Complete: cli.CompleteFile, Usage: "the client certificate's key (PEM)"},
		{Name: "etcd-prefix", Kind: cli.String, Arg: "PREFIX", Default: EtcdPrefix, Usage: "key prefix of this fleet in etcd"},
		{Name: "etcd-user", Kind: cli.String, Arg: "NAME", Usage: "etcd auth user (run: default jitsi-agent-host-NAME when --etcd-password-file is given)"},
		{Name: "etcd-password-file", Kind: cli.String, Arg: "FILE", Complete: cli.CompleteFile, Usage: "file holding the etcd auth user's password (etcd auth on; client certificates then carry no common name)"},
	}, more...)
}

var flagFleetKey = cli.Flag{Name: "fleet-key", Kind: cli.String, Arg: "FILE", Default: FleetKeyFile, Complete: cli.CompleteFile,
	Usage: "the fleet key (64 hex characters, mode 0600, the same file on every host; never stored in etcd)"}

func fleetCommand() *cli.Command {
	return &cli.Command{
		Name: "fleet", Synopsis: "run many hosts from one spec through etcd: push a generation, follow its rollout, roll back",
		Help: `Every host runs 'jitsi-agent run --etcd URLS --host NAME'; 'fleet push SPEC' publishes a generation
(the spec, the files it reads and the environment values it looks up, sealed with the fleet key), which
rolls out to the non-bridge hosts one at a time, then to the bridges --max-unavailable at a time, each
step waiting for the hosts before it to run it and report healthy. In a fleet spec,
cluster_secret = env("` + FleetClusterSecretEnv + `") is the fleet's own cluster secret (created once by the first agent).`,
		Sub: []*cli.Command{
			{
				Name: "keygen", Synopsis: "write a new fleet key file (copy it to every host, mode 0600)",
				Args: []cli.Arg{{Name: "FILE", Complete: cli.CompleteFile}},
				Exit: "0 written, 1 error (an existing file is never overwritten).",
			},
			{
				Name: "push", Synopsis: "validate the spec for every host and publish it as the next generation",
				Args: []cli.Arg{specArg},
				Flags: etcdFlags(flagFleetKey, flagVar, flagVarFile,
					cli.Flag{Name: "max-unavailable", Kind: cli.Int, Arg: "N", Default: "1", Usage: "bridges updated at the same time"},
					cli.Flag{Name: "timeout", Kind: cli.Duration, Arg: "DURATION", Default: "1m", Usage: "give up when etcd does not take the generation within DURATION"}),
				Help: "Nothing is published unless the spec loads and renders for every host block. Publishing the inputs of the current generation again publishes nothing.",
				Exit: "0 published (or unchanged), 1 invalid spec or error.",
			},
			{
				Name: "status", Synopsis: "every host: roles, rollout wave, generation, state, health, drift, lease age, last error",
				Flags: etcdFlags(flagJSON),
				Exit:  "0 every host of the current generation runs it, healthy and without drift; 2 rollout in progress, stopped, or a host down/unhealthy; 1 error.",
			},
			{
				Name: "doctor", Synopsis: "check the fleet: etcd members, fleet key, rollout, each host's generation lag and lease",
				Flags: etcdFlags(flagJSON,
					cli.Flag{Name: "host", Kind: cli.String, Arg: "NAME", Usage: "also check that this host is registered"},
					cli.Flag{Name: "fleet-key", Kind: cli.String, Arg: "FILE", Complete: cli.CompleteFile, Usage: "also check that this fleet key opens the current generation and the cluster secret"},
					cli.Flag{Name: "ascii", Kind: cli.Bool, Usage: "print PASS/WARN/FAIL/SKIP instead of symbols"},
					cli.Flag{Name: "timeout", Kind: cli.Duration, Arg: "DURATION", Default: "10s", Usage: "time limit for the checks"}),
				Exit: "0 all checks passed, 2 warnings only, 1 at least one failure.",
			},
			{
				Name: "grant", Synopsis: "create a host's etcd user (read the fleet, write only its registration) or a pusher's",
				Flags: etcdFlags(
					cli.Flag{Name: "host", Kind: cli.String, Arg: "NAME", Usage: "create user jitsi-agent-host-NAME for this host"},
					cli.Flag{Name: "pusher", Kind: cli.String, Arg: "USER", Usage: "create USER allowed to push and roll back"},
					cli.Flag{Name: "password-file", Kind: cli.String, Arg: "FILE", Complete: cli.CompleteFile, Usage: "the new user's password (give the same file to its 'run --etcd-password-file')"}),
				Help: "Run it signed in as etcd's root (--etcd-user root --etcd-password-file ROOTPW) after 'etcdctl user add root && etcdctl auth enable'. etcd refuses JSON-gateway requests whose client certificate carries a common name once auth is on: give the hosts client certificates without one.",
				Exit: "0 granted, 1 error.",
			},
			{
				Name: "rollback", Synopsis: "make the previous generation (or --to N) current again; it rolls out like a push",
				Flags: etcdFlags(cli.Flag{Name: "to", Kind: cli.Int, Arg: "N", Default: "0", Usage: "generation to return to (default: the one before the current)"}),
				Exit:  "0 done (or already current), 1 error.",
			},
		},
	}
}

// importCommand is the command table's entry for import.
func importCommand() *cli.Command {
	return &cli.Command{
		Name: "import", Synopsis: "write the spec that reproduces this host's existing Jitsi configuration",
		Flags: []cli.Flag{
			rootFlag("directory the host's / is under (a copy of a host, or / for this machine)"),
			{Name: "domain", Kind: cli.String, Arg: "DOMAIN", Usage: "the domain to import when the host configures several"},
			{Name: "out", Kind: cli.String, Arg: "SPEC", Complete: cli.CompleteFile, Ext: []string{".hcl"}, Usage: "spec file to write; the app secret goes next to it as NAME.app_secret (required)"},
			{Name: "force", Kind: cli.Bool, Usage: "replace an existing spec, app secret file or stored secret"},
			{Name: "dry-run", Kind: cli.Bool, Usage: "print the spec and the report; write nothing"},
		},
		Help: `Reads Prosody's conf.avail/DOMAIN.cfg.lua (evaluated as Lua in a sandbox), jicofo.conf and jvb.conf
(HOCON) with the legacy sip-communicator.properties and /etc/jitsi/jicofo/config, DOMAIN-config.js
(evaluated as JavaScript), the nginx site and turnserver.conf. Writes the spec (commented, fmt-clean), the
JWT app secret (0600, referenced with file()), the focus/jvb passwords and the TURN secret into the state
directory under -root, then prints the report: every setting kept verbatim in the spec's extra block, and
every setting apply would change, add or remove, with file:line and the reason.`,
		Exit: "0 imported, 1 error (an unparsable or missing file, several domains, an existing output).",
	}
}

func runCompletion(c *cli.Call) int {
	switch c.Args[0] {
	case "bash":
		c.App.WriteBash(c.Stdout)
	case "zsh":
		c.App.WriteZsh(c.Stdout)
	case "fish":
		c.App.WriteFish(c.Stdout)
	default:
		return c.Usagef("unknown shell %q; completion supports bash, zsh and fish", c.Args[0])
	}
	return 0
}

func runMan(c *cli.Call) int {
	c.App.WriteMan(c.Stdout)
	return 0
}
