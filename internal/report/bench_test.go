package report

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
)

var benchRecords = flag.Int("report.records", 200_000, "records of BenchmarkCompute's input")

// BenchmarkCompute measures the report's eight tables over generated
// flow logs held in memory: one pass of the query engine per table.
func BenchmarkCompute(b *testing.B) {
	data := generated(b, *benchRecords)
	in := []flowlog.Input{input("flows.log", data)}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compute(context.Background(), &flowlog.Scanner{}, in, Options{Bin: 5 * time.Minute}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(*benchRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
