package source

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// daemon drives a live source the way flowguard serve does: it decodes
// each chunk with the flowlog decoder, keeps the records, saves the
// chunk's position in its "store" and then calls Commit. Tests read back
// the records, the saved positions and the decode errors.
type daemon struct {
	t    *testing.T
	live Live

	mu      sync.Mutex
	records []string // each decoded record, as its raw line
	skipped int      // lines the decoder rejected
	saved   map[string]Position
	chunks  int
	// hold, when set, makes the daemon decode and save but not commit,
	// as if it crashed between its store transaction and Commit.
	hold bool
	// block, when not nil, is waited on before each chunk is processed.
	block chan struct{}

	cancel context.CancelFunc
	done   chan error
	// owned keeps each chunk's Data and a copy: once emitted, Data
	// belongs to the daemon and the source must not change it.
	owned [][2][]byte
}

// startDaemon runs live with the positions from, until the test ends or
// stop is called.
func startDaemon(t *testing.T, live Live, from []Position) *daemon {
	t.Helper()
	d := &daemon{t: t, live: live, saved: map[string]Position{}, done: make(chan error, 1)}
	for _, p := range from {
		d.saved[p.Object] = p
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() { d.done <- live.Run(ctx, from, d.emit) }()
	t.Cleanup(func() {
		d.stop()
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, o := range d.owned {
			if !bytes.Equal(o[0], o[1]) {
				t.Errorf("a chunk's Data changed after it was emitted: %.60q, was %.60q", o[0], o[1])
			}
		}
	})
	return d
}

func (d *daemon) emit(ctx context.Context, c Chunk) error {
	if d.block != nil {
		select {
		case <-d.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if (c.Data == nil) == (c.Open == nil) {
		d.t.Errorf("chunk %s: exactly one of Data and Open must be set", c.Name)
	}
	if c.Position.Object != c.Object {
		d.t.Errorf("chunk %s: position object %q, chunk object %q", c.Name, c.Position.Object, c.Object)
	}
	open := c.Open
	if open == nil {
		data := append(append([]byte(nil), c.Header...), c.Data...)
		open = func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	}
	var recs []string
	sk := &flowlog.Skipped{}
	sc := &flowlog.Scanner{Workers: 1, Errors: sk}
	err := sc.Scan(ctx, []flowlog.Input{{Name: c.Name, Size: -1, Open: open}}, func(_ int, b *flowlog.Batch) error {
		for i := range b.N {
			recs = append(recs, string(b.RawLine(i)))
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.records = append(d.records, recs...)
	d.skipped += int(sk.Count())
	d.saved[c.Position.Object] = c.Position
	d.chunks++
	if c.Data != nil {
		d.owned = append(d.owned, [2][]byte{c.Data, bytes.Clone(c.Data)})
	}
	hold := d.hold
	d.mu.Unlock()
	if !hold {
		if err := d.live.Commit(ctx, []Position{c.Position}); err != nil {
			d.t.Errorf("commit: %v", err)
		}
	}
	return nil
}

// stop cancels Run and waits for it; it returns Run's error.
func (d *daemon) stop() error {
	d.cancel()
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(10 * time.Second):
		d.t.Error("Run did not return within 10s of its context ending")
		return errors.New("Run did not return")
	}
}

// positions returns the saved positions, as the store would give them
// back at the next start.
func (d *daemon) positions() []Position {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ps []Position
	for _, p := range d.saved {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b Position) int { return cmp.Compare(a.Object, b.Object) })
	return ps
}

// got returns the records decoded so far.
func (d *daemon) got() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.records)
}

// waitRecords waits until at least n records are decoded and returns them.
func (d *daemon) waitRecords(n int, within time.Duration) []string {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := d.got()
		if len(r) >= n {
			return r
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("got %d records within %v, want %d; status %+v", len(r), within, n, d.live.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// flowLine is a v2 flow log record from src to dst port port, with a
// marker in the packets field so tests can tell records apart.
func flowLine(src string, port, n int) string {
	return "2 123456789012 eni-0a1b2c3d " + src + " 10.0.1.10 40000 " + strconv.Itoa(port) + " 6 " + strconv.Itoa(n) + " 40 1700000000 1700000060 REJECT OK"
}
