package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/secrets"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/templates"
)

// specVars holds -var name=value flags for commands that register them.
var specVars = varFlags{}

type varFlags map[string]string

func (v varFlags) String() string { return "" }
func (v varFlags) Set(s string) error {
	name, val, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("-var wants name=value, got %q", s)
	}
	v[name] = val
	return nil
}

// addSpecFlags registers the flags every spec-reading command shares.
func addSpecFlags(fs *flag.FlagSet, host *string) {
	fs.StringVar(host, "host", "", "render for this host block (default: the only one, or the one named like this machine)")
	fs.Var(specVars, "var", "set a variable: -var name=value (repeatable; also JITSI_AGENT_VAR_name)")
}

// lastLoad keeps the most recent load result (inputs for the watcher,
// redactions for logs).
var lastLoad *spec.Result

// loadSpec parses and validates a spec, printing diagnostics (warnings
// included) to stderr. ok is false when there were errors.
func loadSpec(path, host string, stderr io.Writer) (*spec.Deployment, bool) {
	res := spec.Load(path, spec.Options{Host: host, Vars: specVars})
	lastLoad = res
	if len(res.Diags) > 0 {
		res.WriteDiagnostics(stderr)
		fmt.Fprintln(stderr)
	}
	if res.HasErrors() {
		return nil, false
	}
	return res.Deployment, true
}

// stateDir is the state directory as seen from root.
func stateDir(d *spec.Deployment, root string) string {
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, d.StateDir)
}

// desiredState loads (generating once) the internal secrets kept in the state
// directory under root, then renders every file of this host.
func desiredState(d *spec.Deployment, root string) (*render.Set, error) {
	sec, err := secrets.Ensure(secrets.Dir(stateDir(d, root)))
	if err != nil {
		return nil, fmt.Errorf("internal secrets: %w", err)
	}
	d.Secrets = sec
	return renderDeployment(d, root)
}

// desiredStateReadOnly renders without writing anything: stored secrets are
// used when present; missing ones (a fresh host) get throwaway values, which
// is harmless because every file they appear in is new anyway.
func desiredStateReadOnly(d *spec.Deployment, root string) (*render.Set, error) {
	sec, _, err := secrets.Load(secrets.Dir(stateDir(d, root)))
	if err != nil {
		return nil, fmt.Errorf("internal secrets: %w", err)
	}
	for _, s := range []*spec.Secret{&sec.FocusPassword, &sec.JVBPassword, &sec.TURNSecret} {
		if s.IsZero() {
			*s = spec.NewSecret(ephemeral())
		}
	}
	d.Secrets = sec
	return renderDeployment(d, root)
}

// renderDeployment renders the configuration files, then adds the TLS
// certificate files for nginx, Prosody and coturn (from the ACME cache, the
// certificate already deployed, or a self-signed placeholder so the services
// can start before the first issuance).
func renderDeployment(d *spec.Deployment, root string) (*render.Set, error) {
	srcs, err := templates.ReadUserSources(d)
	if err != nil {
		return nil, err
	}
	set, err := render.Render(render.Input{Deployment: d, Templates: templates.Overlay(d.TemplatesDir), UserSources: srcs})
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	mat, err := certs.Load(d, root, time.Now())
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	set.Files = append(set.Files, certs.Files(d, mat)...)
	set.Sort()
	return set, nil
}

func ephemeral() string {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// parseArgs parses flags that may come before or after the positional
// arguments (jitsi-agent render SPEC --out DIR, or --out DIR SPEC).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// hostRoot checks a --root value and returns it absolute with symlinks
// resolved, so "is this the real host" is decided on what the writes will
// actually hit. An empty value is refused: an unset $ROOT in a script must
// never silently mean "/".
func hostRoot(root string) (string, error) {
	if strings.TrimSpace(root) == "" {
		return "", fmt.Errorf("--root is empty; give a directory (or / for this host)")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("--root %s: %w", root, err)
	}
	// Resolve the longest existing prefix (the rest may be created later).
	existing, rest := abs, ""
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			break
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = parent
	}
	resolved, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return "", fmt.Errorf("--root %s: %w", root, err)
	}
	if fi, err := os.Stat(resolved); err == nil && !fi.IsDir() {
		return "", fmt.Errorf("--root %s is not a directory", root)
	}
	return filepath.Join(resolved, rest), nil
}

// specArgs parses a spec command's arguments: flags anywhere, exactly one
// positional SPEC, and (when root is not nil) a valid --root, which it
// resolves in place. Errors and usage go to stderr; ok is false on error.
func specArgs(fs *flag.FlagSet, args []string, root *string, stderr io.Writer) (string, bool) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", false
	}
	if len(pos) != 1 {
		fs.Usage()
		return "", false
	}
	if root != nil {
		r, err := hostRoot(*root)
		if err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return "", false
		}
		*root = r
	}
	return pos[0], true
}
