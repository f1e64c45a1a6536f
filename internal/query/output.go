package query

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// WriteText prints t as an aligned table for people.
func WriteText(w io.Writer, t *Table) error {
	bw := bufio.NewWriter(w)
	widths := make([]int, len(t.Names))
	cells := make([][]string, len(t.Rows))
	names := make([]string, len(t.Names))
	for i, n := range t.Names {
		names[i] = EscapeText(n)
		widths[i] = utf8.RuneCountInString(names[i])
	}
	for r, row := range t.Rows {
		cells[r] = make([]string, len(row))
		for i, v := range row {
			s := EscapeText(v.String())
			cells[r][i] = s
			widths[i] = max(widths[i], utf8.RuneCountInString(s))
		}
	}
	line := func(vals []string, numeric func(int) bool) {
		for i, s := range vals {
			pad := widths[i] - utf8.RuneCountInString(s)
			if i > 0 {
				bw.WriteString("  ")
			}
			if numeric(i) {
				writePad(bw, pad)
				bw.WriteString(s)
			} else {
				bw.WriteString(s)
				if i < len(vals)-1 {
					writePad(bw, pad)
				}
			}
		}
		bw.WriteByte('\n')
	}
	isNum := func(i int) bool { return t.Types[i] == TInt || t.Types[i] == TFloat }
	line(names, func(int) bool { return false })
	sep := make([]string, len(t.Names))
	for i := range sep {
		b := make([]byte, widths[i])
		for j := range b {
			b[j] = '-'
		}
		sep[i] = string(b)
	}
	line(sep, func(int) bool { return false })
	for _, c := range cells {
		line(c, isNum)
	}
	return bw.Flush()
}

func writePad(w *bufio.Writer, n int) {
	for ; n > 0; n-- {
		w.WriteByte(' ')
	}
}

// WriteJSON prints t as a JSON array of objects keyed by column name.
// Numbers are JSON numbers, timestamps are text as the console shows them,
// and absent values are left out.
func WriteJSON(w io.Writer, t *Table) error {
	bw := bufio.NewWriter(w)
	keys := make([][]byte, len(t.Names))
	for i, n := range t.Names {
		k, _ := json.Marshal(n)
		keys[i] = escapeJSON(k)
	}
	bw.WriteByte('[')
	var buf []byte
	for r, row := range t.Rows {
		if r > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n  {")
		first := true
		for i, v := range row {
			if v.IsNull() {
				continue
			}
			if !first {
				bw.WriteString(", ")
			}
			first = false
			bw.Write(keys[i])
			bw.WriteString(": ")
			buf = appendJSONValue(buf[:0], v)
			bw.Write(buf)
		}
		bw.WriteByte('}')
	}
	if len(t.Rows) > 0 {
		bw.WriteByte('\n')
	}
	bw.WriteString("]\n")
	return bw.Flush()
}

func appendJSONValue(dst []byte, v Value) []byte {
	switch v.T {
	case TInt:
		return strconv.AppendInt(dst, v.I, 10)
	case TFloat:
		return strconv.AppendFloat(dst, v.F, 'g', -1, 64)
	case TBool:
		return strconv.AppendBool(dst, v.I != 0)
	}
	b, _ := json.Marshal(v.String())
	return append(dst, escapeJSON(b)...)
}

// escapeJSON replaces, in encoded JSON, the characters encoding/json leaves
// as they are but a terminal acts on (DEL, C1 controls, bidirectional
// formatting) by \u escapes, which decode to the same text.
func escapeJSON(b []byte) []byte {
	i := 0
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		if r == 0x7f || unsafeRune(r) {
			break
		}
		i += size
	}
	if i == len(b) {
		return b
	}
	out := append(make([]byte, 0, len(b)+12), b[:i]...)
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		if r == 0x7f || unsafeRune(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

// EscapeText returns s fit to print on a terminal or in a spreadsheet:
// every control character (C0 including tab and newline, DEL, C1), every
// character that reorders or hides text (bidirectional formatting, line and
// paragraph separators, zero-width no-break space) and every byte that is
// not UTF-8 is replaced by a Go-style escape (\x1b, \n, \u202e, \xff), so
// that a log field cannot move the cursor, recolour or clear the screen,
// set the clipboard (OSC 52), add rows or make text read differently from
// what it is. Other text, backslashes included, is unchanged, and s itself
// is returned when nothing needs escaping. Every table and CSV writer of
// the command line prints log-derived text through it.
func EscapeText(s string) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				break
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || unsafeRune(r) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	b := append(make([]byte, 0, len(s)+16), s[:i]...)
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 && c != 0x7f:
				b = append(b, c)
			case c == '\a':
				b = append(b, `\a`...)
			case c == '\b':
				b = append(b, `\b`...)
			case c == '\f':
				b = append(b, `\f`...)
			case c == '\n':
				b = append(b, `\n`...)
			case c == '\r':
				b = append(b, `\r`...)
			case c == '\t':
				b = append(b, `\t`...)
			case c == '\v':
				b = append(b, `\v`...)
			default:
				b = fmt.Appendf(b, `\x%02x`, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = fmt.Appendf(b, `\x%02x`, c)
		case unsafeRune(r):
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

// unsafeRune reports whether r is a C1 control or a character that
// reorders or hides text on screen.
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f, // C1 controls (0x9b is CSI)
		r == 0x061c, r == 0x200e, r == 0x200f, // bidi marks
		r >= 0x202a && r <= 0x202e, // bidi embeddings and overrides
		r >= 0x2066 && r <= 0x2069, // bidi isolates
		r == 0x2028, r == 0x2029,   // line and paragraph separators
		r == 0xfeff: // zero-width no-break space
		return true
	}
	return false
}

// WriteCSV prints t as CSV with a header row, for spreadsheets: fields
// quoted as encoding/csv quotes them (when they hold a comma, a quote or a
// line break, or start with a space), control characters escaped.
func WriteCSV(w io.Writer, t *Table) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var line, buf []byte
	for i, n := range t.Names {
		if i > 0 {
			line = append(line, ',')
		}
		line = appendCSVField(line, EscapeText(n))
	}
	line = append(line, '\n')
	for _, row := range t.Rows {
		if _, err := bw.Write(line); err != nil {
			return err
		}
		line = line[:0]
		for i, v := range row {
			if i > 0 {
				line = append(line, ',')
			}
			buf = v.Append(buf[:0])
			line = appendCSVField(line, EscapeText(bytesToString(buf)))
		}
		line = append(line, '\n')
	}
	if _, err := bw.Write(line); err != nil {
		return err
	}
	return bw.Flush()
}

// appendCSVField appends one CSV field, quoted when encoding/csv would
// quote it.
func appendCSVField(dst []byte, s string) []byte {
	if !csvNeedsQuotes(s) {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		dst = append(dst, s[:i+1]...)
		dst = append(dst, '"')
		s = s[i+1:]
	}
	dst = append(dst, s...)
	return append(dst, '"')
}

// csvNeedsQuotes is encoding/csv's rule for the comma delimiter.
func csvNeedsQuotes(s string) bool {
	if s == "" {
		return false
	}
	if s == `\.` {
		return true
	}
	if strings.ContainsAny(s, ",\"\r\n") {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}

// Write prints t in the named format: table, json or csv.
func Write(w io.Writer, format string, t *Table) error {
	switch format {
	case "table", "":
		return WriteText(w, t)
	case "json":
		return WriteJSON(w, t)
	case "csv":
		return WriteCSV(w, t)
	}
	return fmt.Errorf("unknown output format %q (table, json or csv)", format)
}
