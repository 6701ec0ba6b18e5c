package render

import (
	"testing"

	"github.com/jitsi-agent/jitsi-agent/templates"
)

// BenchmarkRender renders the largest fixture (every feature, two NAT pairs,
// two user templates) with the built-in templates, parsed once into the
// caller's Cache (the daemon's case). Target: < 2 ms/op.
func BenchmarkRender(b *testing.B) {
	d := newDeployment(everything)
	in := Input{Deployment: d, Templates: templates.Builtin, UserSources: userSources, Cache: &Cache{}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderCold includes parsing every template (the first render in
// a process, e.g. one `jitsi-agent render` run).
func BenchmarkRenderCold(b *testing.B) {
	d := newDeployment(everything)
	in := Input{Deployment: d, Templates: templates.Builtin, UserSources: userSources}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(in); err != nil {
			b.Fatal(err)
		}
	}
}
