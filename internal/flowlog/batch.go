package flowlog

import (
	"fmt"
	"net/netip"
	"unsafe"
)

// Batch is a block of flow log records of one format from one source, held
// as columns. Text batches keep the raw lines and convert a column only when
// someone asks for it, and only for the rows asked for: a query that reads
// two fields never converts the other twelve.
//
// A Batch handed to a callback is valid until the callback returns; do not
// keep references to it or to the slices its methods return.
type Batch struct {
	Format *Format
	Source string // file name or s3:// URL
	Input  int    // index of the source among the scanned inputs
	Seq    int    // block of the source this batch comes from, from 0
	Part   int    // batch within the block (a header line can split one), from 0
	N      int    // number of records; may be 0

	line []int // 1-based line number of each record (0 for non-text sources)

	text []byte   // text batches: the raw bytes
	offs []uint32 // text batches: N*(nf+1) field start offsets; the last of each record is one past the line end
	// need is the number of spaces whose offsets the decoder recorded in
	// each record of a text batch: offs[0..need] and offs[nf] hold, so
	// fields 0 to need-1 and the whole line can be read (ensure).
	need int

	cols []column
	bad  []bool // rows found malformed while converting a column
	nbad int

	errs ErrorSink

	msgs [][]byte // records of other sources: their text (SetMessages)
}

type column struct {
	done    bool   // every row converted
	rowDone []bool // rows converted so far, when not done
	touched bool   // rowDone is in use for this batch
	u64     []uint64
	present []bool
	addr    []netip.Addr
	enum    []uint8
	// Strings of non-text batches: strBuf[strOff[i]:strOff[i+1]]; absent
	// when present[i] is false.
	strBuf []byte
	strOff []uint32
}

// ErrorSink receives the malformed input found while decoding.
type ErrorSink interface {
	// Skip is called once per skipped record or line.
	Skip(e *LineError)
}

// reset prepares b for a new block of n records of format f.
func (b *Batch) reset(f *Format, source string, seq int) {
	b.Format = f
	b.Source = source
	b.Seq = seq
	b.Part = 0
	b.N = 0
	b.line = b.line[:0]
	b.text = nil
	b.msgs = nil
	b.offs = b.offs[:0]
	nf := f.Len()
	if cap(b.cols) < nf {
		b.cols = make([]column, nf)
	}
	b.cols = b.cols[:nf]
	for i := range b.cols {
		c := &b.cols[i]
		c.done = false
		if c.touched {
			clear(c.rowDone)
			c.touched = false
		}
	}
	b.bad = b.bad[:0]
	b.nbad = 0
}

// Line returns the 1-based line number of record i in its source, or 0 when
// the source has no lines (Parquet).
func (b *Batch) Line(i int) int {
	if i < len(b.line) {
		return b.line[i]
	}
	return 0
}

// Bad reports whether record i was found malformed while converting a
// column; such records are reported once and must be skipped.
func (b *Batch) Bad(i int) bool { return b.nbad > 0 && b.bad[i] }

// NumBad returns the number of records found malformed so far.
func (b *Batch) NumBad() int { return b.nbad }

// Raw returns the text of field pos of record i as it appears in the line
// ("-" for absent), or nil for non-text batches.
func (b *Batch) Raw(i, pos int) []byte {
	if b.text == nil {
		return nil
	}
	b.ensure(pos)
	return b.raw(i, pos)
}

// ensure makes field pos of every record of a text batch readable: when
// the decoder located only the fields before it (Scanner.Fields), every
// field of every record is located now.
func (b *Batch) ensure(pos int) {
	if pos < b.need || b.text == nil {
		return
	}
	nf := len(b.cols)
	for i := 0; i < b.N; i++ {
		o := b.offs[i*(nf+1) : (i+1)*(nf+1)]
		// The line passed the decoder's checks: nf-1 single spaces.
		splitFields(b.text, int(o[0]), int(o[nf])-1, o, nf-1)
	}
	b.need = maxFields
}

// needFor returns the number of spaces to locate in each line of format f
// for a consumer that reads fields (nil: all).
func needFor(f *Format, fields []Field) int {
	if fields == nil {
		return maxFields
	}
	need := 0
	for _, fld := range fields {
		need = max(need, f.Index(fld)+1)
	}
	if need >= f.Len()-1 {
		return maxFields
	}
	return need
}

// raw is Raw for a field that ensure has made readable.
func (b *Batch) raw(i, pos int) []byte {
	k := i*(len(b.cols)+1) + pos
	return b.text[b.offs[k] : b.offs[k+1]-1]
}

// Message returns record i as a line of text (@message): the raw line for
// text sources, the values joined by spaces otherwise.
func (b *Batch) Message(i int, dst []byte) []byte {
	if b.text != nil {
		k := i * (len(b.cols) + 1)
		return append(dst, b.text[b.offs[k]:b.offs[k+len(b.cols)]-1]...)
	}
	for pos := range b.cols {
		if pos > 0 {
			dst = append(dst, ' ')
		}
		dst = b.AppendText(dst, i, pos)
	}
	return dst
}

