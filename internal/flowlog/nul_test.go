package flowlog

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestNULLineIsOneMalformedLine puts a NUL byte in the first line, in a
// later line and in the last line of an input, on every kind of input:
// each such line is one skipped line reported with its line and column,
// and every other record is kept.
func TestNULLineIsOneMalformedLine(t *testing.T) {
	for _, n := range []int{7, 2000, minMapSize/goodLineLen + 10} {
		var text strings.Builder
		var wantLines []int
		nulLines := map[int]bool{1: true, n / 2: true, n: true}
		for i := 1; i <= n; i++ {
			l := goodLine(i)
			if nulLines[i] {
				l = l[:20] + "\x00" + l[21:]
			} else {
				wantLines = append(wantLines, i)
			}
			text.WriteString(l)
		}
		kinds := inputKinds(t, []byte(text.String()))
		for kind, in := range kinds {
			t.Run(fmt.Sprintf("%d/%s", n, kind), func(t *testing.T) {
				got := scanLines(t, &Scanner{ChunkSize: 4096}, in)
				if !slices.Equal(got.lines, wantLines) {
					t.Errorf("%d records, want %d; %s", len(got.lines), len(wantLines), firstDiff(got.lines, wantLines))
				}
				var want []string
				for _, l := range []int{1, n / 2, n} {
					want = append(want, fmt.Sprintf("%s:%d:21: NUL byte in line", in.Name, l))
				}
				if len(got.skips) != len(want) {
					t.Fatalf("skipped %d, want %d: %v", len(got.skips), len(want), got.skips)
				}
				for i, e := range got.skips {
					if !strings.HasPrefix(e.Error(), want[i]) {
						t.Errorf("skipped %q, want %q…", e, want[i])
					}
				}
			})
		}
	}
}

// TestBinaryInputIsNotText checks that inputs that are not text are still
// recognised as a whole, whatever their size: random bytes, an executable's
// NUL-padded header, UTF-16 text.
func TestBinaryInputIsNotText(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 200_000)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	random[0] = 'x' // not a gzip or Parquet magic
	elf := append([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00"), make([]byte, 5000)...)
	var utf16 []byte
	for _, c := range []byte(benchText(100)) {
		utf16 = append(utf16, c, 0)
	}
	for name, data := range map[string][]byte{"random": random, "elf": elf, "utf16": utf16, "short": []byte("\x00\x01\x02garbage\n")} {
		for kind, in := range inputKinds(t, data) {
			got := scanLines(t, &Scanner{}, in)
			if len(got.lines) != 0 || len(got.skips) != 1 || got.skips[0].Line != 0 || !strings.Contains(got.skips[0].Msg, "not a flow log file: binary data") {
				t.Errorf("%s/%s: %d records, skipped %v", name, kind, len(got.lines), got.skips)
			}
		}
	}
}
