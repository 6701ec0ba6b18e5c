package render

import (
	"fmt"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/membership"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
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

// BenchmarkRenderFrontView renders a front host from a live view of 50
// shards (each a signal host and 10 bridges: 551 members), as a fleet
// front does on every membership change.
func BenchmarkRenderFrontView(b *testing.B) {
	v := benchView(b, 50, 10)
	d := newDeployment(sharded("front1"))
	d.Host = spec.Host{Name: "front1", Address: "192.0.2.10", Roles: []string{spec.Front}}
	in := Input{Deployment: d, Templates: templates.Builtin, UserSources: userSources, Cache: &Cache{}, Members: v}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderSignalView renders a signal host (nginx colibri-ws routes,
// Prosody's TURN list) from the same view.
func BenchmarkRenderSignalView(b *testing.B) {
	v := benchView(b, 50, 10)
	d := newDeployment(sharded("signal-b"))
	d.Host.Shard = "s7"
	d.Host.Name = "sig-s7"
	in := Input{Deployment: d, Templates: templates.Builtin, UserSources: userSources, Cache: &Cache{}, Members: v}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(in); err != nil {
			b.Fatal(err)
		}
	}
}

func benchView(b *testing.B, shards, bridges int) *membership.View {
	b.Helper()
	ms := []membership.Member{{Host: "front1", Address: "192.0.2.10", Roles: []string{spec.Front}, Healthy: true}}
	for s := range shards {
		sh := fmt.Sprintf("s%d", s)
		ms = append(ms, membership.Member{Host: "sig-" + sh, Shard: sh, Address: fmt.Sprintf("10.%d.0.1", s), Roles: []string{spec.Prosody, spec.Jicofo, spec.Nginx, spec.Coturn}, Healthy: true})
		for j := range bridges {
			ms = append(ms, membership.Member{Host: fmt.Sprintf("jvb-%s-%d", sh, j), Shard: sh, Address: fmt.Sprintf("10.%d.1.%d", s, j+1), Roles: []string{spec.JVB}, Healthy: true})
		}
	}
	v, err := membership.New(ms)
	if err != nil {
		b.Fatal(err)
	}
	return v
}
