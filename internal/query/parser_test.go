package query

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// stripPos zeroes every position and every Projection.Text in q, so that two
// trees can be compared for meaning with reflect.DeepEqual.
func stripPos(q *Query) *Query {
	for _, c := range q.Commands {
		switch c := c.(type) {
		case *FieldsCmd:
			c.P = Pos{}
			stripItems(c.Items)
		case *DisplayCmd:
			c.P = Pos{}
			stripItems(c.Items)
		case *FilterCmd:
			c.P = Pos{}
			stripExpr(c.Cond)
		case *StatsCmd:
			c.P = Pos{}
			stripItems(c.Aggs)
			stripItems(c.By)
		case *SortCmd:
			c.P = Pos{}
			for _, k := range c.Keys {
				stripExpr(k.Expr)
			}
		case *LimitCmd:
			c.P = Pos{}
		case *DedupCmd:
			c.P = Pos{}
			for _, f := range c.Fields {
				stripExpr(f)
			}
		case *ParseCmd:
			c.P = Pos{}
			stripExpr(c.Source)
		}
	}
	return q
}

func stripItems(items []Projection) {
	for i := range items {
		items[i].Text = ""
		stripExpr(items[i].Expr)
	}
}

func stripExpr(e Expr) {
	Walk(e, func(x Expr) bool {
		switch x := x.(type) {
		case *FieldRef:
			x.P = Pos{}
		case *NumberLit:
			x.P = Pos{}
		case *StringLit:
			x.P = Pos{}
		case *RegexLit:
			x.P = Pos{}
		case *DurationLit:
			x.P = Pos{}
		case *BoolLit:
			x.P = Pos{}
		case *CallExpr:
			x.P = Pos{}
		case *UnaryExpr:
			x.P = Pos{}
		case *BinaryExpr:
			x.P = Pos{}
		case *InExpr:
			x.P = Pos{}
		}
		return true
	})
}

// Builders for expected trees (positions left zero).
func fld(name string) *FieldRef  { return &FieldRef{Name: name} }
func qfld(name string) *FieldRef { return &FieldRef{Name: name, Quoted: true} }
func str(s string) *StringLit    { return &StringLit{Value: s} }
func re(p string) *RegexLit      { return &RegexLit{Pattern: p} }
func boolean(v bool) *BoolLit    { return &BoolLit{Value: v} }
func intLit(text string, v int64) *NumberLit {
	return &NumberLit{Text: text, IsInt: true, Int: v, Float: float64(v)}
}
func floatLit(text string, v float64) *NumberLit { return &NumberLit{Text: text, Float: v} }
func dur(text string, n int64, unit string) *DurationLit {
	return &DurationLit{Text: text, N: n, Unit: unit}
}
func call(name string, args ...Expr) *CallExpr { return &CallExpr{Name: name, Args: args} }
func countStar() *CallExpr                     { return &CallExpr{Name: "count", Star: true} }
func bin(op string, l, r Expr) *BinaryExpr     { return &BinaryExpr{Op: op, L: l, R: r} }
func neg(x Expr) *UnaryExpr                    { return &UnaryExpr{Op: "-", X: x} }
func not(x Expr) *UnaryExpr                    { return &UnaryExpr{Op: "not", X: x} }
func in(x Expr, not bool, list ...Expr) *InExpr {
	return &InExpr{X: x, List: list, Not: not}
}
func item(e Expr, alias string) Projection { return Projection{Expr: e, Alias: alias} }
func items(es ...Expr) []Projection {
	out := make([]Projection, len(es))
	for i, e := range es {
		out[i] = Projection{Expr: e}
	}
	return out
}
func filter(e Expr) *FilterCmd { return &FilterCmd{Cond: e} }

func mustParse(t *testing.T, src string) *Query {
	t.Helper()
	q, err := Parse(src)
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	return q
}

