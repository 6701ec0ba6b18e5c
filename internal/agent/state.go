// Package agent is jitsi-agent's core, the way consul-template's
// manager.Runner is consul-template's: desired state (secrets + render +
// certificates), one Apply (stage, validate, swap, record, accounts, reload,
// verify, roll back) used by both `jitsi-agent apply` and the daemon, the
// daemon's applier, and the doctor's wiring. cmd/jitsi-agent only parses
// arguments, calls into this package and prints.
//
// Side effects come in as small interfaces (Env: systemd units, Prosody
// accounts, the clock, ACME), so the core is tested against a temporary root
// with fakes; the real implementations are tested against the real thing.
package agent

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/membership"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/prosody"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/secrets"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/watch"
	"github.com/jitsi-agent/jitsi-agent/templates"
)

// StateDir is the deployment's state directory as seen from root.
func StateDir(d *spec.Deployment, root string) string {
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, d.StateDir)
}

// DesiredState loads (generating once) the internal secrets kept in the
// state directory under root, then renders every file of this host.
func DesiredState(d *spec.Deployment, root string, now time.Time) (*render.Set, error) {
	return desiredState(d, root, now, nil, nil)
}

// desiredState is DesiredState with a template cache (the daemon's).
func desiredState(d *spec.Deployment, root string, now time.Time, cache *render.Cache, members *membership.View) (*render.Set, error) {
	sec, err := internalSecrets(d, root)
	if err != nil {
		return nil, &SecretsError{Err: err}
	}
	d.Secrets = sec
	if err := RecordSecrets(d, root); err != nil {
		return nil, &SecretsError{Err: err}
	}
	return renderSet(d, root, now, true, cache, members)
}

// internalSecrets derives the internal secrets from the spec's
// cluster_secret (every host gets the same values, nothing is generated),
// or else loads them from the state directory, generating missing ones.
func internalSecrets(d *spec.Deployment, root string) (spec.Secrets, error) {
	if !d.ClusterSecret.IsZero() {
		return secrets.Derive(d.ClusterSecret.Reveal())
	}
	return secrets.Ensure(secrets.Dir(StateDir(d, root)))
}

// LoadSecrets fills d.Secrets with this host's internal secrets, creating
// and storing the missing ones as the first apply would, and records them
// in the secret history (bootstrap preseeds the packages' debconf answers
// with the account passwords before they create the accounts).
func LoadSecrets(d *spec.Deployment, root string) error {
	sec, err := internalSecrets(d, root)
	if err != nil {
		return &SecretsError{Err: err}
	}
	d.Secrets = sec
	return RecordSecrets(d, root)
}

// RecordSecrets adds every secret of d (in every form a file may quote it
// in) to the state directory's secret history before anything can write
// it, so later plans mask it even after the spec stops using it.
func RecordSecrets(d *spec.Deployment, root string) error {
	var forms []string
	for _, v := range d.SecretValues() {
		forms = append(forms, render.RedactionForms(v)...)
	}
	return secrets.Record(secrets.Dir(StateDir(d, root)), forms...)
}

// SecretMask returns a function that hides, in plan output, every secret
// value this host has had (read-only: a missing history masks nothing but
// the current values, which plan redacts anyway).
func SecretMask(d *spec.Deployment, root string) (func(string) string, error) {
	h, err := secrets.LoadHistory(secrets.Dir(StateDir(d, root)))
	if err != nil {
		return nil, err
	}
	return func(s string) string { return h.Mask(s, plan.Redacted) }, nil
}

// SecretsError is a failure to read or create the internal secrets (I/O on
// the state directory: worth a retry, unlike a render error).
type SecretsError struct{ Err error }

func (e *SecretsError) Error() string { return "internal secrets: " + e.Err.Error() }
func (e *SecretsError) Unwrap() error { return e.Err }

