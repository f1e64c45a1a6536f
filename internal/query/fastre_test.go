package query

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestFastMatcherAgreesWithRegexp compares the plain-sequence matcher with
// regexp on random patterns and lines: whenever the matcher answers, its
// answer is regexp's.
func TestFastMatcherAgreesWithRegexp(t *testing.T) {
	lines := strings.Split(genText(t, 300, 29), "\n")
	lines = append(lines, "", " ", "eni-", "a  b", "12 34 x", "déjà vu 12", "\xff\xfe 1 2", "tab\there", "x\ny z", "eni-abc eni-0f1 REJECT OK")
	rng := rand.New(rand.NewPCG(1, 2))
	mutate := func(s string) string {
		b := []byte(s)
		for range rng.IntN(3) {
			if len(b) == 0 {
				break
			}
			b[rng.IntN(len(b))] = "a -9\xc3\x80Z:\t"[rng.IntN(9)]
		}
		return string(b)
	}
	for i := range 200 {
		lines = append(lines, mutate(lines[i%300]))
	}
	lits := []string{" ", "eni-", "REJECT", "OK", "x", "-", ":", "10.0."}
	classes := []string{`\S`, `\d`, `[0-9a-f]`, `\w`, `[^ ]`, `.`, `[a-z]`, `[A-Z]`, `\s`}
	quants := []string{"", "+", "*", "?", "{2}", "{1,3}", "+?", "*?"}
	compiled, answered := 0, 0
	for n := range 3000 {
		var b strings.Builder
		if rng.IntN(2) == 0 {
			b.WriteString("^")
		}
		if rng.IntN(4) == 0 {
			b.WriteString("(?s)")
		}
		groups := 0
		for range 1 + rng.IntN(6) {
			var piece string
			if rng.IntN(3) == 0 {
				piece = regexp.QuoteMeta(lits[rng.IntN(len(lits))])
			} else {
				piece = classes[rng.IntN(len(classes))] + quants[rng.IntN(len(quants))]
			}
			if rng.IntN(3) == 0 {
				groups++
				piece = "(?P<g" + string(rune('a'+groups)) + ">" + piece + ")"
			}
			b.WriteString(piece)
		}
		if rng.IntN(3) == 0 {
			b.WriteString("$")
		}
		re, err := regexp.Compile(b.String())
		if err != nil {
			continue
		}
		fm := compileFast(re)
		if fm == nil {
			continue
		}
		compiled++
		loc := make([]int, 2*(re.NumSubexp()+1))
		for _, line := range lines {
			r := fm.match(line, loc)
			if r == unsure {
				continue
			}
			answered++
			want := re.FindStringSubmatchIndex(line)
			if (r == matched) != (want != nil) || want != nil && !slices.Equal(loc, want) {
				t.Fatalf("pattern %d %q on %q: fast %v %v, regexp %v", n, re, line, r, loc, want)
			}
		}
	}
	t.Logf("%d patterns compiled, %d answers checked", compiled, answered)
	if compiled < 500 || answered < 100000 {
		t.Errorf("only %d patterns compiled, %d answers checked", compiled, answered)
	}
}

// TestFastMatcherTakesCommonPatterns: the patterns users write for flow
// logs go the fast way, and what needs backtracking does not.
func TestFastMatcherTakesCommonPatterns(t *testing.T) {
	fast := []string{
		`^\S+ \S+ (?P<eni>\S+) \S+ \S+ \S+ (?P<port>\d+) `,
		`(?P<eni>eni-[0-9a-f]+)`,
		`(?P<a>[A-Z]+) OK$`,
	}
	for _, p := range fast {
		if compileFast(regexp.MustCompile(p)) == nil {
			t.Errorf("%s: not compiled", p)
		}
	}
	glob, err := globRegexp("* * * * * * * * * * * * * *")
	if err != nil || compileFast(glob) == nil {
		t.Errorf("the glob of 14 fields is not compiled: %v", err)
	}
	slow := []string{`(?P<a>\S+)\S`, `ab|cd`, `(?i)reject`, `(\d+)\d`, `\bx`, `(?P<a>.*) OK`}
	for _, p := range slow {
		if compileFast(regexp.MustCompile(p)) != nil {
			t.Errorf("%s: compiled, but it needs backtracking or is no plain sequence", p)
		}
	}
}

// BenchmarkParseRegex is the parse shape of bench/compare.sh on 500,000
// records.
func BenchmarkParseRegex(b *testing.B) {
	benchQuery(b, `parse @message /^\S+ \S+ (?<eni>\S+) \S+ \S+ \S+ (?<port>\d+) / | stats count() as n by port`)
}

// BenchmarkParseGlob parses every field with a glob.
func BenchmarkParseGlob(b *testing.B) {
	benchQuery(b, `parse @message "* * * * * * * * * * * * * *" as v, acct, eni, src, dst, sport, dport, proto, pk, nbytes, st, en, act, status | stats count() by dport`)
}

// FuzzFastMatcher: for any pattern and line, the matcher answers as regexp
// does, or leaves the line to it.
func FuzzFastMatcher(f *testing.F) {
	f.Add(`^\S+ \S+ (?P<eni>\S+) `, "2 123 eni-1 10.0.0.1")
	f.Add(`(?s)(.*?) (.*?) (.*)`, "a b c d")
	f.Add(`(?P<x>[0-9a-f]{1,3})-$`, "ab12-")
	f.Fuzz(func(t *testing.T, pattern, line string) {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return
		}
		fm := compileFast(re)
		if fm == nil {
			return
		}
		loc := make([]int, 2*(re.NumSubexp()+1))
		r := fm.match(line, loc)
		if r == unsure {
			return
		}
		want := re.FindStringSubmatchIndex(line)
		if (r == matched) != (want != nil) || want != nil && !slices.Equal(loc, want) {
			t.Fatalf("pattern %q on %q: fast %v %v, regexp %v", pattern, line, r, loc, want)
		}
	})
}

// BenchmarkFastMatcher is the matcher alone on flow log lines.
func BenchmarkFastMatcher(b *testing.B) {
	lines := strings.Split(genText(b, 10000, 31), "\n")
	re := regexp.MustCompile(`^\S+ \S+ (?P<eni>\S+) \S+ \S+ \S+ (?P<port>\d+) `)
	fm := compileFast(re)
	loc := make([]int, 6)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fm.match(lines[i%len(lines)], loc)
	}
}

// TestSkipPrintable checks the eight-bytes-at-a-time skip against a byte
// loop, on strings of every byte value at every offset and length.
func TestSkipPrintable(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	alphabet := []byte{' ', '!', '~', 0x7f, 0x80, 0xff, 0x00, 0x01, '\t', 0x20, 0x21, 'a', '0', 0x1f}
	for n := 0; n < 2000; n++ {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[i] = byte(0x21 + rng.IntN(0x5f))
			}
		}
		s := string(b)
		for q := 0; q <= len(s); q++ {
			for end := q; end <= len(s); end++ {
				want := q
				for want < end && s[want] >= 0x21 && s[want] < 0x80 {
					want++
				}
				if got := skipPrintable(s, q, end); got != want {
					t.Fatalf("skipPrintable(%q, %d, %d) = %d, want %d", s, q, end, got, want)
				}
			}
		}
	}
}
