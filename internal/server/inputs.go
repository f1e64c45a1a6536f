package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// recentInputs returns what queries and the dashboard's tables read: the
// files the files sources follow that were modified since the given
// time, and the data the other sources (Kinesis, Firehose, Kafka, ...)
// delivered since then that the daemon still keeps in memory
// (server.query_buffer). More than maxQueryBytes of them is an error
// that asks for a shorter period.
func (s *Server) recentInputs(since time.Time) ([]flowlog.Input, error) {
	var inputs []flowlog.Input
	var total int64
	tooMuch := func(n int64) error {
		if total += n; total > maxQueryBytes {
			return fmt.Errorf("the files modified and the stream data received since %s hold more than %d bytes: give a shorter since", since.Format(time.RFC3339), maxQueryBytes)
		}
		return nil
	}
	for _, st := range s.b.Sources() {
		if st.Type != "files" {
			continue
		}
		for _, p := range st.Positions {
			info, err := os.Stat(p.Name)
			if err != nil || info.ModTime().Before(since) {
				continue
			}
			if err := tooMuch(info.Size()); err != nil {
				return nil, err
			}
			name := p.Name
			inputs = append(inputs, flowlog.Input{Name: name, Size: info.Size(), Open: func(context.Context) (io.ReadCloser, error) {
				f, err := os.Open(name)
				if err != nil {
					return nil, fmt.Errorf("cannot open input: %w", err)
				}
				return f, nil
			}})
		}
	}
	for _, in := range chunkInputs(s.b.Recent(since)) {
		if err := tooMuch(in.Size); err != nil {
			return nil, err
		}
		inputs = append(inputs, in)
	}
	return inputs, nil
}

// maxChunkInput bounds the data of one input made of kept chunks.
const maxChunkInput = 64 << 20

// chunkInputs reads kept chunks as the decoder reads files: consecutive
// chunks of one source under the same header line make one input (the
// decoder works per input), which starts with that header line when
// there is one, so that the fields of a custom format are known.
func chunkInputs(cs []RecentChunk) []flowlog.Input {
	var out []flowlog.Input
	var parts [][]byte
	var size int64
	name := ""
	flush := func() {
		if len(parts) == 0 {
			return
		}
		ps := parts
		out = append(out, flowlog.Input{Name: name, Size: size, Open: func(context.Context) (io.ReadCloser, error) {
			rs := make([]io.Reader, len(ps))
			for i, p := range ps {
				rs[i] = bytes.NewReader(p)
			}
			return io.NopCloser(io.MultiReader(rs...)), nil
		}})
		parts, size = nil, 0
	}
	for i, c := range cs {
		if c.Open != nil {
			// An object kept by reference: an input of its own, read
			// again from where it is (gzip or Parquet as it was).
			flush()
			out = append(out, flowlog.Input{Name: c.Source + ":" + c.Name, Size: c.Size, Open: c.Open})
			continue
		}
		same := i > 0 && cs[i-1].Open == nil && cs[i-1].Source == c.Source && bytes.Equal(cs[i-1].Header, c.Header) && size+int64(len(c.Data)) <= maxChunkInput
		if !same {
			flush()
			name = c.Source + ":" + c.Name
			if h := c.Header; len(h) > 0 {
				if h[len(h)-1] != '\n' {
					h = append(h[:len(h):len(h)], '\n')
				}
				parts, size = append(parts, h), int64(len(h))
			}
		}
		data := c.Data
		if len(data) > 0 && data[len(data)-1] != '\n' {
			data = append(data[:len(data):len(data)], '\n') // records must not run into the next chunk's
		}
		parts = append(parts, data)
		size += int64(len(data))
	}
	flush()
	return out
}
