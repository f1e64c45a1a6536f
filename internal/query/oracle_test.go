package query

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/synth"
)

// rec is a v2 record parsed the plain way, for computing expected answers
// independently of the decoder and the engine.
type rec struct {
	src, dst             string
	srcport, dstport     int64
	proto                int64
	packets, bytes       int64
	start, end           int64
	action, status, line string
	hasAddr              bool
}

func plainParse(text string) []rec {
	var out []rec
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 14 {
			continue
		}
		num := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
		out = append(out, rec{src: f[3], dst: f[4], srcport: num(f[5]), dstport: num(f[6]), proto: num(f[7]),
			packets: num(f[8]), bytes: num(f[9]), start: num(f[10]), end: num(f[11]), action: f[12], status: f[13],
			line: line, hasAddr: f[3] != "-"})
	}
	return out
}

func genText(t testing.TB, n int, seed uint64) string {
	t.Helper()
	cfg := synth.DefaultConfig()
	cfg.Records, cfg.Seed = n, seed
	var buf bytes.Buffer
	if err := synth.New(cfg).WriteText(&buf, false); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// canonAddr prints an address as netip does, as the engine prints it.
func canonAddr(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	return a.String()
}

type kv struct {
	key string
	n   int64
}

// countBy counts records by key, in key order (the engine's order of
// groups before a sort), then sorts by count descending, stably.
func countBy(rs []rec, keep func(rec) bool, key func(rec) string) []kv {
	m := map[string]int64{}
	for _, r := range rs {
		if keep(r) {
			m[key(r)]++
		}
	}
	var out []kv
	for k, n := range m {
		out = append(out, kv{k, n})
	}
	return out
}

func TestQueriesAgainstPlainGo(t *testing.T) {
	text := genText(t, 60000, 7)
	rs := plainParse(text)
	if len(rs) < 50000 {
		t.Fatalf("generator gave %d records", len(rs))
	}
	addrLess := func(a, b string) int {
		x, _ := netip.ParseAddr(a)
		y, _ := netip.ParseAddr(b)
		return x.Compare(y)
	}
	cases := []struct {
		name  string
		query string
		want  func() string
	}{{
		name:  "seed",
		query: "filter action=\"REJECT\"\n| stats count() by srcaddr\n| filter count >= 2\n| sort count desc",
		want: func() string {
			kvs := countBy(rs, func(r rec) bool { return r.action == "REJECT" }, func(r rec) string { return r.src })
			slices.SortFunc(kvs, func(a, b kv) int { return addrLess(a.key, b.key) })
			slices.SortStableFunc(kvs, func(a, b kv) int { return int(b.n - a.n) })
			var s strings.Builder
			s.WriteString("srcaddr,count()\n")
			for _, e := range kvs {
				if e.n >= 2 {
					fmt.Fprintf(&s, "%s,%d\n", canonAddr(e.key), e.n)
				}
			}
			return s.String()
		},
	}, {
		name:  "aws sample: packets by pair",
		query: "stats sum(packets) as packetsTransferred by srcAddr, dstAddr | sort packetsTransferred desc | limit 15",
		want: func() string {
			type pair struct{ s, d string }
			m := map[pair]int64{}
			for _, r := range rs {
				if r.hasAddr {
					m[pair{r.src, r.dst}] += r.packets
				}
			}
			type row struct {
				p pair
				n int64
			}
			var rows []row
			for p, n := range m {
				rows = append(rows, row{p, n})
			}
			slices.SortFunc(rows, func(a, b row) int {
				if c := addrLess(a.p.s, b.p.s); c != 0 {
					return c
				}
				return addrLess(a.p.d, b.p.d)
			})
			slices.SortStableFunc(rows, func(a, b row) int { return int(b.n - a.n) })
			var s strings.Builder
			s.WriteString("srcAddr,dstAddr,packetsTransferred\n")
			for _, r := range rows[:15] {
				fmt.Fprintf(&s, "%s,%s,%d\n", canonAddr(r.p.s), canonAddr(r.p.d), r.n)
			}
			return s.String()
		},
	}, {
		name:  "aws sample: skipdata by hour",
		query: `filter logStatus="SKIPDATA" or logStatus = "NODATA" | stats count(*) by bin(1h) as hour, logStatus | sort hour asc, logStatus asc`,
		want: func() string {
			type k struct {
				h int64
				s string
			}
			m := map[k]int64{}
			for _, r := range rs {
				if r.status == "SKIPDATA" || r.status == "NODATA" {
					m[k{r.start - r.start%3600, r.status}]++
				}
			}
			var keys []k
			for x := range m {
				keys = append(keys, x)
			}
			sort.Slice(keys, func(i, j int) bool {
				if keys[i].h != keys[j].h {
					return keys[i].h < keys[j].h
				}
				return keys[i].s < keys[j].s
			})
			var s strings.Builder
			s.WriteString("hour,logStatus,count(*)\n")
			for _, x := range keys {
				fmt.Fprintf(&s, "%s,%s,%d\n", Value{T: TTime, I: x.h * 1000}.String(), x.s, m[x])
			}
			return s.String()
		},
	}, {
		name: "subnet, in, several aggregates",
		query: `filter isIpInSubnet(srcaddr, "10.0.0.0/16") and dstport in [5432, 3306, 6379]
		        | stats count() as n, sum(bytes) as total, max(bytes) as biggest, min(start) as first, count_distinct(srcaddr) as clients by dstport
		        | sort dstport asc`,
		want: func() string {
			pfx := netip.MustParsePrefix("10.0.0.0/16")
			type agg struct {
				n, total, biggest, first int64
				clients                  map[string]bool
			}
			m := map[int64]*agg{}
			for _, r := range rs {
				a, err := netip.ParseAddr(r.src)
				if err != nil || !pfx.Contains(a) || !slices.Contains([]int64{5432, 3306, 6379}, r.dstport) {
					continue
				}
				g := m[r.dstport]
				if g == nil {
					g = &agg{first: math.MaxInt64, clients: map[string]bool{}}
					m[r.dstport] = g
				}
				g.n++
				g.total += r.bytes
				g.biggest = max(g.biggest, r.bytes)
				g.first = min(g.first, r.start)
				g.clients[r.src] = true
			}
			var ports []int64
			for p := range m {
				ports = append(ports, p)
			}
			slices.Sort(ports)
			var s strings.Builder
			s.WriteString("dstport,n,total,biggest,first,clients\n")
			for _, p := range ports {
				g := m[p]
				fmt.Fprintf(&s, "%d,%d,%d,%d,%d,%d\n", p, g.n, g.total, g.biggest, g.first, len(g.clients))
			}
			return s.String()
		},
	}, {
		name:  "fields, filter, limit keep input order",
		query: `fields srcaddr, dstport, action | filter dstport = 22 and action = "REJECT" | limit 7`,
		want: func() string {
			var s strings.Builder
			s.WriteString("srcaddr,dstport,action\n")
			n := 0
			for _, r := range rs {
				if r.dstport == 22 && r.action == "REJECT" && n < 7 {
					fmt.Fprintf(&s, "%s,%d,%s\n", canonAddr(r.src), r.dstport, r.action)
					n++
				}
			}
			return s.String()
		},
	}, {
		// Without a sort, Logs Insights dedups in descending @timestamp
		// order: the latest record of each address, latest first (ties:
		// by the row's values, then file order).
		name:  "dedup keeps the latest of each",
		query: `filter dstport = 22 | fields srcaddr, start | dedup srcaddr | limit 5`,
		want: func() string {
			type kept struct {
				r rec
				i int
			}
			best := map[string]kept{}
			for i, r := range rs {
				if r.dstport != 22 {
					continue
				}
				if k, ok := best[r.src]; !ok || r.start > k.r.start {
					best[r.src] = kept{r, i}
				}
			}
			var ks []kept
			for _, k := range best {
				ks = append(ks, k)
			}
			slices.SortFunc(ks, func(a, b kept) int {
				if a.r.start != b.r.start {
					return int(b.r.start - a.r.start)
				}
				if c := addrLess(a.r.src, b.r.src); c != 0 {
					return c
				}
				return a.i - b.i
			})
			var s strings.Builder
			s.WriteString("srcaddr,start\n")
			for _, k := range ks[:5] {
				fmt.Fprintf(&s, "%s,%d\n", canonAddr(k.r.src), k.r.start)
			}
			return s.String()
		},
	}, {
		name:  "arithmetic and sort on a computed field",
		query: `filter packets > 0 and action = "ACCEPT" | fields bytes / packets as avgsize, srcaddr | sort avgsize desc, srcaddr asc | limit 5 | display srcaddr, avgsize`,
		want: func() string {
			type row struct {
				src string
				v   float64
				i   int
			}
			var rows []row
			for i, r := range rs {
				if r.packets > 0 && r.action == "ACCEPT" {
					rows = append(rows, row{r.src, float64(r.bytes) / float64(r.packets), i})
				}
			}
			slices.SortStableFunc(rows, func(a, b row) int {
				if a.v != b.v {
					if a.v > b.v {
						return -1
					}
					return 1
				}
				return addrLess(a.src, b.src)
			})
			var s strings.Builder
			s.WriteString("srcaddr,avgsize\n")
			for _, r := range rows[:5] {
				fmt.Fprintf(&s, "%s,%s\n", canonAddr(r.src), FloatValue(r.v).String())
			}
			return s.String()
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := c.want()
			got := tableText(runQuery(t, c.query, text))
			if got != want {
				t.Errorf("query %s\ngot:\n%s\nwant:\n%s", c.query, head(got, 20), head(want, 20))
			}
		})
	}
}

func head(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}

// TestGroupByAddressAnyWorkers checks counts and sums by address (the
// partitioned path for IPv4, the address table for IPv6 and absent keys)
// against plain Go, whatever the number of workers and block size.
func TestGroupByAddressAnyWorkers(t *testing.T) {
	text := genText(t, 30000, 3)
	rs := plainParse(text)
	type agg struct{ n, bytes int64 }
	m := map[string]*agg{}
	for _, r := range rs {
		k := r.src
		if !r.hasAddr {
			k = ""
		}
		if m[k] == nil {
			m[k] = &agg{}
		}
		m[k].n++
		m[k].bytes += r.bytes
	}
	p, err := Compile(`stats count() as n, sum(bytes) as b by srcaddr`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ workers, chunk int }{{1, 1 << 20}, {2, 4096}, {3, 777}} {
		res, err := p.Run(context.Background(), &flowlog.Scanner{Workers: c.workers, ChunkSize: c.chunk}, []flowlog.Input{memInput("a", text)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != len(m) {
			t.Errorf("workers %d: %d groups, want %d", c.workers, len(res.Rows), len(m))
		}
		var prev Value
		for i, row := range res.Rows {
			key := row[0].String()
			want := m[key]
			if want == nil {
				t.Errorf("workers %d: unexpected group %q", c.workers, key)
				continue
			}
			if row[1].I != want.n || row[2].IsNull() && want.bytes != 0 || row[2].I != want.bytes {
				t.Errorf("workers %d: %q: count %v sum %v, want %d %d", c.workers, key, row[1], row[2], want.n, want.bytes)
			}
			if i > 0 && compareNullsLast(prev, row[0]) >= 0 {
				t.Errorf("workers %d: groups out of order at %d: %v then %v", c.workers, i, prev, row[0])
			}
			prev = row[0]
		}
	}
}

// TestGroupByParsedStringAnyWorkers checks stats … by a string that parse
// took out (short strings partitioned as one word, long ones, the empty
// string and absent values in the string table) against plain Go, whatever
// the number of workers and block size, with the groups in key order.
func TestGroupByParsedStringAnyWorkers(t *testing.T) {
	rs := plainParse(genText(t, 30000, 5))
	rng := rand.New(rand.NewPCG(5, 6))
	var b strings.Builder
	type agg struct{ n, bytes int64 }
	m := map[string]*agg{}
	absent := &agg{}
	for _, r := range rs {
		f := strings.Fields(r.line)
		// eni- and 0 to 12 digits (the key: empty, short or long), or
		// no eni- at all (no match: absent).
		id := "x" + strconv.Itoa(rng.IntN(10))
		if rng.IntN(20) > 0 {
			digits := rng.IntN(13)
			id = "eni-"
			for range digits {
				id += strconv.Itoa(rng.IntN(3))
			}
		}
		f[2] = id
		b.WriteString(strings.Join(f, " "))
		b.WriteByte('\n')
		a := absent
		if k, ok := strings.CutPrefix(id, "eni-"); ok {
			if m[k] == nil {
				m[k] = &agg{}
			}
			a = m[k]
		}
		a.n++
		a.bytes += r.bytes
	}
	text := b.String()
	p, err := Compile(`parse @message /^\S+ \S+ eni-(?<k>\d*) / | stats count() as n, sum(bytes) as b by k`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ workers, chunk int }{{1, 1 << 20}, {2, 4096}, {3, 777}} {
		res, err := p.Run(context.Background(), &flowlog.Scanner{Workers: c.workers, ChunkSize: c.chunk}, []flowlog.Input{memInput("a", text)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != len(m)+1 {
			t.Errorf("workers %d: %d groups, want %d", c.workers, len(res.Rows), len(m)+1)
		}
		short, long := 0, 0
		var prev Value
		for i, row := range res.Rows {
			want := absent
			if !row[0].IsNull() {
				want = m[row[0].S]
				if want == nil {
					t.Errorf("workers %d: unexpected group %q", c.workers, row[0].S)
					continue
				}
				if len(row[0].S) <= 7 {
					short++
				} else {
					long++
				}
			}
			if row[1].I != want.n || row[2].I != want.bytes {
				t.Errorf("workers %d: %v: count %v sum %v, want %d %d", c.workers, row[0], row[1], row[2], want.n, want.bytes)
			}
			if i > 0 && compareNullsLast(prev, row[0]) >= 0 {
				t.Errorf("workers %d: groups out of order at %d: %v then %v", c.workers, i, prev, row[0])
			}
			prev = row[0]
		}
		if short < 100 || long < 100 || res.Rows[0][0].T != TString || res.Rows[0][0].S != "" || !res.Rows[len(res.Rows)-1][0].IsNull() {
			t.Errorf("workers %d: %d short and %d long keys, first %v, last %v: the test does not reach every path", c.workers, short, long, res.Rows[0][0], res.Rows[len(res.Rows)-1][0])
		}
	}
}
