package store

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/flowguard/flowguard/internal/finding"
)

// BenchmarkUpsertFindings records 1,000 findings per operation, half of
// them new and half updates.
func BenchmarkUpsertFindings(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fs := make([]finding.Finding, 1000)
	next := 0
	b.ResetTimer()
	for range b.N {
		for i := range fs {
			k := next + i/2 // every id twice: once new, once an update
			a := netip.AddrFrom4([4]byte{198, 51, byte(k >> 8), byte(k)})
			fs[i] = scan(a.String(), "10.0.0.1", 1, []uint16{uint16(i%100 + 1)}, t0, t0, map[string]any{"rejected": 1})
		}
		next += len(fs) / 2
		if _, _, err := s.UpsertFindings(ctx, fs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(fs)), "ns/finding")
}
