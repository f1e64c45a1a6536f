package query

import (
	"context"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// FuzzRunQuery compiles and runs whatever parses over a few records: a
// query may be refused with an error, but never panic.
func FuzzRunQuery(f *testing.F) {
	for _, q := range []string{
		`filter action="REJECT" | stats count() by srcaddr | filter count >= 2 | sort count desc`,
		`stats sum(packets) as p, avg(bytes), pct(bytes, 90), stddev(bytes), earliest(srcaddr), latest(dstport) by srcAddr, dstAddr | sort p desc | limit 3`,
		`filter isIpInSubnet(srcaddr, "10.0.0.0/8") or dstport in [22, 3389] | fields concat(srcaddr, ":", dstport) as x, bytes / packets as avg | sort avg asc | limit 2`,
		`parse @message "* * * * *" as a, b, c, d, e | stats count_distinct(d) by bin(5m)`,
		`parse @message /(?<ver>\d+) (?<acct>\d+)/ | dedup acct | limit 1`,
		`fields @timestamp, @message, @logStream, @log | filter @message like /REJECT/ and not strcontains(@message, "x")`,
		`stats count() as n by action | stats sum(n) as total`,
		`fields datefloor(@timestamp, 1h) as h, fromMillis(toMillis(@timestamp)) as t, substr(action, 1, 2) as s, abs(-3) as a, greatest(srcport, dstport) as g | display h, t, s, a, g`,
	} {
		f.Add(q)
	}
	in := []flowlog.Input{memInput("a.log", sample)}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile(src, Options{MaxRows: 100})
		if err != nil {
			return
		}
		res, err := p.Run(context.Background(), &flowlog.Scanner{Workers: 2, ChunkSize: 200}, in)
		if err != nil {
			return
		}
		for _, row := range res.Rows {
			if len(row) != len(res.Names) {
				t.Fatalf("%q: a row of %d values for %d columns", src, len(row), len(res.Names))
			}
		}
	})
}
