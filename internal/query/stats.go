package query

import (
	"encoding/binary"
	"math"
	"net/netip"
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
	// post computes the items that are expressions over aggregates; nil
	// when every item is an aggregate call.
	post *statsPost
}

// groupTable is one worker's groups and their aggregate states. A single
// group key of a common type is kept in a typed index that also holds the
// keys (an address table, a map of integers or of strings); other keys are
// encoded into a byte string.
type groupTable struct {
	spec  *statsSpec
	types []Type

	addrIdx *addrMap            // one address key
	v4      *partAgg[uint32]    // one address key, counts and sums: IPv4 rows, partitioned
	v6      *partAgg[[2]uint64] // and IPv6 rows
	// Two address keys (stats … by srcaddr, dstaddr): pairs of IPv4
	// addresses as one 8-byte key, partitioned for counts and sums
	// (pair4) or in an open-addressing table (pairIdx); other pairs in
	// multi.
	pair4     *partAgg[uint64]
	pair6     *partAgg[pair6Key] // pairs of addresses, one of them or both IPv6
	pairIdx   *pairMap
	pairOther map[[2]netip.Addr]int32 // pairs not both IPv4, absent ones included
	intIdx    map[int64]int32         // one integer or time key
	intKeys   []int64                 // by group
	strIdx    map[string]int32        // one string key
	strKeys   []string                // by group
	// One string key, counts and sums: strings of at most seven bytes
	// (ports, protocols, actions taken out by parse) as one 8-byte key,
	// partitioned; longer ones in strIdx.
	str8  *partAgg[uint64]
	multi map[string]int32 // anything else
	keys  []Value          // multi: len(spec.by) values per group
	nullG int32            // group of the absent key (single key), -1 if none

	ngrp int
	aggs []aggregator
	gid  []int32
	buf  []byte
	vecs []*Vec
}

// newGroupTable makes a worker's groups. Workers after the first pass the
// first one's table as like, to share its partitioned aggregation.
func newGroupTable(s *statsSpec, like *groupTable) *groupTable {
	t := &groupTable{spec: s, nullG: -1}
	for _, k := range s.by {
		t.types = append(t.types, k.x.typ())
	}
	switch {
	case len(s.by) == 1 && t.types[0] == TAddr:
		t.addrIdx = newAddrMap()
		if kinds := partAggKinds(s); kinds != nil {
			if like != nil {
				t.v4, t.v6 = like.v4.worker(), like.v6.worker()
			} else {
				t.v4 = newPartAgg(kinds, hashV4)
				t.v6 = newPartAgg(kinds, hashV6)
			}
		}
	case len(s.by) == 2 && t.types[0] == TAddr && t.types[1] == TAddr:
		t.pairOther = make(map[[2]netip.Addr]int32)
		if kinds := partAggKinds(s); kinds != nil {
			if like != nil {
				t.pair4, t.pair6 = like.pair4.worker(), like.pair6.worker()
			} else {
				t.pair4 = newPartAgg(kinds, hashPair)
				t.pair6 = newPartAgg(kinds, hashPair6)
			}
		} else {
			t.pairIdx = newPairMap()
		}
	case len(s.by) == 1 && (t.types[0] == TInt || t.types[0] == TTime):
		t.intIdx = make(map[int64]int32)
	case len(s.by) == 1 && t.types[0] == TString:
		t.strIdx = make(map[string]int32)
		if kinds := partAggKinds(s); kinds != nil {
			if like != nil {
				t.str8 = like.str8.worker()
			} else {
				t.str8 = newPartAgg(kinds, hashPair)
			}
		}
	default:
		t.multi = make(map[string]int32)
	}
	for i := range s.aggs {
		t.aggs = append(t.aggs, s.aggs[i].newAggregator())
	}
	if len(s.by) == 0 {
		t.newGroup() // stats without by has one group, even for no rows
	}
	return t
}

