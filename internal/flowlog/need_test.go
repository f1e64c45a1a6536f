package flowlog

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
)

// scanDump scans data with s and writes, in input order, every record as
// its line number, its whole line (@message) and then, after the whole
// line, the fields in reads (as a consumer that reads them would), followed
// by every skipped line as its error.
func scanDump(t *testing.T, s Scanner, data []byte, reads []Field) string {
	t.Helper()
	sk := &Skipped{Keep: 1 << 20}
	s.Errors = sk
	var out bytes.Buffer
	err := ScanOrdered(context.Background(), &s, []Input{bytesInput("in", data)}, func(_ int, b *Batch) []byte {
		var buf []byte
		// Convert the typed columns first, as the query engine does, so
		// that malformed values are found the same way.
		for _, fld := range reads {
			pos := b.Format.Index(fld)
			switch {
			case pos < 0:
			case fld.Kind() == KindUint:
				b.Uints(pos, nil)
			case fld.Kind() == KindAddr:
				b.Addrs(pos, nil)
			case fld.Kind() == KindAction:
				b.Actions(pos, nil)
			}
		}
		for i := 0; i < b.N; i++ {
			if b.Bad(i) {
				continue
			}
			buf = fmt.Appendf(buf, "%d %q", b.Line(i), b.RawLine(i))
			for _, fld := range reads {
				if pos := b.Format.Index(fld); pos >= 0 {
					s, ok := b.String(i, pos)
					buf = fmt.Appendf(buf, " %s=%q/%v", fld, s, ok)
				}
			}
			buf = append(buf, '\n')
		}
		return buf
	}, func(p []byte) error { out.Write(p); return nil })
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	for _, e := range sk.First() {
		fmt.Fprintf(&out, "skip %+v\n", *e)
	}
	return out.String()
}

// fieldChoices are the Scanner.Fields a consumer may pass: none (only the
// whole line, as `parse @message`), the first field, fields in the middle
// (the pairs query), the last field, and every field.
var fieldChoices = [][]Field{
	{},
	{FieldVersion},
	{FieldSrcAddr, FieldDstAddr, FieldBytes},
	{FieldAction},
	{FieldLogStatus},
	{FieldVersion, FieldAccountID, FieldInterfaceID, FieldSrcAddr, FieldDstAddr, FieldSrcPort, FieldDstPort,
		FieldProtocol, FieldPackets, FieldBytes, FieldStart, FieldEnd, FieldAction, FieldLogStatus},
}

// TestScanFieldsSameRecords checks that locating only the fields a consumer
// reads keeps and skips exactly the lines that locating every field does,
// with the same errors (line, column, field, text), for every kind of
// malformed line; and that a field read later than declared (the batch
// then locates every field) has the right text.
func TestScanFieldsSameRecords(t *testing.T) {
	input := []byte("" +
		"2 123456789010 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n" +
		"2 123456789010 eni-1 10.0.0.3 10.0.0.4 443 49152 6 10 840 1700000000 1700000060 REJECT OK\r\n" +
		"2 123456789010 eni-1  10.0.0.5 10.0.0.6 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n" + // two spaces: folded
		" 2 123456789010 eni-1 10.0.0.5 10.0.0.6 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n" + // a space first
		"2 123456789010 eni-1 10.0.0.7 10.0.0.8 443 49152 6 10 840 1700000000 1700000060 ACCEPT\n" + // a field short
		"2 123456789010 eni-1 10.0.0.7 10.0.0.8 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK extra\n" +
		"2 123456789010 eni-1 10.0.0.9 10.0.0.10 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK   \n" + // trailing spaces
		"2 123456789010 eni-1 300.0.0.1 10.0.0.2 443 49152 6 10 84x 1700000000 1700000060 MAYBE OK\n" + // bad values
		"2 123456789010 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACC\x00EPT OK\n" +
		"\n" +
		"2 123456789010 eni-1 - - - - - - - 1700000000 1700000060 - NODATA\n" +
		"version srcaddr dstaddr bytes action\n" + // a header line without a blank line before it
		"2 10.0.0.11 10.0.0.12 99 ACCEPT\n" +
		"2 10.0.0.11  10.0.0.12 99 ACCEPT\n" +
		"2 10.0.0.11 10.0.0.12 99 ACCEPT 1\n" +
		"2 10.0.0.13 ::ffff:10.0.0.14 7 REJECT\n")
	for _, sc := range []Scanner{{Workers: 2}, {Workers: 2, ChunkSize: 97, MaxLineLen: 100}} {
		for _, reads := range fieldChoices {
			want := scanDump(t, sc, input, reads)
			sc.Fields = reads
			got := scanDump(t, sc, input, reads)
			sc.Fields = nil
			if got != want {
				t.Errorf("Fields %v, chunk %d: decoded\n%s\nwant (every field located)\n%s", reads, sc.ChunkSize, got, want)
			}
			// Read every field though only some were declared.
			sc.Fields = reads
			got = scanDump(t, sc, input, fieldChoices[len(fieldChoices)-1])
			sc.Fields = nil
			if want := scanDump(t, sc, input, fieldChoices[len(fieldChoices)-1]); got != want {
				t.Errorf("Fields %v, every field read: decoded\n%s\nwant\n%s", reads, got, want)
			}
		}
	}
}

// FuzzScanFields is TestScanFieldsSameRecords on any input: with every
// choice of Scanner.Fields the decoder must keep, skip and report exactly
// the lines it does when it locates every field.
func FuzzScanFields(f *testing.F) {
	f.Add([]byte("2 123456789010 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n"))
	f.Add([]byte("version srcaddr dstaddr action\n2 10.0.0.1 2001:db8::1 REJECT\n\nsrcaddr\n10.0.0.1\n"))
	f.Add([]byte("2 123456789010 eni-1 - - - - - - - 1700000000 1700000060 - NODATA\r\n2  1 x\n 2 1 2 3\n"))
	f.Add([]byte("srcaddr action bytes\n10.0.0.1 ACC\x00EPT 1\n10.0.0.2  ACCEPT 2\n10.0.0.3 REJECT  \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, sc := range []Scanner{{Workers: 1}, {Workers: 2, ChunkSize: 7, MaxLineLen: 50}} {
			for _, reads := range fieldChoices[:5] {
				want := scanDump(t, sc, data, reads)
				sc.Fields = reads
				got := scanDump(t, sc, data, reads)
				sc.Fields = nil
				if got != want {
					t.Fatalf("Fields %v: decoded\n%s\nwant (every field located)\n%s", reads, got, want)
				}
			}
		}
	})
}

// TestNeedFor checks how many spaces the decoder locates per line.
func TestNeedFor(t *testing.T) {
	v2 := DefaultFormat()
	for _, tc := range []struct {
		fields []Field
		want   int
	}{
		{nil, maxFields},
		{[]Field{}, 0},
		{[]Field{FieldVersion}, 1},
		{[]Field{FieldBytes, FieldSrcAddr}, 10},
		{[]Field{FieldTCPFlags}, 0}, // not in the format
		{[]Field{FieldAction}, maxFields},
		{[]Field{FieldLogStatus}, maxFields},
	} {
		if got := needFor(v2, tc.fields); got != tc.want {
			t.Errorf("needFor(v2, %v) = %d, want %d", tc.fields, got, tc.want)
		}
	}
	if !slices.Equal(fieldChoices[0], []Field{}) || fieldChoices[0] == nil {
		t.Fatal("the first choice must be an empty, non-nil list")
	}
}
