package flowlog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// Input is one source of flow log bytes: a file, standard input or an S3
// object. The scanner recognises gzip and Parquet by their first bytes.
type Input struct {
	Name string // path, "-" or s3://bucket/key, used in messages
	Size int64  // bytes, or -1 if unknown
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// Scanner decodes inputs into batches, in parallel across inputs and across
// chunks of one large input.
type Scanner struct {
	// Format is used for text without a header line (--format); nil means
	// the default v2 format. A header line in the input takes precedence.
	Format *Format
	// Workers is the number of decoding goroutines; 0 means GOMAXPROCS.
	Workers int
	// ChunkSize is the size of the blocks a text input is cut into; 0
	// means 1 MiB.
	ChunkSize int
	// MaxLineLen is the longest line, without its newline, taken for a
	// record; a longer one is reported as one malformed line and
	// skipped. 0 means 64 KiB (a flow log record is a few hundred bytes).
	MaxLineLen int
	// Errors receives every skipped line, record or input; nil drops them.
	Errors ErrorSink
	// Fields, when not nil, lists the fields the consumer reads (an
	// empty, non-nil list: none, only whole lines). The text decoder then
	// locates only the fields up to the last of them in each line, which
	// is most of its work; the records kept and the lines skipped are the
	// same as with nil. Reading another field still works: the batch then
	// locates every field of its records at that moment.
	Fields []Field
}

const (
	defaultChunkSize  = 1 << 20
	defaultMaxLineLen = 64 << 10
	parquetBatchRows  = 16 << 10
)

// job is one unit of work for a decoding worker: a block of complete text
// lines, or a whole Parquet input.
type job struct {
	input  int
	name   string
	seq    int
	format *Format
	data   []byte // complete lines, each ending in '\n'
	line   int    // line number of data's first line
	done   func() // gives data's buffer back, if not nil

	parquet     io.ReaderAt
	parquetSize int64
	closer      io.Closer
}

// Scan decodes every input and calls fn for each batch, from the worker
// goroutine numbered w (0 <= w < Workers), so that fn can keep per-worker
// state without locks. Batches of one input may arrive out of order. Bad
// input is reported to Errors and skipped; Scan returns an error only when
// ctx is done or fn fails.
func (s *Scanner) Scan(ctx context.Context, inputs []Input, fn func(w int, b *Batch) error) error {
	return s.run(ctx, inputs, fn, nil)
}

// ScanOrdered is Scan for consumers that need input order: work runs on the
// workers in parallel, and deliver receives the results one at a time, in
// the order of the inputs and of the records within each input.
func ScanOrdered[T any](ctx context.Context, s *Scanner, inputs []Input, work func(w int, b *Batch) T, deliver func(T) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	o := newOrderer(len(inputs), func(v any) error {
		err := deliver(v.(T))
		if err != nil {
			cancel(err) // the consumer has had enough: stop reading
		}
		return err
	})
	err := s.run(ctx, inputs, func(w int, b *Batch) error {
		o.add(b.Input, b.Seq, work(w, b))
		return nil
	}, o)
	if o.err != nil {
		return o.err
	}
	return err
}

// Workers returns the number of workers Scan will use.
func (s *Scanner) workers() int {
	if s.Workers > 0 {
		return s.Workers
	}
	return runtime.GOMAXPROCS(0)
}

func (s *Scanner) run(ctx context.Context, inputs []Input, fn func(int, *Batch) error, ord *orderer) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	nw := s.workers()
	chunk := s.ChunkSize
	if chunk <= 0 {
		chunk = defaultChunkSize
	}
	jobs := make(chan *job, 2*nw)
	// A buffer holds a block and a line that goes past its end, and at
	// least the sample sniff looks at.
	size := max(chunk+2*s.maxLineLen(), sniffLen)
	pool := &sync.Pool{New: func() any { b := make([]byte, 0, size); return &b }}

	var wg sync.WaitGroup
	for w := 0; w < nw; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wk := &worker{id: w, s: s, fn: fn, ord: ord}
			for j := range jobs {
				if ctx.Err() != nil {
					wk.release(j, pool)
					continue
				}
				if err := wk.do(ctx, j); err != nil {
					cancel(err)
				}
				wk.release(j, pool)
			}
		}()
	}

	// Readers: several inputs are read at once, so that many small files
	// (S3 delivers one every five minutes) keep the workers busy.
	nr := min(len(inputs), nw)
	next := make(chan int)
	var rg sync.WaitGroup
	for r := 0; r < nr; r++ {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for i := range next {
				rd := reader{s: s, ctx: ctx, jobs: jobs, pool: pool, chunk: chunk, input: i, in: &inputs[i]}
				n := rd.read()
				if ord != nil {
					ord.inputDone(i, n)
				}
			}
		}()
	}
