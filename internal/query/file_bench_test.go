package query

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// BenchmarkSeedQueryFile runs the seed query on the file named by
// FLOWGUARD_BENCH_FILE (skipped when unset), to profile real inputs.
func BenchmarkSeedQueryFile(b *testing.B) {
	path := os.Getenv("FLOWGUARD_BENCH_FILE")
	if path == "" {
		b.Skip("FLOWGUARD_BENCH_FILE not set")
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	p, err := Compile(`filter action="REJECT" | stats count() by srcaddr | filter count >= 2 | sort count desc`, Options{})
	if err != nil {
		b.Fatal(err)
	}
	in := []flowlog.Input{{Name: path, Size: st.Size(), Open: func(context.Context) (io.ReadCloser, error) { return os.Open(path) }}}
	b.SetBytes(st.Size())
	for i := 0; i < b.N; i++ {
		if _, err := p.Run(context.Background(), &flowlog.Scanner{}, in); err != nil {
			b.Fatal(err)
		}
	}
}
