package query

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// bigRecords are records whose byte counts are at and past the int64
// range; the decoder reads them as uint64.
const bigRecords = `2 123456789010 eni-1 198.51.100.7 10.0.0.5 50000 22 6 1 18446744073709551615 1700000000 1700000060 ACCEPT OK
2 123456789010 eni-1 198.51.100.7 10.0.0.5 50001 23 6 1 9223372036854775807 1700000000 1700000060 ACCEPT OK
2 123456789010 eni-1 198.51.100.7 10.0.0.5 50002 23 6 1 9223372036854775807 1700000000 1700000060 ACCEPT OK
2 123456789010 eni-1 203.0.113.9 10.0.0.5 40000 443 6 10 4000 1700000000 1700000060 ACCEPT OK
`

// TestNumbersDoNotWrap checks that values and sums past the int64 range
// come out as the (float64) numbers they are, never negative.
func TestNumbersDoNotWrap(t *testing.T) {
	const maxU = float64(math.MaxUint64)
	const maxI = float64(math.MaxInt64)
	cases := []struct {
		name, query, want string
	}{
		{"max of a uint64 value", `stats max(bytes) as m`, "m\n" + FloatValue(maxU).String() + "\n"},
		{"min is unaffected", `stats min(bytes) as m`, "m\n4000\n"},
		{"sum past int64", `stats sum(bytes) as s`, "s\n" + FloatValue(maxU+2*maxI+4000).String() + "\n"},
		{"sum of int64 values that overflows", `filter bytes < 18446744073709551615 | stats sum(bytes) as s`, "s\n" + FloatValue(2*maxI+4000).String() + "\n"},
		{"sum by address (partitioned)", `stats sum(bytes) as s by srcaddr`,
			"srcaddr,s\n198.51.100.7," + FloatValue(maxU+2*maxI).String() + "\n203.0.113.9,4000\n"},
		{"sum by address, two aggregates", `filter bytes < 18446744073709551615 | stats count() as n, sum(bytes) as s by srcaddr`,
			"srcaddr,n,s\n198.51.100.7,2," + FloatValue(2*maxI).String() + "\n203.0.113.9,1,4000\n"},
		{"avg", `stats avg(bytes) as a`, "a\n" + FloatValue((maxU+2*maxI+4000)/4).String() + "\n"},
		{"pct", `stats pct(bytes, 100) as p`, "p\n" + FloatValue(maxU).String() + "\n"},
		{"field value", `filter dstport = 22 | fields bytes`, "bytes\n" + FloatValue(maxU).String() + "\n"},
		{"comparison", `filter bytes > 9223372036854775807 | stats count() as n`, "n\n1\n"},
		{"integer addition", `filter dstport = 443 | fields 9223372036854775807 + 1 as x`, "x\n" + FloatValue(maxI+1).String() + "\n"},
		{"integer subtraction", `filter dstport = 443 | fields -9223372036854775807 - 10 as x`, "x\n" + FloatValue(-maxI-10).String() + "\n"},
		{"integer product", `filter dstport = 443 | fields 4294967296 * 4294967296 as x`, "x\n" + FloatValue(4294967296.0*4294967296.0).String() + "\n"},
		{"sum of an overflowing expression", `stats sum(bytes * 2) as s by srcaddr`,
			"srcaddr,s\n198.51.100.7," + FloatValue(2*maxU+4*maxI).String() + "\n203.0.113.9,8000\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := tableText(runQuery(t, c.query, bigRecords))
			if got != c.want {
				t.Errorf("query %s\ngot:\n%s\nwant:\n%s", c.query, got, c.want)
			}
			if strings.Contains(got, "-9") && !strings.Contains(c.query, "-9") {
				t.Errorf("query %s: a negative number came out:\n%s", c.query, got)
			}
		})
	}
}

// TestOutputEscapesControlBytes checks that table and CSV output never
// carry a terminal escape or other control byte from a log field.
func TestOutputEscapesControlBytes(t *testing.T) {
	hostile := "ab\x1b]52;c;ZWNobyBoaQ==\x07\x1b[2J\r\n\tz\u202e\x00\u009b\xff"
	tab := &Table{Names: []string{"f", "n\x1b"}, Types: []Type{TString, TInt},
		Rows: [][]Value{{StringValue(hostile), IntValue(1)}}}
	for _, format := range []string{"table", "csv", "json"} {
		var b bytes.Buffer
		if err := Write(&b, format, tab); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for i := 0; i < len(out); i++ {
			c := out[i]
			if c < 0x20 && c != '\n' || c == 0x7f {
				t.Errorf("%s output has control byte %#x at %d: %q", format, c, i, out)
			}
		}
		if strings.Count(out, "\n") != map[string]int{"table": 3, "csv": 2, "json": 3}[format] {
			t.Errorf("%s output has a newline from the field: %q", format, out)
		}
		if strings.Contains(out, "\u202e") || strings.Contains(out, "\u009b") {
			t.Errorf("%s output has a bidi override or C1 control: %q", format, out)
		}
		if format != "json" && !strings.Contains(out, `ab\x1b]52;c;ZWNobyBoaQ==\a\x1b[2J\r\n\tz\u202e\x00\u009b\xff`) {
			t.Errorf("%s output does not show the escapes readably: %q", format, out)
		}
	}
	if got := EscapeText("10.0.0.1 ünïcode ok"); got != "10.0.0.1 ünïcode ok" {
		t.Errorf("EscapeText changed plain text: %q", got)
	}
}