func TestParseTrees(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []Command
	}{
		{
			name: "seed query: count as a field after stats",
			src:  `filter action="REJECT" | stats count() by srcaddr | filter count >= 2 | sort count desc`,
			want: []Command{
				filter(bin("=", fld("action"), str("REJECT"))),
				&StatsCmd{Aggs: items(call("count")), By: items(fld("srcaddr"))},
				filter(bin(">=", fld("count"), intLit("2", 2))),
				&SortCmd{Keys: []SortKey{{Expr: fld("count"), Desc: true}}},
			},
		},
		{
			name: "AWS flow log sample: top talkers",
			src:  "stats sum(packets) as packetsTransferred by srcAddr, dstAddr\n| sort packetsTransferred desc\n| limit 15",
			want: []Command{
				&StatsCmd{Aggs: []Projection{item(call("sum", fld("packets")), "packetsTransferred")},
					By: items(fld("srcAddr"), fld("dstAddr"))},
				&SortCmd{Keys: []SortKey{{Expr: fld("packetsTransferred"), Desc: true}}},
				&LimitCmd{N: 15},
			},
		},
		{
			name: "AWS flow log sample: SKIPDATA per hour",
			src:  `filter logStatus="SKIPDATA" | stats count(*) by bin(1h) as t | sort t`,
			want: []Command{
				filter(bin("=", fld("logStatus"), str("SKIPDATA"))),
				&StatsCmd{Aggs: items(countStar()), By: []Projection{item(call("bin", dur("1h", 1, "h")), "t")}},
				&SortCmd{Keys: []SortKey{{Expr: fld("t"), Desc: true}}}, // default direction: see parser.sort
			},
		},
		{
			name: "keywords in any case, several aggregates and keys",
			src:  `FILTER srcPort IN [22, 3389] | Stats Count(*) AS n, SUM(bytes), avg (bytes) BY srcAddr, bin(5m) as t | SORT n ASC, t Desc | LIMIT 20`,
			want: []Command{
				filter(in(fld("srcPort"), false, intLit("22", 22), intLit("3389", 3389))),
				&StatsCmd{
					Aggs: []Projection{item(countStar(), "n"), item(call("sum", fld("bytes")), ""), item(call("avg", fld("bytes")), "")},
					By:   []Projection{item(fld("srcAddr"), ""), item(call("bin", dur("5m", 5, "m")), "t")},
				},
				&SortCmd{Keys: []SortKey{{Expr: fld("n")}, {Expr: fld("t"), Desc: true}}},
				&LimitCmd{N: 20},
			},
		},
		{
			name: "fields and display with aliases, functions and backticks",
			src:  "fields @timestamp, `log-status` as st, concat(srcaddr, ':', srcport) as src\n| display src, st",
			want: []Command{
				&FieldsCmd{Items: []Projection{
					item(fld("@timestamp"), ""),
					item(qfld("log-status"), "st"),
					item(call("concat", fld("srcaddr"), str(":"), fld("srcport")), "src"),
				}},
				&DisplayCmd{Items: items(fld("src"), fld("st"))},
			},
		},
		{
			name: "precedence: or below and below not below comparison below arithmetic",
			src:  `filter not a = 1 or b > 2 + 3 * 4 ^ 2 and c like /x/`,
			want: []Command{filter(
				bin("or",
					not(bin("=", fld("a"), intLit("1", 1))),
					bin("and",
						bin(">", fld("b"), bin("+", intLit("2", 2), bin("*", intLit("3", 3), bin("^", intLit("4", 4), intLit("2", 2))))),
						bin("like", fld("c"), re("x")))),
			)},
		},
		{
			name: "left associativity, parentheses, unary minus and right-associative power",
			src:  `fields a - b - c, a - (b - c), -2 ^ 2, 2 ^ 3 ^ 2, 2 ^ -1, (a + b) * c % d / e`,
			want: []Command{&FieldsCmd{Items: items(
				bin("-", bin("-", fld("a"), fld("b")), fld("c")),
				bin("-", fld("a"), bin("-", fld("b"), fld("c"))),
				neg(bin("^", intLit("2", 2), intLit("2", 2))),
				bin("^", intLit("2", 2), bin("^", intLit("3", 3), intLit("2", 2))),
				bin("^", intLit("2", 2), neg(intLit("1", 1))),
				bin("/", bin("%", bin("*", bin("+", fld("a"), fld("b")), fld("c")), fld("d")), fld("e")),
			)}},
		},
		{
			name: "not like, =~, not in, booleans, floats",
			src:  `filter f1 not like "Exception" and f2 =~ /(?i)err\/or/ and Type not in ["foo", 'bar', 1] and ok = TRUE and x < 2.5 and y != false`,
			want: []Command{filter(
				bin("and", bin("and", bin("and", bin("and", bin("and",
					bin("notlike", fld("f1"), str("Exception")),
					bin("=~", fld("f2"), re("(?i)err/or"))),
					in(fld("Type"), true, str("foo"), str("bar"), intLit("1", 1))),
					bin("=", fld("ok"), boolean(true))),
					bin("<", fld("x"), floatLit("2.5", 2.5))),
					bin("!=", fld("y"), boolean(false))),
			)},
		},
		{
			name: "division is not a regex after a value",
			src:  `fields bytes / packets / 2 as avgSize | filter @message like /a b/`,
			want: []Command{
				&FieldsCmd{Items: []Projection{item(bin("/", bin("/", fld("bytes"), fld("packets")), intLit("2", 2)), "avgSize")}},
				filter(bin("like", fld("@message"), re("a b"))),
			},
		},
		{
			name: "parse glob with and without a source field",
			src:  `parse @message "* - * [*]" as a, b, c | parse "user=*" as @user | parse url '/api/*' as v`,
			want: []Command{
				&ParseCmd{Source: fld("@message"), Glob: "* - * [*]", Names: []string{"a", "b", "c"}},
				&ParseCmd{Source: fld("@message"), Glob: "user=*", Names: []string{"@user"}},
				&ParseCmd{Source: fld("url"), Glob: "/api/*", Names: []string{"v"}},
			},
		},
		{
			name: "parse regex takes names from named groups",
			src:  `parse @message /(?<user>\S+) (?P<ip>\S+) (?:x)(?<=y)[(?<no>](?<@t_1>z)/ | parse /(?<NetworkInterface>eni-.*?) / | display NetworkInterface`,
			want: []Command{
				&ParseCmd{Source: fld("@message"), IsRegex: true, Regex: `(?<user>\S+) (?P<ip>\S+) (?:x)(?<=y)[(?<no>](?<@t_1>z)`, Names: []string{"user", "ip", "@t_1"}},
				&ParseCmd{Source: fld("@message"), IsRegex: true, Regex: `(?<NetworkInterface>eni-.*?) `, Names: []string{"NetworkInterface"}},
				&DisplayCmd{Items: items(fld("NetworkInterface"))},
			},
		},
		{
			name: "dedup then limits, comments, leading pipes on lines",
			src:  "# top servers\nfields @timestamp, server # inline comment\n    # | filter server like /x/\n    | sort @timestamp desc\n    | dedup server, `x y`\n    | limit 5",
			want: []Command{
				&FieldsCmd{Items: items(fld("@timestamp"), fld("server"))},
				&SortCmd{Keys: []SortKey{{Expr: fld("@timestamp"), Desc: true}}},
				&DedupCmd{Fields: []*FieldRef{fld("server"), qfld("x y")}},
				&LimitCmd{N: 5},
			},
		},
		{
			name: "string escapes, unknown escapes kept, functions with durations",
			src:  `fields "a\"b\\c\n\d" as s, 'it\'s' as t, datefloor(@timestamp, 15min) as d, bin(100ms), bin(2hrs), bin(1mo), bin(1q), bin(1y), bin(1w), bin(1d), bin(30s)`,
			want: []Command{&FieldsCmd{Items: []Projection{
				item(str("a\"b\\c\n\\d"), "s"),
				item(str("it's"), "t"),
				item(call("datefloor", fld("@timestamp"), dur("15min", 15, "m")), "d"),
				item(call("bin", dur("100ms", 100, "ms")), ""),
				item(call("bin", dur("2hrs", 2, "h")), ""),
				item(call("bin", dur("1mo", 1, "mo")), ""),
				item(call("bin", dur("1q", 1, "q")), ""),
				item(call("bin", dur("1y", 1, "y")), ""),
				item(call("bin", dur("1w", 1, "w")), ""),
				item(call("bin", dur("1d", 1, "d")), ""),
				item(call("bin", dur("30s", 30, "s")), ""),
			}}},
		},
		{
			name: "chained stats, expression aggregates and group keys",
			src:  `stats count(*) as n, sum(bytes) / 1024 as kb by srcaddr, dstport | stats avg(n), max(kb) by isIpInSubnet(srcaddr, "10.0.0.0/8") as internal`,
			want: []Command{
				&StatsCmd{
					Aggs: []Projection{item(countStar(), "n"), item(bin("/", call("sum", fld("bytes")), intLit("1024", 1024)), "kb")},
					By:   items(fld("srcaddr"), fld("dstport")),
				},
				&StatsCmd{
					Aggs: items(call("avg", fld("n")), call("max", fld("kb"))),
					By:   []Projection{item(call("isipinsubnet", fld("srcaddr"), str("10.0.0.0/8")), "internal")},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := stripPos(mustParse(t, tt.src))
			want := &Query{Commands: tt.want}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(%q)\n got: %s\nwant: %s", tt.src, dump(got), dump(want))
			}
		})
	}
}

