package flowlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// maxFields bounds the fields of one line; longer lines are malformed.
const maxFields = 255

// splitText finds the records and their fields in a block of lines. This is
// the decoder's hot path: one pass over the bytes, no allocation once the
// worker's buffers have grown, and no conversion of any field (columns are
// converted when read).
func (w *worker) splitText(j *job) (parts int, err error) {
	b := &w.b
	part := 0
	flush := func() error {
		b.Input, b.Seq, b.Part = j.input, j.seq, part
		part++
		err := w.fn(w.id, b)
		return err
	}
	w.startBatch(j.format, j)
	data := j.data
	line := j.line
	nf := b.Format.Len()
	offs := b.offs
	// nul is the first NUL byte at or after pos, or len(data): a line
	// holding one is malformed (text with a NUL in it is not a record,
	// whatever its fields look like). The index tells whether the block
	// has any.
	var sp, nl []uint64
	nul := len(data)
	if useIndex {
		var anyNUL bool
		if sp, nl, anyNUL = w.index(data); anyNUL {
			nul = nextNUL(data, 0)
		}
	} else {
		nul = nextNUL(data, 0)
	}
	maxLine := w.s.maxLineLen()
	for pos := 0; pos < len(data); line++ {
		var end int
		if useIndex {
			end = nextBit(nl, pos)
		} else {
			end = pos + bytes.IndexByte(data[pos:], '\n')
		}
		if end > min(nul, pos+maxLine) { // too long, or holds a NUL
			if end-pos > maxLine {
				w.s.skip(w.s.longLine(j.name, line))
			} else {
				w.s.skip(&LineError{Source: j.name, Line: line, Column: nul - pos + 1, Msg: "NUL byte in line: not a flow log record"})
			}
			if nul < end {
				nul = nextNUL(data, end)
			}
			pos = end + 1
			continue
		}
		le := end
		for le > pos && (data[le-1] == '\r' || data[le-1] == ' ' || data[le-1] == '\t') {
			le--
		}
		if le == pos { // blank line
			pos = end + 1
			continue
		}
		base := len(offs)
		if cap(offs)-base < maxFields+2 {
			offs = append(offs[:base:base], make([]uint32, maxFields+2+base)...)[:base]
		}
		o := offs[base : base+maxFields+2]
		// Only the starts of the fields the consumer reads are
		// recorded (b.need); the spaces are counted all the same, so
		// that a line is a record, or malformed, exactly as when every
		// field is located.
		var k int
		var odd bool // whether a field may be empty
		if useIndex {
			k, odd = splitBits(sp, pos, le, o, b.need)
		} else {
			k, odd = splitFields(data, pos, le, o, b.need)
		}
		if k+1 != nf && bytes.Contains(data[pos:le], doubleSpace) {
			// AWS's own examples separate fields with two spaces now
			// and then: fold runs of spaces in place and split again.
			le = pos + len(foldSpaces(data[pos:le]))
			k, odd = splitFields(data, pos, le, o, b.need)
		}
		if k+1 != nf {
			if looksLikeHeader(data[pos:le]) {
				// A header line that did not follow a blank line.
				f, err := ParseFormat(string(data[pos:le]))
				if err == nil {
					b.offs = offs
					if b.N > 0 {
						if err := flush(); err != nil {
							return part, err
						}
					}
					w.startBatch(f, j)
					nf = f.Len()
					offs = b.offs
					pos = end + 1
					continue
				}
			}
			w.s.skip(&LineError{Source: j.name, Line: line, Text: string(data[pos:min(le, pos+80)]),
				Msg: fmt.Sprintf("expected %d fields, found %d", nf, k+1)})
			pos = end + 1
			continue
		}
		if odd {
			if b.need < maxFields { // rare: locate every field to name the empty one
				splitFields(data, pos, le, o, maxFields)
			}
			if empty := emptyField(o[:nf], le); empty >= 0 {
				w.s.skip(&LineError{Source: j.name, Line: line, Column: int(o[empty]) - pos + 1,
					Field: b.Format.Name(empty), Msg: "empty field (two spaces in a row)"})
				pos = end + 1
				continue
			}
		}
		o[nf] = uint32(le + 1)
		offs = offs[:base+nf+1]
		b.line = append(b.line, line)
		b.N++
		pos = end + 1
	}
	b.offs = offs
	if b.N > 0 || part == 0 {
		err = flush()
	}
	return part, err
}

var doubleSpace = []byte("  ")

// nextNUL returns the offset of the first NUL byte in data at or after
// from, or len(data).
func nextNUL(data []byte, from int) int {
	if i := bytes.IndexByte(data[from:], 0); i >= 0 {
		return from + i
	}
	return len(data)
}

