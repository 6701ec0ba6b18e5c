package membership

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func sample() []Member {
	return []Member{
		{Host: "jvb2", Shard: "eu", Address: "10.0.1.12", Roles: []string{spec.JVB}, Healthy: true},
		{Host: "signal-eu", Shard: "eu", Address: "10.0.1.2", Roles: []string{spec.Nginx, spec.Prosody, spec.Jicofo}, Healthy: true},
		{Host: "jvb1", Shard: "eu", Address: "10.0.1.11", Roles: []string{spec.JVB, spec.JVB}, Healthy: false},
		{Host: "signal-us", Shard: "us", Address: "signal.us.example.com", Roles: []string{spec.Prosody, spec.Jicofo, spec.Nginx}, Healthy: true},
		{Host: "jvb-us1", Shard: "us", Address: "10.0.2.11", Roles: []string{spec.JVB}, Healthy: true},
		{Host: "turn1", Address: "203.0.113.7", Roles: []string{spec.Coturn}, Healthy: true},
	}
}

func TestNewSortsAndNormalises(t *testing.T) {
	in := sample()
	keep := slices.Clone(in)
	v, err := New(in)
	if err != nil {
		t.Fatal(err)
	}
	if in[2].Roles[1] != spec.JVB || in[3].Roles[0] != spec.Prosody || in[5].Shard != "" {
		t.Fatal("New modified its input")
	}
	want := "default/turn1(coturn)@203.0.113.7 eu/jvb1(jvb)@10.0.1.11! eu/jvb2(jvb)@10.0.1.12 " +
		"eu/signal-eu(jicofo,nginx,prosody)@10.0.1.2 us/jvb-us1(jvb)@10.0.2.11 us/signal-us(jicofo,nginx,prosody)@signal.us.example.com"
	if got := v.String(); got != want {
		t.Fatalf("view:\n got %s\nwant %s", got, want)
	}
	// Any input order gives the same view.
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		s := slices.Clone(keep)
		r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		w, err := New(s)
		if err != nil {
			t.Fatal(err)
		}
		if !w.Equal(v) || w.String() != want {
			t.Fatalf("order-dependent view: %s", w)
		}
	}
	if got := v.Shards(); !slices.Equal(got, []string{spec.DefaultShard, "eu", "us"}) {
		t.Fatalf("shards %v", got)
	}
}

func TestSelect(t *testing.T) {
	v, err := New(sample())
	if err != nil {
		t.Fatal(err)
	}
	names := func(ms []Member) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Host)
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct{ shard, role, want string }{
		{"eu", spec.JVB, "jvb1,jvb2"},
		{"us", spec.JVB, "jvb-us1"},
		{"", spec.JVB, "jvb1,jvb2,jvb-us1"},
		{"", spec.Nginx, "signal-eu,signal-us"},
		{"eu", "", "jvb1,jvb2,signal-eu"},
		{"asia", "", ""},
		{"", spec.Coturn, "turn1"},
	} {
		if got := names(v.Select(c.shard, c.role)); got != c.want {
			t.Errorf("Select(%q, %q) = %s, want %s", c.shard, c.role, got, c.want)
		}
	}
	// Results are copies.
	ms := v.Select("eu", spec.JVB)
	ms[0].Roles[0] = "changed"
	if m, _ := v.Get("jvb1"); m.Roles[0] != spec.JVB {
		t.Fatal("Select leaked the view's roles")
	}
	w := v.Without("jvb1", "nosuch")
	if names(w.Select("eu", spec.JVB)) != "jvb2" || v.Len() != 6 || w.Len() != 5 {
		t.Fatalf("Without: %s (from %s)", w, v)
	}
	if w.Equal(v) || !w.Equal(v.Without("jvb1")) {
		t.Fatal("Equal")
	}
	if _, ok := w.Get("jvb1"); ok {
		t.Fatal("removed member still there")
	}
	var nilView *View
	if nilView.Len() != 0 || nilView.Select("", "") != nil || !nilView.Equal(&View{}) || nilView.String() != "(no members)" {
		t.Fatal("nil view is not empty")
	}
}

