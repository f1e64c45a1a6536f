package query

import (
	"context"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// BenchmarkSeedQuery runs the seed query over generated v2 text held in
// memory: decoding, filtering and grouping, on all cores.
func BenchmarkSeedQuery(b *testing.B) {
	benchQuery(b, `filter action="REJECT" | stats count() by srcaddr | filter count >= 2 | sort count desc`)
}

// BenchmarkSumByPair groups by two addresses and sums a number column.
func BenchmarkSumByPair(b *testing.B) {
	benchQuery(b, `stats sum(packets) as p by srcAddr, dstAddr | sort p desc | limit 15`)
}

// BenchmarkFilterSubnetPorts evaluates a compound filter.
func BenchmarkFilterSubnetPorts(b *testing.B) {
	benchQuery(b, `filter isIpInSubnet(srcaddr, "10.0.0.0/16") and dstport in [22, 3389] | stats count() by bin(5m)`)
}

func benchQuery(b *testing.B, src string) {
	text := genText(b, 500_000, 1)
	p, err := Compile(src, Options{})
	if err != nil {
		b.Fatal(err)
	}
	in := []flowlog.Input{memInput("bench.log", text)}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Run(context.Background(), &flowlog.Scanner{}, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(500_000*b.N)/b.Elapsed().Seconds(), "records/s")
}
