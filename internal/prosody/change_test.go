package prosody

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/templates"
)

const baseSpec = `domain = "meet.example.test"
auth "jwt" {
  app_id     = "app"
  app_secret = "%s"
  guests     = %t
}
meeting {
  max_participants = %d
}
`

// renderedModel renders the real template for a spec and models its
// Prosody file.
func renderedModel(t *testing.T, secret string, guests bool, maxP int) *Model {
	t.Helper()
	m, err := ModelOf(renderedSrc(t, secret, guests, maxP))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// renderedSrc renders the real template's Prosody file for a spec.
func renderedSrc(t testing.TB, secret string, guests bool, maxP int) []byte {
	t.Helper()
	dir, err := os.MkdirTemp("", "prosody-change-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "meet.hcl")
	if err := os.WriteFile(p, []byte(fmt.Sprintf(baseSpec, secret, guests, maxP)), 0o644); err != nil {
		t.Fatal(err)
	}
	res := spec.Load(p, spec.Options{})
	if res.HasErrors() {
		var b strings.Builder
		res.WriteDiagnostics(&b)
		t.Fatal(b.String())
	}
	d := res.Deployment
	d.Secrets = spec.Secrets{Passwords: map[string]spec.Secret{"focus": spec.NewSecret("focus-pw-1234567890"), "jvb": spec.NewSecret("jvb-pw-1234567890")}, TURNSecret: spec.NewSecret("turn-secret-1234567890")}
	set, err := render.Render(render.Input{Deployment: d, Templates: templates.Overlay("")})
	if err != nil {
		t.Fatal(err)
	}
	f, ok := set.Lookup("/etc/prosody/conf.avail/meet.example.test.cfg.lua")
	if !ok {
		t.Fatal("no prosody file rendered")
	}
	return f.Content
}

const secretA = "3e8b1f6a9c2d7045e1b8c3f9a6d2e7b4c0f5a8d1"
const secretB = "d2a7c5f0e3b9164a8d2c7e1f4b9a6c3d8e0f5b2a"

func summary(p Plan) string { return strings.Join(p.Summary(), "\n") }

func TestClassifyRenderedChanges(t *testing.T) {
	base := renderedModel(t, secretA, false, 10)
	if !Classify(base, base).Empty() {
		t.Fatalf("same config: %s", summary(Classify(base, base)))
	}
	if !slices.Contains(base.Hosts["meet.example.test"].Modules, "auth_token") ||
		!slices.Contains(base.Hosts["conference.meet.example.test"].Modules, "muc") {
		t.Fatalf("modules: %v / %v", base.Hosts["meet.example.test"].Modules, base.Hosts["conference.meet.example.test"].Modules)
	}

	t.Run("guests on: activate guest.DOMAIN, no restart", func(t *testing.T) {
		p := Classify(base, renderedModel(t, secretA, true, 10))
		if r, why := p.Restart(); r {
			t.Fatalf("restart: %v", why)
		}
		want := []string{"config-reload", "activate on guest.meet.example.test"}
		for _, w := range want {
			if !strings.Contains(summary(p), w) {
				t.Errorf("missing %q in\n%s", w, summary(p))
			}
		}
		for _, a := range p.Actions {
			if a.Disruptive() {
				t.Errorf("disruptive step %s", a)
			}
		}
	})
	t.Run("guests off: deactivate guest.DOMAIN", func(t *testing.T) {
		p := Classify(renderedModel(t, secretA, true, 10), base)
		if !strings.Contains(summary(p), "deactivate on guest.meet.example.test") {
			t.Errorf("plan:\n%s", summary(p))
		}
	})
	t.Run("max_participants: reload muc_max_occupants", func(t *testing.T) {
		p := Classify(base, renderedModel(t, secretA, false, 2))
		s := summary(p)
		if !strings.Contains(s, "module-reload muc_max_occupants on conference.meet.example.test") || len(p.Actions) != 2 {
			t.Errorf("plan:\n%s", s)
		}
	})
	t.Run("max_participants off: unload the module", func(t *testing.T) {
		p := Classify(base, renderedModel(t, secretA, false, 0))
		s := summary(p)
		if !strings.Contains(s, "module-unload muc_max_occupants on conference.meet.example.test") {
			t.Errorf("plan:\n%s", s)
		}
		p = Classify(renderedModel(t, secretA, false, 0), base)
		if s := summary(p); !strings.Contains(s, "module-load muc_max_occupants on conference.meet.example.test") {
			t.Errorf("plan:\n%s", s)
		}
	})
	t.Run("secret rotation: both token modules reload", func(t *testing.T) {
		p := Classify(base, renderedModel(t, secretB, false, 10))
		s := summary(p)
		for _, w := range []string{"module-reload auth_token on meet.example.test", "module-reload token_verification on conference.meet.example.test"} {
			if !strings.Contains(s, w) {
				t.Errorf("missing %q in\n%s", w, s)
			}
		}
		if strings.Contains(s, secretB) || strings.Contains(s, secretA) {
			t.Error("the plan shows the secret")
		}
	})
	t.Run("fresh host: plugin_paths needs a restart", func(t *testing.T) {
		p := Classify(nil, base)
		r, why := p.Restart()
		if !r || !strings.Contains(strings.Join(why, " "), "plugin_paths is read when Prosody starts") {
			t.Errorf("plan:\n%s", summary(p))
		}
	})
}

func TestClassifyStructuralNotText(t *testing.T) {
	a := []byte("-- one\nVirtualHost \"x.test\"\n  modules_enabled = { \"ping\"; \"bosh\" }\n  c2s_require_encryption = false\n")
	b := []byte("-- two, reformatted\nVirtualHost \"x.test\"\n    c2s_require_encryption = false -- same\n    modules_enabled = {\n        \"bosh\",\n        \"ping\",\n    }\n")
	ma, _ := ModelOf(a)
	mb, _ := ModelOf(b)
	if p := Classify(ma, mb); !p.Empty() {
		t.Errorf("layout, comments and module order are not changes:\n%s", summary(p))
	}
	c := []byte("VirtualHost \"x.test\"\n  modules_enabled = { \"ping\"; \"bosh\" }\n  c2s_require_encryption = false\n  some_unknown_option = 1\n")
	mc, _ := ModelOf(c)
	if r, why := Classify(ma, mc).Restart(); !r || !strings.Contains(why[0], "some_unknown_option") {
		t.Errorf("an unknown setting must be a declared restart: %v", why)
	}
	d := []byte("Component \"x.test\" \"muc\"\n")
	md, _ := ModelOf(d)
	s := summary(Classify(ma, md))
	if !strings.Contains(s, "deactivate on x.test") || !strings.Contains(s, "activate on x.test") {
		t.Errorf("type change:\n%s", s)
	}
}

// fakeShell is a scripted admin shell over an in-memory Prosody.
type fakeShell struct {
	hosts   map[string][]string // active host -> modules
	config  *Model
	log     []string
	failing map[string]bool // module names that fail to load
}

func (f *fakeShell) Run(_ context.Context, cmd string) (string, error) {
	f.log = append(f.log, cmd)
	var a, b string
	switch {
	case cmd == "config:reload()":
		return "OK: Config reloaded", nil
	case cmd == stateDump:
		var out []string
		for h, mods := range f.hosts {
			out = append(out, "jitsi-agent-host "+h+" "+strings.Join(mods, ","))
		}
		return strings.Join(out, "\n") + "\nResult: nil", nil
	case cmd == "host:list()":
		var out []string
		for h := range f.hosts {
			if c := f.config.Hosts[h]; c != nil && c.Component != "" {
				h += " (" + c.Component + " component)"
			}
			out = append(out, h)
		}
		slices.Sort(out)
		return strings.Join(out, "\n") + fmt.Sprintf("\nOK: %d hosts", len(out)), nil
	case sscan(cmd, "module:list(%q)", &a):
		var out []string
		for _, m := range f.hosts[a] {
			out = append(out, "    "+m)
		}
		return a + ":\n" + strings.Join(out, "\n") + "\nResult: nil", nil
	case sscan(cmd, "host:activate(%q)", &a):
		if _, ok := f.hosts[a]; ok {
			return "Error: The host " + a + " is already activated", errors.New("exit status 1")
		}
		var mods []string
		for _, m := range f.config.Hosts[a].Modules {
			if !f.failing[m] {
				mods = append(mods, m)
			}
		}
		f.hosts[a] = mods
		return "Result: true", nil
	case sscan(cmd, "host:deactivate(%q)", &a):
		delete(f.hosts, a)
		return "Result: true", nil
	case sscan2(cmd, "module:load(%q, %q)", &a, &b):
		if f.failing[a] {
			return "Error: Last error: no such module", errors.New("exit status 1")
		}
		f.hosts[b] = append(f.hosts[b], a)
		return "OK: Module loaded onto 1 host", nil
	case sscan2(cmd, "module:unload(%q, %q)", &a, &b):
		f.hosts[b] = slices.DeleteFunc(f.hosts[b], func(m string) bool { return m == a })
		return "OK: Module unloaded from 1 host", nil
	case sscan2(cmd, "module:reload(%q, %q)", &a, &b):
		return "OK: Module reloaded on 1 host", nil
	}
	return "", fmt.Errorf("unexpected command %q", cmd)
}

func sscan(s, format string, a *string) bool {
	_, err := fmt.Sscanf(s, format, a)
	return err == nil
}

func sscan2(s, format string, a, b *string) bool {
	_, err := fmt.Sscanf(s, format, a, b)
	return err == nil
}

func TestSyncActivatesAndReloads(t *testing.T) {
	old := renderedModel(t, secretA, false, 10)
	new := renderedModel(t, secretB, true, 2)
	sh := &fakeShell{hosts: map[string][]string{"localhost": {"ping"}}, config: new}
	for _, n := range old.Names {
		sh.hosts[n] = append([]string{}, old.Hosts[n].Modules...)
	}
	p := Classify(old, new)
	done, err := Sync(context.Background(), Admin{Shell: sh}, p, old, new)
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, strings.Join(sh.log, "\n"))
	}
	log := strings.Join(sh.log, "\n")
	for _, want := range []string{
		`config:reload()`,
		`host:activate("guest.meet.example.test")`,
		`module:reload("auth_token", "meet.example.test")`,
		`module:reload("token_verification", "conference.meet.example.test")`,
		`module:reload("muc_max_occupants", "conference.meet.example.test")`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("shell never ran %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, "deactivate") || strings.Contains(log, `"localhost"`) && strings.Contains(log, "host:deactivate") {
		t.Errorf("deactivated something:\n%s", log)
	}
	if len(done) < 5 {
		t.Errorf("done: %v", done)
	}
}

func TestSyncFreshServerAndVerify(t *testing.T) {
	new := renderedModel(t, secretA, false, 10)
	// A fresh Prosody (only localhost) whose main host half-loaded: Sync
	// activates the missing hosts and loads what is missing.
	sh := &fakeShell{hosts: map[string][]string{"localhost": {"ping"}, "meet.example.test": {"ping"}}, config: new}
	if _, err := Sync(context.Background(), Admin{Shell: sh}, Plan{}, nil, new); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if err := Verify(context.Background(), Admin{Shell: sh}, new); err != nil {
		t.Fatalf("verify after sync: %v", err)
	}
	// A module that cannot load is reported, naming it.
	sh = &fakeShell{hosts: map[string][]string{"localhost": {"ping"}}, config: new, failing: map[string]bool{"token_verification": true}}
	_, err := Sync(context.Background(), Admin{Shell: sh}, Plan{}, nil, new)
	var ve *VerifyError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "conference.meet.example.test lacks token_verification") {
		t.Fatalf("want a VerifyError naming token_verification, got %v", err)
	}
	// A plan needing a restart is refused.
	if _, err := Sync(context.Background(), Admin{Shell: sh}, Classify(nil, new), nil, new); err == nil || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("restart plan: %v", err)
	}
}
