package apply

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// planOnce is what `jitsi-agent plan` does after rendering.
func planOnce(b *testing.B, e *env, set *render.Set) *plan.Plan {
	h, err := fsys.New(e.root)
	if err != nil {
		b.Fatal(err)
	}
	m, err := manifest.Load(manifest.Path(h.Real(stateDir)))
	if err != nil {
		b.Fatal(err)
	}
	p, err := plan.Compute(set, plan.Options{Host: h, Manifest: m, Redact: set.Redact, Diff: true})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkPlanUpToDate: the largest golden set (11 files) on a host that
// already matches it.
func BenchmarkPlanUpToDate(b *testing.B) {
	e := newEnv(b)
	set := goldenSet(b, "everything")
	localOwners(set)
	e.apply(set)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if p := planOnce(b, e, set); p.HasChanges() {
			b.Fatal("host not up to date")
		}
	}
}

// BenchmarkApplyNoop: a second apply of the golden set; asserts zero writes.
func BenchmarkApplyNoop(b *testing.B) {
	e := newEnv(b)
	e.opts.Progress = nil
	set := goldenSet(b, "everything")
	localOwners(set)
	e.apply(set)
	mtimes := map[string]time.Time{}
	filepath.Walk(e.root, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			mtimes[p] = fi.ModTime()
		}
		return nil
	})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Apply(context.Background(), set, e.opts)
		if err != nil || res.Changed() {
			b.Fatalf("no-op apply: %v %v", err, res)
		}
	}
	b.StopTimer()
	filepath.Walk(e.root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.ModTime().Equal(mtimes[p]) {
			b.Fatalf("%s written by a no-op apply", p)
		}
		return nil
	})
}

func templates1000(v string) *render.Set {
	s := &render.Set{}
	for i := 0; i < 1000; i++ {
		var content []byte
		for l := 0; l < 40; l++ {
			content = fmt.Appendf(content, "# Managed by jitsi-agent\nkey_%d_%d = value %d %s\n", i, l, l, v)
		}
		s.Files = append(s.Files, render.File{
			Path: fmt.Sprintf("/srv/custom/d%02d/t%04d.conf", i%50, i), Kind: render.KindFile, Mode: 0o644,
			Content: content, Component: fmt.Sprintf("template:t%04d", i), Units: []string{fmt.Sprintf("t%d.service", i%7)},
		})
	}
	s.Sort()
	return s
}

// BenchmarkPlan1000TemplatesUpToDate: 1,000 custom template outputs, host
// up to date.
func BenchmarkPlan1000TemplatesUpToDate(b *testing.B) {
	e := newEnv(b)
	e.opts.Progress = nil
	set := templates1000("a")
	e.apply(set)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if p := planOnce(b, e, set); p.HasChanges() {
			b.Fatal("not up to date")
		}
	}
}

// BenchmarkPlan1000TemplatesAllChanged: 1,000 custom templates whose every
// line changed (spec-changed, 1,000 unified diffs).
func BenchmarkPlan1000TemplatesAllChanged(b *testing.B) {
	e := newEnv(b)
	e.opts.Progress = nil
	e.apply(templates1000("a"))
	set := templates1000("b")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if p := planOnce(b, e, set); p.Summary.Update != 1000 {
			b.Fatalf("summary %+v", p.Summary)
		}
	}
}
