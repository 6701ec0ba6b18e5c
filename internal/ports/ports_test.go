package ports

import (
	"strings"
	"testing"
)

func TestClashes(t *testing.T) {
	cases := []struct {
		name string
		a, b Binding
		want bool
	}{
		{"same port, all interfaces", Binding{ID: "a", Proto: TCP, Port: 443}, Binding{ID: "b", Proto: TCP, Port: 443}, true},
		{"tcp and udp share a number", Binding{ID: "a", Proto: TCP, Port: 3478}, Binding{ID: "b", Proto: UDP, Port: 3478}, false},
		{"wildcard covers loopback", Binding{ID: "a", Proto: TCP, Port: 5280}, Binding{ID: "b", Proto: TCP, Host: "127.0.0.1", Port: 5280}, true},
		{"two loopback addresses", Binding{ID: "a", Proto: TCP, Host: "127.0.0.1", Port: 9137}, Binding{ID: "b", Proto: TCP, Host: "127.0.0.2", Port: 9137}, false},
		{"localhost is 127.0.0.1", Binding{ID: "a", Proto: TCP, Host: "localhost", Port: 9137}, Binding{ID: "b", Proto: TCP, Host: "127.0.0.1", Port: 9137}, true},
		{"0.0.0.0 is every interface", Binding{ID: "a", Proto: TCP, Host: "0.0.0.0", Port: 80}, Binding{ID: "b", Proto: TCP, Host: "10.0.0.1", Port: 80}, true},
		{"inside a range", Binding{ID: "a", Proto: UDP, Port: 49152, ToPort: 65535}, Binding{ID: "b", Proto: UDP, Port: 50000}, true},
		{"just past a range", Binding{ID: "a", Proto: UDP, Port: 40000, ToPort: 49999}, Binding{ID: "b", Proto: UDP, Port: 50000}, false},
		{"range edge", Binding{ID: "a", Proto: UDP, Port: 40000, ToPort: 50000}, Binding{ID: "b", Proto: UDP, Port: 50000}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Set{c.a, c.b}.Clashes()
			if (len(got) > 0) != c.want {
				t.Fatalf("clashes = %v, want clash %v", got, c.want)
			}
			if c.want && len(got[0].Bindings) != 2 {
				t.Fatalf("clash has %d bindings", len(got[0].Bindings))
			}
		})
	}
}

func TestClashGroupsAndMessage(t *testing.T) {
	s := Set{
		{ID: "nginx.https", Proto: TCP, Port: 5222, Reason: "nginx HTTPS", Field: "web.https_port"},
		{ID: "prosody.c2s", Proto: TCP, Port: 5222, Reason: "Prosody c2s", Field: "prosody.c2s_port"},
		{ID: "agent.metrics", Proto: TCP, Host: "127.0.0.1", Port: 5222, Reason: "metrics", Field: "metrics.listen"},
		{ID: "jvb.media", Proto: UDP, Port: 10000, Reason: "media"},
	}
	cs := s.Clashes()
	if len(cs) != 1 {
		t.Fatalf("want one clash group, got %v", cs)
	}
	msg := cs[0].Error()
	for _, w := range []string{"5222/tcp is used by", "web.https_port (nginx HTTPS)", "prosody.c2s_port (Prosody c2s)", "metrics.listen (metrics)"} {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q lacks %q", msg, w)
		}
	}
	if f := cs[0].Fields(); len(f) != 3 {
		t.Errorf("fields = %v", f)
	}
}

func TestSetLookupsAndPublic(t *testing.T) {
	s := Set{
		{ID: NginxHTTPS, Service: "nginx", Proto: TCP, Port: 443, Public: true, Name: NameHTTPS},
		{ID: ProsodyHTTP, Service: "prosody", Proto: TCP, Host: "127.0.0.1", Port: 5280},
		{ID: CoturnRelay, Service: "coturn", Proto: UDP, Port: 49152, ToPort: 65535, Public: true, Name: NameTURNRelay},
	}
	s.Sort()
	if s[0].ID != NginxHTTPS || s[2].ID != CoturnRelay {
		t.Errorf("order: %v", s)
	}
	if s.Port(ProsodyHTTP) != 5280 || s.Port(ProsodyS2S) != 0 || !s.On(NginxHTTPS) || s.On(ProsodyS2S) {
		t.Error("lookups")
	}
	pub := s.Public()
	if len(pub) != 2 || pub[0].Name != NameHTTPS || pub[1].Label() != "49152-65535/udp" {
		t.Errorf("public = %v", pub)
	}
	if b, _ := s.Get(ProsodyHTTP); !b.Loopback() || b.Label() != "127.0.0.1:5280/tcp" {
		t.Errorf("loopback binding: %v %s", b.Loopback(), b.Label())
	}
	if len(s.Service("prosody")) != 1 {
		t.Error("Service")
	}
}
