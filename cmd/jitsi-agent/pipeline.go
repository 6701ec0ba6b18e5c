package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/secrets"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/templates"
)

// specOptions builds spec.Options from the spec flags of the call
// (-host, -var, -var-file).
func specOptions(c *cli.Call) (spec.Options, error) {
	opts := spec.Options{Host: c.String("host"), VarFiles: c.Strings("var-file")}
	for _, kv := range c.Strings("var") {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return opts, fmt.Errorf("-var wants NAME=VALUE, got %q", kv)
		}
		if opts.Vars == nil {
			opts.Vars = map[string]string{}
		}
		opts.Vars[name] = val
	}
	return opts, nil
}

// loadSpecResult parses and validates a spec with the call's spec flags,
// printing diagnostics (warnings included) to stderr. ok is false when there
// were errors.
func loadSpecResult(c *cli.Call, path string) (*spec.Result, bool) {
	opts, err := specOptions(c)
	if err != nil {
		fmt.Fprintf(c.Stderr, "Error: %v\n", err)
		return nil, false
	}
	res := spec.Load(path, opts)
	if len(res.Diags) > 0 {
		res.WriteDiagnostics(c.Stderr)
		fmt.Fprintln(c.Stderr)
	}
	return res, !res.HasErrors()
}

// loadSpec is loadSpecResult for callers that need only the deployment.
func loadSpec(c *cli.Call, path string) (*spec.Deployment, bool) {
	res, ok := loadSpecResult(c, path)
	if !ok {
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

// rootArg resolves the call's -root flag (see hostRoot); errors go to
// stderr and ok is false.
func rootArg(c *cli.Call) (string, bool) {
	r, err := hostRoot(c.String("root"))
	if err != nil {
		fmt.Fprintf(c.Stderr, "Error: %v\n", err)
		return "", false
	}
	return r, true
}
