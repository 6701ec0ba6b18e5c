package membership

import (
	"slices"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// FuzzNew: whatever a registration carries, a member New accepts is made
// of plain words: nothing that could end or extend a directive of the
// nginx, HAProxy or Lua files it is rendered into.
func FuzzNew(f *testing.F) {
	f.Add("jvb1", "eu", "10.0.0.1", "jvb")
	f.Add("sig-1.a_b", "", "host.example.com.", "nginx")
	f.Add("x;y", "a b", "1.2.3.4:5", "front")
	f.Add("a", "b\n", "fe80::1%eth0", "coturn")
	f.Fuzz(func(t *testing.T, host, shard, addr, role string) {
		v, err := New([]Member{{Host: host, Shard: shard, Address: addr, Roles: []string{role}}})
		if err != nil {
			return
		}
		m := v.Members()[0]
		for _, s := range []string{m.Host, m.Shard, m.Address} {
			if strings.ContainsAny(s, " \t\r\n;{}#\"'\\$/`()[]%@,") || len(s) > 253 {
				t.Fatalf("accepted %q", s)
			}
		}
		if m.Host == "" || m.Shard == "" {
			t.Fatal("accepted an empty name")
		}
		if !slices.Contains(spec.Roles(), m.Roles[0]) {
			t.Fatalf("accepted role %q", m.Roles[0])
		}
	})
}
