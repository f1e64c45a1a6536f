// Package suggest finds the name a user probably meant, for "did you mean"
// hints in error messages.
package suggest

import "strings"

// Closest returns the name in names nearest to s by edit distance, without
// regard to case, if it is near enough (at most three edits, and fewer
// than half of s), or "".
func Closest(s string, names []string) string {
	best, bestD := "", min(4, (len(s)+1)/2+1)
	ls := strings.ToLower(s)
	for _, n := range names {
		if d := distance(ls, strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
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
