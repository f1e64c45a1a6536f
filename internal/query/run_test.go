package query

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// memInput is an input held in memory.
func memInput(name, text string) flowlog.Input {
	return flowlog.Input{Name: name, Size: int64(len(text)), Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(text)), nil
	}}
}

// runQuery runs src over the texts and returns the result.
func runQuery(t *testing.T, src string, texts ...string) *Table {
	t.Helper()
	p, err := Compile(src, Options{MaxRows: 10000})
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	var inputs []flowlog.Input
	for i, s := range texts {
		inputs = append(inputs, memInput(string(rune('a'+i))+".log", s))
	}
	skipped := &flowlog.Skipped{}
	sc := &flowlog.Scanner{Workers: 2, ChunkSize: 256, Errors: skipped}
	res, err := p.Run(context.Background(), sc, inputs)
	if err != nil {
		t.Fatalf("run %q: %v", src, err)
	}
	return res
}

func tableText(t *Table) string {
	var b bytes.Buffer
	b.WriteString(strings.Join(t.Names, ","))
	b.WriteByte('\n')
	for _, r := range t.Rows {
		for i, v := range r {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(v.String())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

const sample = `2 123456789010 eni-1 198.51.100.7 10.0.0.5 50000 22 6 1 40 1700000000 1700000060 REJECT OK
2 123456789010 eni-1 198.51.100.7 10.0.0.5 50001 23 6 1 40 1700000000 1700000060 REJECT OK
2 123456789010 eni-1 203.0.113.9 10.0.0.5 40000 443 6 10 4000 1700000000 1700000060 ACCEPT OK
2 123456789010 eni-1 203.0.113.9 10.0.0.5 40001 22 6 1 40 1700000060 1700000120 REJECT OK
2 123456789010 eni-1 192.0.2.1 10.0.0.5 40001 22 6 1 40 1700000060 1700000120 REJECT OK
2 123456789010 eni-1 198.51.100.7 10.0.0.5 50002 3389 6 1 40 1700000120 1700000180 REJECT OK
2 123456789010 eni-1 - - - - - - - 1700000120 1700000180 - NODATA
`

func TestSeedSmoke(t *testing.T) {
	got := tableText(runQuery(t, `filter action="REJECT" | stats count() by srcaddr | filter count >= 2 | sort count desc`, sample))
	want := "srcaddr,count()\n198.51.100.7,3\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
