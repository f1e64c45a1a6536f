package flowlog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// goodLine is a v2 record of exactly goodLineLen bytes with its newline.
func goodLine(i int) string {
	rest := fmt.Sprintf(" 198.51.%d.%d 10.0.1.10 %d 443 6 12 5232 1700000000 1700000060 ACCEPT OK\n", i/256%256, i%256, 40000+i%20000)
	return fmt.Sprintf("2 123456789010 eni-%0*d", 110-len("2 123456789010 eni-")-len(rest), i) + rest
}

var goodLineLen = len(goodLine(0))

// recordOfLen is a v2 record (14 fields) of n bytes without its newline:
// a record the decoder would accept if it were not too long.
func recordOfLen(n int) string {
	const tail = " 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK"
	const head = "2 123456789010 eni-"
	return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
}

// scanned is what a scan found: the line number of every record kept, and
// every skipped line or input.
type scanned struct {
	lines []int
	skips []*LineError
}

func scanLines(t *testing.T, s *Scanner, inputs ...Input) scanned {
	t.Helper()
	sk := &Skipped{Keep: 1 << 20}
	s.Errors = sk
	var got scanned
	err := ScanOrdered(context.Background(), s, inputs, func(_ int, b *Batch) []int {
		b.Validate()
		var lines []int
		for i := 0; i < b.N; i++ {
			if !b.Bad(i) {
				lines = append(lines, b.Line(i))
			}
		}
		return lines
	}, func(l []int) error { got.lines = append(got.lines, l...); return nil })
	if err != nil {
		t.Fatal(err)
	}
	got.skips = sk.First()
	slices.SortFunc(got.skips, func(a, b *LineError) int { return a.Line - b.Line })
	return got
}

// pipeReader hands out at most 1000 bytes a call, as a pipe does.
type pipeReader struct{ r io.Reader }

func (p pipeReader) Read(b []byte) (int, error) { return p.r.Read(b[:min(len(b), 1000)]) }

// inputKinds returns the same bytes as each kind of input the scanner
// reads differently: a stream of known size, standard input (unknown size,
// short reads), gzip, a file read through the stream path, and a file
// memory-mapped (the caller makes it large enough).
func inputKinds(t *testing.T, data []byte) map[string]Input {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "f.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	kinds := map[string]Input{
		"stream": bytesInput("stream", data),
		"stdin": {Name: "-", Size: -1, Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(pipeReader{bytes.NewReader(data)}), nil
		}},
		"gzip": bytesInput("f.log.gz", gz.Bytes()),
		"file": {Name: path, Size: int64(len(data)), Open: func(context.Context) (io.ReadCloser, error) { return os.Open(path) }},
	}
	return kinds
}

// TestLongLineKeepsTheLinesAfterIt puts one long line, at several offsets
// from the block boundaries, among good lines and a malformed one, on every
// kind of input, for line lengths around the limit, the block size and the
// stream buffer's capacity. A line up to defaultMaxLineLen bytes is a record; a
// longer one is one skipped line that names the limit; every line after it
// is read, with its own line number.
func TestLongLineKeepsTheLinesAfterIt(t *testing.T) {
	for _, chunk := range []int{4096, defaultChunkSize} {
		capacity := chunk + 2*defaultMaxLineLen
		lengths := []int{defaultMaxLineLen - 1, defaultMaxLineLen, defaultMaxLineLen + 1, chunk - 1, chunk, chunk + 1,
			capacity - 1, capacity, capacity + 1, 3 << 20}
		for _, long := range lengths {
			if long < 200 {
				continue
			}
			// The long line starts at the beginning of the input, just
			// before a block boundary, and in the middle of a block.
			for _, before := range []int{0, chunk/goodLineLen - 1, chunk/goodLineLen + 3} {
				for _, last := range []bool{false, true} {
					name := fmt.Sprintf("chunk=%d/len=%d/after=%d/last=%v", chunk, long, before, last)
					t.Run(name, func(t *testing.T) {
						testLongLine(t, chunk, long, before, last, false)
					})
				}
			}
		}
	}
}

// TestLongLineMapped is TestLongLineKeepsTheLinesAfterIt on files large
// enough to be memory-mapped.
func TestLongLineMapped(t *testing.T) {
	for _, chunk := range []int{4096, defaultChunkSize} {
		for _, long := range []int{defaultMaxLineLen, defaultMaxLineLen + 1, chunk + 1, 3 << 20, 6 << 20} {
			for _, last := range []bool{false, true} {
				before := minMapSize/goodLineLen + 5
				t.Run(fmt.Sprintf("chunk=%d/len=%d/last=%v", chunk, long, last), func(t *testing.T) {
					testLongLine(t, chunk, long, before, last, true)
				})
			}
		}
	}
}

