package flowlog

import (
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
)

// benchText is n v2 records of varied addresses and ports.
func benchText(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("2 123456789010 eni-0a1b2c3d4e5f60789 ")
		b.WriteString("198.51.")
		b.WriteString(strconv.Itoa(i % 256))
		b.WriteByte('.')
		b.WriteString(strconv.Itoa(i / 256 % 256))
		b.WriteString(" 10.0.1.10 ")
		b.WriteString(strconv.Itoa(40000 + i%20000))
		b.WriteString(" 443 6 12 5232 1700000000 1700000060 ")
		if i%3 == 0 {
			b.WriteString("REJECT OK\n")
		} else {
			b.WriteString("ACCEPT OK\n")
		}
	}
	return b.String()
}

func benchScan(b *testing.B, workers int, fn func(*Batch)) { benchScanFields(b, workers, nil, fn) }

// benchScanFields is benchScan for a consumer that reads only fields
// (Scanner.Fields).
func benchScanFields(b *testing.B, workers int, fields []Field, fn func(*Batch)) {
	text := benchText(200_000)
	in := []Input{{Name: "bench", Size: int64(len(text)), Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(text)), nil
	}}}
	s := &Scanner{Workers: workers, Fields: fields}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := s.Scan(context.Background(), in, func(_ int, bt *Batch) error {
			fn(bt)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(200_000*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSplit measures finding records and fields, one worker.
func BenchmarkSplit(b *testing.B) { benchScan(b, 1, func(*Batch) {}) }

// BenchmarkSplitActionAddr also converts action and, for rejected records,
// srcaddr: the work of the seed query's decoding, one worker.
func BenchmarkSplitActionAddr(b *testing.B) {
	var sel []uint32
	benchScan(b, 1, func(bt *Batch) {
		acts := bt.Actions(bt.Format.Index(FieldAction), nil)
		sel = sel[:0]
		for i, a := range acts[:bt.N] {
			if a == ActionReject {
				sel = append(sel, uint32(i))
			}
		}
		bt.Addrs(bt.Format.Index(FieldSrcAddr), sel)
	})
}

// BenchmarkSplitLines is BenchmarkSplit for a consumer that reads only
// whole lines (`parse @message`): no field is located, the spaces are only
// counted.
func BenchmarkSplitLines(b *testing.B) { benchScanFields(b, 1, []Field{}, func(*Batch) {}) }

// BenchmarkSplitPairs locates the fields up to bytes and converts srcaddr,
// dstaddr and bytes: the decoding of `stats sum(bytes) by srcAddr,
// dstAddr`, one worker.
func BenchmarkSplitPairs(b *testing.B) {
	benchScanFields(b, 1, []Field{FieldSrcAddr, FieldDstAddr, FieldBytes}, func(bt *Batch) {
		bt.Addrs(bt.Format.Index(FieldSrcAddr), nil)
		bt.Addrs(bt.Format.Index(FieldDstAddr), nil)
		bt.Uints(bt.Format.Index(FieldBytes), nil)
	})
}

// BenchmarkSplitPairsAll is BenchmarkSplitPairs with every field located,
// for comparison.
func BenchmarkSplitPairsAll(b *testing.B) {
	benchScanFields(b, 1, nil, func(bt *Batch) {
		bt.Addrs(bt.Format.Index(FieldSrcAddr), nil)
		bt.Addrs(bt.Format.Index(FieldDstAddr), nil)
		bt.Uints(bt.Format.Index(FieldBytes), nil)
	})
}