// dump prints a tree in full, for failure messages.
func dump(q *Query) string {
	var b strings.Builder
	for _, c := range q.Commands {
		b.WriteString("\n  ")
		dumpValue(&b, reflect.ValueOf(c))
	}
	return b.String()
}

func dumpValue(b *strings.Builder, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		dumpValue(b, v.Elem())
	case reflect.Struct:
		b.WriteString(v.Type().Name() + "{")
		for i := 0; i < v.NumField(); i++ {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(v.Type().Field(i).Name + ":")
			dumpValue(b, v.Field(i))
		}
		b.WriteString("}")
	case reflect.Slice:
		b.WriteString("[")
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b.WriteString(" ")
			}
			dumpValue(b, v.Index(i))
		}
		b.WriteString("]")
	default:
		fmt.Fprintf(b, "%#v", v.Interface())
	}
}

// roundTripQueries are real and tricky queries; each must survive
// String and Parse unchanged.
var roundTripQueries = []string{
	`fields @message | limit any 1`,
	`filter action = "REJECT" | LIMIT ANY 25`,
	// AWS samples for flow logs and general use.
	`stats sum(packets) as packetsTransferred by srcAddr, dstAddr | sort packetsTransferred desc | limit 15`,
	`filter logStatus="SKIPDATA" | stats count(*) by bin(1h) as t | sort t`,
	`filter action="REJECT" | stats count() by srcaddr | filter count >= 2 | sort count desc`,
	`stats avg(bytes), min(bytes), max(bytes) by srcAddr, dstAddr`,
	`stats count(*) as records by dstPort, srcAddr | sort records desc | limit 10`,
	`filter srcAddr like "192.0.2." | stats sum(bytes) as bytesTransferred by dstAddr | sort bytesTransferred desc | limit 15`,
	`filter isIpv4InSubnet(srcAddr, "192.0.2.0/24") | stats sum(bytes) as bytesTransferred by dstAddr | sort bytesTransferred desc | limit 15`,
	`stats sum(bytes) as bytesTransferred by srcAddr, dstAddr | sort bytesTransferred desc | limit 10`,
	`fields @timestamp, @message | sort @timestamp desc | limit 20`,
	`fields @timestamp, @message, accountId as ID | sort @timestamp desc | limit 20`,
	"fields @timestamp, @message\n    # | filter @message like /delay/\n    | limit 20",
	`filter @message like /Exception/ | stats count(*) as exceptionCount by bin(1h) | sort exceptionCount desc`,
	`fields f1, f2 | filter (f1=10 or f3>25)`,
	`fields f1 | filter statusCode like /2\d\d/`,
	`fields f1 | filter statusCode not like /2\d\d/`,
	`fields @timestamp, @message | filter statusCode in [300,400,500]`,
	`fields @timestamp, @message | filter Type not in ["foo","bar",1]`,
	"fields `foo-bar`, action, abs(f3-f4)",
	`fields concat(Operation, '-', StatusCode) as opStatus`,
	`parse @message "[*] * The error was: *" as level, config, exception`,
	`parse @message /\[(?<level>\S+)\]\s+(?<config>\{.*\})\s+The error was: (?<exception>\S+)/`,
	`parse @message /user=(?<user2>.*?), method:(?<method2>.*?), latency := (?<latency2>.*?)/ | stats avg(latency2) by method2, user2`,
	`FIELDS @message | PARSE @message "* [*] *" as loggingTime, loggingType, loggingMessage | FILTER loggingType IN ["ERROR", "INFO"] | DISPLAY loggingMessage, loggingType = "ERROR" as isError`,
	`fields @timestamp, server, severity, message | sort @timestamp desc | dedup server`,
	`stats avg (f1) by f2`,
	`parse @message "'fieldsA': '*', 'fieldsB': ['*']" as fld, array`,
	`filter @message like /(?i)(error|failure)/ | filter toMillis(@timestamp) >= (now() * 1000 - 18000000)`,
	`parse @logStream "*/*/*/*" as env, service, instance, shard | stats count(*) by env, service`,
	`filter ispresent(url) | stats count(*) as c by bin(1h) as t | sort t asc`,
	// Operators and printing corner cases.
	`fields -(-x), - -x, -(a + b), (-2) ^ 2, -2 ^ 2, 2 ^ (3 ^ 2), (2 ^ 3) ^ 2, 2 ^ -x`,
	`fields a - (b - c), (a - b) - c, a / (b * c), a * (b / c), (a or b) and c, not (a and b), not not a`,
	`filter (a = b) = c and a = (b = c) and (x in [1]) in [true] and not x in [1] and (not x) in [1]`,
	`filter a like "x" or a not like 'y' or a =~ /z\/w/ or a like /\\/ or a like /a\\\/b/`,
	`fields 'quote " inside', "tab\there", "back\\slash", "\d unknown escape", "ünïcödé", "\u00e9"`,
	"fields `with space`, `with-dash` as `alias-too`, `and` as `or`, `count` as count2, x as desc",
	"sort desc desc, asc asc, `desc` desc",
	`stats count(*) as n by bin(1w), bin(5min) as five`,
	`fields 1.5, 0, 007, 9223372036854775807, 3.0, datefloor(@timestamp, 1month), bin(3quarters), bin(2yrs), bin(500msec)`,
	`filter @timestamp > 0 | fields greatest(a, b, c) as g, least(1, 2) as l, coalesce(x, "-") as c, strlen(@message) as n`,
	`stats count_distinct(dstport) as ports, pct(bytes, 95), earliest(@timestamp), latest(@timestamp), stddev(bytes) by srcaddr`,
	`filter not isValidIp(srcaddr) and isIpInSubnet(dstaddr, "10.0.0.0/8")`,
	`parse srcaddr "*.*.*.*" as o1, o2, o3, o4 | filter o1 = "10"`,
	`parse ` + "`log-status`" + ` /(?<st>[A-Z]+)/`,
	`fields replace(@message, "a", "b"), substr(x, 1, 2), trim(x), ltrim(x, "ab"), toupper(x), tolower(x)`,
	"filter a = 1\n\n\t| limit 10000",
}

