package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadSpecs runs the corpus in testdata/bad: every spec must fail with
// located, helpful diagnostics. Expectations are "# want: text" lines in the
// spec (or in NAME.want for JSON specs); "# wantnot: text" must not appear.
func TestBadSpecs(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".want") {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, _ := os.ReadFile(f)
			exp := string(src)
			if b, err := os.ReadFile(f + ".want"); err == nil {
				exp = string(b)
			}
			res := Load(f, Options{LookupEnv: env(map[string]string{"JITSI_AGENT_TEST_SECRET": testSecret, "JITSI_AGENT_TEST_SECRET_NL": testSecret + "\n"})})
			if !res.HasErrors() {
				t.Fatalf("spec loaded without errors")
			}
			if res.Deployment != nil {
				t.Fatalf("a Deployment came back despite errors")
			}
			var b bytes.Buffer
			res.WriteDiagnostics(&b)
			out := strings.Join(strings.Fields(b.String()), " ") // undo wrapping
			wants := 0
			for _, line := range strings.Split(exp, "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants++
					if !strings.Contains(out, w) {
						t.Errorf("diagnostics lack %q:\n%s", w, out)
					}
				}
				if w, ok := strings.CutPrefix(line, "# wantnot: "); ok && strings.Contains(out, w) {
					t.Errorf("diagnostics contain %q:\n%s", w, out)
				}
			}
			if wants == 0 {
				t.Fatal("corpus file has no # want: lines")
			}
			// Every error carries a location.
			for _, d := range res.Diags {
				if d.Subject == nil && d.Severity == 0 {
					t.Errorf("error without location: %s", d.Summary)
				}
			}
		})
	}
	if n < 20 {
		t.Fatalf("corpus has only %d specs", n)
	}
}
