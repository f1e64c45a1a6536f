package query

import (
	"errors"
	"slices"
)

// rowsSpec is a sink that keeps rows: the end of a pipeline, limit, dedup
// or sort (with the limit that follows it).
type rowsSpec struct {
	cols  []keySpec // the columns kept
	sort  []sortSpec
	dedup []node
	limit int // -1: all
}

type sortSpec struct {
	x    node
	desc bool
}

// ordered reports whether the sink needs rows in input order.
func (r *rowsSpec) ordered() bool { return len(r.sort) == 0 }

// errEnough stops a scan once a limit is reached.
var errEnough = errors.New("limit reached")

// row is a kept row: its columns, then its sort keys, and where it came
// from, to break ties in input order.
type row struct {
	vals  []Value
	keys  []Value
	order [4]int
}

// rowSink collects rows for one worker (sort) or in order (the others).
type rowSink struct {
	spec *rowsSpec
	rows []row
	seen map[string]bool // dedup keys
	buf  []byte
}

func newRowSink(s *rowsSpec) *rowSink { return &rowSink{spec: s, seen: map[string]bool{}} }

// extract evaluates the kept columns and sort keys of the selected rows.
func (s *rowsSpec) extract(w *wctx, f *frame, order func(i uint32) [4]int) []row {
	cols := make([]*Vec, len(s.cols))
	for i, c := range s.cols {
		cols[i] = c.x.eval(w, f)
	}
	keys := make([]*Vec, len(s.sort))
	for i, k := range s.sort {
		keys[i] = k.x.eval(w, f)
	}
	dk := make([]*Vec, len(s.dedup))
	for i, d := range s.dedup {
		dk[i] = d.eval(w, f)
	}
	f.dropBad()
	out := make([]row, 0, len(f.sel))
	for _, i := range f.sel {
		r := row{vals: make([]Value, len(cols)+len(dk))}
		for c, v := range cols {
			r.vals[c] = copyValue(v.Value(int(i)))
		}
		for d, v := range dk {
			r.vals[len(cols)+d] = copyValue(v.Value(int(i)))
		}
		if len(keys) > 0 {
			r.keys = make([]Value, len(keys))
			for k, v := range keys {
				r.keys[k] = copyValue(v.Value(int(i)))
			}
		}
		r.order = order(i)
		out = append(out, r)
	}
	return out
}

// add takes rows in input order (or any order, for sort). It returns
// errEnough once an ordered sink has its limit.
func (k *rowSink) add(rows []row) error {
	s := k.spec
	for _, r := range rows {
		if len(s.dedup) > 0 {
			nc := len(s.cols)
			k.buf = encodeKey(k.buf[:0], r.vals[nc:])
			if k.seen[string(k.buf)] {
				continue
			}
			k.seen[string(k.buf)] = true
			r.vals = r.vals[:nc]
		}
		k.rows = append(k.rows, r)
		if s.ordered() && s.limit >= 0 && len(k.rows) >= s.limit {
			return errEnough
		}
	}
	if !s.ordered() && s.limit >= 0 && len(k.rows) > 2*s.limit+1024 {
		k.sortRows()
		k.rows = k.rows[:s.limit]
	}
	return nil
}

func (k *rowSink) sortRows() {
	spec := k.spec.sort
	slices.SortStableFunc(k.rows, func(a, b row) int {
		for i, sk := range spec {
			c := compareNullsLast(a.keys[i], b.keys[i])
			if c != 0 {
				if sk.desc && !a.keys[i].IsNull() && !b.keys[i].IsNull() {
					return -c
				}
				return c
			}
		}
		// Ties: by the rows' values, so that the order does not depend
		// on how workers split the input, then by input order.
		for i := range a.vals {
			if c := compareNullsLast(a.vals[i], b.vals[i]); c != 0 {
				return c
			}
		}
		for i := range a.order {
			if c := a.order[i] - b.order[i]; c != 0 {
				return c
			}
		}
		return 0
	})
}

// table finishes the sink: sorted and cut to the limit.
func (k *rowSink) table() *Table {
	if len(k.spec.sort) > 0 {
		k.sortRows()
	}
	if l := k.spec.limit; l >= 0 && len(k.rows) > l {
		k.rows = k.rows[:l]
	}
	t := &Table{}
	for _, c := range k.spec.cols {
		t.Names = append(t.Names, c.name)
		t.Types = append(t.Types, c.x.typ())
	}
	t.Rows = make([][]Value, len(k.rows))
	for i, r := range k.rows {
		t.Rows[i] = r.vals[:len(k.spec.cols)]
	}
	return t
}
