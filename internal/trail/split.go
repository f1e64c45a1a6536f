package trail

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"sync"

	"github.com/flowguard/flowguard/internal/cloudtrail"
	"github.com/flowguard/flowguard/internal/flowlog"
)

// Sniff opens in once and reports whether it holds CloudTrail or
// EventBridge JSON. The input it returns reads in from that opening (its
// first Open hands over the stream, from its first byte), so that looking
// into an input does not cost a second open (a second S3 GET). A file is
// looked into with ReadAt and handed over as the *os.File, so that the
// flow log scanner still maps it.
func Sniff(ctx context.Context, in flowlog.Input) (bool, flowlog.Input, error) {
	rc, err := in.Open(ctx)
	if err != nil {
		return false, in, err
	}
	if f, ok := rc.(*os.File); ok {
		head := make([]byte, sniffLen)
		n, err := f.ReadAt(head, 0)
		if err == nil || errors.Is(err, io.EOF) {
			return cloudtrail.SniffHead(head[:n]), hold(in, f), nil
		}
		// Not a regular file (a pipe): read through a buffer.
	}
	br := bufio.NewReaderSize(rc, sniffLen)
	ok := cloudtrail.SniffReader(br)
	return ok, hold(in, &held{br, rc}), nil
}

// sniffLen is how much of an input Sniff looks at (gzip's first 64 KiB
// hold more than the 4 KiB of content looked into).
const sniffLen = 64 << 10

// held is a stream opened once, read through the buffer that looked into
// it.
type held struct {
	io.Reader
	io.Closer
}

// hold returns in with its first Open returning rc, already open; later
// Opens open in again.
func hold(in flowlog.Input, rc io.ReadCloser) flowlog.Input {
	var mu sync.Mutex
	first := rc
	open := in.Open
	in.Open = func(ctx context.Context) (io.ReadCloser, error) {
		mu.Lock()
		h := first
		first = nil
		mu.Unlock()
		if h != nil {
			return h, nil
		}
		return open(ctx)
	}
	return in
}

// Divert wraps flow log inputs so that each is looked into when the flow
// log scanner opens it, once: an input that holds CloudTrail or
// EventBridge JSON goes to trail instead (with the input to read it from,
// which trail must open) and the scanner reads nothing from it. trail is
// called for one input at a time, in the order of the inputs (once every
// earlier input has been looked into and, if CloudTrail, read), whichever
// goroutine opens them: what it feeds sees the records in a stable order.
// The inputs must be opened in their order, as the flow log scanner does
// (it hands them to its readers in order): a CloudTrail input waits for
// the earlier ones. Standard input ("-") is left as it is.
func Divert(inputs []flowlog.Input, trail func(ctx context.Context, in flowlog.Input) error) []flowlog.Input {
	out := make([]flowlog.Input, len(inputs))
	done := make([]chan struct{}, len(inputs))
	for i := range done {
		done[i] = make(chan struct{})
	}
	// wait returns once every input before i is done.
	wait := func(ctx context.Context, i int) error {
		for j := range i {
			select {
			case <-done[j]:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		return nil
	}
	for i, in := range inputs {
		out[i] = in
		if in.Name == "-" {
			close(done[i])
			continue
		}
		var once sync.Once
		finish := func() { once.Do(func() { close(done[i]) }) }
		out[i].Open = func(ctx context.Context) (io.ReadCloser, error) {
			defer finish()
			ok, h, err := Sniff(ctx, in)
			if err != nil {
				return nil, err
			}
			if !ok {
				return h.Open(ctx)
			}
			if err := wait(ctx, i); err != nil {
				if rc, err := h.Open(ctx); err == nil {
					rc.Close()
				}
				return nil, err
			}
			if err := trail(ctx, h); err != nil {
				return nil, err
			}
			return io.NopCloser(eofReader{}), nil
		}
	}
	return out
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
