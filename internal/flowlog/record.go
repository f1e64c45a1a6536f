package flowlog

import (
	"net/netip"
	"strconv"
)

// ResetColumns prepares b to be filled with n records of format f by a
// source that delivers typed values (Parquet). Fill each column with the
// Fill* methods; every column of the format must be filled.
func (b *Batch) ResetColumns(f *Format, source string, seq, n int) {
	b.reset(f, source, seq)
	b.N = n
	for pos := range b.cols {
		c := &b.cols[pos]
		kind := f.Field(pos).Kind()
		c.grow(n, kind)
		if kind == KindString {
			if cap(c.present) < n {
				c.present = make([]bool, n)
			}
			c.present = c.present[:n]
			c.strBuf = c.strBuf[:0]
			c.strOff = append(c.strOff[:0], 0)
		}
		c.done = true
	}
}

// FillUints returns the value and presence slices of integer column pos, to
// be written by the caller.
func (b *Batch) FillUints(pos int) (vals []uint64, present []bool) {
	c := &b.cols[pos]
	return c.u64[:b.N], c.present[:b.N]
}

// FillAddrs returns the address slice of column pos, to be written by the
// caller; absent addresses are left as the zero netip.Addr.
func (b *Batch) FillAddrs(pos int) []netip.Addr { return b.cols[pos].addr[:b.N] }

// FillEnums returns the slice of an action or log-status column, to be
// written with Action or LogStatus values.
func (b *Batch) FillEnums(pos int) []uint8 { return b.cols[pos].enum[:b.N] }

// AppendString appends the next value of string column pos; call it once
// per record, in record order.
func (b *Batch) AppendString(pos int, s []byte, present bool) {
	c := &b.cols[pos]
	i := len(c.strOff) - 1
	c.present[i] = present
	if present {
		c.strBuf = append(c.strBuf, s...)
	}
	c.strOff = append(c.strOff, uint32(len(c.strBuf)))
}

// MarkBad records that record i is malformed for the reason msg; it is
// reported once and skipped by every consumer.
func (b *Batch) MarkBad(i int, field int, msg string) { b.markBad(i, field, msg) }

// Validate converts every column of every record, marking malformed records
// bad. Consumers that read every field (the JSON printer) call it first.
func (b *Batch) Validate() {
	for pos := range b.cols {
		switch b.Format.Field(pos).Kind() {
		case KindUint:
			b.Uints(pos, nil)
		case KindAddr:
			b.Addrs(pos, nil)
		case KindAction:
			b.Actions(pos, nil)
		case KindLogStatus:
			b.LogStatuses(pos, nil)
		}
	}
}

// Present reports whether field pos of record i has a value (is not "-").
// The column must have been converted (Validate) for typed fields.
func (b *Batch) Present(i, pos int) bool {
	c := &b.cols[pos]
	switch b.Format.Field(pos).Kind() {
	case KindUint:
		return c.present[i]
	case KindAddr:
		return c.addr[i].IsValid()
	case KindAction, KindLogStatus:
		return c.enum[i] != 0
	}
	_, ok := b.String(i, pos)
	return ok
}

// AppendText appends the value of field pos of record i as flow logs write
// it ("-" when absent). The column must have been converted (Validate) for
// typed fields of non-text batches.
func (b *Batch) AppendText(dst []byte, i, pos int) []byte {
	if b.text != nil {
		return append(dst, b.Raw(i, pos)...)
	}
	if !b.Present(i, pos) {
		return append(dst, '-')
	}
	return b.appendValue(dst, i, pos, false)
}

func (b *Batch) appendValue(dst []byte, i, pos int, quote bool) []byte {
	c := &b.cols[pos]
	switch b.Format.Field(pos).Kind() {
	case KindUint:
		return strconv.AppendUint(dst, c.u64[i], 10)
	case KindAddr:
		if quote {
			dst = append(dst, '"')
			dst = c.addr[i].AppendTo(dst)
			return append(dst, '"')
		}
		return c.addr[i].AppendTo(dst)
	case KindAction:
		s := Action(c.enum[i]).String()
		if quote {
			return strconv.AppendQuote(dst, s)
		}
		return append(dst, s...)
	case KindLogStatus:
		s := LogStatus(c.enum[i]).String()
		if quote {
			return strconv.AppendQuote(dst, s)
		}
		return append(dst, s...)
	}
	s, _ := b.String(i, pos)
	if quote {
		return appendJSONString(dst, s)
	}
	return append(dst, s...)
}

// AppendJSON appends record i as one JSON object: keys are the format's
// field names, integers are numbers, absent fields are left out. Call
// Validate first, and skip records that are Bad.
func (b *Batch) AppendJSON(dst []byte, i int) []byte {
	dst = append(dst, '{')
	first := true
	for pos := range b.cols {
		if !b.Present(i, pos) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, []byte(b.Format.Name(pos)))
		dst = append(dst, ':')
		dst = b.appendValue(dst, i, pos, true)
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping what JSON requires
// and replacing invalid UTF-8 bytes with U+FFFD.
func appendJSONString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < 0x80 {
			i++
			continue
		}
		if c < 0x80 {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == runeError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
