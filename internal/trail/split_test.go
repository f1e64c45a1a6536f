package trail

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// TestDivertOpensOnceInOrder: 24 inputs, every third CloudTrail, scanned
// by 4 workers: each input is opened once; the CloudTrail ones reach the
// trail reader one at a time and in input order, whatever the scanner's
// order; the flow logs' records are all read, and a flow log file is
// handed to the scanner as the *os.File it opened (so it is still mapped).
func TestDivertOpensOnceInOrder(t *testing.T) {
	dir := t.TempDir()
	var inputs []flowlog.Input
	opens := make([]atomic.Int32, 24)
	var wantTrail []string
	for i := range 24 {
		path := filepath.Join(dir, fmt.Sprintf("in%02d", i))
		var body string
		if i%3 == 1 {
			body = fmt.Sprintf(`{"eventVersion":"1.08","eventTime":"2026-11-22T10:00:%02dZ","eventName":"DescribeInstances","eventSource":"ec2.amazonaws.com"}`+"\n", i)
			wantTrail = append(wantTrail, path)
		} else {
			for r := range 100 {
				body += fmt.Sprintf("2 111122223333 eni-1 198.51.100.%d 10.0.1.10 40000 %d 6 1 40 1795341600 1795341660 REJECT OK\n", i, r+1)
			}
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, flowlog.Input{Name: path, Size: int64(len(body)), Open: func(context.Context) (io.ReadCloser, error) {
			opens[i].Add(1)
			return os.Open(path)
		}})
	}
	var mu sync.Mutex
	var gotTrail []string
	busy := atomic.Int32{}
	div := Divert(inputs, func(ctx context.Context, in flowlog.Input) error {
		if busy.Add(1) != 1 {
			t.Error("two CloudTrail inputs read at once")
		}
		defer busy.Add(-1)
		rc, err := in.Open(ctx)
		if err != nil {
			return err
		}
		defer rc.Close()
		if _, err := io.ReadAll(rc); err != nil {
			return err
		}
		mu.Lock()
		gotTrail = append(gotTrail, in.Name)
		mu.Unlock()
		return nil
	})
	var records atomic.Int64
	sc := &flowlog.Scanner{Workers: 4, Errors: &flowlog.Skipped{}}
	if err := sc.Scan(context.Background(), div, func(_ int, b *flowlog.Batch) error { records.Add(int64(b.N)); return nil }); err != nil {
		t.Fatal(err)
	}
	if records.Load() != 16*100 {
		t.Errorf("%d flow records, want 1600", records.Load())
	}
	if !slices.Equal(gotTrail, wantTrail) {
		t.Errorf("CloudTrail inputs read in the order %v, want %v", gotTrail, wantTrail)
	}
	for i := range opens {
		if n := opens[i].Load(); n != 1 {
			t.Errorf("input %d opened %d times", i, n)
		}
	}
	// A flow log file comes out as the file it opened.
	div = Divert(inputs[:1], nil)
	rc, err := div[0].Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, ok := rc.(*os.File); !ok {
		t.Errorf("a flow log file handed over as %T, not *os.File", rc)
	}
}
