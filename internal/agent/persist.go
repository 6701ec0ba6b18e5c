package agent

import (
	"os"
	"path/filepath"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/secrets"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Persisted turns a read-only render (DesiredStateReadOnly, made first so
// that a bad template writes nothing) into the desired state apply writes.
// When the state directory already holds every internal secret and the
// internal CA, which is every apply after a host's first, the read-only
// render used exactly those and is returned as is: one render per apply
// instead of two. Otherwise DesiredState creates what is missing and
// renders again.
func Persisted(d *spec.Deployment, root string, now time.Time, readOnly *render.Set) (*render.Set, error) {
	if readOnly != nil && stateComplete(d, root) {
		return readOnly, nil
	}
	return DesiredState(d, root, now)
}

// stateComplete reports whether DesiredState would create nothing.
func stateComplete(d *spec.Deployment, root string) bool {
	if _, ok, err := secrets.Load(secrets.Dir(StateDir(d, root))); err != nil || !ok {
		return false
	}
	if len(d.Host.Roles) == 0 || d.Host.HasRole(spec.Prosody) {
		dir := certs.InternalCADir(d, root)
		for _, f := range []string{"ca.crt", "ca.key"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				return false
			}
		}
	}
	return true
}