feed:
	for i := range inputs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	rg.Wait()
	close(jobs)
	wg.Wait()
	if ord != nil {
		ord.finish()
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

func (s *Scanner) skip(e *LineError) {
	if s.Errors != nil {
		s.Errors.Skip(e)
	}
}

// reader cuts one input into jobs.
type reader struct {
	s     *Scanner
	ctx   context.Context
	jobs  chan<- *job
	pool  *sync.Pool
	chunk int
	input int
	in    *Input
	seq   int
	line  int
	// headed: the input began with a header line, so headers may follow
	// blank lines (S3 delivery).
	headed bool
}

// read sends the input's jobs and returns how many it sent.
func (r *reader) read() int {
	rc, err := r.in.Open(r.ctx)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the input's name is said once
		}
		r.s.skip(&LineError{Source: r.in.Name, Msg: fmt.Sprintf("cannot open: %v", err)})
		return 0
	}
	if f, ok := rc.(*os.File); ok {
		if m := mapFile(f); m != nil {
			kind, why := sniff(m.data)
			switch kind {
			case kindText:
				r.readMapped(m)
			case kindNotFlowLog:
				r.s.skip(&LineError{Source: r.in.Name, Msg: "not a flow log file: " + why})
			}
			m.release() // the reader's own reference
			if kind == kindText || kind == kindNotFlowLog {
				rc.Close()
				return r.seq
			}
		}
	}
	br := bufio.NewReaderSize(rc, sniffLen)
	head, _ := br.Peek(sniffLen)
	switch kind, why := sniff(head); kind {
	case kindParquet:
		r.readParquet(rc, br)
		return r.seq
	case kindGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			r.s.skip(&LineError{Source: r.in.Name, Msg: fmt.Sprintf("bad gzip header: %v", err)})
			return 0
		}
		r.readText(zr, true)
	case kindNotFlowLog:
		r.s.skip(&LineError{Source: r.in.Name, Msg: "not a flow log file: " + why})
	default:
		r.readText(br, false)
	}
	rc.Close()
	return r.seq
}

func (r *reader) readParquet(rc io.ReadCloser, br *bufio.Reader) {
	var ra io.ReaderAt
	size := r.in.Size
	if f, ok := rc.(*os.File); ok && size >= 0 && br.Buffered() == min(int(size), 64<<10) {
		ra = f
	} else {
		data, err := io.ReadAll(br)
		rc.Close()
		if err != nil {
			r.s.skip(&LineError{Source: r.in.Name, Msg: fmt.Sprintf("cannot read: %v", err)})
			return
		}
		ra, size, rc = bytes.NewReader(data), int64(len(data)), nil
	}
	j := &job{input: r.input, name: r.in.Name, seq: r.seq, parquet: ra, parquetSize: size}
	if rc != nil {
		j.closer = rc
	}
	r.seq++
	r.send(j)
}

func (r *reader) send(j *job) bool {
	select {
	case r.jobs <- j:
		return true
	case <-r.ctx.Done():
		if j.closer != nil {
			j.closer.Close()
		}
		return false
	}
}