func TestRoundTrip(t *testing.T) {
	for _, src := range roundTripQueries {
		checkRoundTrip(t, src)
	}
}

// checkRoundTrip parses src, prints it, parses the print and compares; it
// also checks that printing is stable.
func checkRoundTrip(t *testing.T, src string) {
	t.Helper()
	q1, err := Parse(src)
	if err != nil {
		t.Errorf("Parse(%q): %v", src, err)
		return
	}
	printed := q1.String()
	q2, err := Parse(printed)
	if err != nil {
		t.Errorf("Parse(String(Parse(%q))) = Parse(%q): %v", src, printed, err)
		return
	}
	if again := q2.String(); again != printed {
		t.Errorf("printing is not stable for %q:\n first: %s\nsecond: %s", src, printed, again)
	}
	if !reflect.DeepEqual(stripPos(q1), stripPos(q2)) {
		t.Errorf("round trip changed the tree of %q (printed %q)\n got: %s\nwant: %s", src, printed, dump(q2), dump(q1))
	}
}

func TestPrint(t *testing.T) {
	// String prints canonical text: lower-case keywords and function names,
	// explicit sort directions, double quotes, minimal parentheses.
	tests := []struct{ src, want string }{
		{`FILTER action="REJECT" | Stats COUNT(*) BY srcaddr | SORT count`,
			`filter action = "REJECT" | stats count(*) by srcaddr | sort count desc`},
		{`fields (a + b) * c, a + (b * c), ((a)), -(a), 'x'`,
			`fields (a + b) * c, a + b * c, a, -a, "x"`},
		{`filter not (a = 1 and b = 2) or (c)`,
			`filter not (a = 1 and b = 2) or c`},
		{"parse `@message` \"*\" as `a b`",
			"parse `@message` \"*\" as `a b`"},
		{`parse /(?<a>x\/y)/`,
			`parse @message /(?<a>x\/y)/`},
		{`sort a, b asc`, `sort a desc, b asc`},
		{`fields - - 1, -(-1)`, `fields - -1, - -1`},
	}
	for _, tt := range tests {
		q := mustParse(t, tt.src)
		if got := q.String(); got != tt.want {
			t.Errorf("Parse(%q).String()\n got: %s\nwant: %s", tt.src, got, tt.want)
		}
	}
}