// index builds the block's structural index: a bit per byte for spaces and
// one for newlines (the idea of simdjson's first stage), and whether the
// block holds a NUL byte. The line loop then finds line ends and field
// boundaries by walking set bits instead of bytes. Only SIMD builds have it
// (index_simd.go): built in portable Go it costs more than scanning the
// bytes directly. The bitmaps belong to the worker and are valid until its
// next block.
func (w *worker) index(data []byte) (sp, nl []uint64, nul bool) {
	n := (len(data) + 63) / 64
	if cap(w.sp) < n {
		w.sp = make([]uint64, n, n+n/4)
		w.nl = make([]uint64, n, n+n/4)
	}
	sp, nl = w.sp[:n], w.nl[:n]
	_, nul = indexSIMD(data, sp, nl)
	return sp, nl, nul
}

// nextBit returns the position of the first set bit at or after from; the
// caller knows there is one (blocks end with a newline).
func nextBit(bm []uint64, from int) int {
	wi := from >> 6
	if w := bm[wi] >> (uint(from) & 63); w != 0 {
		return from + bits.TrailingZeros64(w)
	}
	for wi++; bm[wi] == 0; wi++ {
	}
	return wi<<6 + bits.TrailingZeros64(bm[wi])
}

// splitBits is splitFields on the structural index: the start of fields 1
// to need of data[pos:le] from the set bits of the space bitmap, and the
// number of spaces, all counted.
func splitBits(sp []uint64, pos, le int, o []uint32, need int) (k int, odd bool) {
	o[0] = uint32(pos)
	first, last := pos>>6, (le-1)>>6
	prev := uint64(1) // the bit before the line: a space first is odd
	var adj uint64
	for wi := first; wi <= last; wi++ {
		w := sp[wi]
		if wi == first {
			w &= ^uint64(0) << (uint(pos) & 63)
			prev <<= uint(pos) & 63
			adj |= w & prev
		} else {
			adj |= w & prev // the previous word ended with a space
		}
		if wi == last {
			w &= ^uint64(0) >> (63 - uint(le-1)&63)
		}
		adj |= w & (w >> 1)
		prev = w >> 63
		for ; w != 0 && k < need; w &= w - 1 {
			k++
			o[k] = uint32(wi<<6 + bits.TrailingZeros64(w) + 1)
		}
		if w != 0 { // spaces past the last field read: only counted
			k += bits.OnesCount64(w)
		}
	}
	return k, adj != 0
}

// splitFields records in o the start offset of fields 1 to need (at most
// maxFields) of the space-separated fields of data[pos:le], o[0] being pos,
// and returns the number of spaces, all counted. odd reports a space first
// or two in a row, the only ways to an empty field (the caller trims the
// line end), so that the caller looks for one only then; it is always true
// when every field is located (need is maxFields). It looks at eight
// bytes at a time: a word's spaces become a bit mask, and only the recorded
// spaces cost a step, not every byte.
func splitFields(data []byte, pos, le int, o []uint32, need int) (k int, odd bool) {
	const (
		spaces = 0x2020202020202020
		low7   = 0x7f7f7f7f7f7f7f7f
	)
	o[0] = uint32(pos)
	i := pos
	// Looking for adjacent spaces costs more than emptyField's check of
	// every field, which the caller makes when every field is located.
	full := need >= maxFields
	prev := uint64(0x80) // the byte before the line: a space first is odd
	var adj uint64
	for ; i+8 <= le; i += 8 {
		x := binary.LittleEndian.Uint64(data[i:]) ^ spaces
		// The high bit of each byte that was a space (exact, no carries
		// between bytes).
		m := ^(((x & low7) + low7) | x | low7)
		if !full {
			adj |= m & (m<<8 | prev)
			prev = m >> 56
		}
		for ; m != 0 && k < need; m &= m - 1 {
			k++
			o[k] = uint32(i + bits.TrailingZeros64(m)>>3 + 1)
		}
		if m != 0 { // spaces past the last field read: only counted
			k += bits.OnesCount64(m)
		}
	}
	for ; i < le; i++ {
		if data[i] == ' ' {
			if prev != 0 {
				adj = 1
			}
			prev = 0x80
			k++
			if k <= need {
				o[k] = uint32(i + 1)
			}
		} else {
			prev = 0
		}
	}
	return k, full || adj != 0
}

// foldSpaces turns every run of spaces in line into one space, dropping
// leading ones, in place, and returns the shortened line.
func foldSpaces(line []byte) []byte {
	out := line[:0]
	prev := byte(' ')
	for _, c := range line {
		if c == ' ' && prev == ' ' {
			continue
		}
		out = append(out, c)
		prev = c
	}
	return out
}

// emptyField returns the position of the first empty field, or -1.
func emptyField(o []uint32, le int) int {
	for i := 0; i+1 < len(o); i++ {
		if o[i+1] == o[i]+1 {
			return i
		}
	}
	if int(o[len(o)-1]) == le {
		return len(o) - 1
	}
	return -1
}

func (w *worker) startBatch(f *Format, j *job) {
	b := &w.b
	b.reset(f, j.name, j.seq)
	b.text = j.data
	b.errs = w.s.Errors
	b.need = needFor(f, w.s.Fields)
}
