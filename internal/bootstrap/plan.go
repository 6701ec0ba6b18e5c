package bootstrap

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/luamod"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Where bootstrap writes apt's configuration.
const (
	KeyringDir = "/etc/apt/keyrings"
	SourcesDir = "/etc/apt/sources.list.d"
)

// DaemonUnit is the packaged unit of the daemon, and DaemonSpec the spec
// it runs.
const (
	DaemonUnit = "jitsi-agent.service"
	DaemonSpec = "/etc/jitsi-agent/meet.hcl"
)

// Options are what Plan needs besides the deployment.
type Options struct {
	// SpecPath is the spec's absolute path; it must be DaemonSpec, the
	// file the packaged unit runs.
	SpecPath string
	// Apply runs the agent's apply (internal/agent) once on the host and
	// returns what it changed ("" for nothing). Units the spec needs that
	// are not installed are an error. installed are the packages this run
	// installed: their services started a moment ago from the packages'
	// postinsts and carry no meeting yet, so the apply restarts them now
	// whatever their restart policy (a deferred restart would leave them
	// on the packages' configuration).
	Apply func(ctx context.Context, installed []string) (string, error)
	// ProsodyInterpreter returns the Lua interpreter of the installed
	// Prosody ("lua5.4"); it is called after the packages step.
	ProsodyInterpreter func() string
	// Secrets fills d.Secrets with the agent's internal secrets, creating
	// and storing the missing ones as the first apply would; the debconf
	// step calls it (after preflight: a refused bootstrap creates
	// nothing), so the packages create the XMPP accounts with the
	// passwords the agent uses. nil: the account passwords are not
	// preseeded.
	Secrets func(d *spec.Deployment) error
}

// Keyring is where the repository's key is kept (signed-by).
func Keyring(repo spec.AptRepo) string { return path.Join(KeyringDir, repo.Name+".gpg") }

// SourcesFile is the repository's apt sources file.
func SourcesFile(repo spec.AptRepo) string { return path.Join(SourcesDir, repo.Name+".list") }

// SourcesLine is the repository's one-line-style apt source.
func SourcesLine(repo spec.AptRepo) string {
	return strings.TrimSpace(fmt.Sprintf("deb [signed-by=%s] %s %s %s", Keyring(repo), repo.URL, repo.Suite, strings.Join(repo.Components, " ")))
}

// Repos are the deployment's repositories, Jitsi's first.
func Repos(d *spec.Deployment) []spec.AptRepo {
	out := []spec.AptRepo{d.Bootstrap.JitsiRepo}
	if d.Bootstrap.ProsodyRepo != nil {
		out = append(out, *d.Bootstrap.ProsodyRepo)
	}
	return out
}

// Packages are the Debian packages this host's roles need, in install
// order (the Lua modules of Prosody are a step of their own).
func Packages(d *spec.Deployment) []string {
	var out []string
	if d.Runs(spec.Prosody) {
		out = append(out, "prosody", "jitsi-meet-prosody")
		if d.Auth.Mode == spec.AuthJWT {
			out = append(out, "jitsi-meet-tokens")
		}
	}
	if d.Runs(spec.Jicofo) {
		out = append(out, "jicofo")
	}
	if d.Runs(spec.JVB) {
		out = append(out, "jitsi-videobridge2")
	}
	if d.Runs(spec.Jibri) && d.Meeting.Recording.Enabled {
		out = append(out, "jibri")
	}
	if d.Runs(spec.Nginx) {
		out = append(out, "nginx", "jitsi-meet-web")
	}
	if d.Runs(spec.Coturn) && d.TURN.Enabled {
		out = append(out, "coturn")
	}
	if d.Runs(spec.Front) {
		out = append(out, "haproxy")
	}
	if d.Firewall.Enabled {
		out = append(out, "nftables")
	}
	return out
}

// LuaPackages are the Debian packages of the Lua modules Jitsi's token
// plugins load (jitsi-meet-prosody's Depends; internal/prosody).
func LuaPackages() []string {
	var out []string
	for _, m := range luamod.TokenLuaModules() {
		out = append(out, m.Package)
	}
	return append(out, "lua-sec")
}

