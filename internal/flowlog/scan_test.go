package flowlog

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func bytesInput(name string, data []byte) Input {
	return Input{Name: name, Size: int64(len(data)), Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

func gzipBytes(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

// collect scans inputs and returns every record as JSON, in input order,
// and what was skipped.
func collect(t *testing.T, s *Scanner, inputs ...Input) (string, *Skipped) {
	t.Helper()
	sk := &Skipped{Keep: 100}
	s.Errors = sk
	var out strings.Builder
	err := ScanOrdered(context.Background(), s, inputs, func(_ int, b *Batch) []byte {
		b.Validate()
		var buf []byte
		for i := 0; i < b.N; i++ {
			if !b.Bad(i) {
				buf = append(b.AppendJSON(buf, i), '\n')
			}
		}
		return buf
	}, func(p []byte) error { out.Write(p); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), sk
}

func TestGzipCompleteAndTruncated(t *testing.T) {
	text := benchText(5000)
	gz := gzipBytes(t, text)
	want, _ := collect(t, &Scanner{}, bytesInput("plain", []byte(text)))
	got, sk := collect(t, &Scanner{ChunkSize: 4096}, bytesInput("f.gz", gz))
	if got != want || sk.Count() != 0 {
		t.Fatalf("complete gzip: %d skipped (%v), output equal: %v", sk.Count(), sk.First(), got == want)
	}
	// Cut the file in the middle: the records before the cut are kept,
	// the loss is reported once, with the file's name.
	got, sk = collect(t, &Scanner{ChunkSize: 4096}, bytesInput("cut.gz", gz[:len(gz)/2]))
	if sk.Count() != 1 || !strings.Contains(sk.First()[0].Error(), "cut.gz") || !strings.Contains(sk.First()[0].Error(), "truncated gzip") {
		t.Fatalf("truncated gzip: skipped %d: %v", sk.Count(), sk.First())
	}
	if n := strings.Count(got, "\n"); n == 0 || n >= 5000 || !strings.HasPrefix(want, got) {
		t.Errorf("truncated gzip kept %d records; want a prefix of the file", n)
	}
}

// TestSameRecordsWhateverTheChunking checks that chunk size and worker count
// change nothing in what is decoded, including header lines that change the
// format after a blank line.
func TestSameRecordsWhateverTheChunking(t *testing.T) {
	text := "version srcaddr dstaddr action\n2 10.0.0.1 10.0.0.2 ACCEPT\n2 10.0.0.3 10.0.0.4 REJECT\n\n" +
		"srcaddr dstport log-status\n10.0.0.9 22 OK\n10.0.0.8 - NODATA\n" + benchText(0)
	for i := 0; i < 300; i++ {
		text += "10.0.0.7 443 OK\n"
	}
	want, _ := collect(t, &Scanner{Workers: 1, ChunkSize: 1 << 20}, bytesInput("a", []byte(text)))
	if !strings.Contains(want, `{"srcaddr":"10.0.0.8","log-status":"NODATA"}`) || strings.Count(want, "\n") != 304 {
		t.Fatalf("unexpected decoding:\n%.400s", want)
	}
	for _, chunk := range []int{8, 16, 64, 100, 1000} {
		for _, w := range []int{1, 2, 4} {
			got, sk := collect(t, &Scanner{Workers: w, ChunkSize: chunk}, bytesInput("a", []byte(text)))
			if got != want || sk.Count() != 0 {
				t.Errorf("chunk %d workers %d: output differs (skipped %d: %v)", chunk, w, sk.Count(), sk.First())
			}
		}
	}
}

func TestNotAFlowLog(t *testing.T) {
	_, sk := collect(t, &Scanner{},
		bytesInput("bin", []byte("\x00\x01\x02garbage\n")),
		bytesInput("j.json", []byte(`{"logEvents": []}`)))
	if sk.Count() != 2 {
		t.Fatalf("skipped %d: %v", sk.Count(), sk.First())
	}
	for _, e := range sk.First() {
		if !strings.Contains(e.Error(), "not a flow log file") {
			t.Errorf("unclear error: %v", e)
		}
	}
}

// TestScanWorkersSeeEveryRecord checks the unordered scan delivers every
// record exactly once.
func TestScanWorkersSeeEveryRecord(t *testing.T) {
	text := benchText(20000)
	var mu sync.Mutex
	n := 0
	err := (&Scanner{Workers: 3, ChunkSize: 1000}).Scan(context.Background(),
		[]Input{bytesInput("a", []byte(text)), bytesInput("b", gzipBytes(t, text))},
		func(_ int, b *Batch) error { mu.Lock(); n += b.N; mu.Unlock(); return nil })
	if err != nil || n != 40000 {
		t.Fatalf("records %d, err %v", n, err)
	}
}

// TestMappedFileSameAsStream checks that a large file read through a
// memory mapping decodes exactly as the same bytes read as a stream:
// header changes, a last line without newline, and double spaces folded in
// place (the mapping is copy-on-write: the file must not change).
func TestMappedFileSameAsStream(t *testing.T) {
	text := benchText(40000) + "\nsrcaddr dstport\n10.0.0.1  22\n" + benchText(0) + "10.0.0.2 23"
	text = strings.Replace(text, "\n", "\n\n", 1)
	for len(text) < 2*minMapSize {
		text = "version srcaddr dstport action\n" + strings.Repeat("2 10.0.0.9 443 ACCEPT\n", minMapSize/22) + "\n" + text
	}
	path := t.TempDir() + "/big.log"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	file := Input{Name: path, Size: int64(len(text)), Open: func(context.Context) (io.ReadCloser, error) { return os.Open(path) }}
	want, wsk := collect(t, &Scanner{ChunkSize: 1 << 16}, bytesInput(path, []byte(text)))
	got, gsk := collect(t, &Scanner{ChunkSize: 1 << 16}, file)
	if got != want || gsk.Count() != wsk.Count() {
		t.Fatalf("mapped file decodes differently: %d vs %d bytes, skipped %d vs %d", len(got), len(want), gsk.Count(), wsk.Count())
	}
	if !strings.HasSuffix(got, "{\"srcaddr\":\"10.0.0.1\",\"dstport\":22}\n{\"srcaddr\":\"10.0.0.2\",\"dstport\":23}\n") {
		t.Errorf("tail: %q", got[len(got)-200:])
	}
	after, _ := os.ReadFile(path)
	if string(after) != text {
		t.Error("the file changed")
	}
}

// TestHeaderAfterBlankLineWithoutHeaderFirst: an input that does not begin
// with a header (CloudWatch text) is not searched for blank lines, but a
// header line inside a block still switches the format for the rest of it.
func TestHeaderAfterBlankLineWithoutHeaderFirst(t *testing.T) {
	text := benchText(3) + "\nsrcaddr dstport\n10.0.0.1 22\n10.0.0.2 23\n"
	got, sk := collect(t, &Scanner{}, bytesInput("a", []byte(text)))
	if sk.Count() != 0 || strings.Count(got, "\n") != 5 || !strings.HasSuffix(got, `{"srcaddr":"10.0.0.2","dstport":23}`+"\n") {
		t.Errorf("skipped %d (%v):\n%s", sk.Count(), sk.First(), got)
	}
}

// TestEmptyFieldAnywhere puts an empty field (two spaces in a row, or a
// space first) at every position of lines whose lengths move it across the
// decoder's 64-byte words: each such line is reported and skipped, and the
// good lines around them are kept.
func TestEmptyFieldAnywhere(t *testing.T) {
	good := "2 123456789010 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK"
	fields := strings.Fields(good)
	var text strings.Builder
	bad := 0
	for pad := 0; pad < 70; pad++ {
		for i := range fields {
			f := append([]string(nil), fields...)
			f[1] = strings.Repeat("1", 1+pad) // move the fields along the line
			f[i] = ""
			text.WriteString(strings.Join(f, " ") + "\n")
			bad++
			text.WriteString(" " + good + "\n") // a space first
			bad++
			text.WriteString(good + "\n")
		}
	}
	got, sk := collect(t, &Scanner{ChunkSize: 4096}, bytesInput("e", []byte(text.String())))
	if sk.Count() != int64(bad) {
		t.Errorf("skipped %d lines, want %d (first: %v)", sk.Count(), bad, sk.First())
	}
	if n := strings.Count(got, "\n"); n != 70*len(fields) {
		t.Errorf("kept %d records, want %d", n, 70*len(fields))
	}
}
