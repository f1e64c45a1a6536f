package query

import (
	"net/netip"
	"strings"
)

// Table is a query result: named, typed columns.
type Table struct {
	Names []string
	Types []Type
	Rows  [][]Value

	// Between pipelines a table may be held as columns instead of rows:
	// cols has len(Names) vectors of n rows, and Rows is nil.
	cols []*Vec
	n    int
}

// Len returns the number of rows.
func (t *Table) Len() int {
	if t.cols != nil {
		return t.n
	}
	return len(t.Rows)
}

// materialize fills Rows from the columns, up to max rows (0: all).
func (t *Table) materialize(max int) {
	if t.cols == nil {
		return
	}
	n := t.n
	if max > 0 && n > max {
		n = max
	}
	cells := make([]Value, n*len(t.cols))
	t.Rows = make([][]Value, n)
	for r := range t.Rows {
		row := cells[r*len(t.cols) : (r+1)*len(t.cols) : (r+1)*len(t.cols)]
		for c, v := range t.cols {
			row[c] = v.Value(r)
		}
		t.Rows[r] = row
	}
	t.cols, t.n = nil, 0
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
	n := t.Len()
	f := &frame{t: t, n: n}
	f.sel = make([]uint32, n)
	for i := range f.sel {
		f.sel[i] = uint32(i)
	}
	f.slots = make([]*Vec, len(t.Names))
	if t.cols != nil {
		copy(f.slots, t.cols)
		return f
	}
	for c := range t.Names {
		v := &Vec{T: t.Types[c], Valid: make([]bool, n)}
		if v.T == TInt || v.T == TTime {
			// An integer column that went past int64 holds float64s.
			for _, row := range t.Rows {
				if row[c].T == TFloat {
					v.T = TFloat
					break
				}
			}
		}
		switch v.T {
		case TBool, TInt, TTime:
			v.I = make([]int64, n)
		case TFloat:
			v.F = make([]float64, n)
		case TString:
			v.S = make([]string, n)
		case TAddr:
			v.A = make([]netip.Addr, n)
		}
		for r, row := range t.Rows {
			x := &row[c]
			if x.T == TNull {
				continue
			}
			if x.T != v.T {
				cv := conv(*x, v.T)
				x = &cv
				if x.T == TNull {
					continue
				}
			}
			v.Valid[r] = true
			switch v.T {
			case TBool, TInt, TTime:
				v.I[r] = x.I
			case TFloat:
				v.F[r] = x.F
			case TString:
				v.S[r] = x.S
			case TAddr:
				v.A[r] = x.A
			}
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
