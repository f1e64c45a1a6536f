package query

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
)

// keySpec is a group key of stats … by, or a column of a result.
type keySpec struct {
	name string
	x    node
}

// statsSpec is a compiled stats command.
type statsSpec struct {
	by   []keySpec
	aggs []aggSpec
	// ordered: the groups come out ordered by their keys. Not needed
	// when a sort follows, whose ties are broken by whole rows.
	ordered bool
}

// groupTable is one worker's groups and their aggregate states.
type groupTable struct {
	spec  *statsSpec
	types []Type

	// Single-key tables avoid encoding the key.
	addrIdx *addrMap
	intIdx  map[int64]int32
	strIdx  map[string]int32
	multi   map[string]int32
	nullG   int32 // group of the null key (single key), -1 if none

	keys []Value // the groups' keys, len(spec.by) values per group
	ngrp int
	aggs []aggregator
	gid  []int32
	buf  []byte
	vecs []*Vec
}

func newGroupTable(s *statsSpec) *groupTable {
	t := &groupTable{spec: s, nullG: -1}
	for _, k := range s.by {
		t.types = append(t.types, k.x.typ())
	}
	switch {
	case len(s.by) == 1 && t.types[0] == TAddr:
		t.addrIdx = newAddrMap()
	case len(s.by) == 1 && (t.types[0] == TInt || t.types[0] == TTime):
		t.intIdx = make(map[int64]int32)
	case len(s.by) == 1 && t.types[0] == TString:
		t.strIdx = make(map[string]int32)
	default:
		t.multi = make(map[string]int32)
	}
	for i := range s.aggs {
		t.aggs = append(t.aggs, s.aggs[i].newAggregator())
	}
	if len(s.by) == 0 {
		t.newGroup(nil) // stats without by has one group, even for no rows
	}
	return t
}

func (t *groupTable) newGroup(key []Value) int32 {
	g := int32(t.ngrp)
	for _, v := range key {
		t.keys = append(t.keys, copyValue(v))
	}
	t.ngrp++
	for _, a := range t.aggs {
		a.grow(t.ngrp)
	}
	return g
}

// key returns group g's key.
func (t *groupTable) key(g int) []Value {
	n := len(t.spec.by)
	return t.keys[g*n : (g+1)*n : (g+1)*n]
}

// consume adds the selected rows of a frame.
func (t *groupTable) consume(w *wctx, f *frame) {
	by := t.vecs[:0]
	for _, k := range t.spec.by {
		by = append(by, k.x.eval(w, f))
	}
	args := make([]*Vec, len(t.spec.aggs))
	tss := make([]*Vec, len(t.spec.aggs))
	for i, a := range t.spec.aggs {
		if a.arg != nil {
			args[i] = a.arg.eval(w, f)
		}
		if a.ts != nil {
			tss[i] = a.ts.eval(w, f)
		}
	}
	t.vecs = by
	f.dropBad()
	if len(f.sel) == 0 {
		return
	}
	t.gid = grow(t.gid, f.n)
	gid := t.gid
	switch {
	case len(by) == 0:
		for _, i := range f.sel {
			gid[i] = 0
		}
	case t.addrIdx != nil:
		v := by[0]
		for _, i := range f.sel {
			a := v.A[v.idx(int(i))]
			if !a.IsValid() {
				gid[i] = t.nullGroup()
				continue
			}
			g, ok := t.addrIdx.get(a)
			if !ok {
				g = t.newGroup([]Value{AddrValue(a)})
				t.addrIdx.put(a, g)
			}
			gid[i] = g
		}
	case t.intIdx != nil:
		v := by[0]
		for _, i := range f.sel {
			if v.IsNull(int(i)) {
				gid[i] = t.nullGroup()
				continue
			}
			x := v.I[v.idx(int(i))]
			g, ok := t.intIdx[x]
			if !ok {
				g = t.newGroup([]Value{{T: v.T, I: x}})
				t.intIdx[x] = g
			}
			gid[i] = g
		}
	case t.strIdx != nil:
		v := by[0]
		for _, i := range f.sel {
			if v.IsNull(int(i)) {
				gid[i] = t.nullGroup()
				continue
			}
			s := v.S[v.idx(int(i))]
			g, ok := t.strIdx[s]
			if !ok {
				g = t.newGroup([]Value{StringValue(s)})
				t.strIdx[t.key(int(g))[0].S] = g
			}
			gid[i] = g
		}
	default:
		key := make([]Value, len(by))
		for _, i := range f.sel {
			for k, v := range by {
				key[k] = conv(v.Value(int(i)), t.types[k])
			}
			gid[i] = t.lookup(key)
		}
	}
	for a, agg := range t.aggs {
		agg.update(gid, f.sel, args[a], tss[a])
	}
}

