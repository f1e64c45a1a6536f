package trail

import (
	"context"
	"os"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/query"
)

// BenchmarkQueryCloudTrail runs one of AWS's CloudTrail sample queries
// over 20,000 records in gzip delivery files (bytes: the files as stored).
func BenchmarkQueryCloudTrail(b *testing.B) {
	_, inputs := genTrail(b, 20000, 3)
	var size int64
	for _, in := range inputs {
		st, err := os.Stat(in.Name)
		if err != nil {
			b.Fatal(err)
		}
		size += st.Size()
	}
	prog, err := query.Compile(`filter tlsDetails.tlsVersion in [ "TLSv1", "TLSv1.1" ] | stats count(*) as numOutdatedTlsCalls by eventSource | sort numOutdatedTlsCalls desc`, query.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := prog.RunRecords(context.Background(), &Records{Inputs: inputs, Errors: &flowlog.Skipped{}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(20000*b.N)/b.Elapsed().Seconds(), "records/s")
}