// Units are the systemd units the spec needs on this host.
func Units(d *spec.Deployment) []string {
	var out []string
	for _, c := range files.Components() {
		s, ok := d.Services[c.Name]
		if !ok || !s.Enabled || !d.Runs(c.Name) {
			continue
		}
		out = append(out, s.Unit)
	}
	return out
}

// Selection is one debconf answer.
type Selection struct {
	Owner, Question, Type, Value string
	// Secret values go only to debconf-set-selections' stdin.
	Secret bool
}

// The certificate choice of jitsi-meet-web-config that makes it use given
// files instead of making its own (debian/jitsi-meet-web-config.templates).
const ownCertChoice = "I want to use my own certificate"

// accountQuestions are the debconf questions holding the passwords of the
// accounts table's rows the packages create accounts for.
var accountQuestions = []struct{ account, component, owner, question string }{
	{"focus", spec.Jicofo, "jicofo", "jicofo/jicofo-authpassword"},
	{"jvb", spec.JVB, "jitsi-videobridge2", "jitsi-videobridge/jvbsecret"},
}

// Selections are the debconf answers of the Jitsi packages, taken from the
// spec, so no package asks a question or invents a hostname, certificate
// or token setting of its own (read from the packages' postinst and
// templates: jitsi-videobridge, jitsi-meet-prosody, jitsi-meet-web-config,
// jitsi-meet-tokens).
func Selections(d *spec.Deployment) []Selection {
	p := certs.PathsFor(d, certs.Slot{Name: d.Domain, Key: certs.ECDSA})
	out := []Selection{
		{Owner: "jitsi-videobridge2", Question: "jitsi-videobridge/jvb-hostname", Type: "string", Value: d.Domain},
		{Owner: "jitsi-meet-prosody", Question: "jitsi-meet-prosody/jvb-hostname", Type: "string", Value: d.Domain},
		{Owner: "jitsi-meet-web-config", Question: "jitsi-meet/jvb-hostname", Type: "string", Value: d.Domain},
		{Owner: "jitsi-meet-web-config", Question: "jitsi-meet/cert-choice", Type: "select", Value: ownCertChoice},
		{Owner: "jitsi-meet-web-config", Question: "jitsi-meet/cert-path-crt", Type: "string", Value: p.NginxCert},
		{Owner: "jitsi-meet-web-config", Question: "jitsi-meet/cert-path-key", Type: "string", Value: p.NginxKey},
		{Owner: "jitsi-meet-web-config", Question: "jitsi-meet/jaas-choice", Type: "boolean", Value: "false"},
	}
	// The account passwords the packages' postinsts create the accounts
	// with (jitsi-meet-prosody: prosodyctl adduser focus@auth.DOMAIN and
	// jvb@auth.DOMAIN) and write into jicofo's and the videobridge's
	// configs: the agent's own, so no account ever has a password the
	// agent then changes. Empty until Options.Secrets filled them.
	for _, a := range accountQuestions {
		if d.Runs(spec.Prosody) || d.Runs(a.component) {
			out = append(out, Selection{Owner: a.owner, Question: a.question, Type: "password",
				Value: d.Secrets.Password(a.account).Reveal(), Secret: true})
		}
	}
	if j := d.Auth.JWT; d.Auth.Mode == spec.AuthJWT && j != nil && d.Runs(spec.Prosody) {
		out = append(out,
			Selection{Owner: "jitsi-meet-tokens", Question: "jitsi-meet-tokens/appid", Type: "string", Value: j.AppID},
			Selection{Owner: "jitsi-meet-tokens", Question: "jitsi-meet-tokens/appsecret", Type: "password", Value: j.AppSecret.Reveal(), Secret: true})
	}
	return out
}

