package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs the README's first command (smaller) and checks its story:
// the classic query's table, and the detectors finding every attack the
// generator labelled, with the right type and actor.
func TestDemo(t *testing.T) {
	out, stderr, code := execute(t, "", "demo", "--no-server", "--records", "200000", "--seed", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "srcaddr") || !strings.Contains(out, "count()") || !strings.Contains(out, "rejected twice or more") {
		t.Fatalf("no query result:\n%s", out)
	}
	_, labels, ok := strings.Cut(out, "The generator's labels")
	if !ok {
		t.Fatalf("no labels in the output:\n%s", out)
	}
	findings := out[:strings.Index(out, "The generator's labels")]
	line := regexp.MustCompile(`(?m)^  (\S+)\s+(\S+) → `)
	n := 0
	for _, m := range line.FindAllStringSubmatch(labels, -1) {
		n++
		typ, actor := m[1], strings.TrimSuffix(m[2], "/24")
		if !regexp.MustCompile(`(?m)^\S+ [0-9.]+\s+` + regexp.QuoteMeta(typ) + `\s+` + regexp.QuoteMeta(actor) + `\s`).MatchString(findings) {
			t.Errorf("labelled %s by %s: no such finding", typ, actor)
		}
	}
	if n < 5 {
		t.Errorf("only %d labelled attacks in the demo:\n%s", n, labels)
	}
}