// markBad records that record i is malformed; the first call for a record
// reports it.
func (b *Batch) markBad(i, pos int, msg string) {
	if len(b.bad) < b.N {
		b.bad = append(b.bad[:len(b.bad)], make([]bool, b.N-len(b.bad))...)
	}
	if b.bad[i] {
		return
	}
	b.bad[i] = true
	b.nbad++
	if b.errs != nil {
		e := &LineError{Source: b.Source, Line: b.Line(i), Msg: msg}
		if pos >= 0 {
			e.Field = b.Format.Name(pos)
			if b.text != nil {
				b.ensure(pos)
				k := i * (len(b.cols) + 1)
				e.Column = int(b.offs[k+pos]-b.offs[k]) + 1
				e.Text = string(b.Raw(i, pos))
			}
		}
		b.errs.Skip(e)
	}
}

func bytesString(p []byte) string { return unsafe.String(unsafe.SliceData(p), len(p)) }

func isAbsent(p []byte) bool { return len(p) == 1 && p[0] == '-' }

// convert calls fn for every row of sel (every row when sel is nil) that
// column c has not converted yet, and remembers that it did.
func (c *column) convert(n int, sel []uint32, fn func(i int)) {
	if sel == nil {
		for i := 0; i < n; i++ {
			if !c.touched || !c.rowDone[i] {
				fn(i)
			}
		}
		c.done = true
		return
	}
	if !c.touched {
		if cap(c.rowDone) < n {
			c.rowDone = make([]bool, n)
		}
		c.rowDone = c.rowDone[:n]
		c.touched = true
	}
	done := c.rowDone
	for _, i := range sel {
		if !done[i] {
			done[i] = true
			fn(int(i))
		}
	}
}

func (c *column) grow(n int, kind Kind) {
	switch kind {
	case KindUint:
		if cap(c.u64) < n {
			c.u64 = make([]uint64, n)
			c.present = make([]bool, n)
		}
		c.u64, c.present = c.u64[:n], c.present[:n]
	case KindAddr:
		if cap(c.addr) < n {
			c.addr = make([]netip.Addr, n)
		}
		c.addr = c.addr[:n]
	case KindAction, KindLogStatus:
		if cap(c.enum) < n {
			c.enum = make([]uint8, n)
		}
		c.enum = c.enum[:n]
	}
}

// Uints returns the values of the integer field at position pos and whether
// each is present, converting the rows in sel (all rows when sel is nil)
// that were not converted yet; only those rows (and rows converted before)
// hold values. Rows whose text is not a number are marked bad.
func (b *Batch) Uints(pos int, sel []uint32) (vals []uint64, present []bool) {
	c := &b.cols[pos]
	if !c.done {
		b.ensure(pos)
		if !c.touched {
			c.grow(b.N, KindUint)
		}
		vals, present := c.u64, c.present
		limit := b.Format.Field(pos).Max()
		c.convert(b.N, sel, func(i int) {
			raw := b.raw(i, pos)
			v, ok, valid := parseUint(raw)
			if v > limit {
				v, ok = 0, false
				b.markBad(i, pos, outOfRange(limit))
			}
			vals[i], present[i] = v, ok
			if !valid {
				b.markBad(i, pos, "not a number")
			}
		})
	}
	return c.u64, c.present
}

func outOfRange(limit uint64) string { return fmt.Sprintf("out of range (0 to %d)", limit) }

// parseIPv4 parses dotted-quad text the way netip.ParseAddr does (no
// leading zeros, each part at most 255), fast; ok is false for anything
// else, which then goes to netip.ParseAddr for IPv6 or an error.
func parseIPv4(p []byte) (netip.Addr, bool) {
	// Straight-line: one to three digits a part, dots between; a digit
	// past the third of a part fails at the dot or end expected next.
	var out [4]byte
	i := 0
	for part := range 4 {
		if part > 0 {
			if i >= len(p) || p[i] != '.' {
				return netip.Addr{}, false
			}
			i++
		}
		if i >= len(p) || p[i]-'0' > 9 {
			return netip.Addr{}, false
		}
		n := uint(p[i] - '0')
		i++
		if i < len(p) && p[i]-'0' <= 9 {
			if n == 0 {
				return netip.Addr{}, false // leading zero
			}
			n = n*10 + uint(p[i]-'0')
			i++
			if i < len(p) && p[i]-'0' <= 9 {
				n = n*10 + uint(p[i]-'0')
				i++
				if n > 255 {
					return netip.Addr{}, false
				}
			}
		}
		out[part] = byte(n)
	}
	if i != len(p) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(out), true
}

