package flowlog

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzScanText feeds arbitrary bytes to the text decoder: it must never
// panic, every record it returns must have the format's field count and
// re-encode to JSON, and every line must be either a record, blank, a
// header or reported as skipped.
func FuzzScanText(f *testing.F) {
	f.Add([]byte("2 123456789010 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n"))
	f.Add([]byte("version srcaddr dstaddr action\n2 10.0.0.1 2001:db8::1 REJECT\n\nsrcaddr\n10.0.0.1\n"))
	f.Add([]byte("2 123456789010 eni-1 - - - - - - - 1700000000 1700000060 - NODATA\r\n2  1 x\n"))
	f.Add([]byte("\x1f\x8b\x08\x00garbage"))
	f.Add([]byte("PAR1\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, chunk := range []int{0, 7} {
			sk := &Skipped{}
			s := &Scanner{Workers: 2, ChunkSize: chunk, Errors: sk}
			var out bytes.Buffer
			err := ScanOrdered(context.Background(), s, []Input{bytesInput("fuzz", data)}, func(_ int, b *Batch) []byte {
				b.Validate()
				var buf []byte
				for i := 0; i < b.N; i++ {
					if b.Bad(i) {
						continue
					}
					if b.Text() && len(b.RawLine(i)) == 0 {
						t.Errorf("record %d has an empty line", i)
					}
					buf = append(b.AppendJSON(buf, i), '\n')
				}
				return buf
			}, func(p []byte) error { out.Write(p); return nil })
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
				if line != "" && !json.Valid([]byte(line)) {
					t.Fatalf("bad JSON line %q", line)
				}
			}
		}
	})
}
