package render

import (
	"slices"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/templates"
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

// Every built-in file carries its row's validators (apply runs exactly
// those); links and user templates carry none (apply goes by path).
func TestFilesCarryTheirValidators(t *testing.T) {
	d := newDeployment(everything)
	set, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: userSources})
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]files.File{}
	for _, f := range files.Table() {
		rows[files.Expand(f.Path, d.Domain)] = f
	}
	seen := 0
	for _, f := range set.Files {
		row, builtin := rows[f.Path]
		switch {
		case builtin:
			seen++
			if !slices.Equal(f.Validators, row.Validators) {
				t.Errorf("%s carries validators %q, its row lists %q", f.Path, f.Validators, row.Validators)
			}
		case f.Validators != nil:
			t.Errorf("%s (%s, not a table row) carries validators %q", f.Path, f.Component, f.Validators)
		}
	}
	if seen == 0 {
		t.Fatal("no built-in file rendered")
	}
}
