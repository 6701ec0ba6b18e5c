package bootstrap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// TestSelectionsMatchUpstreamTemplates: every debconf answer bootstrap
// preseeds names a question the Jitsi packages really ask (their
// debian/*.templates, test material), with its type, and a select answer is
// one of the question's choices; otherwise debconf would ignore it and the
// package would ask or pick its own value. debconf-set-selections accepts
// the lines as bootstrap writes them.
func TestSelectionsMatchUpstreamTemplates(t *testing.T) {
	dir := testenv.Upstream(t, "jitsi-meet/debian/jitsi-meet-prosody.templates")
	files, _ := filepath.Glob(filepath.Join(dir, "*", "debian", "*templates"))
	type question struct{ typ, choices string }
	known := map[string]question{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, para := range strings.Split(string(b), "\n\n") {
			var name string
			var q question
			for _, l := range strings.Split(para, "\n") {
				k, v, _ := strings.Cut(l, ": ")
				switch k {
				case "Template":
					name = v
				case "Type":
					q.typ = v
				case "Choices", "__Choices", "_Choices":
					q.choices = v
				}
			}
			if name != "" {
				known[name] = q
			}
		}
	}
	d := load(t, testSpec, testSecret)
	var seed strings.Builder
	for _, s := range Selections(d) {
		seed.WriteString(s.Owner + " " + s.Question + " " + s.Type + " " + s.Value + "\n")
		q, ok := known[s.Question]
		switch {
		case !ok:
			t.Errorf("bootstrap answers %s, which no upstream package asks", s.Question)
		case q.typ != s.Type:
			t.Errorf("bootstrap gives %s type %s; upstream's template says %s", s.Question, s.Type, q.typ)
		case q.typ == "select" && !strings.Contains(", "+q.choices+", ", ", "+s.Value+", "):
			t.Errorf("bootstrap answers %s with %q, not one of %q", s.Question, s.Value, q.choices)
		}
		if s.Secret != (s.Type == "password") {
			t.Errorf("%s: type %s but Secret=%v", s.Question, s.Type, s.Secret)
		}
	}
	dss := testenv.LookPath(t, "debconf-set-selections", "apt-get install debconf")
	cmd := exec.Command(dss, "--checkonly")
	cmd.Stdin = strings.NewReader(seed.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debconf-set-selections --checkonly refused bootstrap's answers: %v\n%s", err, out)
	}
}
