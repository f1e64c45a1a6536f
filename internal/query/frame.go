package query

import (
	"github.com/flowguard/flowguard/internal/flowlog"
)

// frame is the set of rows a pipeline works on: a flow log batch while
// streaming, or a result table after a stats, sort or limit.
type frame struct {
	b     *flowlog.Batch // stream phase
	t     *Table         // table phase
	n     int            // rows in b or t
	sel   []uint32       // selected rows, ascending
	slots []*Vec         // columns computed by fields and parse, or the table's columns
	nbad  int            // b.NumBad() when sel was last cleaned
}

// dropBad removes from the selection the rows the batch found malformed
// while converting a column.
func (f *frame) dropBad() {
	if f.b == nil || f.b.NumBad() == f.nbad {
		return
	}
	f.nbad = f.b.NumBad()
	out := f.sel[:0]
	for _, i := range f.sel {
		if !f.b.Bad(int(i)) {
			out = append(out, i)
		}
	}
	f.sel = out
}

// wctx is one worker's scratch space: the output vectors of every
// expression node, reused from batch to batch.
type wctx struct {
	vecs  []Vec
	valid [][]bool
	sel   [2][]uint32
	which int
	buf   []byte
	sels  map[int][]uint32 // selection scratch of and/or nodes
	loc   []int            // parse's match positions
}

// locBuf returns the worker's buffer for n match positions.
func (w *wctx) locBuf(n int) []int {
	w.loc = grow(w.loc, n)
	return w.loc
}

func newWctx(nodes int) *wctx {
	return &wctx{vecs: make([]Vec, nodes), valid: make([][]bool, nodes)}
}

// out returns node id's output vector, sized for n rows of type t.
func (w *wctx) out(id int, t Type, n int) *Vec {
	v := &w.vecs[id]
	v.reset(t, n)
	return v
}

// setNull marks row i of node id's output vector as null.
func (w *wctx) setNull(id int, v *Vec, n, i int) {
	v.validity(n, &w.valid[id])[i] = false
}

// selBuf returns a selection buffer that is not f.sel.
func (w *wctx) selBuf(n int) []uint32 {
	w.which ^= 1
	w.sel[w.which] = grow(w.sel[w.which], n)[:0]
	return w.sel[w.which]
}

// startFrame selects every row of a batch.
func (w *wctx) startFrame(f *frame, b *flowlog.Batch, slots int) {
	f.b, f.t, f.n = b, nil, b.N
	f.nbad = 0
	sel := w.selBuf(b.N)[:b.N]
	for i := range sel {
		sel[i] = uint32(i)
	}
	f.sel = sel
	if cap(f.slots) < slots {
		f.slots = make([]*Vec, slots)
	}
	f.slots = f.slots[:slots]
	clear(f.slots)
	f.dropBad()
}

// nodeSel returns an empty selection buffer owned by node id.
func (w *wctx) nodeSel(id, n int) []uint32 {
	if w.sels == nil {
		w.sels = make(map[int][]uint32)
	}
	s := w.sels[id]
	if cap(s) < n {
		s = make([]uint32, 0, n)
	}
	return s[:0]
}

func (w *wctx) putNodeSel(id int, s []uint32) { w.sels[id] = s }