// Plan returns the steps that bring this host to the spec.
func Plan(d *spec.Deployment, opts Options) []Step {
	pkgs := Packages(d)
	repos := Repos(d)
	units := Units(d)
	sels := Selections(d)
	var installed []string // by the packages step, for the apply step
	var steps []Step
	steps = append(steps, Step{Name: "preflight",
		Does: fmt.Sprintf("check, changing nothing: the spec is %s (the file the packaged unit runs), dpkg is not locked, none of %s that is still to be installed is held (apt-mark showhold), the app secret has none of the characters jitsi-meet-tokens refuses", DaemonSpec, strings.Join(pkgs, " ")),
		do:   func(ctx context.Context, r Runner) (string, error) { return "", preflight(ctx, r, d, opts, pkgs) }})
	for _, repo := range repos {
		repo := repo
		steps = append(steps,
			Step{Name: repo.Name + " key",
				Does: fmt.Sprintf("keep %s holding exactly the key %s; when it does not, fetch %s, refuse it unless it is exactly that one key (gpg --show-keys), write it (gpg --dearmor)", Keyring(repo), repo.KeyFingerprint, repo.KeyURL),
				do:   func(ctx context.Context, r Runner) (string, error) { return ensureKey(ctx, r, repo) }},
			Step{Name: repo.Name + " repository",
				Does: fmt.Sprintf("write %s: %s", SourcesFile(repo), SourcesLine(repo)),
				do:   func(ctx context.Context, r Runner) (string, error) { return ensureSources(r, repo) }})
	}
	steps = append(steps, Step{Name: "package lists",
		Does: fmt.Sprintf("when a package of %s is not installed: apt-get update --error-on=any of the repositories above only (unreachable or badly signed = stop)", strings.Join(pkgs, " ")),
		do:   func(ctx context.Context, r Runner) (string, error) { return updateLists(ctx, r, repos, pkgs) }})
	var q []string
	for _, s := range sels {
		q = append(q, s.Question)
	}
	steps = append(steps, Step{Name: "debconf answers",
		Does: "debconf-set-selections (secrets on its stdin only) for the answers that differ: " + strings.Join(q, " "),
		do: func(ctx context.Context, r Runner) (string, error) {
			sels := sels
			if opts.Secrets != nil {
				if err := opts.Secrets(d); err != nil {
					return "", fmt.Errorf("the agent's internal secrets: %w", err)
				}
				sels = Selections(d)
			}
			return ensureSelections(ctx, r, sels)
		}})
	steps = append(steps, Step{Name: "packages",
		Does: "apt-get install (noninteractive, --force-confold, no recommends) of the missing ones of: " + strings.Join(pkgs, " "),
		do: func(ctx context.Context, r Runner) (string, error) {
			miss, err := ensurePackages(ctx, r, pkgs)
			installed = miss
			if len(miss) == 0 {
				return "", err
			}
			return "installed " + strings.Join(miss, " "), err
		}})
	if d.Runs(spec.Prosody) {
		steps = append(steps, Step{Name: "lua modules",
			Does: "for Prosody's Lua version (/usr/bin/prosody's interpreter): apt-get install the missing ones of " + strings.Join(LuaPackages(), " ") + ", then check that it loads the C modules cjson and openssl",
			do:   func(ctx context.Context, r Runner) (string, error) { return ensureLua(ctx, r, opts) }})
	}
	steps = append(steps, Step{Name: "apply",
		Does: "the agent's apply: render, write, reload every file of the spec; a unit the spec needs that is not installed is an error",
		do:   func(ctx context.Context, r Runner) (string, error) { return opts.Apply(ctx, installed) }})
	steps = append(steps, Step{Name: "daemon",
		Does: "systemctl enable --now " + DaemonUnit + " unless it is enabled and active",
		do:   func(ctx context.Context, r Runner) (string, error) { return ensureDaemon(ctx, r) }})
	steps = append(steps, Step{Name: "verify",
		Does: "every unit the spec needs is installed and active: " + strings.Join(append(slices.Clone(units), DaemonUnit), " "),
		do: func(ctx context.Context, r Runner) (string, error) {
			return "", verifyUnits(ctx, r, append(units, DaemonUnit))
		}})
	return steps
}

