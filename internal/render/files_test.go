package render

import (
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
)

// Every secret the files table names is one render can check.
func TestTableSecretsAreKnown(t *testing.T) {
	data := &BuiltinData{JWT: true, TURN: true, AppSecret: "a", TURNSecret: "t", Passwords: map[string]string{"focus": "f", "jvb": "j", "jibri": "b", "recorder": "r"}}
	for _, f := range files.Table() {
		for _, s := range f.Secrets {
			if v, needed := secretValue(s, data); v == "" || !needed {
				t.Errorf("%s: secret %q is not known to render", f.Path, s)
			}
		}
		if err := checkSecrets(f, &BuiltinData{JWT: true, TURN: true}); len(f.Secrets) > 0 && err == nil {
			t.Errorf("%s: rendered with its secrets empty", f.Path)
		}
	}
}

// A Cache parses each template once per source and never grows past one
// slot per template; without one every render parses afresh.
func TestCacheReusesAndReplaces(t *testing.T) {
	var c Cache
	src := []byte("a {{.Name}}\n")
	t1, err := c.parse("user:x", "x", src)
	if err != nil {
		t.Fatal(err)
	}
	if t2, _ := c.parse("user:x", "x", src); t2 != t1 {
		t.Error("same source parsed twice")
	}
	t3, err := c.parse("user:x", "x", []byte("b {{.Name}}\n"))
	if err != nil || t3 == t1 || len(c.m) != 1 {
		t.Errorf("changed source: new template %v, slots %d", t3 != t1, len(c.m))
	}
	var none *Cache
	n1, _ := none.parse("user:x", "x", src)
	n2, _ := none.parse("user:x", "x", src)
	if n1 == n2 {
		t.Error("a nil cache kept a template")
	}
}
