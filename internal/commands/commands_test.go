package commands

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"
)

// paths lists the runnable commands ("apply", "token mint", ...).
func paths(cs []*cli.Command, prefix string) []string {
	var out []string
	for _, c := range cs {
		p := strings.TrimSpace(prefix + " " + c.Name)
		if len(c.Sub) == 0 {
			out = append(out, p)
		}
		out = append(out, paths(c.Sub, p)...)
	}
	return out
}

// App gives every command the runner named for it, then its own, then the
// fallback; without a fallback a command nobody runs fails Check.
func TestAppRunners(t *testing.T) {
	b := Build{Version: "v1", Commit: "c", Date: "d"}
	var ran []string
	rec := func(name string) func(*cli.Call) int {
		return func(c *cli.Call) int { ran = append(ran, name+":"+c.Path); return 7 }
	}
	app := App(b, Runners{"apply": rec("mine"), "token mint": rec("mine")}, rec("fallback"))
	if err := app.Check(); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	for _, args := range [][]string{{"apply", "s.hcl"}, {"token", "mint", "s.hcl"}, {"render", "s.hcl", "-out", "o"}, {"fleet", "status"}} {
		if code := app.Run(args, nil, &out, &errb, nil); code != 7 {
			t.Errorf("%q: exit %d: %s", args, code, errb.String())
		}
	}
	if got := strings.Join(ran, " "); got != "mine:apply mine:token mint fallback:render fallback:fleet status" {
		t.Errorf("ran %s", got)
	}
	out.Reset()
	if code := app.Run([]string{"version"}, nil, &out, &errb, nil); code != 0 || !strings.HasPrefix(out.String(), "jitsi-agent v1\ncommit:  c\nbuilt:   d\ngo:") {
		t.Errorf("version: %d %q", code, out.String())
	}
	out.Reset()
	if code := app.Run([]string{"completion", "fish"}, nil, &out, &errb, nil); code != 0 || !strings.Contains(out.String(), "complete -c jitsi-agent") {
		t.Errorf("completion: %d %q", code, out.String())
	}
	if err := App(b, Runners{"apply": rec("mine")}, nil).Check(); err == nil || !strings.Contains(err.Error(), `"render"`) {
		t.Errorf("a command without a runner passed Check: %v", err)
	}
	if n := len(paths(app.Commands, "")); n < 25 {
		t.Errorf("only %d commands", n)
	}
}

// NoopKey: only file-only applies get a key, and it changes with every
// part of the command line that changes what the apply does.
func TestNoopKey(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "jitsi-agent-full")
	if err := os.WriteFile(exe, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := Build{Version: "v1", Commit: "c"}
	key := func(root string, args ...string) (string, bool) {
		t.Helper()
		var got string
		var ok bool
		app := App(b, Runners{"apply": func(c *cli.Call) int {
			k, kok := NoopKey(c, c.Args[0], root, exe, b)
			got, ok = strings.Join(k.Args, ",")+"|"+k.Program+"|"+k.Dir, kok
			return 0
		}}, func(*cli.Call) int { return 1 })
		var out, errb bytes.Buffer
		if code := app.Run(append([]string{"apply"}, args...), nil, &out, &errb, nil); code != 0 {
			t.Fatalf("%q: %d %s", args, code, errb.String())
		}
		return got, ok
	}
	for _, args := range [][]string{{"s.hcl", "-no-reload"}, {"s.hcl", "-no-acme"}, {"s.hcl", "-no-reload", "-no-acme", "-restart-deferred"}, {"s.hcl", "-no-reload", "-no-acme", "-confirm", "1m"}} {
		if _, ok := key("/", args...); ok {
			t.Errorf("real host %q got a key", args)
		}
	}
	base, ok := key(dir, "s.hcl")
	if !ok || !strings.Contains(base, "v1 c "+exe+" dev=") {
		t.Fatalf("key %q %v", base, ok)
	}
	if again, _ := key(dir, "s.hcl"); again != base {
		t.Errorf("key not stable: %q %q", again, base)
	}
	for _, args := range [][]string{{"t.hcl"}, {"s.hcl", "-q"}, {"s.hcl", "-var", "a=1"}, {"s.hcl", "-var-file", "v.hcl"}, {"s.hcl", "-host", "h"}, {"s.hcl", "-overwrite-drift"}, {"s.hcl", "-no-acme"}} {
		if k, ok := key(dir, args...); !ok || k == base {
			t.Errorf("%q: key %v, same as without: %v", args, ok, k == base)
		}
	}
	if k, _ := key(filepath.Join(dir, "other"), "s.hcl"); k == base {
		t.Error("another root, the same key")
	}
	if strings.Contains(base, "a=1") {
		t.Error("the key holds a -var value")
	}
}
