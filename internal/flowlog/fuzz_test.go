package flowlog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// FuzzScanText feeds arbitrary bytes to the text decoder, with the default
// line limit and a tiny one: it must never panic, every record it returns
// must re-encode to JSON, and, checked line by line against the input, every
// line must be exactly one of: a record with its own line number, a skipped
// line with its own line number, or blank (header lines may be neither).
// A lost line, a line counted twice or a wrong line number fails.
func FuzzScanText(f *testing.F) {
	f.Add([]byte("2 123456789010 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n"))
	f.Add([]byte("version srcaddr dstaddr action\n2 10.0.0.1 2001:db8::1 REJECT\n\nsrcaddr\n10.0.0.1\n"))
	f.Add([]byte("2 123456789010 eni-1 - - - - - - - 1700000000 1700000060 - NODATA\r\n2  1 x\n"))
	f.Add([]byte("\x1f\x8b\x08\x00garbage"))
	f.Add([]byte("PAR1\x00\x00PAR1"))
	f.Add([]byte("srcaddr action\n10.0.0.1 ACC\x00EPT\n10.0.0.2 ACCEPT\n10.0.0.3 ACCEPT\n"))
	f.Add([]byte("srcaddr action\n10.0.0.1 " + strings.Repeat("x", 300) + "\n10.0.0.2 ACCEPT\n10.0.0.3 REJECT"))
	f.Add([]byte("srcaddr srcport\n::ffff:10.0.0.1 65536\n10.0.0.2 65535\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, sc := range []Scanner{{Workers: 2}, {Workers: 2, ChunkSize: 7, MaxLineLen: 50}} {
			sk := &Skipped{Keep: 1 << 20}
			sc.Errors = sk
			counts := map[int]int{}
			var out bytes.Buffer
			err := ScanOrdered(context.Background(), &sc, []Input{bytesInput("fuzz", data)}, func(_ int, b *Batch) []byte {
				b.Validate()
				var buf []byte
				for i := 0; i < b.N; i++ {
					if b.Bad(i) {
						continue
					}
					if b.Text() && len(b.RawLine(i)) == 0 {
						t.Errorf("record %d has an empty line", i)
					}
					counts[b.Line(i)]++
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
			whole := false
			for _, e := range sk.First() {
				if e.Line == 0 {
					whole = true // the input as a whole was refused
				}
				counts[e.Line]++
			}
			if !whole {
				checkLineByLine(t, data, counts)
			}
		}
	})
}

// checkLineByLine checks the counts of records and skips per line number
// against the lines of data.
func checkLineByLine(t *testing.T, data []byte, counts map[int]int) {
	t.Helper()
	lines := strings.Split(string(data), "\n")
	if len(data) > 0 && data[len(data)-1] == '\n' {
		lines = lines[:len(lines)-1]
	}
	for n, c := range counts {
		if n < 1 || n > len(lines) {
			t.Fatalf("line %d reported (%d times); the input has %d lines", n, c, len(lines))
		}
	}
	for i, l := range lines {
		trimmed := strings.TrimRight(l, "\r \t")
		c := counts[i+1]
		switch {
		case trimmed == "":
			if c != 0 {
				t.Fatalf("blank line %d counted %d times", i+1, c)
			}
		case looksLikeHeader([]byte(trimmed)) || looksLikeHeader(trimCR([]byte(l))) || looksLikeHeader(foldSpaces([]byte(trimmed))):
			if c > 1 {
				t.Fatalf("header-like line %d counted %d times", i+1, c)
			}
		case c != 1:
			t.Fatalf("line %d (%.40q) counted %d times, want once", i+1, l, c)
		}
	}
}

// FuzzScanLines builds inputs line by line from the fuzzer's bytes: good
// records, lines longer than the limit by any amount, lines of exactly the
// limit, lines with a NUL byte (first or not), blank lines; it reads them as a stream, as
// standard input (short reads) and gzip, with any block size, and compares
// the records kept and the lines skipped, by line number, with what each
// line is.
func FuzzScanLines(f *testing.F) {
	f.Add([]byte{0, 4, 0, 5, 0, 7, 6, 1}, uint8(7), uint8(10))
	f.Add([]byte{5, 0, 0, 0, 0, 0}, uint8(200), uint8(0))
	f.Add([]byte{4, 12, 20, 252, 0}, uint8(1), uint8(255))
	f.Add([]byte{0, 0, 5, 0, 0, 5, 0, 4, 4, 4}, uint8(60), uint8(60))
	f.Fuzz(func(t *testing.T, spec []byte, chunk, limit uint8) {
		maxLine := 40 + int(limit)
		var text strings.Builder
		var wantLines, wantSkips []int
		lines, nuls := 0, 0
		for _, b := range spec {
			lines++
			switch b % 8 {
			case 0, 1, 2, 3:
				fmt.Fprintf(&text, "10.0.%d.%d note-%d ACCEPT\n", lines/256%256, lines%256, b)
				wantLines = append(wantLines, lines)
			case 4:
				n := maxLine + 1 + int(b>>3)*53
				text.WriteString("10.0.0.1 " + strings.Repeat("x", n-len("10.0.0.1  ACCEPT")) + " ACCEPT\n")
				wantSkips = append(wantSkips, lines)
			case 5:
				text.WriteString("10.0.0.1 no\x00te ACCEPT\n")
				wantSkips = append(wantSkips, lines)
				nuls++
			case 6:
				text.WriteString("\n")
			case 7:
				text.WriteString("10.0.0.1 " + strings.Repeat("y", maxLine-len("10.0.0.1  ACCEPT")) + " ACCEPT\n")
				wantLines = append(wantLines, lines)
			}
		}
		data := []byte(text.String())
		if len(data) > sniffLen {
			t.Skip("longer than the sample that tells text from binary data")
		}
		// The input is taken for binary data when more than half its
		// lines hold a NUL; otherwise each such line is skipped alone.
		binary := 2*nuls > lines
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(data)
		zw.Close()
		inputs := map[string]Input{
			"stream": bytesInput("stream", data),
			"gzip":   bytesInput("gzip", gz.Bytes()),
			"stdin": {Name: "-", Size: -1, Open: func(context.Context) (io.ReadCloser, error) {
				return io.NopCloser(pipeReader{bytes.NewReader(data)}), nil
			}},
		}
		for kind, in := range inputs {
			s := &Scanner{Workers: 2, ChunkSize: 1 + int(chunk), MaxLineLen: maxLine, Format: MustParseFormat("srcaddr note action")}
			got := scanLines(t, s, in)
			if binary {
				if len(got.lines) != 0 || len(got.skips) != 1 || !strings.Contains(got.skips[0].Msg, "binary data") {
					t.Fatalf("%s: %d of %d lines with NUL: records at %v, skipped %v; want the input refused", kind, nuls, lines, got.lines, got.skips)
				}
				continue
			}
			var skips []int
			for _, e := range got.skips {
				skips = append(skips, e.Line)
			}
			if !slices.Equal(got.lines, wantLines) || !slices.Equal(skips, wantSkips) {
				t.Fatalf("%s: records at %v, skipped %v; want records at %v, skipped %v (%v)", kind, got.lines, skips, wantLines, wantSkips, got.skips)
			}
		}
	})
}