// tokensRefused are the characters jitsi-meet-tokens' postinst refuses in
// the app secret (it exits 1, failing the install).
const tokensRefused = "/\\\"`'"

func preflight(ctx context.Context, r Runner, d *spec.Deployment, opts Options, pkgs []string) error {
	if opts.SpecPath != DaemonSpec {
		return fmt.Errorf("the spec is %s, but the packaged unit runs %s: put the spec there (and its secrets in /etc/jitsi-agent/env), then run 'jitsi-agent bootstrap %s'", opts.SpecPath, DaemonSpec, DaemonSpec)
	}
	if lock, locked, err := r.DpkgLock(); err != nil {
		return fmt.Errorf("checking dpkg's lock: %w", err)
	} else if locked {
		return fmt.Errorf("dpkg is locked (%s is held by another process: apt, unattended-upgrades or cloud-init's package step); wait until it finishes, then run bootstrap again", lock)
	}
	out, err := r.Run(ctx, nil, "apt-mark", "showhold")
	if err != nil {
		return fmt.Errorf("apt-mark showhold: %w", err)
	}
	// A held package that is installed already is the admin's pin and
	// harmless (bootstrap installs only what is missing); one that bootstrap
	// would have to install makes apt-get fail half-way.
	miss, err := missing(ctx, r, append(slices.Clone(pkgs), LuaPackages()...))
	if err != nil {
		return err
	}
	var held []string
	for _, p := range strings.Fields(string(out)) {
		if slices.Contains(miss, strings.SplitN(p, ":", 2)[0]) {
			held = append(held, p)
		}
	}
	if len(held) > 0 {
		return fmt.Errorf("package %s is held but not installed, and bootstrap would have to install it. Release it with 'apt-mark unhold %s' (or leave bootstrap out and install by hand)", strings.Join(held, ", "), strings.Join(held, " "))
	}
	if j := d.Auth.JWT; j != nil && d.Runs(spec.Prosody) && strings.ContainsAny(j.AppSecret.Reveal(), tokensRefused) {
		return fmt.Errorf("the spec's app_secret contains one of / \\ \" ' ` which jitsi-meet-tokens' postinst refuses (the install would fail); use a secret of letters and digits (openssl rand -hex 32)")
	}
	return nil
}

// keyFingerprints returns the fingerprints of the primary keys in a key
// file, as gpg --show-keys --with-colons lists them.
func keyFingerprints(ctx context.Context, r Runner, key []byte) ([]string, error) {
	out, err := r.Run(ctx, key, "gpg", "--batch", "--no-options", "--with-colons", "--show-keys")
	if err != nil {
		return nil, fmt.Errorf("gpg --show-keys: %w", err)
	}
	var fprs []string
	primary := false
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ":")
		switch {
		case f[0] == "pub":
			primary = true
		case f[0] == "sub":
			primary = false
		case f[0] == "fpr" && primary && len(f) > 9:
			fprs = append(fprs, strings.ToUpper(f[9]))
			primary = false
		}
	}
	return fprs, nil
}

func ensureKey(ctx context.Context, r Runner, repo spec.AptRepo) (string, error) {
	keyring := Keyring(repo)
	cur, err := r.ReadFile(keyring)
	if err != nil && !notExist(err) {
		return "", err
	}
	if err == nil {
		fprs, err := keyFingerprints(ctx, r, cur)
		if err == nil && slices.Equal(fprs, []string{repo.KeyFingerprint}) {
			return "", nil
		}
	}
	key, err := r.Fetch(ctx, repo.KeyURL)
	if err != nil {
		return "", fmt.Errorf("fetching the repository key: %w (is %s reachable from this host?)", err, repo.KeyURL)
	}
	fprs, err := keyFingerprints(ctx, r, key)
	if err != nil {
		return "", fmt.Errorf("%s: %w", repo.KeyURL, err)
	}
	if !slices.Equal(fprs, []string{repo.KeyFingerprint}) {
		return "", fmt.Errorf("the key at %s is %s, not the pinned %s: refused, nothing written. If the repository really changed its key, verify the new fingerprint from a second source and set bootstrap { %s_repo { key_fingerprint = \"...\" } } in the spec",
			repo.KeyURL, describeFprs(fprs), repo.KeyFingerprint, repo.Name)
	}
	if bytes.Contains(key, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		if key, err = r.Run(ctx, key, "gpg", "--batch", "--no-options", "--dearmor"); err != nil {
			return "", fmt.Errorf("gpg --dearmor: %w", err)
		}
	}
	if err := r.WriteFile(keyring, key, 0o644); err != nil {
		return "", err
	}
	return "wrote " + keyring + " (key " + repo.KeyFingerprint + ")", nil
}

