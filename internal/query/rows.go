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
	// best: dedup keeps, of each combination, the row that sorts first
	// (the rows arrive in no particular order); otherwise dedup keeps the
	// first row it is given.
	best  bool
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
// A sort with a limit keeps only the best rows: rows is then a heap of at
// most limit rows whose root is the worst kept row, so a row that would
// not make the cut is compared once and never copied.
type rowSink struct {
	spec  *rowsSpec
	rows  []row
	seen  map[string]bool // dedup keys
	kept  map[string]int  // best dedup: the row kept for each key
	buf   []byte
	cand  row       // scratch: the row being considered, not yet copied
	heap  bool      // rows is a heap (sort with a limit)
	onAdd func(int) // tests: called with the number of rows held after each add
}

func newRowSink(s *rowsSpec) *rowSink {
	return &rowSink{spec: s, seen: map[string]bool{}, kept: map[string]int{}, heap: len(s.sort) > 0 && s.limit >= 0 && len(s.dedup) == 0}
}

// merge adds another worker's rows to k.
func (k *rowSink) merge(o *rowSink) {
	if k.spec.best {
		_ = k.add(o.rows)
		return
	}
	k.rows = append(k.rows, o.rows...)
}

// extract evaluates the kept columns and sort keys of the selected rows.
func (s *rowsSpec) extract(w *wctx, f *frame, order func(i uint32) [4]int) []row {
	cols, keys, dk := s.eval(w, f)
	out := make([]row, 0, len(f.sel))
	for _, i := range f.sel {
		out = append(out, s.makeRow(cols, keys, dk, i, order(i), true))
	}
	return out
}

// eval evaluates the kept columns, the sort keys and the dedup keys for the
// selected rows, and drops the rows found malformed meanwhile.
func (s *rowsSpec) eval(w *wctx, f *frame) (cols, keys, dk []*Vec) {
	cols = make([]*Vec, len(s.cols))
	for i, c := range s.cols {
		cols[i] = c.x.eval(w, f)
	}
	keys = make([]*Vec, len(s.sort))
	for i, k := range s.sort {
		keys[i] = k.x.eval(w, f)
	}
	dk = make([]*Vec, len(s.dedup))
	for i, d := range s.dedup {
		dk[i] = d.eval(w, f)
	}
	f.dropBad()
	return cols, keys, dk
}

// makeRow builds row i; copy detaches its strings from the batch.
func (s *rowsSpec) makeRow(cols, keys, dk []*Vec, i uint32, order [4]int, copy bool) row {
	r := row{vals: make([]Value, len(cols)+len(dk)), order: order}
	s.fillRow(&r, cols, keys, dk, i, copy)
	return r
}

// fillRow sets r's values to row i's, reusing r's slices.
func (s *rowsSpec) fillRow(r *row, cols, keys, dk []*Vec, i uint32, copy bool) {
	get := func(v *Vec) Value {
		x := v.Value(int(i))
		if copy {
			x = copyValue(x)
		}
		return x
	}
	r.vals = grow(r.vals, len(cols)+len(dk))
	for c, v := range cols {
		r.vals[c] = get(v)
	}
	for d, v := range dk {
		r.vals[len(cols)+d] = get(v)
	}
	if len(keys) > 0 {
		r.keys = grow(r.keys, len(keys))
		for k, v := range keys {
			r.keys[k] = get(v)
		}
	}
}

