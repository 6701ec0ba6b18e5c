// Package diff computes line-based unified diffs (Myers' O(ND) algorithm).
//
// It is used by plan to show what apply would change. The caller redacts
// secrets before diffing; this package only compares lines.
package diff

import (
	"fmt"
	"strings"
)

// OpKind is the kind of one edit-script line.
type OpKind byte

const (
	Equal  OpKind = ' '
	Delete OpKind = '-'
	Insert OpKind = '+'
)

// Line is one line of an edit script. A and B are 0-based line indexes in
// the old and new text; on the side where the line is absent they hold the
// index of the next line on that side (the insertion/deletion point).
type Line struct {
	Kind OpKind
	Text string
	A, B int
}

// SplitLines splits text into lines keeping their "\n" terminator. A final
// line without "\n" is kept as is, so "a" and "a\n" compare different.
func SplitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// Lines returns the shortest edit script turning a into b.
func Lines(a, b []string) []Line {
	// Trim the common prefix and suffix: cheap and common for config files.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	out := make([]Line, 0, len(a)+len(b))
	for i := 0; i < pre; i++ {
		out = append(out, Line{Equal, a[i], i, i})
	}
	out = myers(out, a[pre:len(a)-suf], b[pre:len(b)-suf], pre, pre)
	for i := 0; i < suf; i++ {
		ia, ib := len(a)-suf+i, len(b)-suf+i
		out = append(out, Line{Equal, a[ia], ia, ib})
	}
	return out
}

// maxEdit bounds the edit distance searched; beyond it the changed block is
// shown as a whole replacement (memory stays O(maxEdit²)).
const maxEdit = 2000

// myers appends the edit script of a -> b (offsets oa, ob) to out.
func myers(out []Line, a, b []string, oa, ob int) []Line {
	n, m := len(a), len(b)
	if n == 0 {
		for j := range b {
			out = append(out, Line{Insert, b[j], oa, ob + j})
		}
		return out
	}
	if m == 0 {
		for i := range a {
			out = append(out, Line{Delete, a[i], oa + i, ob})
		}
		return out
	}
	maxD := n + m
	if maxD > maxEdit {
		maxD = maxEdit
	}
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	// trace[d] holds V (diagonals -d-1..d+1) as it was before step d.
	var trace [][]int
	found := false
	for d := 0; d <= maxD && !found; d++ {
		snap := make([]int, 2*d+3)
		copy(snap, v[off-d-1:off+d+2])
		trace = append(trace, snap)
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1] // down: insertion
			} else {
				x = v[off+k-1] + 1 // right: deletion
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				found = true
				break
			}
		}
	}
	if !found {
		// Too different to be worth a minimal script: replace the block.
		for i := range a {
			out = append(out, Line{Delete, a[i], oa + i, ob})
		}
		for j := range b {
			out = append(out, Line{Insert, b[j], oa + n, ob + j})
		}
		return out
	}
	// Backtrack through the saved V arrays.
	rev := make([]Line, 0, n+m)
	x, y := n, m
	for d := len(trace) - 1; d > 0; d-- {
		snap := trace[d]
		vd := func(k int) int { return snap[k+d+1] }
		k := x - y
		var pk int
		if k == -d || (k != d && vd(k-1) < vd(k+1)) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := vd(pk)
		py := px - pk
		for x > px && y > py {
			x--
			y--
			rev = append(rev, Line{Equal, a[x], oa + x, ob + y})
		}
		if x == px {
			y--
			rev = append(rev, Line{Insert, b[y], oa + x, ob + y})
		} else {
			x--
			rev = append(rev, Line{Delete, a[x], oa + x, ob + y})
		}
	}
	for x > 0 && y > 0 {
		x--
		y--
		rev = append(rev, Line{Equal, a[x], oa + x, ob + y})
	}
	for i := len(rev) - 1; i >= 0; i-- {
		out = append(out, rev[i])
	}
	return out
}

// Unified renders a unified diff of old -> new with the given number of
// context lines, headed by "--- oldName" / "+++ newName". It returns "" when
// the texts are equal.
func Unified(oldName, newName, old, new string, context int) string {
	if old == new {
		return ""
	}
	a, b := SplitLines(old), SplitLines(new)
	script := Lines(a, b)
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", oldName, newName)
	for _, h := range hunks(script, context) {
		writeHunk(&sb, script[h[0]:h[1]])
	}
	return sb.String()
}

// hunks groups changed lines with their context into [start, end) ranges of
// the script.
func hunks(script []Line, context int) [][2]int {
	var out [][2]int
	for i := 0; i < len(script); {
		if script[i].Kind == Equal {
			i++
			continue
		}
		start := max(0, i-context)
		if n := len(out); n > 0 && start <= out[n-1][1] {
			start = out[n-1][0]
			out = out[:n-1]
		}
		end := i
		for end < len(script) {
			if script[end].Kind != Equal {
				end++
				continue
			}
			// Count the equal run; stop the hunk when it exceeds 2*context.
			run := end
			for run < len(script) && script[run].Kind == Equal {
				run++
			}
			if run == len(script) || run-end > 2*context {
				end = min(end+context, len(script))
				break
			}
			end = run
		}
		out = append(out, [2]int{start, end})
		i = end
	}
	return out
}

func writeHunk(sb *strings.Builder, h []Line) {
	aLen, bLen := 0, 0
	for _, l := range h {
		if l.Kind != Insert {
			aLen++
		}
		if l.Kind != Delete {
			bLen++
		}
	}
	// h[0].A/B are 0-based indexes (or insertion points). A non-empty range
	// prints the 1-based first line; an empty range prints the line before
	// the insertion point, which equals the 0-based index.
	aStart, bStart := h[0].A, h[0].B
	if aLen > 0 {
		aStart++
	}
	if bLen > 0 {
		bStart++
	}
	fmt.Fprintf(sb, "@@ -%s +%s @@\n", rng(aStart, aLen), rng(bStart, bLen))
	for _, l := range h {
		sb.WriteByte(byte(l.Kind))
		sb.WriteString(l.Text)
		if !strings.HasSuffix(l.Text, "\n") {
			sb.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

func rng(start, n int) string {
	if n == 1 {
		return fmt.Sprintf("%d", start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}