// newGroup adds a group; the caller records its key.
func (t *groupTable) newGroup() int32 {
	g := int32(t.ngrp)
	t.ngrp++
	for _, a := range t.aggs {
		a.grow(t.ngrp)
	}
	return g
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
	case t.v4 != nil:
		// Addresses go to the partitioned aggregation, absent ones to
		// the address table's null group.
		v := by[0]
		rest := f.sel[:0:0]
		for _, i := range f.sel {
			a := v.A[v.idx(int(i))]
			switch {
			case a.Is4():
				t.v4.add(v4Key(a), int(i), args)
			case a.IsValid():
				t.v6.add(v6Key(a), int(i), args)
			default:
				gid[i] = t.nullGroup()
				rest = append(rest, i)
			}
		}
		for a, agg := range t.aggs {
			agg.update(gid, rest, args[a], tss[a])
		}
		return
	case t.pair4 != nil:
		// IPv4 pairs go to the partitioned aggregation, the others to
		// the general table.
		x, y := by[0], by[1]
		rest := f.sel[:0:0]
		for _, i := range f.sel {
			a, b := x.A[x.idx(int(i))], y.A[y.idx(int(i))]
			switch {
			case a.Is4() && b.Is4():
				t.pair4.add(pairKey(a, b), int(i), args)
			case a.IsValid() && b.IsValid():
				t.pair6.add(pair6KeyOf(a, b), int(i), args)
			default:
				gid[i] = t.otherPairGroup(a, b)
				rest = append(rest, i)
			}
		}
		for a, agg := range t.aggs {
			agg.update(gid, rest, args[a], tss[a])
		}
		return
	case t.pairIdx != nil:
		x, y := by[0], by[1]
		for _, i := range f.sel {
			a, b := x.A[x.idx(int(i))], y.A[y.idx(int(i))]
			if a.Is4() && b.Is4() {
				gid[i] = t.pairGroup(a, b)
				continue
			}
			gid[i] = t.otherPairGroup(a, b)
		}
	case t.addrIdx != nil:
		v := by[0]
		for _, i := range f.sel {
			gid[i] = t.addrGroup(v.A[v.idx(int(i))])
		}
	case t.intIdx != nil:
		v := by[0]
		for _, i := range f.sel {
			if v.IsNull(int(i)) {
				gid[i] = t.nullGroup()
				continue
			}
			if v.T == TFloat {
				// A batch whose column went past int64: keys that
				// are no int64 group as absent.
				x := conv(v.Value(int(i)), TInt)
				if x.IsNull() {
					gid[i] = t.nullGroup()
				} else {
					gid[i] = t.intGroup(x.I)
				}
				continue
			}
			gid[i] = t.intGroup(v.I[v.idx(int(i))])
		}
	case t.str8 != nil:
		// Short strings go to the partitioned aggregation, the others
		// and absent ones to the string table.
		v := by[0]
		rest := f.sel[:0:0]
		for _, i := range f.sel {
			j := v.idx(int(i))
			switch {
			case v.Valid != nil && !v.Valid[j]:
				gid[i] = t.nullGroup()
			case len(v.S[j]) <= 7:
				t.str8.add(str8Key(v.S[j]), int(i), args)
				continue
			default:
				gid[i] = t.strGroup(v.S[j])
			}
			rest = append(rest, i)
		}
		for a, agg := range t.aggs {
			agg.update(gid, rest, args[a], tss[a])
		}
		return
	case t.strIdx != nil:
		v := by[0]
		for _, i := range f.sel {
			if v.IsNull(int(i)) {
				gid[i] = t.nullGroup()
				continue
			}
			gid[i] = t.strGroup(v.S[v.idx(int(i))])
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

func (t *groupTable) addrGroup(a netip.Addr) int32 {
	if !a.IsValid() {
		return t.nullGroup()
	}
	g, added := t.addrIdx.getOrAdd(a, int32(t.ngrp))
	if added {
		t.newGroup()
	}
	return g
}

func (t *groupTable) intGroup(x int64) int32 {
	g, ok := t.intIdx[x]
	if !ok {
		g = t.newGroup()
		t.intIdx[x] = g
		t.intKeys = growZero(t.intKeys, t.ngrp)
		t.intKeys[g] = x
	}
	return g
}

func (t *groupTable) strGroup(s string) int32 {
	g, ok := t.strIdx[s]
	if !ok {
		g = t.newGroup()
		s = strings.Clone(s) // the batch's bytes go away
		t.strIdx[s] = g
		t.strKeys = growZero(t.strKeys, t.ngrp)
		t.strKeys[g] = s
	}
	return g
}

func (t *groupTable) nullGroup() int32 {
	if t.nullG < 0 {
		t.nullG = t.newGroup()
		t.intKeys = growZero(t.intKeys, t.ngrp)
		t.strKeys = growZero(t.strKeys, t.ngrp)
	}
	return t.nullG
}

// pairGroup finds or creates the group of a pair of IPv4 addresses.
func (t *groupTable) pairGroup(a, b netip.Addr) int32 {
	g, added := t.pairIdx.getOrAdd(pairKey(a, b), int32(t.ngrp))
	if added {
		t.newGroup()
		t.keys = append(t.keys, AddrValue(a), AddrValue(b))
	}
	return g
}

// otherPairGroup finds or creates the group of a pair of addresses that
// are not both IPv4 (IPv6, or absent: the zero Addr).
func (t *groupTable) otherPairGroup(a, b netip.Addr) int32 {
	k := [2]netip.Addr{a, b}
	g, ok := t.pairOther[k]
	if !ok {
		g = t.newGroup()
		t.pairOther[k] = g
		t.keys = append(t.keys, AddrValue(a), AddrValue(b))
	}
	return g
}

// lookup finds or creates the group of a key.
func (t *groupTable) lookup(key []Value) int32 {
	if t.pairOther != nil {
		a, b := key[0].A, key[1].A // absent: the zero Addr
		if a.Is4() && b.Is4() && t.pairIdx != nil {
			return t.pairGroup(a, b)
		}
		return t.otherPairGroup(a, b)
	}
	if len(key) == 1 && t.multi == nil {
		v := key[0]
		switch {
		case v.IsNull():
			return t.nullGroup()
		case t.addrIdx != nil:
			return t.addrGroup(v.A)
		case t.intIdx != nil:
			return t.intGroup(v.I)
		case t.strIdx != nil:
			return t.strGroup(v.S)
		}
	}
	t.buf = encodeKey(t.buf[:0], key)
	g, ok := t.multi[string(t.buf)]
	if !ok {
		g = t.newGroup()
		t.multi[string(t.buf)] = g
		for _, v := range key {
			t.keys = append(t.keys, copyValue(v))
		}
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

// keyVecs returns the group keys as columns, one per key of the spec.
func (t *groupTable) keyVecs() []*Vec {
	n := t.ngrp
	nk := len(t.spec.by)
	vecs := make([]*Vec, nk)
	for k := range vecs {
		vecs[k] = &Vec{T: t.types[k]}
	}
	switch {
	case nk == 0:
	case t.addrIdx != nil:
		a := make([]netip.Addr, n) // the null group stays the zero Addr
		t.addrIdx.each(func(x netip.Addr, g int32) { a[g] = x })
		vecs[0].A = a
	case t.intIdx != nil:
		vecs[0].I = growZero(t.intKeys, n)[:n]
		if t.nullG >= 0 {
			vecs[0].Valid = nullAt(n, t.nullG)
		}
	case t.strIdx != nil:
		vecs[0].S = growZero(t.strKeys, n)[:n]
		if t.nullG >= 0 {
			vecs[0].Valid = nullAt(n, t.nullG)
		}
	default:
		for k, v := range vecs {
			var valid []bool
			v.reset(v.T, n)
			for g := 0; g < n; g++ {
				v.set(g, t.keys[g*nk+k], &valid, n)
			}
		}
	}
	return vecs
}

func nullAt(n int, g int32) []bool {
	valid := make([]bool, n)
	for i := range valid {
		valid[i] = true
	}
	valid[g] = false
	return valid
}

// merge adds another worker's groups into t.
// finish folds what the worker still has buffered; workers may finish in
// parallel.
func (t *groupTable) finish() {
	if t.v4 != nil {
		t.v4.finish()
		t.v6.finish()
	}
	if t.pair4 != nil {
		t.pair4.finish()
		t.pair6.finish()
	}
	if t.str8 != nil {
		t.str8.finish()
	}
}

// merge adds another worker's groups into t (the partitioned groups are
// shared already); both must have finished.
func (t *groupTable) merge(o *groupTable) {
	if o.ngrp == 0 {
		return
	}
	// remap[g] is o's group g in t.
	remap := make([]int32, o.ngrp)
	switch {
	case len(t.spec.by) == 0:
	case t.addrIdx != nil:
		o.addrIdx.each(func(a netip.Addr, g int32) { remap[g] = t.addrGroup(a) })
	case t.intIdx != nil:
		for x, g := range o.intIdx {
			remap[g] = t.intGroup(x)
		}
	case t.strIdx != nil:
		for x, g := range o.strIdx {
			remap[g] = t.strGroup(x)
		}
	default:
		nk := len(t.spec.by)
		for g := 0; g < o.ngrp; g++ {
			remap[g] = t.lookup(o.keys[g*nk : (g+1)*nk])
		}
	}
	if o.nullG >= 0 {
		remap[o.nullG] = t.nullGroup()
	}
	for g, tg := range remap {
		for a, agg := range t.aggs {
			agg.merge(tg, o.aggs[a], int32(g))
		}
	}
}

// table returns the groups as a columnar result: keys first, then the
// aggregates; ordered by their keys when the spec asks for it.
func (t *groupTable) table() *Table {
	out := &Table{n: t.ngrp}
	for i, k := range t.spec.by {
		out.Names = append(out.Names, k.name)
		out.Types = append(out.Types, t.types[i])
	}
	for _, a := range t.spec.aggs {
		out.Names = append(out.Names, a.name)
		out.Types = append(out.Types, a.t)
	}
	out.cols = append(t.keyVecs(), make([]*Vec, len(t.aggs))...)
	nk := len(t.spec.by)
	for a, agg := range t.aggs {
		out.cols[nk+a] = aggVec(agg, t.spec.aggs[a].t, t.ngrp)
	}
	if t.str8 != nil {
		// The string table holds the long strings and the absent key;
		// the short strings' groups follow them.
		total := t.ngrp + t.str8.len()
		aggs, spills := t.partColumns(out, total)
		keys := append(make([]string, 0, total), out.cols[0].S[:t.ngrp]...)
		var valid []bool
		if out.cols[0].Valid != nil {
			valid = append(make([]bool, 0, total), out.cols[0].Valid[:t.ngrp]...)
		}
		t.str8.appendColumns(aggs, spills, func(k uint64) {
			keys = append(keys, strOf8(k))
			if valid != nil {
				valid = append(valid, true)
			}
		})
		out.n = total
		out.cols[0] = &Vec{T: TString, S: keys, Valid: valid}
		for a, v := range aggs {
			addSpills(v, spills[a])
			out.cols[nk+a] = v
		}
	}
	if t.v4 != nil || t.pair4 != nil {
		// The group tables hold only the groups not partitioned (the
		// absent key's, pairs that are not both IPv4); the partitioned
		// groups follow them, in columns sized once.
		total := t.ngrp
		if t.v4 != nil {
			total += t.v4.len() + t.v6.len()
		} else {
			total += t.pair4.len() + t.pair6.len()
		}
		aggs, spills := t.partColumns(out, total)
		keys := make([][]netip.Addr, nk)
		for k := range keys {
			keys[k] = append(make([]netip.Addr, 0, total), out.cols[k].A[:t.ngrp]...)
		}
		if t.v4 != nil {
			t.v4.appendColumns(aggs, spills, func(k uint32) { keys[0] = append(keys[0], addrOfV4(k)) })
			t.v6.appendColumns(aggs, spills, func(k [2]uint64) { keys[0] = append(keys[0], addrOfV6(k)) })
		} else {
			t.pair4.appendColumns(aggs, spills, func(k uint64) {
				keys[0] = append(keys[0], addrOfV4(uint32(k>>32)))
				keys[1] = append(keys[1], addrOfV4(uint32(k)))
			})
			t.pair6.appendColumns(aggs, spills, func(k pair6Key) {
				a, b := k.addrs()
				keys[0] = append(keys[0], a)
				keys[1] = append(keys[1], b)
			})
		}
		out.n = total
		for k := range keys {
			out.cols[k] = &Vec{T: TAddr, A: keys[k]} // the zero Addr is absent
		}
		for a, v := range aggs {
			addSpills(v, spills[a])
			out.cols[nk+a] = v
		}
	}
	ngrp := out.n
	if t.spec.ordered && nk > 0 && ngrp > 1 {
		perm := make([]int32, ngrp)
		for i := range perm {
			perm[i] = int32(i)
		}
		keys := out.cols[:nk]
		switch {
		case allAddrs(keys) && nk <= 2:
			perm = sortAddrKeys(keys, ngrp)
		case nk == 1 && keys[0].T == TString && !keys[0].Const:
			// Text by its bytes, absent last, as compareNullsLast
			// orders strings, without building Values.
			v := keys[0]
			slices.SortFunc(perm, func(x, y int32) int {
				nx, ny := v.Valid != nil && !v.Valid[x], v.Valid != nil && !v.Valid[y]
				switch {
				case nx || ny:
					return cmpBool(nx, ny)
				}
				return strings.Compare(v.S[x], v.S[y])
			})
		default:
			slices.SortFunc(perm, func(x, y int32) int {
				for _, k := range keys {
					if c := compareNullsLast(k.Value(int(x)), k.Value(int(y))); c != 0 {
						return c
					}
				}
				return 0
			})
		}
		for c, v := range out.cols {
			out.cols[c] = v.gather(perm)
		}
	}
	return out
}

// partColumns returns the aggregate columns of a table whose groups go on
// in partitions: the first t.ngrp rows from out's columns, room for total,
// and the float64 parts of the sums of those rows that went past int64.
func (t *groupTable) partColumns(out *Table, total int) ([]*Vec, []map[int]float64) {
	nk := len(t.spec.by)
	kinds := partAggKinds(t.spec)
	aggs := make([]*Vec, len(t.aggs))
	spills := make([]map[int]float64, len(t.aggs))
	for a := range aggs {
		old := out.cols[nk+a]
		aggs[a] = &Vec{T: TInt, I: make([]int64, t.ngrp, total)}
		for g := range t.ngrp {
			if old.T == TFloat { // this group's sum went past int64
				if spills[a] == nil {
					spills[a] = make(map[int]float64)
				}
				spills[a][g] = old.F[g]
			} else {
				aggs[a].I[g] = old.I[g]
			}
		}
		if old.Valid != nil || kinds[a] == partSum {
			aggs[a].Valid = make([]bool, t.ngrp, total)
			for g := range t.ngrp {
				aggs[a].Valid[g] = old.Valid == nil || old.Valid[g]
			}
		}
	}
	return aggs, spills
}

// addrOrder is an address as words that order as sort orders addresses:
// IPv4 before IPv6, each by value, the absent one last.
type addrOrder struct {
	rank   uint8 // 0 IPv4, 1 IPv6, 2 absent
	hi, lo uint64
}

func orderOf(a netip.Addr) addrOrder {
	switch {
	case a.Is4():
		b := a.As4()
		return addrOrder{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	case a.IsValid():
		b := a.As16()
		return addrOrder{rank: 1, hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
	}
	return addrOrder{rank: 2}
}

func (x addrOrder) cmp(y addrOrder) int {
	switch {
	case x.rank != y.rank:
		return int(x.rank) - int(y.rank)
	case x.hi != y.hi:
		if x.hi < y.hi {
			return -1
		}
		return 1
	case x.lo != y.lo:
		if x.lo < y.lo {
			return -1
		}
		return 1
	}
	return 0
}

// sortAddrKeys returns the permutation that orders n groups by one or two
// address keys (absent last): the addresses turned into plain words once,
// then sorted, rather than compared as netip.Addr at every step.
func sortAddrKeys(keys []*Vec, n int) []int32 {
	type entry struct {
		k0, k1 addrOrder
		i      int32
	}
	es := make([]entry, n)
	for i := range es {
		es[i].i = int32(i)
		es[i].k0 = orderOf(keys[0].A[i])
		if len(keys) > 1 {
			es[i].k1 = orderOf(keys[1].A[i])
		}
	}
	slices.SortFunc(es, func(x, y entry) int {
		if c := x.k0.cmp(y.k0); c != 0 {
			return c
		}
		return x.k1.cmp(y.k1)
	})
	perm := make([]int32, n)
	for i, e := range es {
		perm[i] = e.i
	}
	return perm
}

func allAddrs(vs []*Vec) bool {
	for _, v := range vs {
		if v.T != TAddr || v.Const {
			return false
		}
	}
	return true
}

// aggVec returns an aggregate's results for n groups as a column: of type
// t, or float64 when an integer aggregate went past the int64 range.
func aggVec(agg aggregator, t Type, n int) *Vec {
	if c, ok := agg.(*countAgg); ok {
		return &Vec{T: TInt, I: c.n[:n]}
	}
	if t == TInt || t == TTime {
		for g := 0; g < n; g++ {
			if agg.result(int32(g)).T == TFloat {
				t = TFloat
				break
			}
		}
	}
	v := &Vec{}
	v.reset(t, n)
	var valid []bool
	for g := 0; g < n; g++ {
		v.set(g, conv(agg.result(int32(g)), t), &valid, n)
	}
	return v
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

// str8Key packs a string of at most seven bytes into one word: its bytes,
// the first lowest, and its length in the top byte, so that different
// strings (an empty one included) get different keys.
func str8Key(s string) uint64 {
	k := uint64(len(s)) << 56
	for i := 0; i < len(s); i++ {
		k |= uint64(s[i]) << (8 * i)
	}
	return k
}

// strOf8 is the string of a str8Key.
func strOf8(k uint64) string {
	n := int(k >> 56)
	var b [7]byte
	for i := range n {
		b[i] = byte(k >> (8 * i))
	}
	return string(b[:n])
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
