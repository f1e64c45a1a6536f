package trail

import (
	"bufio"
	"context"
	"io"
	"sync"

	"github.com/flowguard/flowguard/internal/cloudtrail"
	"github.com/flowguard/flowguard/internal/flowlog"
)

// Sniff opens in once and reports whether it holds CloudTrail or
// EventBridge JSON. The input it returns reads in from that opening (its
// first Open hands over the stream, from its first byte), so that looking
// into an input does not cost a second open (a second S3 GET).
func Sniff(ctx context.Context, in flowlog.Input) (bool, flowlog.Input, error) {
	rc, err := in.Open(ctx)
	if err != nil {
		return false, in, err
	}
	br := bufio.NewReaderSize(rc, 64<<10)
	ok := cloudtrail.SniffReader(br)
	return ok, hold(in, br, rc), nil
}

// held is a stream opened once, handed over by the first Open.
type held struct {
	io.Reader
	io.Closer
}

// hold returns in with its first Open returning the stream r (closed by
// c); later Opens open in again.
func hold(in flowlog.Input, r io.Reader, c io.Closer) flowlog.Input {
	var mu sync.Mutex
	first := &held{r, c}
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
// EventBridge JSON goes to trail instead (with the input to read it from)
// and the scanner reads nothing from it. trail may be called from several
// goroutines at once. Standard input ("-") is left as it is.
func Divert(inputs []flowlog.Input, trail func(ctx context.Context, in flowlog.Input) error) []flowlog.Input {
	out := make([]flowlog.Input, len(inputs))
	for i, in := range inputs {
		out[i] = in
		if in.Name == "-" {
			continue
		}
		out[i].Open = func(ctx context.Context) (io.ReadCloser, error) {
			ok, h, err := Sniff(ctx, in)
			if err != nil {
				return nil, err
			}
			if !ok {
				return h.Open(ctx)
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