// readText cuts a text stream into blocks of complete lines, finds header
// lines (the first line, or a line after a blank line) and sends the blocks.
// A line too long for the buffer is reported here and skipped up to its
// newline, keeping what follows; a long line that fits in a block is left
// to the worker, which reports it the same way.
func (r *reader) readText(src io.Reader, gz bool) {
	format := r.s.Format
	if format == nil {
		format = DefaultFormat()
	}
	r.line = 1
	bufp := r.pool.Get().(*[]byte)
	buf := (*bufp)[:0]
	first := true
	prevBlank := false
	// How far to fill buf; the first read takes at least the sample
	// sniff looks at.
	target := min(max(r.chunk, sniffLen), cap(buf))
	// An error met while skipping a long line, to handle next.
	var pending error
	for {
		var err error
		if pending != nil {
			err, pending = pending, nil
		} else {
			var n int
			n, err = fill(src, buf[len(buf):target])
			buf = buf[:len(buf)+n]
		}
		eof := err != nil
		if err != nil && err != io.EOF {
			// A truncated or corrupt stream: keep the complete lines
			// read so far, report the rest.
			cut := bytes.LastIndexByte(buf, '\n') + 1
			buf = buf[:cut]
			r.s.skip(&LineError{Source: r.in.Name, Line: r.line + bytes.Count(buf, nl), Msg: describeReadError(err, gz)})
		} else if eof && len(buf) > 0 && buf[len(buf)-1] != '\n' {
			buf = append(buf, '\n') // last line without newline
		}
		if first && gz {
			// What the gzip stream holds; plain input was looked at
			// before.
			kind, why := sniff(buf)
			if kind == kindGzip || kind == kindParquet {
				kind, why = kindNotFlowLog, "compressed data inside gzip"
			}
			if kind != kindText {
				r.s.skip(&LineError{Source: r.in.Name, Msg: "not a flow log file: " + why})
				*bufp = buf[:0]
				r.pool.Put(bufp)
				return
			}
		}
		first = false
		cut := bytes.LastIndexByte(buf, '\n') + 1
		if cut == 0 && !eof {
			// buf holds the start of one line (line r.line).
			if len(buf) > r.s.maxLineLen() {
				r.s.skip(r.s.longLine(r.in.Name, r.line))
				r.line++
				buf, pending = discardLine(src, buf)
				target = min(max(r.chunk, len(buf)+4096), cap(buf))
			} else {
				target = min(len(buf)+r.chunk, cap(buf))
			}
			continue
		}
		data := buf[:cut]
		var start int
		format, start, prevBlank = r.headers(data, format, prevBlank)
		rest := buf[cut:]
		nextp := r.pool.Get().(*[]byte)
		next := append((*nextp)[:0], rest...)
		if start < len(data) {
			give := bufp
			if !r.emit(format, data[start:], func() { *give = (*give)[:0]; r.pool.Put(give) }) {
				return
			}
		} else {
			*bufp = buf[:0]
			r.pool.Put(bufp)
		}
		bufp, buf = nextp, next
		target = min(max(r.chunk, len(buf)+4096), cap(buf))
		if eof {
			break
		}
	}
	*bufp = buf[:0]
	r.pool.Put(bufp)
}

func (s *Scanner) maxLineLen() int {
	if s.MaxLineLen > 0 {
		return s.MaxLineLen
	}
	return defaultMaxLineLen
}

// longLine is the error for a line longer than MaxLineLen, wherever it is
// found.
func (s *Scanner) longLine(source string, line int) *LineError {
	return &LineError{Source: source, Line: line, Msg: fmt.Sprintf("line longer than %d bytes: not a flow log record", s.maxLineLen())}
}

// headers emits the records of a block that come before its header lines
// (the first line of the input, or a line after a blank line), switching
// format at each, and returns the format and offset of the rest of the
// block, and whether the block ends with a blank line.
func (r *reader) headers(data []byte, format *Format, prevBlank bool) (*Format, int, bool) {
	start := 0
	for {
		first := start == 0 && r.line == 1 && r.seq == 0
		h := findHeader(data, start, prevBlank && start == 0 || first, r.headed)
		if h < 0 {
			break
		}
		if first && h == 0 {
			r.headed = true
		}
		end := h + bytes.IndexByte(data[h:], '\n')
		if end-h > r.s.maxLineLen() {
			break // too long for a header: the worker reports it
		}
		f, err := ParseFormat(string(trimCR(data[h:end])))
		if err != nil {
			break // leave it to the worker to report
		}
		if h > start {
			// The buffer goes back with the block's last job, so the
			// records before a header get a copy.
			r.emit(format, bytes.Clone(data[start:h]), nil)
		}
		r.line++ // the header line
		format = f
		start = end + 1
	}
	blank := len(data) >= 2 && data[len(data)-2] == '\n' || len(data) == 1
	return format, start, blank
}

// readMapped cuts a memory-mapped file into blocks without copying it.
func (r *reader) readMapped(m *mapping) {
	format := r.s.Format
	if format == nil {
		format = DefaultFormat()
	}
	r.line = 1
	data := m.data
	limit := r.s.maxLineLen()
	prevBlank := false
	for off := 0; off < len(data); {
		if r.ctx.Err() != nil {
			return
		}
		end := min(off+r.chunk, len(data))
		if i := bytes.LastIndexByte(data[off:end], '\n'); i >= 0 && end < len(data) {
			end = off + i + 1
		} else if i < 0 {
			// The block holds part of one line, longer than a block.
			if j := bytes.IndexByte(data[end:], '\n'); j >= 0 {
				end += j + 1
			} else {
				end = len(data)
			}
			if n := end - off; n > limit && (data[end-1] != '\n' || n-1 > limit) {
				r.s.skip(r.s.longLine(r.in.Name, r.line))
				r.line++
				off = end
				continue
			}
		}
		block := data[off:end]
		if block[len(block)-1] != '\n' {
			// The last line has no newline.
			i := bytes.LastIndexByte(block, '\n') + 1
			if len(block)-i > limit {
				// Too long: report it once the lines before it are sent.
				end = off + i
				block = block[:i]
			} else {
				block = append(bytes.Clone(block), '\n')
			}
		}
		if len(block) > 0 {
			var start int
			format, start, prevBlank = r.headers(block, format, prevBlank)
			if start < len(block) {
				m.refs.Add(1)
				if !r.emit(format, block[start:], m.release) {
					m.release()
					return
				}
			}
		}
		off = end
	}
}