func describeFprs(fprs []string) string {
	switch len(fprs) {
	case 0:
		return "no key"
	case 1:
		return fprs[0]
	}
	return fmt.Sprintf("%d keys (%s)", len(fprs), strings.Join(fprs, ", "))
}

func ensureSources(r Runner, repo spec.AptRepo) (string, error) {
	want := []byte("# Written by jitsi-agent bootstrap from the spec's bootstrap block; the key's fingerprint is pinned there.\n" + SourcesLine(repo) + "\n")
	cur, err := r.ReadFile(SourcesFile(repo))
	if err != nil && !notExist(err) {
		return "", err
	}
	if bytes.Equal(cur, want) {
		return "", nil
	}
	if err := r.WriteFile(SourcesFile(repo), want, 0o644); err != nil {
		return "", err
	}
	return "wrote " + SourcesFile(repo), nil
}

// missing returns the packages of pkgs that are not installed.
func missing(ctx context.Context, r Runner, pkgs []string) ([]string, error) {
	// dpkg-query exits 1 when a package is unknown; its output still lists
	// the known ones.
	out, _ := r.Run(ctx, nil, "dpkg-query", append([]string{"-W", "-f", "${Package} ${db:Status-Abbrev}\n"}, pkgs...)...)
	installed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[1] == "ii" {
			installed[strings.SplitN(f[0], ":", 2)[0]] = true
		}
	}
	var miss []string
	for _, p := range pkgs {
		if !installed[p] {
			miss = append(miss, p)
		}
	}
	return miss, nil
}

func updateLists(ctx context.Context, r Runner, repos []spec.AptRepo, pkgs []string) (string, error) {
	miss, err := missing(ctx, r, pkgs)
	if err != nil || len(miss) == 0 {
		return "", err
	}
	var done []string
	for _, repo := range repos {
		if _, err := r.Run(ctx, nil, "apt-get", "update", "-q", "--error-on=any",
			"-o", "Dir::Etc::sourcelist="+SourcesFile(repo), "-o", "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0"); err != nil {
			return "", fmt.Errorf("apt-get update of %s (%s): %w", SourcesFile(repo), repo.URL, err)
		}
		done = append(done, repo.Name)
	}
	return "updated " + strings.Join(done, ", "), nil
}

