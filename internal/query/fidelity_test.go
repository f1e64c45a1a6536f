package query

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// The tests of this file check behaviours AWS documents for Logs Insights
// (expressions over aggregates, sortsFirst and sortsLast, dedup, where
// stats, sort and limit may go) against answers computed in plain Go from
// the records' text.

func TestStatsExpressionsOverAggregates(t *testing.T) {
	text := genText(t, 40000, 11)
	rs := plainParse(text)
	addrCmp := func(a, b string) int {
		x, _ := netip.ParseAddr(a)
		y, _ := netip.ParseAddr(b)
		return x.Compare(y)
	}
	t.Run("megabytes by source", func(t *testing.T) {
		sums := map[string]int64{}
		for _, r := range rs {
			if r.hasAddr {
				sums[r.src] += r.bytes
			}
		}
		type kv struct {
			k string
			v float64
		}
		var all []kv
		for k, v := range sums {
			all = append(all, kv{k, float64(v) / 1024 / 1024})
		}
		slices.SortFunc(all, func(a, b kv) int {
			if a.v != b.v {
				if a.v > b.v {
					return -1
				}
				return 1
			}
			return addrCmp(a.k, b.k)
		})
		var want strings.Builder
		want.WriteString("srcAddr,mb\n")
		for _, e := range all[:10] {
			fmt.Fprintf(&want, "%s,%s\n", canonAddr(e.k), FloatValue(e.v))
		}
		got := tableText(runQuery(t, `filter ispresent(srcAddr) | stats sum(bytes)/1024/1024 as mb by srcAddr | sort mb desc | limit 10`, text))
		if got != want.String() {
			t.Errorf("got\n%s\nwant\n%s", got, want.String())
		}
	})
	t.Run("by one address (the partitioned path)", func(t *testing.T) {
		type agg struct{ n, b int64 }
		m := map[string]*agg{}
		for _, r := range rs {
			if !r.hasAddr {
				continue
			}
			if m[r.src] == nil {
				m[r.src] = &agg{}
			}
			m[r.src].n++
			m[r.src].b += r.bytes
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, addrCmp)
		var want strings.Builder
		want.WriteString("srcaddr,c2,half\n")
		for _, k := range keys {
			fmt.Fprintf(&want, "%s,%d,%s\n", canonAddr(k), 2*m[k].n, FloatValue(float64(m[k].b)/2))
		}
		got := tableText(runQuery(t, `filter ispresent(srcaddr) | stats count() * 2 as c2, sum(bytes) / 2 as half by srcaddr | limit 100000`, text))
		if got != want.String() {
			t.Errorf("got\n%s\nwant\n%s", head(got, 5), head(want.String(), 5))
		}
	})
	t.Run("names as written, several per command", func(t *testing.T) {
		type agg struct{ n, lo, hi int64 }
		m := map[string]*agg{}
		for _, r := range rs {
			if r.action == "-" {
				continue
			}
			a := m[r.action]
			if a == nil {
				a = &agg{lo: math.MaxInt64, hi: math.MinInt64}
				m[r.action] = a
			}
			a.n++
			a.lo, a.hi = min(a.lo, r.bytes), max(a.hi, r.bytes)
		}
		var want strings.Builder
		want.WriteString("action,count(*) * 2,spread,n\n")
		for _, act := range []string{"ACCEPT", "REJECT"} {
			a := m[act]
			fmt.Fprintf(&want, "%s,%d,%d,%d\n", act, a.n*2, a.hi-a.lo, a.n)
		}
		got := tableText(runQuery(t, `filter ispresent(action) | stats count(*) * 2, max(bytes) - min(bytes) as spread, count() as n by action`, text))
		if got != want.String() {
			t.Errorf("got\n%s\nwant\n%s", got, want.String())
		}
	})
	t.Run("two stats: hourly megabytes, then their average", func(t *testing.T) {
		hours := map[int64]int64{}
		for _, r := range rs {
			hours[r.start-r.start%3600] += int64(len(r.line))
		}
		var sum, peak float64
		for _, b := range hours {
			mb := float64(b) / 1024 / 1024
			sum += mb
			peak = max(peak, mb)
		}
		want := fmt.Sprintf("avg_mb,max_mb,hours\n%s,%s,%d\n", FloatValue(sum/float64(len(hours))), FloatValue(peak), len(hours))
		got := tableText(runQuery(t, `fields strlen(@message) as len
			| stats sum(len)/1024/1024 as mb by bin(1h) as hour
			| stats avg(mb) as avg_mb, max(mb) as max_mb, count() as hours`, text))
		if !sameNumbers(got, want) {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
	for _, c := range []struct{ query, pos, msg string }{
		{`stats sum(bytes) + packets`, "line 1, column 20", "no column packets"},
		{`stats bytes + 1 as x`, "line 1, column 13", "needs an aggregate function"},
		{`stats sum(count(*))`, "line 1, column 11", "aggregate"},
	} {
		_, err := Compile(c.query, Options{})
		if err == nil || !strings.HasPrefix(err.Error(), c.pos) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want %s … %s", c.query, err, c.pos, c.msg)
		}
	}
}

// sameNumbers compares two CSV-like texts, numbers to 12 significant
// digits (float sums depend on the order of addition).
func sameNumbers(a, b string) bool {
	fa, fb := strings.FieldsFunc(a, isSep), strings.FieldsFunc(b, isSep)
	if len(fa) != len(fb) {
		return false
	}
	for i := range fa {
		x, okx := StringValue(fa[i]).Float()
		y, oky := StringValue(fb[i]).Float()
		if okx && oky {
			if math.Abs(x-y) > 1e-9*math.Max(1, math.Abs(y)) {
				return false
			}
		} else if fa[i] != fb[i] {
			return false
		}
	}
	return true
}

func isSep(r rune) bool { return r == ',' || r == '\n' }

func TestSortsFirstAndLast(t *testing.T) {
	text := genText(t, 20000, 13)
	rs := plainParse(text)
	type agg struct{ firstSrc, lastSrc, firstAct, lastAct string }
	m := map[int64]*agg{}
	for _, r := range rs {
		if r.dstport != 22 && r.dstport != 443 {
			continue
		}
		a := m[r.dstport]
		if a == nil {
			a = &agg{firstSrc: r.src, lastSrc: r.src, firstAct: r.action, lastAct: r.action}
			m[r.dstport] = a
		}
		x, _ := netip.ParseAddr(r.src)
		if f, _ := netip.ParseAddr(a.firstSrc); x.Compare(f) < 0 {
			a.firstSrc = r.src
		}
		if l, _ := netip.ParseAddr(a.lastSrc); x.Compare(l) > 0 {
			a.lastSrc = r.src
		}
		a.firstAct, a.lastAct = min(a.firstAct, r.action), max(a.lastAct, r.action)
	}
	var want strings.Builder
	want.WriteString("dstport,sortsFirst(srcaddr),sortsLast(srcaddr),first,last\n")
	for _, p := range []int64{22, 443} {
		a := m[p]
		fmt.Fprintf(&want, "%d,%s,%s,%s,%s\n", p, canonAddr(a.firstSrc), canonAddr(a.lastSrc), a.firstAct, a.lastAct)
	}
	got := tableText(runQuery(t, `filter dstport in [22, 443]
		| stats sortsFirst(srcaddr), sortsLast(srcaddr), sortsFirst(action) as first, sortsLast(action) as last by dstport`, text))
	if got != want.String() {
		t.Errorf("got\n%s\nwant\n%s", got, want.String())
	}
}

// dedupRecords has duplicates, records without addresses (NODATA) and
// several records at one time.
const dedupRecords = `2 1 eni-1 198.51.100.7 10.0.0.5 50000 22 6 1 40 1700000000 1700000060 REJECT OK
2 1 eni-1 198.51.100.7 10.0.0.5 50001 23 6 1 90 1700000120 1700000180 REJECT OK
2 1 eni-1 203.0.113.9 10.0.0.5 40000 443 6 10 4000 1700000060 1700000120 ACCEPT OK
2 1 eni-1 198.51.100.7 10.0.0.5 50002 24 6 1 60 1700000060 1700000120 REJECT OK
2 1 eni-1 - - - - - - - 1700000000 1700000060 - NODATA
2 1 eni-1 - - - - - - - 1700000060 1700000120 - NODATA
2 1 eni-1 - - - - - - - 1700000120 1700000180 - NODATA
2 1 eni-1 203.0.113.9 10.0.0.5 40001 443 6 10 5000 1700000000 1700000060 ACCEPT OK
`

func TestDedupAsLogsInsights(t *testing.T) {
	cases := []struct {
		name, query, want string
	}{{
		// Latest of each address; the three NODATA records have no
		// address and are all kept; latest first.
		name:  "without sort: latest of each, absent keys kept",
		query: `fields srcaddr, srcport, start | dedup srcaddr`,
		want: "srcaddr,srcport,start\n" +
			"198.51.100.7,50001,1700000120\n" +
			",,1700000120\n" +
			"203.0.113.9,40000,1700000060\n" +
			",,1700000060\n" +
			",,1700000000\n",
	}, {
		name:  "after a sort: the first in its order",
		query: `fields srcaddr, bytes | sort bytes desc | dedup srcaddr`,
		want:  "srcaddr,bytes\n203.0.113.9,5000\n198.51.100.7,90\n,\n,\n,\n",
	}, {
		// parse leaves pre absent where the pattern does not match
		// (the NODATA records): those records are all kept.
		name:  "fields parse left absent are kept",
		query: `parse @message "* 10.0.0.5 *" as pre, post | fields pre, start | dedup pre`,
		want: "pre,start\n2 1 eni-1 198.51.100.7,1700000120\n,1700000120\n" +
			"2 1 eni-1 203.0.113.9,1700000060\n,1700000060\n,1700000000\n",
	}, {
		name:  "limit after dedup",
		query: `fields srcaddr | dedup srcaddr | limit 1`,
		want:  "srcaddr\n198.51.100.7\n",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := tableText(runQuery(t, c.query, dedupRecords))
			if got != c.want {
				t.Errorf("query %s\ngot:\n%s\nwant:\n%s", c.query, got, c.want)
			}
		})
	}
	// Independently: dedup by dstport over generated records keeps as
	// many rows as there are distinct ports plus records without one.
	text := genText(t, 20000, 17)
	rs := plainParse(text)
	ports := map[int64]bool{}
	absent := 0
	for _, r := range rs {
		if strings.Fields(r.line)[6] == "-" {
			absent++
		} else {
			ports[r.dstport] = true
		}
	}
	got := runQuery(t, `fields dstport | dedup dstport | limit 10000`, text)
	if len(got.Rows) != min(10000, len(ports)+absent) {
		t.Errorf("dedup dstport: %d rows, want %d ports + %d records without a port", len(got.Rows), len(ports), absent)
	}
}

func TestCommandPlacementAsLogsInsights(t *testing.T) {
	bad := []struct{ query, pos, msg string }{
		{`stats count() by srcaddr | stats count() by dstaddr | stats count()`, "line 1, column 55", "at most two stats"},
		{`stats count() as n by srcaddr | sort n desc | stats avg(n)`, "line 1, column 33", "only come after the second"},
		{`limit 5 | stats count() as n by srcaddr | stats avg(n)`, "line 1, column 1", "only come after the second"},
		{`dedup srcaddr | stats count()`, "line 1, column 17", "only 'limit' may follow 'dedup'"},
		{"fields jsonParse(@message) as j", "line 1, column 8", "jsonparse is a Logs Insights function flowguard does not support"},
		{"fields jsonStringify(@message) as j", "line 1, column 8", "not JSON"},
		{"unnest j.events into e", "line 1, column 1", "'unnest' command is not supported"},
		{"fields round(bytes) as r", "line 1, column 8", "unknown function round"},
	}
	for _, c := range bad {
		_, err := Compile(c.query, Options{})
		if err == nil || !strings.HasPrefix(err.Error(), c.pos) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want %s … %s", c.query, err, c.pos, c.msg)
		}
	}
	good := []string{
		`stats count() as n by srcaddr | stats avg(n) as a | sort a desc | limit 1`,
		`filter action = "REJECT" | stats count() as n by srcaddr | filter n > 1 | stats count() as sources`,
		`sort bytes desc | limit 10 | stats count()`,
	}
	for _, q := range good {
		if _, err := Compile(q, Options{}); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
}

// TestGroupByAddressPairAnyWorkers checks stats … by srcaddr, dstaddr
// (IPv4 pairs partitioned or in the pair table, other pairs and absent
// addresses in the general table) against plain Go, whatever the number of
// workers and block size, with the groups in key order.
func TestGroupByAddressPairAnyWorkers(t *testing.T) {
	text := genText(t, 30000, 23)
	rs := plainParse(text)
	type agg struct{ n, bytes, packets int64 }
	type pair struct{ s, d string }
	m := map[pair]*agg{}
	for _, r := range rs {
		k := pair{r.src, r.dst}
		if !r.hasAddr {
			k = pair{}
		}
		if m[k] == nil {
			m[k] = &agg{}
		}
		m[k].n++
		m[k].bytes += r.bytes
		m[k].packets += r.packets
	}
	keys := make([]pair, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	cmpAddr := func(a, b string) int {
		x, errx := netip.ParseAddr(a)
		y, erry := netip.ParseAddr(b)
		switch {
		case errx != nil && erry != nil:
			return 0
		case errx != nil:
			return 1
		case erry != nil:
			return -1
		}
		return x.Compare(y)
	}
	slices.SortFunc(keys, func(a, b pair) int {
		if c := cmpAddr(a.s, b.s); c != 0 {
			return c
		}
		return cmpAddr(a.d, b.d)
	})
	for _, q := range []struct{ query, row string }{
		{`stats count() as n, sum(bytes) as b by srcaddr, dstaddr`, "%s,%s,%d,%d\n"},
		{`stats count() as n, sum(bytes) as b, avg(packets) as p by srcaddr, dstaddr`, "%s,%s,%d,%d,%s\n"},
	} {
		var want strings.Builder
		want.WriteString("srcaddr,dstaddr,n,b")
		if strings.Contains(q.query, "avg") {
			want.WriteString(",p")
		}
		want.WriteString("\n")
		for _, k := range keys {
			a := m[k]
			s, d := canonAddr(k.s), canonAddr(k.d)
			if strings.Contains(q.query, "avg") {
				if k == (pair{}) { // no bytes, no packets: absent sum and average
					fmt.Fprintf(&want, "%s,%s,%d,,\n", s, d, a.n)
				} else {
					fmt.Fprintf(&want, q.row, s, d, a.n, a.bytes, FloatValue(float64(a.packets)/float64(a.n)).String())
				}
			} else if k == (pair{}) {
				fmt.Fprintf(&want, "%s,%s,%d,\n", s, d, a.n)
			} else {
				fmt.Fprintf(&want, q.row, s, d, a.n, a.bytes)
			}
		}
		p, err := Compile(q.query, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ workers, chunk int }{{1, 1 << 20}, {2, 4096}, {3, 777}} {
			res, err := p.Run(context.Background(), &flowlog.Scanner{Workers: c.workers, ChunkSize: c.chunk}, []flowlog.Input{memInput("a", text)})
			if err != nil {
				t.Fatal(err)
			}
			if got := tableText(res); got != want.String() {
				t.Errorf("%s, workers %d: got\n%s\nwant\n%s", q.query, c.workers, head(got, 8), head(want.String(), 8))
			}
		}
	}
}
