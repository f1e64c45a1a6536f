package flowlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// sniffLen is how much of the start of an input is looked at to tell what
// it is.
const sniffLen = 64 << 10

// minBinaryLines is how many lines of the sample must hold control bytes
// before an input without a NUL is called binary: a file of one or two
// lines with terminal escapes is read line by line, so that each is reported or printed escaped.
const minBinaryLines = 3

// inputKind is what the start of an input says it is.
type inputKind uint8

const (
	kindText inputKind = iota
	kindGzip
	kindParquet
	kindNotFlowLog // binary data or JSON: the reason says which
)

// sniff tells what an input is from its first bytes (at most sniffLen of
// them): gzip and Parquet by their magic bytes, JSON by its first
// character, and binary data by its lines: when more than half of the lines
// in the sample hold a control byte (NUL, or any byte below 0x20 but tab,
// CR and LF), and either the sample holds a NUL or at least minBinaryLines
// lines hold control bytes, it is not text. A few
// such lines in text are malformed lines (or, for a terminal escape in a
// text field, data that the output escapes) that the decoder reports one by
// one, not a reason to drop the input.
func sniff(p []byte) (inputKind, string) {
	switch {
	case len(p) >= 2 && p[0] == 0x1f && p[1] == 0x8b:
		return kindGzip, ""
	case len(p) >= 4 && string(p[:4]) == "PAR1":
		return kindParquet, ""
	}
	p = p[:min(len(p), sniffLen)]
	if t := bytes.TrimLeft(p, " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return kindNotFlowLog, "JSON, not flow log text"
	}
	sample := p
	lines, bad := 0, 0
	for len(p) > 0 {
		end := bytes.IndexByte(p, '\n')
		if end < 0 {
			end = len(p)
		}
		lines++
		if hasControl(p[:end]) {
			bad++
		}
		p = p[min(end+1, len(p)):]
	}
	if 2*bad > lines && (bad >= minBinaryLines || bytes.IndexByte(sample, 0) >= 0) {
		return kindNotFlowLog, fmt.Sprintf("binary data (control bytes in %d of its first %d lines)", bad, lines)
	}
	return kindText, ""
}

// hasControl reports whether line holds a byte below 0x20 other than tab
// and CR. It looks at eight bytes at a time and at single bytes only in
// words that have a byte below 0x20.
func hasControl(line []byte) bool {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(line); i += 8 {
		x := binary.LittleEndian.Uint64(line[i:])
		// Exact test for a byte below 0x20 in x (the bytes are
		// below 0x80 or fail the ^x test).
		if (x-0x20*ones)&^x&high != 0 && controlIn(line[i:i+8]) {
			return true
		}
	}
	return controlIn(line[i:])
}

func controlIn(p []byte) bool {
	for _, c := range p {
		if c < 0x20 && c != '\t' && c != '\r' {
			return true
		}
	}
	return false
}