func TestProjectionName(t *testing.T) {
	// Column names as Insights shows them: alias, else the field name, else
	// the expression as written.
	q := mustParse(t, "stats count(*), count(), COUNT( * ), sum(bytes), avg (bytes), sum(bytes)/2, count(*) as n by bin(5m), srcAddr, `log-status`, bin(1h) as t, isIpInSubnet(srcaddr,\n  \"10.0.0.0/8\" # comment\n)")
	st := q.Commands[0].(*StatsCmd)
	var got []string
	for _, p := range append(st.Aggs, st.By...) {
		got = append(got, p.Name())
	}
	want := []string{"count(*)", "count()", "COUNT( * )", "sum(bytes)", "avg (bytes)", "sum(bytes)/2", "n",
		"bin(5m)", "srcAddr", "log-status", "t", `isIpInSubnet(srcaddr, "10.0.0.0/8" )`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("names:\n got %q\nwant %q", got, want)
	}
	// A tree built in code has no source text: the canonical print is used.
	p := Projection{Expr: &CallExpr{Name: "count", Star: true}}
	if p.Name() != "count(*)" {
		t.Errorf("Name of a built count(*) = %q", p.Name())
	}
	p = Projection{Expr: &CallExpr{Name: "sum", Args: []Expr{&FieldRef{Name: "bytes"}}}}
	if p.Name() != "sum(bytes)" {
		t.Errorf("Name of a built sum(bytes) = %q", p.Name())
	}
}