// DesiredStateReadOnly renders without writing anything: stored secrets are
// used when present; missing ones (a fresh host) get throwaway values, which
// is harmless because every file they appear in is new anyway.
func DesiredStateReadOnly(d *spec.Deployment, root string, now time.Time) (*render.Set, error) {
	var sec spec.Secrets
	var err error
	if !d.ClusterSecret.IsZero() {
		sec, err = secrets.Derive(d.ClusterSecret.Reveal())
	} else {
		sec, _, err = secrets.Load(secrets.Dir(StateDir(d, root)))
	}
	if err != nil {
		return nil, &SecretsError{Err: err}
	}
	d.Secrets = sec.Filled(func() spec.Secret { return spec.NewSecret(ephemeral()) })
	return Render(d, root, now)
}

// Render renders the configuration files, then adds the TLS certificate
// files for nginx, Prosody and coturn (from the ACME cache, the certificate
// already deployed, or a self-signed placeholder so the services can start
// before the first issuance), the internal certificates of Prosody's other
// VirtualHosts (auth.DOMAIN...; see certs.LoadInternal) and the links that
// make the token modules' Lua dependencies loadable for Prosody's Lua
// version (prosody.LuaLinks). d.Secrets must be set. It writes nothing: a
// missing internal CA is generated in memory (DesiredState keeps it).
func Render(d *spec.Deployment, root string, now time.Time) (*render.Set, error) {
	return renderSet(d, root, now, false, nil, nil)
}

func renderSet(d *spec.Deployment, root string, now time.Time, persist bool, cache *render.Cache, members *membership.View) (*render.Set, error) {
	srcs, err := templates.ReadUserSources(d)
	if err != nil {
		return nil, err
	}
	set, err := render.Render(render.Input{Deployment: d, Templates: templates.Overlay(d.TemplatesDir), UserSources: srcs, Cache: cache, Members: members})
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	mat, err := certs.Load(d, root, now)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	set.Files = append(set.Files, certs.Files(d, mat)...)
	if len(d.Host.Roles) == 0 || d.Host.HasRole(spec.Prosody) {
		in, err := certs.LoadInternal(d, root, now, persist)
		if err != nil {
			return nil, fmt.Errorf("certificates: %w", err)
		}
		set.Files = append(set.Files, certs.InternalFiles(d, in)...)
		if d.Auth.Mode == spec.AuthJWT {
			set.Files = append(set.Files, prosody.LuaLinks(root)...)
		}
	}
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

// DriftPolicy is a file's drift policy: its own, else the deployment's.
func DriftPolicy(d *spec.Deployment, f render.File) string {
	if f.Drift != "" {
		return f.Drift
	}
	if d.Drift != "" {
		return d.Drift
	}
	return spec.DriftRestore
}

// WatchPaths is what the daemon watches: every spec input (directories such
// as the template override dir as directories) and every managed output.
func WatchPaths(res *spec.Result, set *render.Set, root string) watch.Paths {
	var p watch.Paths
	for _, in := range res.Inputs {
		if fi, err := os.Stat(in); err == nil && fi.IsDir() {
			p.Dirs = append(p.Dirs, in)
		} else {
			p.Files = append(p.Files, in)
		}
	}
	if res.Deployment != nil && res.Deployment.TemplatesDir != "" && !slices.Contains(p.Dirs, res.Deployment.TemplatesDir) {
		p.Dirs = append(p.Dirs, res.Deployment.TemplatesDir)
	}
	if res.Deployment != nil && res.Deployment.TLS.ACME != nil {
		// A renewal is written to the ACME cache: watching it re-deploys the
		// new certificate and reloads the services that read it.
		p.Dirs = append(p.Dirs, certs.CacheDir(res.Deployment, root))
	}
	if set != nil {
		for _, f := range set.Files {
			p.Files = append(p.Files, hostPath(root, f.Path))
		}
	}
	return p
}

// SetDigest identifies a desired set (paths, kinds, contents, modes, owners).
func SetDigest(set *render.Set) string {
	files := append([]render.File(nil), set.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%o\x00%s\x00%s\x00%d\x00", f.Path, f.Kind, f.Target, f.Mode, f.Owner, f.Group, len(f.Content))
		h.Write(f.Content)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// hostPath is a managed path (as under /) as seen on this machine.
func hostPath(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	return filepath.Join(root, p)
}