var nl = []byte{'\n'}

// fill reads into p until it is full or the stream ends, and returns the
// stream's own error: io.EOF at a clean end, io.ErrUnexpectedEOF only when
// the stream itself says it was cut short.
func fill(src io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := src.Read(p[n:])
		n += k
		if err != nil {
			return n, err
		}
		if k == 0 {
			continue
		}
	}
	return n, nil
}

func (r *reader) emit(f *Format, data []byte, done func()) bool {
	j := &job{input: r.input, name: r.in.Name, seq: r.seq, format: f, data: data, line: r.line, done: done}
	r.seq++
	r.line += bytes.Count(data, nl)
	return r.send(j)
}

func describeReadError(err error, gz bool) string {
	if gz && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
		return "truncated gzip stream: the rest of the file is lost"
	}
	if gz {
		return fmt.Sprintf("corrupt gzip stream: %v", err)
	}
	return fmt.Sprintf("read error: %v", err)
}

// discardLine reads src up to and including the next newline, using buf's
// space, and returns what was read after the newline, at the start of buf,
// with the error that ended the reading, if any.
func discardLine(src io.Reader, buf []byte) ([]byte, error) {
	buf = buf[:cap(buf)]
	for {
		n, err := src.Read(buf)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return buf[:copy(buf, buf[i+1:n])], err
		}
		if err != nil {
			return buf[:0], err
		}
	}
}

// findHeader returns the offset of the first header line in data at or after
// start that follows a blank line (or is at start itself when atStart), or -1.
// Only inputs that began with a header (S3 delivery) are searched for blank
// lines: the search costs as much as a tenth of the decoding, and
// CloudWatch text has neither; a header elsewhere is still found by the
// decoder, which switches format for the rest of its block.
func findHeader(data []byte, start int, atStart, search bool) int {
	if atStart && start < len(data) && looksLikeHeader(lineAt(data, start)) {
		return start
	}
	if !search {
		return -1
	}
	for i := start; ; {
		k := bytes.Index(data[i:], []byte("\n\n"))
		if k < 0 {
			return -1
		}
		h := i + k + 2
		for h < len(data) && data[h] == '\n' {
			h++
		}
		if h >= len(data) {
			return -1
		}
		if looksLikeHeader(lineAt(data, h)) {
			return h
		}
		i = h
	}
}

func lineAt(data []byte, i int) []byte {
	end := bytes.IndexByte(data[i:], '\n')
	if end < 0 {
		return trimCR(data[i:])
	}
	return trimCR(data[i : i+end])
}

func trimCR(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\r' {
		return p[:n-1]
	}
	return p
}

// worker decodes jobs into its own batch.
type worker struct {
	id  int
	s   *Scanner
	fn  func(int, *Batch) error
	ord *orderer
	b   Batch
	// The structural index of the current block (see index).
	sp, nl []uint64
}

func (w *worker) release(j *job, pool *sync.Pool) {
	if j.done != nil {
		j.done()
	}
	if j.closer != nil {
		j.closer.Close()
	}
}

func (w *worker) do(ctx context.Context, j *job) error {
	if j.parquet != nil {
		part := 0
		err := decodeParquet(ctx, j.name, j.parquet, j.parquetSize, parquetBatchRows, w.s.Errors, func(b *Batch) error {
			b.Input, b.Seq, b.Part = j.input, j.seq, part
			part++
			return w.fn(w.id, b)
		})
		if err != nil && ctx.Err() == nil {
			// A broken file is bad input, not a reason to stop the run.
			w.s.skip(&LineError{Source: j.name, Msg: strings.TrimPrefix(err.Error(), j.name+": ")})
			err = nil
		}
		w.jobDone(j, part)
		return err
	}
	parts, err := w.splitText(j)
	w.jobDone(j, parts)
	return err
}

func (w *worker) jobDone(j *job, parts int) {
	if w.ord != nil {
		w.ord.jobDone(j.input, j.seq, parts)
	}
}
