package detect

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// FuzzDetect runs the engine over arbitrary flow log text: whatever the
// records say (addresses, ports, times far apart or reversed), detection
// must not panic.
func FuzzDetect(f *testing.F) {
	f.Add([]byte("2 123456789010 eni-1 198.51.100.7 10.0.0.5 50000 22 6 1 40 1700000000 1700000060 REJECT OK\n" +
		"2 123456789010 eni-1 10.0.0.5 198.51.100.7 22 50000 6 1 40 1700000000 1700000060 ACCEPT OK\n" +
		"2 123456789010 eni-1 2001:db8::1 10.0.0.5 1 65535 17 99999999 9999999999 0 18446744073709551615 REJECT OK\n"))
	f.Add([]byte("version srcaddr dstaddr srcport dstport protocol tcp-flags flow-direction start end action\n" +
		"5 10.0.0.1 10.0.0.2 443 1024 6 18 egress 1 2 REJECT\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := New(Options{Settings: DefaultSettings()})
		if err != nil {
			t.Fatal(err)
		}
		in := []flowlog.Input{{Name: "fuzz", Size: int64(len(data)), Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}}}
		if err := e.Run(context.Background(), &flowlog.Scanner{Workers: 2, ChunkSize: 128}, in); err != nil {
			return
		}
		e.Flush()
		_ = e.Results()
	})
}
