package main

import (
	"os"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/commands"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/planfile"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/stamp"
)

// noopRun is a file-only apply that may be answered by the no-op stamp
// (internal/stamp) and records one when it changes nothing.
type noopRun struct {
	key            stamp.Key
	root           string
	stdout, stderr *stamp.Tee
	env            *planfile.EnvRecorder
	pre            *stamp.Stamp // the host just before the apply
}

// newNoopRun returns the stamp handling for this apply, or nil when the
// apply has more than a file step (units, accounts, firewall, ACME on the
// real host, deferred restarts, -confirm): those always run in full. It
// routes the call's output through tees so a no-op's output can be replayed.
func newNoopRun(c *cli.Call, specPath, root string) *noopRun {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	key, ok := commands.NoopKey(c, specPath, root, exe, buildVersion())
	if !ok {
		return nil
	}
	n := &noopRun{key: key, root: root,
		stdout: &stamp.Tee{W: c.Stdout}, stderr: &stamp.Tee{W: c.Stderr}, env: &planfile.EnvRecorder{}}
	c.Stdout, c.Stderr = n.stdout, n.stderr
	return n
}

// replay answers the apply from a valid stamp: it prints what the no-op
// apply printed and reports true.
func (n *noopRun) replay() bool {
	s := stamp.Check(n.root, commands.StateDir, n.key, os.LookupEnv, time.Now())
	if s == nil {
		return false
	}
	n.stdout.W.Write([]byte(s.Stdout))
	n.stderr.W.Write([]byte(s.Stderr))
	return true
}

// collect fingerprints what this apply depends on now (nil when it
// cannot).
func (n *noopRun) collect(d *spec.Deployment, res *spec.Result, set *render.Set) *stamp.Stamp {
	if d.StateDir != spec.DefaultStateDir {
		return nil
	}
	m, err := manifest.Load(manifest.Path(agent.StateDir(d, n.root)))
	if err != nil {
		return nil
	}
	s, err := stamp.Collect(stamp.Facts{Key: n.key, Root: n.root, StateDir: d.StateDir, Inputs: res.Inputs,
		Env: n.env.Digests(), Managed: managedPaths(set, m)}, time.Now())
	if err != nil {
		return nil
	}
	return s
}

// before fingerprints the host just before the apply.
func (n *noopRun) before(d *spec.Deployment, res *spec.Result, set *render.Set) {
	n.pre = n.collect(d, res, set)
}

// record writes the stamp after an apply that succeeded and found the host
// exactly as it left it (not even the manifest or a state file written):
// what it printed is then what the same apply prints again. The stamp lives
// in the default state directory (it is looked up before the spec is
// read); a spec with another state_dir gets none. A failure to record only
// costs the next apply the full path.
func (n *noopRun) record(d *spec.Deployment, res *spec.Result, set *render.Set) {
	s := n.collect(d, res, set)
	if s == nil || n.pre == nil || !s.SameHost(n.pre) {
		return
	}
	_ = stamp.Write(n.root, d.StateDir, s, n.stdout.Buf.String(), n.stderr.Buf.String())
}