// TestQueryLimits checks that oversized queries and plans are refused with
// an error naming the place, before anything runs.
func TestQueryLimits(t *testing.T) {
	plus := "fields 1" + strings.Repeat(" + 1", 2400) + " as x"
	ands := "filter " + strings.TrimSuffix(strings.Repeat("dstport = 1 and ", 600), " and ")
	cases := []struct {
		name, query, wantPos, wantMsg string
	}{
		{"long query", "filter " + strings.Repeat("x", 20000), "line 1, column 10001", "longer than 10000 characters"},
		{"many terms", plus, "line 1, column ", "nested too deeply"},
		{"many and terms", ands, "line 1, column ", "nested too deeply"},
		{"many expressions", "fields " + strings.TrimSuffix(strings.Repeat("1,", 1200), ","), "line 1, column 2008", "too large"},
		{"many balanced terms", "filter " + strings.TrimSuffix(strings.Repeat("(1+1+1+1+1+1+1+1+1+1)+", 110), "+"), "line 1, column ", "too large"},
		{"deep parentheses", "filter " + strings.Repeat("(", 4000) + "1" + strings.Repeat(")", 4000), "line 1, column ", "nested too deeply"},
		{"deep calls", "fields " + strings.Repeat("abs(", 1000) + "1" + strings.Repeat(")", 1000), "line 1, column ", "nested too deeply"},
		{"deep not", "filter " + strings.Repeat("not ", 2400) + "1", "line 1, column ", "nested too deeply"},
		{"deep unary minus", "fields " + strings.Repeat("- ", 4900) + "1", "line 1, column ", "nested too deeply"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(c.query, Options{})
			if err == nil {
				t.Fatalf("query of %d characters compiled", len(c.query))
			}
			var se *SyntaxError
			var qe *Error
			if !errors.As(err, &se) && !errors.As(err, &qe) {
				t.Errorf("error %T is neither a SyntaxError nor an Error: %v", err, err)
			}
			if !strings.HasPrefix(err.Error(), c.wantPos) || !strings.Contains(err.Error(), c.wantMsg) {
				t.Errorf("error %q, want %q … %q", err, c.wantPos, c.wantMsg)
			}
		})
	}
	// What real queries need still compiles: a long list of addresses and
	// a few dozen conditions.
	var addrs []string
	for i := range 400 {
		addrs = append(addrs, fmt.Sprintf(`"10.0.%d.%d"`, i/250, i%250))
	}
	ok := []string{
		"filter srcaddr in [" + strings.Join(addrs, ",") + "] | stats count() by srcaddr",
		"filter " + strings.TrimSuffix(strings.Repeat("dstport = 1 or ", 60), " or "),
		"fields " + strings.Repeat("(", 60) + "1" + strings.Repeat(")", 60) + " as x",
	}
	for _, q := range ok {
		if _, err := Compile(q, Options{}); err != nil {
			t.Errorf("query of %d characters: %v", len(q), err)
		}
	}
}