func TestPositions(t *testing.T) {
	src := "fields a,\n  b as c\n| filter x =\n\t  \"é\" and  y in [1]\n| stats count(*) by bin(5m)"
	q := mustParse(t, src)
	check := func(what string, got, want Pos) {
		t.Helper()
		if got != want {
			t.Errorf("%s at %v, want %v", what, got, want)
		}
	}
	f := q.Commands[0].(*FieldsCmd)
	check("fields", f.P, Pos{1, 1})
	check("a", f.Items[0].Expr.Position(), Pos{1, 8})
	check("b", f.Items[1].Expr.Position(), Pos{2, 3})
	fl := q.Commands[1].(*FilterCmd)
	check("filter", fl.P, Pos{3, 3})
	and := fl.Cond.(*BinaryExpr)
	check("and", and.P, Pos{4, 8})
	eq := and.L.(*BinaryExpr)
	check("=", eq.P, Pos{3, 12})
	check("x", eq.L.Position(), Pos{3, 10})
	check(`"é"`, eq.R.Position(), Pos{4, 4}) // tab counts as one column
	inx := and.R.(*InExpr)
	check("in", inx.P, Pos{4, 15})
	check("y", inx.X.Position(), Pos{4, 13})
	check("1", inx.List[0].Position(), Pos{4, 19})
	st := q.Commands[2].(*StatsCmd)
	check("stats", st.P, Pos{5, 3})
	check("count", st.Aggs[0].Expr.Position(), Pos{5, 9})
	b := st.By[0].Expr.(*CallExpr)
	check("bin", b.P, Pos{5, 21})
	check("5m", b.Args[0].Position(), Pos{5, 25})
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		pos  Pos
		msg  string // the message must contain this
	}{
		{"empty query", "", Pos{1, 1}, "empty query"},
		{"only a comment", "  # nothing\n", Pos{2, 1}, "empty query"},
		{"unterminated string", "filter a = \"abc", Pos{1, 12}, "unterminated string"},
		{"string across lines", "filter a = 'ab\nc'", Pos{1, 12}, "unterminated string"},
		{"unterminated regex", "filter a like /abc\n", Pos{1, 15}, "unterminated regular expression"},
		{"unterminated backticks", "fields `abc", Pos{1, 8}, "unterminated quoted name"},
		{"missing )", "stats count(*) by bin(5m\n| sort x", Pos{2, 1}, "expected ',' or ')' but found '|'"},
		{"missing ) before by", "stats sum(bytes by srcaddr", Pos{1, 17}, "expected ',' or ')' but found 'by'"},
		{"missing ) of group", "filter (a = 1", Pos{1, 14}, "expected ')' but found end of query"},
		{"stats without aggregate", "stats by srcaddr", Pos{1, 7}, "expected an aggregate"},
		{"stats alone", "stats", Pos{1, 6}, "expected an aggregate"},
		{"stats with a bare field", "stats bytes by srcaddr", Pos{1, 7}, "aggregate function"},
		{"stats by nothing", "stats count(*) by", Pos{1, 18}, "after 'by'"},
		{"unknown command", "filter a=1 | select a", Pos{1, 14}, "unknown command 'select'"},
		{"unsupported command", "fields a\n| pattern @message", Pos{2, 3}, "'pattern' command is not supported"},
		{"unsupported command anomaly", "anomaly", Pos{1, 1}, "not supported"},
		{"unsupported SOURCE", "SOURCE logGroups() | fields a", Pos{1, 1}, "'SOURCE' command is not supported"},
		{"unsupported filterIndex", "filterIndex a = 1", Pos{1, 1}, "not supported"},
		{"bad duration unit", "stats count(*) by bin(5x)", Pos{1, 23}, "invalid duration \"5x\""},
		{"unquoted IP address", "filter srcaddr = 10.0.0.1", Pos{1, 18}, "invalid number \"10.0.0.1\" (write text such as IP addresses in quotes)"},
		{"number then underscore", "filter a = 5_000", Pos{1, 12}, "invalid number"},
		{"fractional duration", "stats count(*) by bin(1.5h)", Pos{1, 23}, "whole number"},
		{"zero duration", "stats count(*) by bin(0m)", Pos{1, 23}, "between 1 and"},
		{"dedup followed by sort", "dedup a | sort a", Pos{1, 11}, "only 'limit' may follow 'dedup'"},
		{"dedup, limit, then filter", "dedup a | limit 3 | filter x=1", Pos{1, 21}, "only 'limit' may follow 'dedup'"},
		{"trailing pipe", "fields a |", Pos{1, 11}, "expected a command after '|' but found end of query"},
		{"trailing pipe and space", "fields a |\n  ", Pos{2, 3}, "expected a command after '|'"},
		{"double pipe", "fields a || limit 1", Pos{1, 11}, "expected a command after '|' but found '|'"},
		{"leading pipe", "| fields a", Pos{1, 1}, "expected a command"},
		{"junk after command", "limit 10 20", Pos{1, 10}, "expected '|' or end of query but found '20'"},
		{"limit zero", "limit 0", Pos{1, 7}, "at least 1"},
		{"limit negative", "limit -1", Pos{1, 7}, "expected a whole number"},
		{"limit float", "limit 1.5", Pos{1, 7}, "at least 1"},
		{"fields empty", "fields | limit 1", Pos{1, 8}, "expected a field or expression after 'fields'"},
		{"fields trailing comma", "fields a,", Pos{1, 10}, "after ','"},
		{"filter empty", "filter", Pos{1, 7}, "expected a condition"},
		{"keyword as value", "filter a = by", Pos{1, 12}, "expected a value"},
		{"not without like or in", "filter a not b", Pos{1, 14}, "expected 'like' or 'in' after 'not'"},
		{"in without list", "filter a in (1, 2)", Pos{1, 13}, "expected '[' after 'in'"},
		{"list not closed", "filter a in [1, 2", Pos{1, 18}, "expected ',' or ']'"},
		{"bang", "filter a ! b", Pos{1, 10}, "did you mean '!='"},
		{"star outside count", "stats sum(*)", Pos{1, 11}, "only count accepts '*'"},
		{"count(* x)", "stats count(* x)", Pos{1, 15}, "expected ')' after count(*"},
		{"at without name", "fields @", Pos{1, 8}, "'@' must be followed"},
		{"bad character", "filter a = $x", Pos{1, 12}, "unexpected character '$'"},
		{"empty backticks", "fields ``", Pos{1, 8}, "empty quoted name"},
		{"number too large", "filter a > " + strings.Repeat("9", 400), Pos{1, 12}, "too large"},
		{"parse without pattern", "parse @message", Pos{1, 15}, "expected a \"glob * pattern\" or a /regex/"},
		{"parse without as", "parse @message \"* *\"", Pos{1, 21}, "expected 'as' and 2 field name(s)"},
		{"parse too few names", "parse @message \"* - *\" as a", Pos{1, 16}, "has 2 '*' but 1 field name(s)"},
		{"parse glob without star", "parse @message \"abc\" as a", Pos{1, 16}, "no '*'"},
		{"parse regex without group", "parse @message /abc/", Pos{1, 16}, "no named group"},
		{"parse regex duplicate group", "parse /(?<a>x)(?<a>y)/", Pos{1, 7}, "appears twice"},
		{"parse regex bad group name", "parse /(?<a-b>x)/", Pos{1, 7}, "invalid group name \"a-b\""},
		{"parse regex empty group name", "parse /(?<>x)/", Pos{1, 7}, "invalid group name"},
		{"parse regex open group name", "parse /(?<abc/", Pos{1, 7}, "unterminated group name"},
		{"parse regex with as", "parse /(?<a>x)/ as b", Pos{1, 17}, "'as' is not allowed"},
		{"dedup keyword", "dedup by", Pos{1, 7}, "expected a field name after 'dedup'"},
		{"alias missing", "fields a as", Pos{1, 12}, "expected a name after 'as'"},
		{"call on dotted name", "fields a.b(1)", Pos{1, 8}, "invalid function name"},
		{"deep nesting", "filter " + strings.Repeat("(", 300) + "a" + strings.Repeat(")", 300), Pos{1, 208}, "nested too deeply"},
		{"invalid utf-8", "filter a = \xff", Pos{1, 12}, "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(tt.src)
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want an error", tt.src, q)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T %v, want *SyntaxError", tt.src, err, err)
			}
			if se.Pos != tt.pos || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("Parse(%q) = %q at %v; want %q at %v", tt.src, se.Msg, se.Pos, tt.msg, tt.pos)
			}
		})
	}
}

