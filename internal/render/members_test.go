package render

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/membership"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/templates"
)

// nginxSite renders the signal host's nginx site with the given view.
func nginxSite(t *testing.T, d *spec.Deployment, v *membership.View) string {
	t.Helper()
	set, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: userSources, Members: v})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range set.Files {
		if strings.HasPrefix(f.Path, "/etc/nginx/sites-available/") {
			return string(f.Content)
		}
	}
	t.Fatal("no nginx site rendered")
	return ""
}

var colibriLoc = regexp.MustCompile(`location ~ \^/colibri-ws/(\S+)/\(\.\*\) \{\n\s+proxy_pass http://(\S+)/colibri-ws/`)

func colibri(site string) string {
	var out []string
	for _, m := range colibriLoc.FindAllStringSubmatch(site, -1) {
		out = append(out, m[1]+"="+m[2])
	}
	return strings.Join(out, " ")
}

// TestMembersViewDrivesColibriRoutes: with a view, nginx routes
// colibri-ws to the live bridges of its own shard only; a member leaving
// the view leaves the file; no view renders the spec's static routes, and
// the static view of the spec renders the same bytes.
func TestMembersViewDrivesColibriRoutes(t *testing.T) {
	d := newDeployment(fleet("signal1"))
	static := nginxSite(t, d, nil)
	if got, want := colibri(static), "jvb1=10.0.0.11:9090 jvb2=jvb2.internal.example.com:9090"; got != want {
		t.Fatalf("static routes %q, want %q", got, want)
	}
	sv, err := membership.FromDeployment(d)
	if err != nil {
		t.Fatal(err)
	}
	if got := nginxSite(t, d, sv); got != static {
		t.Fatal("the spec's own view renders differently from no view")
	}

	live, err := membership.New([]membership.Member{
		{Host: "signal1", Address: "10.0.0.1", Roles: []string{spec.Prosody, spec.Jicofo, spec.Nginx}, Healthy: true},
		{Host: "jvb1", Address: "10.0.0.11", Roles: []string{spec.JVB}, Healthy: true},
		{Host: "jvb9", Address: "10.0.0.19", Roles: []string{spec.JVB}, Healthy: false}, // joined by registration
		{Host: "jvb-other", Shard: "other", Address: "10.9.0.1", Roles: []string{spec.JVB}, Healthy: true},
		{Host: "jvb-noaddr", Roles: []string{spec.JVB}, Healthy: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	site := nginxSite(t, d, live)
	if got, want := colibri(site), "jvb1=10.0.0.11:9090 jvb9=10.0.0.19:9090"; got != want {
		t.Fatalf("live routes %q, want %q", got, want)
	}
	site = nginxSite(t, d, live.Without("jvb1"))
	if got, want := colibri(site), "jvb9=10.0.0.19:9090"; got != want {
		t.Fatalf("after jvb1 left: %q, want %q", got, want)
	}
	if strings.Contains(site, "jvb1") {
		t.Fatal("a departed bridge is still named in the site")
	}
}

// TestMembersViewColocatedBridge: this host's own bridge is reached on
// loopback whatever address it registered.
func TestMembersViewColocatedBridge(t *testing.T) {
	d := newDeployment(fleet("signal1"))
	d.Host.Roles = append(d.Host.Roles, spec.JVB)
	d.Hosts[0] = d.Host
	v, err := membership.New([]membership.Member{
		{Host: "signal1", Address: "10.0.0.1", Roles: []string{spec.Nginx, spec.JVB}, Healthy: true},
		{Host: "jvb2", Address: "10.0.0.12", Roles: []string{spec.JVB}, Healthy: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := colibri(nginxSite(t, d, v)), "jvb2=10.0.0.12:9090 signal1=127.0.0.1:9090"; got != want {
		t.Fatalf("routes %q, want %q", got, want)
	}
	// Deterministic: the same view renders the same bytes.
	a, b := nginxSite(t, d, v), nginxSite(t, d, v)
	if !bytes.Equal([]byte(a), []byte(b)) {
		t.Fatal("not deterministic")
	}
}

var turnHost = regexp.MustCompile(`\{ type = "turn", host = "([^"]+)"`)

// TestMembersViewDrivesTURNList: Prosody hands out the healthy coturn
// members of its shard (every shard's when its own has none); turn.host in
// the spec wins; no view keeps the one static host.
func TestMembersViewDrivesTURNList(t *testing.T) {
	d := newDeployment(sharded("signal-b"))
	turnList := func(v *membership.View) string {
		t.Helper()
		set, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: userSources, Members: v})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range set.Files {
			if strings.HasPrefix(f.Path, "/etc/prosody/conf.avail/") {
				var hs []string
				for _, m := range turnHost.FindAllStringSubmatch(string(f.Content), -1) {
					hs = append(hs, m[1])
				}
				return strings.Join(hs, " ")
			}
		}
		t.Fatal("no prosody config")
		return ""
	}
	if got := turnList(nil); got != "signal-b.internal.example.com" {
		t.Fatalf("static TURN list %q", got)
	}
	v, err := membership.New([]membership.Member{
		{Host: "front1", Address: "192.0.2.10", Roles: []string{spec.Front}, Healthy: true},
		{Host: "signal-b", Shard: "b", Address: "10.0.1.1", Roles: []string{spec.Prosody, spec.Nginx}, Healthy: true},
		{Host: "turn-b1", Shard: "b", Address: "198.51.100.1", Roles: []string{spec.Coturn}, Healthy: true},
		{Host: "turn-b2", Shard: "b", Address: "198.51.100.2", Roles: []string{spec.Coturn}, Healthy: true},
		{Host: "turn-b3", Shard: "b", Address: "198.51.100.3", Roles: []string{spec.Coturn}, Healthy: false},
		{Host: "turn-a1", Shard: "a", Address: "203.0.113.1", Roles: []string{spec.Coturn}, Healthy: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := turnList(v); got != "198.51.100.1 198.51.100.2" {
		t.Fatalf("TURN list from the view %q, want shard b's healthy coturns", got)
	}
	if got := turnList(v.Without("turn-b1", "turn-b2")); got != "203.0.113.1" {
		t.Fatalf("TURN list without shard b's coturns %q, want the other shard's", got)
	}
	d.TURN.HostSet, d.TURN.Host = true, "turn.example.com"
	if got := turnList(v); got != "turn.example.com" {
		t.Fatalf("turn.host set: %q", got)
	}
}
