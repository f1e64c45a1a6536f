package query

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics, that every error is a
// *SyntaxError pointing inside the text, and that whatever parses prints
// as text that parses back to the same tree and prints the same again.
//
//	go test -run='^$' -fuzz=FuzzParse -fuzztime=60s ./internal/query/
func FuzzParse(f *testing.F) {
	for _, q := range roundTripQueries {
		f.Add(q)
	}
	for _, q := range []string{
		"", "|", "fields", "filter a like /", "filter a = 'x", "stats count(*) by bin(5x)",
		"dedup a | sort a", "parse /(?<a>x)/", "fields `a", "fields -(-(-1))", "filter not not a in []",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, src string) {
		q, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) returned %T, want *SyntaxError", src, err)
			}
			checkErrorPos(t, src, se)
			return
		}
		for _, c := range q.Commands {
			names(c) // must not panic
		}
		printed := q.String()
		q2, err := Parse(printed)
		if err != nil {
			t.Fatalf("Parse(%q) printed %q, which does not parse: %v", src, printed, err)
		}
		if again := q2.String(); again != printed {
			t.Fatalf("printing is not stable for %q:\n first: %q\nsecond: %q", src, printed, again)
		}
		if !reflect.DeepEqual(stripPos(q), stripPos(q2)) {
			t.Fatalf("round trip of %q (printed %q) changed the tree:\n got: %s\nwant: %s", src, printed, dump(q2), dump(q))
		}
	})
}

// names collects the column names of a command's projections.
func names(c Command) []string {
	var items []Projection
	switch c := c.(type) {
	case *FieldsCmd:
		items = c.Items
	case *DisplayCmd:
		items = c.Items
	case *StatsCmd:
		items = append(append(items, c.Aggs...), c.By...)
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Name()
	}
	return out
}

// checkErrorPos checks that an error position lies within the text (or
// just after its end).
func checkErrorPos(t *testing.T, src string, se *SyntaxError) {
	t.Helper()
	lines := strings.Split(src, "\n")
	if se.Pos.Line < 1 || se.Pos.Line > len(lines) {
		t.Fatalf("Parse(%q): error %q on line %d of %d", src, se.Msg, se.Pos.Line, len(lines))
	}
	width := utf8.RuneCountInString(lines[se.Pos.Line-1])
	if se.Pos.Col < 1 || se.Pos.Col > width+1 {
		t.Fatalf("Parse(%q): error %q at column %d of a line %d wide", src, se.Msg, se.Pos.Col, width)
	}
	if se.Msg == "" {
		t.Fatalf("Parse(%q): bad error message %q", src, se.Msg)
	}
}