// collect adds the selected rows of a frame to the sink k: only those that
// make the cut when k keeps the top rows of a sort, every row otherwise.
func (s *rowsSpec) collect(w *wctx, f *frame, order func(i uint32) [4]int, k *rowSink) error {
	if !k.heap {
		return k.add(s.extract(w, f, order))
	}
	cols, keys, dk := s.eval(w, f)
	// An integer first sort key (sum, count) rules most rows out with one
	// comparison, once the heap is full, before the row is built.
	var k0 *Vec
	if len(keys) > 0 && keys[0].T == TInt {
		k0 = keys[0]
	}
	for _, i := range f.sel {
		if s.limit == 0 {
			break
		}
		if k0 != nil && len(k.rows) == s.limit {
			if worst := k.rows[0].keys[0]; worst.T == TInt {
				j := k0.idx(int(i))
				if k0.Valid == nil || k0.Valid[j] {
					if x := k0.I[j]; s.sort[0].desc && x < worst.I || !s.sort[0].desc && x > worst.I {
						continue // worse than the worst row kept
					}
				}
			}
		}
		c := &k.cand
		s.fillRow(c, cols, keys, dk, i, false)
		c.order = order(i)
		if len(k.rows) == s.limit {
			if k.cmpRows(c, &k.rows[0]) >= 0 {
				continue // no better than the worst row kept
			}
			k.rows[0] = s.makeRow(cols, keys, dk, i, c.order, true)
			k.down(0)
		} else {
			k.rows = append(k.rows, s.makeRow(cols, keys, dk, i, c.order, true))
			k.up(len(k.rows) - 1)
		}
		if k.onAdd != nil {
			k.onAdd(len(k.rows))
		}
	}
	return nil
}

// add takes rows in input order (or any order, for sort). It returns
// errEnough once an ordered sink has its limit.
func (k *rowSink) add(rows []row) error {
	s := k.spec
	for _, r := range rows {
		// The dedup keys stay at the end of vals until table().
		if len(s.dedup) > 0 && !hasNull(r.vals[len(s.cols):]) {
			// A row with an absent key is no duplicate: it is kept.
			k.buf = encodeKey(k.buf[:0], r.vals[len(s.cols):])
			if s.best {
				if i, ok := k.kept[string(k.buf)]; ok {
					if k.cmpRows(&r, &k.rows[i]) < 0 {
						k.rows[i] = r
					}
					continue
				}
				k.kept[string(k.buf)] = len(k.rows)
			} else {
				if k.seen[string(k.buf)] {
					continue
				}
				k.seen[string(k.buf)] = true
			}
		}
		if k.heap {
			if len(k.rows) == s.limit {
				if s.limit == 0 || k.cmpRows(&r, &k.rows[0]) >= 0 {
					continue
				}
				k.rows[0] = r
				k.down(0)
			} else {
				k.rows = append(k.rows, r)
				k.up(len(k.rows) - 1)
			}
		} else {
			k.rows = append(k.rows, r)
		}
		if k.onAdd != nil {
			k.onAdd(len(k.rows))
		}
		if s.ordered() && s.limit >= 0 && len(k.rows) >= s.limit {
			return errEnough
		}
	}
	return nil
}

func hasNull(vs []Value) bool {
	for _, v := range vs {
		if v.IsNull() {
			return true
		}
	}
	return false
}

// up and down restore the heap property of rows (the worst row at the
// root) after row i was added or replaced.
func (k *rowSink) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if k.cmpRows(&k.rows[i], &k.rows[p]) <= 0 {
			return
		}
		k.rows[i], k.rows[p] = k.rows[p], k.rows[i]
		i = p
	}
}

func (k *rowSink) down(i int) {
	n := len(k.rows)
	for {
		worst := i
		if l := 2*i + 1; l < n && k.cmpRows(&k.rows[l], &k.rows[worst]) > 0 {
			worst = l
		}
		if r := 2*i + 2; r < n && k.cmpRows(&k.rows[r], &k.rows[worst]) > 0 {
			worst = r
		}
		if worst == i {
			return
		}
		k.rows[i], k.rows[worst] = k.rows[worst], k.rows[i]
		i = worst
	}
}

// cmpRows orders two rows as the sort puts them: by the sort keys (absent
// values last whatever the direction), then, so that the order does not
// depend on how workers split the input, by the rows' values, then by
// input order.
func (k *rowSink) cmpRows(a, b *row) int {
	for i, sk := range k.spec.sort {
		c := compareNullsLast(a.keys[i], b.keys[i])
		if c != 0 {
			if sk.desc && !a.keys[i].IsNull() && !b.keys[i].IsNull() {
				return -c
			}
			return c
		}
	}
	nc := len(k.spec.cols)
	for i := range a.vals[:nc] {
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
}

func (k *rowSink) sortRows() {
	slices.SortFunc(k.rows, func(a, b row) int { return k.cmpRows(&a, &b) })
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
