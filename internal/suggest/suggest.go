// Package suggest finds the "did you mean" candidate for a misspelt name
// (spec attributes, roles, commands, flags), by edit distance.
package suggest

// Closest returns the option nearest to s when it is close enough to be a
// likely misspelling (distance below max(3, 1+len(s)/2)), else "".
func Closest(s string, options []string) string {
	best, bestD := "", max(3, 1+len(s)/2)
	for _, o := range options {
		if d := Distance(s, o); d < bestD {
			best, bestD = o, d
		}
	}
	return best
}

// Distance is the Levenshtein distance between a and b, in bytes.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