// debconfGet reads the current answers (debconf-communicate GET; "" for a
// question debconf does not know yet).
func debconfGet(ctx context.Context, r Runner, sels []Selection) ([]string, error) {
	var in bytes.Buffer
	for _, s := range sels {
		fmt.Fprintf(&in, "GET %s\n", s.Question)
	}
	out, err := r.Run(ctx, in.Bytes(), "debconf-communicate")
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("debconf-communicate: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	vals := make([]string, len(sels))
	for i := range sels {
		if i < len(lines) {
			if v, ok := strings.CutPrefix(lines[i], "0 "); ok {
				vals[i] = v
			} else if lines[i] == "0" {
				vals[i] = ""
			}
		}
	}
	return vals, nil
}

func ensureSelections(ctx context.Context, r Runner, sels []Selection) (string, error) {
	cur, err := debconfGet(ctx, r, sels)
	if err != nil {
		return "", err
	}
	var in bytes.Buffer
	var set []string
	for i, s := range sels {
		if strings.ContainsAny(s.Value, "\n\r") {
			return "", fmt.Errorf("debconf answer %s contains a line break", s.Question)
		}
		if cur[i] == s.Value || s.Secret && s.Value == "" { // an empty secret: not loaded, never preseeded
			continue
		}
		fmt.Fprintf(&in, "%s %s %s %s\n", s.Owner, s.Question, s.Type, s.Value)
		set = append(set, s.Question)
	}
	if len(set) == 0 {
		return "", nil
	}
	if _, err := r.Run(ctx, in.Bytes(), "debconf-set-selections"); err != nil {
		return "", fmt.Errorf("debconf-set-selections: %w", err)
	}
	return "set " + strings.Join(set, " "), nil
}

func aptInstall(ctx context.Context, r Runner, pkgs []string) error {
	args := append([]string{"DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "--no-install-recommends",
		"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}, pkgs...)
	if _, err := r.Run(ctx, nil, "env", args...); err != nil {
		return fmt.Errorf("apt-get install %s: %w", strings.Join(pkgs, " "), err)
	}
	return nil
}

// ensurePackages installs the missing ones of pkgs and returns them.
func ensurePackages(ctx context.Context, r Runner, pkgs []string) ([]string, error) {
	miss, err := missing(ctx, r, pkgs)
	if err != nil || len(miss) == 0 {
		return nil, err
	}
	if err := aptInstall(ctx, r, miss); err != nil {
		return nil, err
	}
	return miss, nil
}

func ensureLua(ctx context.Context, r Runner, opts Options) (string, error) {
	interp := opts.ProsodyInterpreter()
	v := luamod.LuaVersion(interp)
	if v == "" {
		return "", fmt.Errorf("cannot tell Prosody's Lua version from /usr/bin/prosody (interpreter %q); is prosody installed?", interp)
	}
	miss, err := missing(ctx, r, LuaPackages())
	if err != nil {
		return "", err
	}
	changed := ""
	if len(miss) > 0 {
		if err := aptInstall(ctx, r, miss); err != nil {
			return "", err
		}
		changed = "installed " + strings.Join(miss, " ") + " for Lua " + v
	}
	if _, err := r.Run(ctx, nil, "lua"+v, "-e", `require "cjson"; require "openssl"`); err != nil {
		return "", fmt.Errorf("Prosody's Lua %s cannot load cjson and openssl (C modules, built per Lua version): %w; install lua-cjson and lua-luaossl built for Lua %s", v, err, v)
	}
	return changed, nil
}

func ensureDaemon(ctx context.Context, r Runner) (string, error) {
	out, _ := r.Run(ctx, nil, "systemctl", "show", "-p", "LoadState", "-p", "UnitFileState", "-p", "ActiveState", DaemonUnit)
	st := parseShow(out)
	if st["LoadState"] != "loaded" {
		return "", fmt.Errorf("%s is not installed (LoadState=%s); install the jitsi-agent .deb", DaemonUnit, st["LoadState"])
	}
	if st["UnitFileState"] == "enabled" && st["ActiveState"] == "active" {
		return "", nil
	}
	if _, err := r.Run(ctx, nil, "systemctl", "enable", "--now", DaemonUnit); err != nil {
		return "", fmt.Errorf("systemctl enable --now %s: %w (see journalctl -u %s)", DaemonUnit, err, DaemonUnit)
	}
	return "enabled and started " + DaemonUnit, nil
}

func parseShow(out []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func verifyUnits(ctx context.Context, r Runner, units []string) error {
	var bad []string
	for _, u := range units {
		out, _ := r.Run(ctx, nil, "systemctl", "show", "-p", "LoadState", "-p", "ActiveState", u)
		st := parseShow(out)
		switch {
		case st["LoadState"] != "loaded":
			bad = append(bad, fmt.Sprintf("%s is not installed (LoadState=%s)", u, st["LoadState"]))
		case st["ActiveState"] != "active":
			bad = append(bad, fmt.Sprintf("%s is %s (journalctl -u %s)", u, st["ActiveState"], u))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("units the spec needs are not running: %s", strings.Join(bad, "; "))
	}
	return nil
}