func (t *groupTable) nullGroup() int32 {
	if t.nullG < 0 {
		t.nullG = t.newGroup([]Value{Null})
	}
	return t.nullG
}

// lookup finds or creates the group of a key (any number of columns).
func (t *groupTable) lookup(key []Value) int32 {
	if len(key) == 1 {
		v := key[0]
		switch {
		case v.IsNull():
			return t.nullGroup()
		case t.addrIdx != nil:
			g, ok := t.addrIdx.get(v.A)
			if !ok {
				g = t.newGroup(key)
				t.addrIdx.put(v.A, g)
			}
			return g
		case t.intIdx != nil:
			g, ok := t.intIdx[v.I]
			if !ok {
				g = t.newGroup(key)
				t.intIdx[v.I] = g
			}
			return g
		case t.strIdx != nil:
			g, ok := t.strIdx[v.S]
			if !ok {
				g = t.newGroup(key)
				t.strIdx[t.key(int(g))[0].S] = g
			}
			return g
		}
	}
	t.buf = encodeKey(t.buf[:0], key)
	g, ok := t.multi[string(t.buf)]
	if !ok {
		g = t.newGroup(key)
		t.multi[string(t.buf)] = g
	}
	return g
}

// encodeKey appends an unambiguous binary form of a composite key.
func encodeKey(dst []byte, key []Value) []byte {
	for _, v := range key {
		dst = append(dst, byte(v.T))
		switch v.T {
		case TBool, TInt, TTime:
			dst = binary.LittleEndian.AppendUint64(dst, uint64(v.I))
		case TFloat:
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.F))
		case TString:
			dst = binary.AppendUvarint(dst, uint64(len(v.S)))
			dst = append(dst, v.S...)
		case TAddr:
			b := v.A.As16()
			dst = append(dst, b[:]...)
			if v.A.Is4() {
				dst = append(dst, 4)
			} else {
				dst = append(dst, 6)
			}
		}
	}
	return dst
}

// merge adds another worker's groups into t.
func (t *groupTable) merge(o *groupTable) {
	for sg := 0; sg < o.ngrp; sg++ {
		key := o.key(sg)
		var g int32
		if len(t.spec.by) == 0 {
			g = 0
		} else {
			g = t.lookup(key)
		}
		for a, agg := range t.aggs {
			agg.merge(g, o.aggs[a], int32(sg))
		}
	}
}

// table returns the groups as a result table: keys first, then the
// aggregates, rows ordered by their keys.
func (t *groupTable) table() *Table {
	out := &Table{}
	for i, k := range t.spec.by {
		out.Names = append(out.Names, k.name)
		out.Types = append(out.Types, t.types[i])
	}
	for _, a := range t.spec.aggs {
		out.Names = append(out.Names, a.name)
		out.Types = append(out.Types, a.t)
	}
	out.Rows = make([][]Value, t.ngrp)
	width := len(out.Names)
	cells := make([]Value, t.ngrp*width)
	for g := range out.Rows {
		row := cells[g*width : g*width : (g+1)*width]
		row = append(row, t.key(g)...)
		for _, agg := range t.aggs {
			row = append(row, agg.result(int32(g)))
		}
		out.Rows[g] = row
	}
	// Keys are unique, so an unstable sort gives one order.
	nk := len(t.spec.by)
	switch {
	case !t.spec.ordered:
	case nk == 1 && t.addrIdx != nil:
		slices.SortFunc(out.Rows, func(a, b []Value) int {
			x, y := a[0], b[0]
			if x.T == TNull || y.T == TNull {
				return compareNullsLast(x, y)
			}
			return x.A.Compare(y.A)
		})
	case nk > 0:
		slices.SortFunc(out.Rows, func(a, b []Value) int {
			for k := 0; k < nk; k++ {
				if c := compareNullsLast(a[k], b[k]); c != 0 {
					return c
				}
			}
			return 0
		})
	}
	return out
}

// compareNullsLast orders values for sorting: nulls after everything.
func compareNullsLast(a, b Value) int {
	switch {
	case a.IsNull() && b.IsNull():
		return 0
	case a.IsNull():
		return 1
	case b.IsNull():
		return -1
	}
	c, _ := compare(a, b)
	if c == 0 && a.T != b.T {
		return strings.Compare(a.String(), b.String())
	}
	return c
}
