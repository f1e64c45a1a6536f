package query

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// WriteText prints t as an aligned table for people.
func WriteText(w io.Writer, t *Table) error {
	bw := bufio.NewWriter(w)
	widths := make([]int, len(t.Names))
	cells := make([][]string, len(t.Rows))
	for i, n := range t.Names {
		widths[i] = utf8.RuneCountInString(n)
	}
	for r, row := range t.Rows {
		cells[r] = make([]string, len(row))
		for i, v := range row {
			s := v.String()
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
	line(t.Names, func(int) bool { return false })
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
		keys[i] = k
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
	return append(dst, b...)
}

// WriteCSV prints t as CSV with a header row, for spreadsheets.
func WriteCSV(w io.Writer, t *Table) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(t.Names); err != nil {
		return err
	}
	rec := make([]string, len(t.Names))
	for _, row := range t.Rows {
		for i, v := range row {
			rec[i] = v.String()
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
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