func TestSyntaxErrorFormat(t *testing.T) {
	_, err := Parse("filter a = 1\n| stats sum(x by y")
	want := "line 2, column 15: expected ',' or ')' but found 'by'"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func TestDurationUnits(t *testing.T) {
	// Every spelling AWS lists for bin(), and the plural of each longer one.
	units := map[string]string{
		"ms": "ms", "msec": "ms", "msecs": "ms", "millisecond": "ms", "milliseconds": "ms",
		"s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
		"m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
		"h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
		"d": "d", "day": "d", "days": "d",
		"w": "w", "week": "w", "weeks": "w",
		"mo": "mo", "mos": "mo", "mon": "mo", "mons": "mo", "month": "mo", "months": "mo",
		"q": "q", "qtr": "q", "qtrs": "q", "quarter": "q", "quarters": "q",
		"y": "y", "yr": "y", "yrs": "y", "year": "y", "years": "y",
	}
	for spelling, unit := range units {
		q := mustParse(t, "stats count(*) by bin(12"+spelling+")")
		d := q.Commands[0].(*StatsCmd).By[0].Expr.(*CallExpr).Args[0].(*DurationLit)
		if d.N != 12 || d.Unit != unit || d.Text != "12"+spelling {
			t.Errorf("12%s = %+v, want N 12 unit %s", spelling, d, unit)
		}
	}
	for _, bad := range []string{"5M", "5H", "5hh", "5ss", "5millis", "5hs"} {
		if _, err := Parse("stats count(*) by bin(" + bad + ")"); err == nil {
			t.Errorf("bin(%s) parsed, want an error", bad)
		}
	}
}

func TestWalk(t *testing.T) {
	q := mustParse(t, `filter a in [b, f(c)] and -d = e or not g`)
	var names []string
	Walk(q.Commands[0].(*FilterCmd).Cond, func(e Expr) bool {
		switch e := e.(type) {
		case *FieldRef:
			names = append(names, e.Name)
		case *CallExpr:
			names = append(names, e.Name+"()")
			return false // do not enter f's arguments
		}
		return true
	})
	want := []string{"a", "b", "f()", "d", "e", "g"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("Walk visited %q, want %q", names, want)
	}
}