func testLongLine(t *testing.T, chunk, long, before int, last, mapped bool) {
	var text strings.Builder
	var wantLines []int
	line := 0
	add := func(s string) {
		line++
		wantLines = append(wantLines, line)
		text.WriteString(s)
	}
	for i := 0; i < before; i++ {
		add(goodLine(i))
	}
	longAt := line + 1
	line++
	text.WriteString(recordOfLen(long))
	if long <= defaultMaxLineLen {
		wantLines = append(wantLines, longAt)
	}
	badAt := 0
	if !last {
		text.WriteString("\n")
		for i := 0; i < 50; i++ {
			add(goodLine(before + i))
		}
		line++
		badAt = line
		text.WriteString("2 123456789010 eni-1 10.0.0.1\n")
		for i := 0; i < 5; i++ {
			add(goodLine(i))
		}
	}
	data := []byte(text.String())
	kinds := inputKinds(t, data)
	if mapped {
		if len(data) < minMapSize {
			t.Fatalf("%d bytes is too small to be mapped", len(data))
		}
		kinds = map[string]Input{"mapped": kinds["file"]}
	} else if len(data) >= minMapSize {
		delete(kinds, "file") // TestLongLineMapped covers it
	}
	for kind, in := range kinds {
		got := scanLines(t, &Scanner{ChunkSize: chunk, Workers: 2}, in)
		var wantSkips []string
		if long > defaultMaxLineLen {
			wantSkips = append(wantSkips, fmt.Sprintf("%s:%d: line longer than %d bytes", in.Name, longAt, defaultMaxLineLen))
		}
		if badAt > 0 {
			wantSkips = append(wantSkips, fmt.Sprintf("%s:%d: expected 14 fields, found 4", in.Name, badAt))
		}
		var gotSkips []string
		for _, e := range got.skips {
			gotSkips = append(gotSkips, e.Error())
		}
		if len(gotSkips) != len(wantSkips) {
			t.Errorf("%s: skipped %d, want %d:\n%s", kind, len(gotSkips), len(wantSkips), strings.Join(gotSkips, "\n"))
		} else {
			for i := range wantSkips {
				if !strings.HasPrefix(gotSkips[i], wantSkips[i]) {
					t.Errorf("%s: skipped %q, want %q…", kind, gotSkips[i], wantSkips[i])
				}
			}
		}
		if !slices.Equal(got.lines, wantLines) {
			t.Errorf("%s: %d records, want %d; first difference: %s", kind, len(got.lines), len(wantLines), firstDiff(got.lines, wantLines))
		}
	}
}

func firstDiff(got, want []int) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return "record " + strconv.Itoa(i) + " is line " + strconv.Itoa(got[i]) + ", want " + strconv.Itoa(want[i])
		}
	}
	return "lengths differ"
}

// TestTruncatedGzipInsideLongLine cuts a gzip file inside a long line: the
// records before it are kept, the long line is one skip at its number, and
// the loss of the rest is one skip naming the line where it starts.
func TestTruncatedGzipInsideLongLine(t *testing.T) {
	var text strings.Builder
	for i := 0; i < 100; i++ {
		text.WriteString(goodLine(i))
	}
	// Random letters, so that the long line takes room in the gzip file.
	r := rand.New(rand.NewPCG(3, 4))
	long := make([]byte, 3<<20)
	for i := range long {
		long[i] = 'a' + byte(r.IntN(26))
	}
	text.Write(long)
	text.WriteString("\n")
	for i := 0; i < 100; i++ {
		text.WriteString(goodLine(i))
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(text.String()))
	zw.Close()
	cut := gz.Bytes()[:gz.Len()*2/3] // inside the long line
	got := scanLines(t, &Scanner{}, bytesInput("cut.gz", cut))
	if len(got.lines) != 100 || got.lines[99] != 100 {
		t.Errorf("%d records, want lines 1–100", len(got.lines))
	}
	want := []string{"cut.gz:101: line longer than 65536 bytes", "cut.gz:102: truncated gzip stream"}
	if len(got.skips) != 2 || !strings.HasPrefix(got.skips[0].Error(), want[0]) || !strings.HasPrefix(got.skips[1].Error(), want[1]) {
		t.Errorf("skipped %v, want %q…", got.skips, want)
	}
}
