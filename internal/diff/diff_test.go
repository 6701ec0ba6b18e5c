package diff

import (
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

func lcsLen(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

func randLines(r *rand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = string(rune('a'+r.Intn(4))) + "\n"
	}
	return out
}

// TestLinesMinimalAndConsistent checks on random inputs that the script
// rebuilds both sides, carries correct line indexes and is minimal (its
// edit count equals len(a)+len(b)-2*LCS).
func TestLinesMinimalAndConsistent(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for iter := 0; iter < 2000; iter++ {
		a, b := randLines(r, r.Intn(15)), randLines(r, r.Intn(15))
		script := Lines(a, b)
		var ra, rb []string
		edits := 0
		for _, l := range script {
			if l.Kind != Insert {
				if l.A != len(ra) {
					t.Fatalf("A index %d, want %d", l.A, len(ra))
				}
				ra = append(ra, l.Text)
			}
			if l.Kind != Delete {
				if l.B != len(rb) {
					t.Fatalf("B index %d, want %d", l.B, len(rb))
				}
				rb = append(rb, l.Text)
			}
			if l.Kind != Equal {
				edits++
			}
		}
		if strings.Join(ra, "") != strings.Join(a, "") || strings.Join(rb, "") != strings.Join(b, "") {
			t.Fatalf("script does not rebuild inputs: %q %q", a, b)
		}
		if want := len(a) + len(b) - 2*lcsLen(a, b); edits != want {
			t.Fatalf("edits = %d, want minimal %d for %q -> %q", edits, want, a, b)
		}
	}
}

func TestUnifiedGolden(t *testing.T) {
	old := "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n"
	new := "one\ntwo\nTHREE\nfour\nfive\nsix\nseven\neight\nnine\nten\neleven"
	got := Unified("a/x", "b/x", old, new, 1)
	want := `--- a/x
+++ b/x
@@ -2,3 +2,3 @@
 two
-three
+THREE
 four
@@ -10 +10,2 @@
 ten
+eleven
\ No newline at end of file
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if Unified("a", "b", "same\n", "same\n", 3) != "" {
		t.Fatal("equal texts must give an empty diff")
	}
	if got := Unified("a", "b", "", "x\n", 3); got != "--- a\n+++ b\n@@ -0,0 +1 @@\n+x\n" {
		t.Fatalf("create diff: %q", got)
	}
}

// TestUnifiedAppliesWithPatch feeds random diffs to GNU patch, which checks
// the hunk headers and context strictly.
func TestUnifiedAppliesWithPatch(t *testing.T) {
	patch := testenv.LookPath(t, "patch", "apt-get install patch")
	r := rand.New(rand.NewSource(2))
	dir := t.TempDir()
	for iter := 0; iter < 60; iter++ {
		a, b := randLines(r, 1+r.Intn(30)), randLines(r, 1+r.Intn(30))
		old, new := strings.Join(a, ""), strings.Join(b, "")
		d := Unified("a/f", "b/f", old, new, r.Intn(4))
		f := filepath.Join(dir, "f")
		if err := os.WriteFile(f, []byte(old), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(patch, "--quiet", "-F0", f)
		cmd.Stdin = strings.NewReader(d)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("patch failed: %v\n%s\ndiff:\n%s", err, out, d)
		}
		got, _ := os.ReadFile(f)
		if string(got) != new {
			t.Fatalf("patched text differs\ndiff:\n%s", d)
		}
	}
}

func TestLargeDifferentFallsBack(t *testing.T) {
	var a, b []string
	for i := 0; i < 3000; i++ {
		a = append(a, "a"+string(rune(i))+"\n")
		b = append(b, "b"+string(rune(i))+"\n")
	}
	script := Lines(a, b)
	if len(script) != 6000 {
		t.Fatalf("script length %d", len(script))
	}
}
