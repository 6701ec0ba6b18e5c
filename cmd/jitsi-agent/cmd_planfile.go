package main

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/planfile"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// managedPaths are the paths a plan can touch: the desired files and
// whatever the manifest says was managed before (removals).
func managedPaths(set *render.Set, m *manifest.Manifest) []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, f := range set.Files {
		add(f.Path)
	}
	if m != nil {
		for _, e := range m.Files {
			add(e.Path)
			add(e.WritePath)
		}
	}
	sort.Strings(out)
	return out
}

// fingerprint is what a saved plan checks: the inputs the load read, the
// environment it looked up, and the host's managed files and state.
func fingerprint(res *spec.Result, rec *planfile.EnvRecorder, set *render.Set, m *manifest.Manifest, root string) (planfile.Fingerprint, error) {
	bv := buildVersion()
	fp := planfile.Fingerprint{AgentVersion: strings.TrimSuffix(bv.Version+" "+bv.ShortCommit(), " "), Env: rec.Digests()}
	var err error
	if fp.Inputs, err = planfile.Inputs(res.Inputs); err != nil {
		return fp, err
	}
	fp.HostFiles, err = planfile.HostFiles(root, managedPaths(set, m), res.Deployment.StateDir)
	return fp, err
}

// savePlan writes plan -out FILE.
func savePlan(path, specPath string, opts spec.Options, root string, res *spec.Result, rec *planfile.EnvRecorder,
	set *render.Set, m *manifest.Manifest, p *plan.Plan) error {
	abs, err := filepath.Abs(specPath)
	if err != nil {
		return err
	}
	r := planfile.Recipe{Spec: abs, Host: opts.Host, Vars: opts.Vars, Root: root}
	for _, vf := range opts.VarFiles {
		a, err := filepath.Abs(vf)
		if err != nil {
			return err
		}
		r.VarFiles = append(r.VarFiles, a)
	}
	fp, err := fingerprint(res, rec, set, m, root)
	if err != nil {
		return fmt.Errorf("fingerprint for the saved plan: %w", err)
	}
	sp := &planfile.Plan{Created: time.Now().UTC(), Recipe: r, Fingerprint: fp, Changes: []planfile.Change{}}
	for _, c := range p.Changes {
		sp.Changes = append(sp.Changes, planfile.Change{Action: string(c.Action), Path: c.Path})
	}
	return planfile.Write(path, sp)
}

// loadSavedPlan reads apply's PLANFILE, loads the spec as the plan did and
// checks that nothing the plan depends on changed. It returns the
// deployment and root to apply; problems are printed.
func loadSavedPlan(c *cli.Call, path string) (*spec.Deployment, string, bool) {
	stderr := c.Stderr
	for _, f := range []string{"var", "var-file", "host", "root"} {
		if c.IsSet(f) {
			fmt.Fprintf(stderr, "Error: -%s cannot be combined with a saved plan: the plan fixed it already. Run plan -out again to change it.\n", f)
			return nil, "", false
		}
	}
	sp, err := planfile.Read(path)
	if err != nil {
		printError(stderr, err)
		return nil, "", false
	}
	rec := &planfile.EnvRecorder{}
	opts := spec.Options{Host: sp.Host, Vars: sp.Vars, VarFiles: sp.VarFiles, LookupEnv: rec.Lookup}
	res, ok := loadSpecOpts(c, sp.Spec, opts)
	stale := func(why []string) (*spec.Deployment, string, bool) {
		fmt.Fprintf(stderr, "Error: the saved plan %s (made %s) is stale; nothing was changed:\n", path, sp.Created.Local().Format(time.DateTime))
		for _, w := range why {
			fmt.Fprintf(stderr, "  - %s\n", w)
		}
		fmt.Fprintf(stderr, "Run 'jitsi-agent plan -out %s %s' again, review it, then apply it.\n", path, sp.Spec)
		return nil, "", false
	}
	if !ok {
		return stale([]string{"the spec " + sp.Spec + " no longer loads (see above)"})
	}
	d := res.Deployment
	set, err := agent.DesiredStateReadOnly(d, sp.Root, time.Now())
	if err != nil {
		printError(stderr, err)
		return nil, "", false
	}
	m, err := manifest.Load(manifest.Path(agent.StateDir(d, sp.Root)))
	if err != nil {
		printError(stderr, err)
		return nil, "", false
	}
	now, err := fingerprint(res, rec, set, m, sp.Root)
	if err != nil {
		printError(stderr, err)
		return nil, "", false
	}
	if why := sp.Stale(now); len(why) > 0 {
		return stale(why)
	}
	// Re-render for apply from the same recipe: the deployment is fresh.
	res = spec.Load(sp.Spec, spec.Options{Host: sp.Host, Vars: sp.Vars, VarFiles: sp.VarFiles})
	if res.HasErrors() {
		return stale([]string{"the spec no longer loads"})
	}
	fmt.Fprintf(c.Stdout, "jitsi-agent: applying the saved plan %s (made %s; %s)\n", path, sp.Created.Local().Format(time.DateTime),
		strings.ToLower(planfile.Summary(sp.Changes)))
	return res.Deployment, sp.Root, true
}