// TestNewRefuses: every field ends up in nginx/HAProxy/Lua files, so
// anything but a plain name or address is refused.
func TestNewRefuses(t *testing.T) {
	ok := Member{Host: "jvb1", Shard: "eu", Address: "10.0.0.1", Roles: []string{spec.JVB}}
	for name, mod := range map[string]func(*Member){
		"empty host":          func(m *Member) { m.Host = "" },
		"host with space":     func(m *Member) { m.Host = "jvb 1" },
		"host with semicolon": func(m *Member) { m.Host = "jvb1;" },
		"host with slash":     func(m *Member) { m.Host = "../x" },
		"host too long":       func(m *Member) { m.Host = strings.Repeat("a", 64) },
		"shard with brace":    func(m *Member) { m.Shard = "eu}" },
		"shard with newline":  func(m *Member) { m.Shard = "eu\nserver x" },
		"address with port":   func(m *Member) { m.Address = "10.0.0.1:9090" },
		"address with space":  func(m *Member) { m.Address = "10.0.0.1 backup" },
		"address with zone":   func(m *Member) { m.Address = "fe80::1%eth0" },
		"address underscore":  func(m *Member) { m.Address = "a_b.example.com" },
		"unknown role":        func(m *Member) { m.Roles = []string{"haproxy2"} },
	} {
		m := ok
		mod(&m)
		if _, err := New([]Member{m}); err == nil {
			t.Errorf("%s: accepted %+v", name, m)
		}
	}
	if _, err := New([]Member{ok, ok}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate host: %v", err)
	}
	if _, err := New(make([]Member, MaxMembers+1)); err == nil {
		t.Error("more than MaxMembers accepted")
	}
	for _, a := range []string{"10.0.0.1", "2001:db8::5", "jvb1", "jvb1.internal.example.com", "JVB1.Example.com."} {
		m := ok
		m.Address = a
		if _, err := New([]Member{m}); err != nil {
			t.Errorf("address %q refused: %v", a, err)
		}
	}
}

func TestFromDeployment(t *testing.T) {
	d := &spec.Deployment{Hosts: []spec.Host{
		{Name: "signal1", Address: "10.0.0.2", Roles: []string{spec.Prosody, spec.Jicofo, spec.Nginx}},
		{Name: "jvb1", Address: "10.0.0.11", Shard: "b", Roles: []string{spec.JVB}},
	}}
	d.Host = d.Hosts[0]
	v, err := FromDeployment(d)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v.String(), "b/jvb1(jvb)@10.0.0.11 default/signal1(jicofo,nginx,prosody)@10.0.0.2"; got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	// A spec without host blocks: its implicit host.
	one := &spec.Deployment{Host: spec.Host{Name: "meet1", Roles: spec.Roles()}}
	v, err = FromDeployment(one)
	if err != nil || v.Len() != 1 || !v.Members()[0].Healthy || v.Members()[0].Shard != spec.DefaultShard {
		t.Fatalf("implicit host: %v %v", v, err)
	}
}

// BenchmarkNew builds a view of 551 members (50 shards of a signal host
// and 10 bridges) from registrations, as a fleet agent does on every
// registration change.
func BenchmarkNew(b *testing.B) {
	var ms []Member
	for s := range 50 {
		sh := "s" + strconv.Itoa(s)
		ms = append(ms, Member{Host: "sig-" + sh, Shard: sh, Address: "10.0." + strconv.Itoa(s) + ".1", Roles: []string{spec.Prosody, spec.Jicofo, spec.Nginx}, Healthy: true})
		for j := range 10 {
			ms = append(ms, Member{Host: "jvb-" + sh + "-" + strconv.Itoa(j), Shard: sh, Address: "jvb" + strconv.Itoa(j) + "." + sh + ".example.net", Roles: []string{spec.JVB}, Healthy: true})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(ms); err != nil {
			b.Fatal(err)
		}
	}
}
