package render

import (
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/templates"
)

// renderWithDeadline fails the test if Render does not return in time: a
// user template must never run unbounded.
func renderWithDeadline(t *testing.T, src string) (*Set, error) {
	t.Helper()
	d, srcs := userDeployment(src)
	type out struct {
		set *Set
		err error
	}
	done := make(chan out, 1)
	go func() {
		set, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: srcs})
		done <- out{set, err}
	}()
	select {
	case o := <-done:
		return o.set, o.err
	case <-time.After(60 * time.Second):
		t.Fatal("Render did not return within 60s")
		return nil, nil
	}
}

func TestUserTemplateStepLimit(t *testing.T) {
	for name, src := range map[string]string{
		"nested ints":   `{{range 1000000000}}{{range 1000000000}}{{end}}{{end}}`,
		"nested lists":  `{{range $a := .Issuers}}{{range 100000000}}{{range 100000000}}{{end}}{{end}}{{end}}`,
		"inside define": `{{define "x"}}{{range 200000}}{{end}}{{end}}{{template "x" .}}`,
		"else branch":   `{{range .PublicIPs}}{{else}}{{range 500000}}{{end}}{{end}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := renderWithDeadline(t, src)
			if err == nil || !strings.Contains(err.Error(), "range iterations") || !strings.Contains(err.Error(), `template "app"`) {
				t.Fatalf("want the step limit naming the template, got %v", err)
			}
		})
	}
}

func TestUserTemplateOutputLimit(t *testing.T) {
	_, err := renderWithDeadline(t, `{{range 100000}}`+strings.Repeat("x", 100)+`{{end}}`)
	if err == nil || !strings.Contains(err.Error(), "output is larger than") {
		t.Fatalf("want the output limit, got %v", err)
	}
}

func TestUserTemplateWithinLimits(t *testing.T) {
	set, err := renderWithDeadline(t, `{{range 100}}{{range 900}}{{end}}{{end}}{{range $i := 3}}{{$i}}{{end}}`)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := set.Lookup("/srv/app/app.conf"); string(f.Content) != "012" {
		t.Fatalf("content %q", f.Content)
	}
}