// parseUint parses a decimal number; "-" is absent.
func parseUint(p []byte) (v uint64, present, valid bool) {
	if len(p) == 0 || len(p) > 20 {
		return 0, false, false
	}
	if p[0] == '-' {
		return 0, false, len(p) == 1
	}
	for _, c := range p {
		d := uint64(c - '0')
		if d > 9 {
			return 0, false, false
		}
		n := v*10 + d
		if n < v {
			return 0, false, false
		}
		v = n
	}
	return v, true, true
}

// Addrs returns the addresses of the address field at position pos; an
// absent address is the zero netip.Addr, and an IPv4-mapped IPv6 address
// (::ffff:203.0.113.7) is the IPv4 address it maps. Rows are converted as
// for Uints.
func (b *Batch) Addrs(pos int, sel []uint32) []netip.Addr {
	c := &b.cols[pos]
	if !c.done {
		b.ensure(pos)
		if !c.touched {
			c.grow(b.N, KindAddr)
		}
		vals := c.addr
		c.convert(b.N, sel, func(i int) {
			raw := b.raw(i, pos)
			if isAbsent(raw) {
				vals[i] = netip.Addr{}
				return
			}
			if a, ok := parseIPv4(raw); ok {
				vals[i] = a
				return
			}
			a, err := netip.ParseAddr(bytesString(raw))
			if err != nil || a.Zone() != "" {
				vals[i] = netip.Addr{}
				b.markBad(i, pos, "not an IP address")
				return
			}
			// ::ffff:203.0.113.7 is 203.0.113.7 to every consumer:
			// allow lists, home networks and blocks are IPv4.
			vals[i] = a.Unmap()
		})
	}
	return c.addr
}

// Actions returns the action field at position pos.
func (b *Batch) Actions(pos int, sel []uint32) []Action {
	if c := &b.cols[pos]; !c.done && !c.touched && (sel == nil || len(sel) == b.N) && b.text != nil {
		// The hot path of every query that filters on action: compare
		// the raw bytes once per record.
		b.ensure(pos)
		c.grow(b.N, KindAction)
		stride := len(b.cols) + 1
		for i := 0; i < b.N; i++ {
			k := i*stride + pos
			raw := b.text[b.offs[k] : b.offs[k+1]-1]
			switch string(raw) {
			case "ACCEPT":
				c.enum[i] = uint8(ActionAccept)
			case "REJECT":
				c.enum[i] = uint8(ActionReject)
			case "-":
				c.enum[i] = uint8(ActionAbsent)
			default:
				c.enum[i] = uint8(ActionAbsent)
				b.markBad(i, pos, "action is not ACCEPT or REJECT")
			}
		}
		c.done = true
		return unsafe.Slice((*Action)(unsafe.SliceData(c.enum)), b.N)
	}
	return unsafe.Slice((*Action)(unsafe.SliceData(b.enums(pos, sel, func(p []byte) (uint8, bool) {
		a, ok := parseAction(p)
		return uint8(a), ok
	}, "action is not ACCEPT or REJECT"))), b.N)
}

// LogStatuses returns the log-status field at position pos.
func (b *Batch) LogStatuses(pos int, sel []uint32) []LogStatus {
	return unsafe.Slice((*LogStatus)(unsafe.SliceData(b.enums(pos, sel, func(p []byte) (uint8, bool) {
		s, ok := parseLogStatus(p)
		return uint8(s), ok
	}, "log-status is not OK, NODATA or SKIPDATA"))), b.N)
}

func (b *Batch) enums(pos int, sel []uint32, parse func([]byte) (uint8, bool), msg string) []uint8 {
	c := &b.cols[pos]
	if !c.done {
		b.ensure(pos)
		if !c.touched {
			c.grow(b.N, KindAction)
		}
		vals := c.enum
		c.convert(b.N, sel, func(i int) {
			v, ok := parse(b.raw(i, pos))
			vals[i] = v
			if !ok {
				b.markBad(i, pos, msg)
			}
		})
	}
	return c.enum[:b.N]
}

// String returns the text of the string field at position pos of record i
// and whether it is present ("-" is absent). The bytes are valid as long as
// the batch.
func (b *Batch) String(i, pos int) ([]byte, bool) {
	if b.text != nil {
		b.ensure(pos)
		raw := b.raw(i, pos)
		return raw, !isAbsent(raw)
	}
	c := &b.cols[pos]
	if !c.present[i] {
		return nil, false
	}
	return c.strBuf[c.strOff[i]:c.strOff[i+1]], true
}

// RawLine returns record i's line as it is in the input, or nil for
// sources without lines.
func (b *Batch) RawLine(i int) []byte {
	if b.text == nil {
		if b.msgs != nil {
			return b.msgs[i]
		}
		return nil
	}
	k := i * (len(b.cols) + 1)
	return b.text[b.offs[k] : b.offs[k+len(b.cols)]-1]
}

// Text reports whether the batch holds text lines (not Parquet values).
func (b *Batch) Text() bool { return b.text != nil }