// TestSortLimitIsTopK checks that sort … | limit N gives the same rows as a
// full sort, and keeps no more than N rows per worker while it runs.
func TestSortLimitIsTopK(t *testing.T) {
	text := genText(t, 20000, 5)
	full := runQuery(t, `sort @message desc | limit 20000`, text)
	for _, c := range []struct {
		q string
		n int
	}{{`sort @message | limit 1`, 1}, {`sort @message desc | limit 7`, 7}, {`sort bytes asc, @message | limit 25`, 25}} {
		got := runQuery(t, c.q, text)
		if len(got.Rows) != c.n {
			t.Fatalf("%s: %d rows", c.q, len(got.Rows))
		}
		if c.q != `sort bytes asc, @message | limit 25` {
			for i := range got.Rows {
				if got.Rows[i][1].String() != full.Rows[i][1].String() {
					t.Errorf("%s: row %d is %q, want %q", c.q, i, got.Rows[i][1], full.Rows[i][1])
				}
			}
		}
	}
	// The sink never holds more than the limit.
	p, err := Compile(`sort @message | limit 3`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sink := newRowSink(p.pipes[0].rows)
	peak := 0
	sink.onAdd = func(n int) { peak = max(peak, n) }
	w := newWctx(p.pipes[0].nodes)
	sc := &flowlog.Scanner{Workers: 1, ChunkSize: 4096}
	err = sc.Scan(context.Background(), []flowlog.Input{memInput("a", text)}, func(_ int, b *flowlog.Batch) error {
		var f frame
		w.startFrame(&f, b, p.pipes[0].slots)
		p.pipes[0].rows.collect(w, &f, batchOrder(b), sink)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if peak > 3 {
		t.Errorf("the sink held %d rows for limit 3", peak)
	}
	if got := sink.table(); len(got.Rows) != 3 || got.Rows[0][1].String() != runQuery(t, `sort @message | limit 1`, text).Rows[0][1].String() {
		t.Errorf("top-k sink gave %d rows: %v", len(got.Rows), got.Rows)
	}
}

// TestQueryWithoutLimitStopsAtMaxRows: a query ending in sort returns at
// most MaxRows rows, as one without a sort does.
func TestQueryWithoutLimitStopsAtMaxRows(t *testing.T) {
	text := genText(t, 3000, 9)
	for _, q := range []string{`sort bytes desc`, `fields srcaddr`, `stats count() by srcport`, `dedup srcaddr`} {
		p, err := Compile(q, Options{MaxRows: 100})
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Run(context.Background(), &flowlog.Scanner{Workers: 2}, []flowlog.Input{memInput("a", text)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != 100 {
			t.Errorf("%s: %d rows, want 100", q, len(res.Rows))
		}
	}
}

// BenchmarkSortLimit1 is sort @message | limit 1 over 500,000 records.
func BenchmarkSortLimit1(b *testing.B) { benchQuery(b, `sort @message | limit 1`) }

// TestWriteCSVAsEncodingCSV: the CSV writer quotes (escaped) fields as
// encoding/csv does.
func TestWriteCSVAsEncodingCSV(t *testing.T) {
	vals := []string{"", "plain", "a,b", `say "hi"`, " lead", "\tx", `\.`, "x\u00a0", "\u00a0x", "10.0.0.1", "2026-11-22 10:00:00.000", `"`, ",", "ü,"}
	tab := &Table{Names: []string{"a", "b c", "d,e"}, Types: []Type{TString, TString, TString}}
	for i := range vals {
		tab.Rows = append(tab.Rows, []Value{StringValue(vals[i]), StringValue(vals[(i+3)%len(vals)]), IntValue(int64(i))})
	}
	var got, want bytes.Buffer
	if err := WriteCSV(&got, tab); err != nil {
		t.Fatal(err)
	}
	cw := csv.NewWriter(&want)
	_ = cw.Write(tab.Names)
	for _, r := range tab.Rows {
		_ = cw.Write([]string{EscapeText(r[0].String()), EscapeText(r[1].String()), r[2].String()})
	}
	cw.Flush()
	if got.String() != want.String() {
		t.Errorf("got\n%s\nwant\n%s", got.String(), want.String())
	}
}

// TestTopKAsFullSort checks that sort … | limit N (a heap that rules rows
// out on an integer first key before building them) gives the first N rows
// of the whole sorted result: descending and ascending, ties, absent
// values, on records and on stats groups.
func TestTopKAsFullSort(t *testing.T) {
	text := genText(t, 20000, 9)
	for _, q := range []string{
		`stats sum(bytes) as b by srcaddr, dstaddr | sort b desc | limit 10`,
		`stats count() as n by dstport | sort n asc | limit 15`,
		`stats count() as n by dstport | sort n desc, dstport asc | limit 15`,
		`sort packets desc, @message | limit 40`,
		`sort packets asc | limit 30`,
		`fields bytes, srcaddr | sort bytes desc | limit 5`,
		`sort protocol desc, @message | limit 40`,
		`sort protocol asc, bytes desc | limit 40`,
	} {
		got := runQuery(t, q, text)
		full := runQuery(t, strings.Replace(q, "| limit ", "| limit 1000000 | limit ", 1), text)
		if len(full.Rows) < len(got.Rows) {
			t.Fatalf("%s: the full sort has %d rows", q, len(full.Rows))
		}
		full.Rows = full.Rows[:len(got.Rows)]
		if g, w := tableText(got), tableText(full); g != w {
			t.Errorf("%s:\n%s\nwant the first rows of the full sort:\n%s", q, g, w)
		}
	}
}
