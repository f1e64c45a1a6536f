package query

import (
	"strings"
)

// Table is a query result: named, typed columns.
type Table struct {
	Names []string
	Types []Type
	Rows  [][]Value
}

// Column returns the index of the column named name, or -1.
func (t *Table) Column(name string) int {
	for i, n := range t.Names {
		if n == name {
			return i
		}
	}
	for i, n := range t.Names {
		if strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

// frame turns the table into a frame whose slots are its columns.
func (t *Table) frame(w *wctx) *frame {
	n := len(t.Rows)
	f := &frame{t: t, n: n}
	f.sel = make([]uint32, n)
	for i := range f.sel {
		f.sel[i] = uint32(i)
	}
	f.slots = make([]*Vec, len(t.Names))
	for c := range t.Names {
		v := &Vec{}
		v.reset(t.Types[c], n)
		var valid []bool
		for r, row := range t.Rows {
			v.set(r, conv(row[c], t.Types[c]), &valid, n)
		}
		f.slots[c] = v
	}
	return f
}

// copyValue detaches a value from the batch it was read from.
func copyValue(v Value) Value {
	if v.T == TString {
		v.S = strings.Clone(v.S)
	}
	return v
}
