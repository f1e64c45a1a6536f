package query

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
)

// partAgg is radix-partitioned aggregation for the most common flow log
// statistic: counts and integer sums grouped by one address
// (stats count() by srcaddr). With a million distinct addresses a single
// hash table misses the cache on every row. Here each row's key and values
// are appended to one of 256 small buffers chosen by the key's hash
// (sequential writes), and a full buffer is folded into that partition's
// own hash table, which is small enough to stay in cache while it is
// being updated. The workers of one query share the partitions' tables,
// each behind its own lock, and keep their own buffers, so nothing is left
// to merge at the end. K is uint32 for IPv4 addresses and [2]uint64 for
// IPv6.
type partAgg[K comparable] struct {
	hash func(K) uint64
	aggs []partAggKind
	// parts are the partitions' tables, shared by the workers of one
	// query, each behind its own lock: a worker folds a full buffer into
	// its partition, so no merge is left for the end.
	parts *[numParts]partition[K]
	locks *[numParts]sync.Mutex
	// bufs are this worker's buffered rows, by partition.
	bufs [numParts]partBuf[K]
}

// partBuf is one worker's buffered rows for one partition.
type partBuf[K comparable] struct {
	keys []K
	vals [][]int64 // per sum: the value (float64 bits when ok is okFloat)
	ok   [][]uint8 // per sum: okAbsent, okInt or okFloat
}

// What a buffered sum value is.
const (
	okAbsent uint8 = iota
	okInt
	okFloat // a float64 value, from a column past the int64 range
)

const (
	numParts   = 256
	partBuffer = 2048 // rows buffered per partition before folding
)

type partAggKind uint8

const (
	partCount partAggKind = iota // count(), count(*)
	partSum                      // sum of an integer column
)

type partition[K comparable] struct {
	slots  []partSlot[K]
	n      int
	gkeys  []K
	counts [][]int64 // per aggregate: count, or sum
	has    [][]bool  // per sum: whether any value was added
	// spill is, per sum, the float64 part of the groups whose sum went
	// past the int64 range; nil until one does.
	spill []map[int32]float64
}

// partSlot is a hash table slot: a key and its group id plus one (0: empty).
type partSlot[K comparable] struct {
	key K
	id  int32
}

// partAggKinds returns the kinds of a stats command's aggregates if all can
// be partitioned, or nil.
func partAggKinds(s *statsSpec) []partAggKind {
	var kinds []partAggKind
	for _, a := range s.aggs {
		switch {
		case a.fn == "count" && a.arg == nil:
			kinds = append(kinds, partCount)
		case a.fn == "sum" && a.arg != nil && a.arg.typ() == TInt:
			kinds = append(kinds, partSum)
		default:
			return nil
		}
	}
	return kinds
}

// newPartAgg makes the shared tables and a first worker's buffers.
func newPartAgg[K comparable](kinds []partAggKind, hash func(K) uint64) *partAgg[K] {
	p := &partAgg[K]{aggs: kinds, hash: hash, parts: new([numParts]partition[K]), locks: new([numParts]sync.Mutex)}
	for i := range p.parts {
		pt := &p.parts[i]
		pt.counts = make([][]int64, len(kinds))
		pt.has = make([][]bool, len(kinds))
		pt.spill = make([]map[int32]float64, len(kinds))
	}
	p.initBufs()
	return p
}

// worker returns another worker's view: the same tables, its own buffers.
func (p *partAgg[K]) worker() *partAgg[K] {
	w := &partAgg[K]{aggs: p.aggs, hash: p.hash, parts: p.parts, locks: p.locks}
	w.initBufs()
	return w
}

func (p *partAgg[K]) initBufs() {
	for i := range p.bufs {
		p.bufs[i].vals = make([][]int64, len(p.aggs))
		p.bufs[i].ok = make([][]uint8, len(p.aggs))
	}
}

func hashV4(k uint32) uint64 {
	h := uint64(k) * 0x9e3779b97f4a7c15
	return h ^ h>>32
}

func hashV6(k [2]uint64) uint64 { return hashKey(k[0], k[1]) }

// pair6Key is a pair of addresses not both IPv4: each as 16 bytes, and
// which of them are IPv4 (bit 0 the first, bit 1 the second), so that an
// IPv4 address and its IPv4-mapped IPv6 form stay apart.
type pair6Key struct {
	a, b [2]uint64
	v4   uint8
}

func pair6KeyOf(a, b netip.Addr) pair6Key {
	k := pair6Key{a: v6Key(a), b: v6Key(b)}
	if a.Is4() {
		k.v4 |= 1
	}
	if b.Is4() {
		k.v4 |= 2
	}
	return k
}

// addrs returns the two addresses of the key.
func (k pair6Key) addrs() (netip.Addr, netip.Addr) {
	a, b := addrOfV6(k.a), addrOfV6(k.b)
	if k.v4&1 != 0 {
		a = a.Unmap()
	}
	if k.v4&2 != 0 {
		b = b.Unmap()
	}
	return a, b
}

func hashPair6(k pair6Key) uint64 {
	return hashKey(hashKey(k.a[0], k.a[1])^uint64(k.v4), hashKey(k.b[0], k.b[1]))
}

// hashPair hashes a pair of IPv4 addresses, a<<32 | b.
func hashPair(k uint64) uint64 {
	h, l := bits.Mul64(k^0x9e3779b97f4a7c15, 0xc2b2ae3d27d4eb4f)
	return h ^ l
}

// v4Key and v6Key are the keys of an address.
func v4Key(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func v6Key(a netip.Addr) [2]uint64 {
	b := a.As16()
	return [2]uint64{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// add buffers one row: key k and the row's aggregate arguments.
func (p *partAgg[K]) add(k K, i int, args []*Vec) {
	part := p.hash(k) >> 56
	pt := &p.bufs[part]
	pt.keys = append(pt.keys, k)
	for a, kind := range p.aggs {
		if kind == partSum {
			v := args[a]
			j := v.idx(i)
			switch {
			case v.Valid != nil && !v.Valid[j]:
				pt.vals[a] = append(pt.vals[a], 0)
				pt.ok[a] = append(pt.ok[a], okAbsent)
			case v.T == TFloat:
				pt.vals[a] = append(pt.vals[a], int64(math.Float64bits(v.F[j])))
				pt.ok[a] = append(pt.ok[a], okFloat)
			default:
				pt.vals[a] = append(pt.vals[a], v.I[j])
				pt.ok[a] = append(pt.ok[a], okInt)
			}
		}
	}
	if len(pt.keys) >= partBuffer {
		p.fold(int(part))
	}
}

// fold adds this worker's buffered rows of partition i to its groups.
func (p *partAgg[K]) fold(i int) {
	buf := &p.bufs[i]
	if len(buf.keys) == 0 {
		return
	}
	p.locks[i].Lock()
	pt := &p.parts[i]
	// Room for every buffered row being a new group, made once.
	p.reserve(pt, len(buf.keys))
	for r, k := range buf.keys {
		g := p.group(pt, k)
		for a, kind := range p.aggs {
			switch {
			case kind == partCount:
				pt.counts[a][g]++
			case buf.ok[a][r] == okInt:
				x, y := pt.counts[a][g], buf.vals[a][r]
				z := x + y
				if (x >= 0) == (y >= 0) && (z >= 0) != (y >= 0) {
					pt.addSpill(a, g, float64(x)+float64(y))
					z = 0
				}
				pt.counts[a][g] = z
				pt.has[a][g] = true
			case buf.ok[a][r] == okFloat:
				pt.addSpill(a, g, math.Float64frombits(uint64(buf.vals[a][r])))
				pt.has[a][g] = true
			}
		}
	}
	p.locks[i].Unlock()
	buf.keys = buf.keys[:0]
	for a := range p.aggs {
		buf.vals[a] = buf.vals[a][:0]
		buf.ok[a] = buf.ok[a][:0]
	}
}

// addSpill adds x to the float64 part of sum a of group g.
func (pt *partition[K]) addSpill(a int, g int32, x float64) {
	if pt.spill[a] == nil {
		pt.spill[a] = make(map[int32]float64)
	}
	pt.spill[a][g] += x
}

// group finds or adds the group of k in the partition.
func (p *partAgg[K]) group(pt *partition[K], k K) int32 {
	if 2*(pt.n+1) > len(pt.slots) {
		p.grow(pt)
	}
	mask := uint64(len(pt.slots) - 1)
	for i := (p.hash(k) >> 8) & mask; ; i = (i + 1) & mask {
		s := &pt.slots[i]
		if s.id == 0 {
			g := int32(pt.n)
			s.key, s.id = k, g+1
			pt.n++
			pt.gkeys = append(pt.gkeys, k)
			for a := range p.aggs {
				pt.counts[a] = append(pt.counts[a], 0)
				pt.has[a] = append(pt.has[a], false)
			}
			return g
		}
		if s.key == k {
			return s.id - 1
		}
	}
}

func (p *partAgg[K]) grow(pt *partition[K]) {
	p.resize(pt, max(256, 2*len(pt.slots)))
}

// reserve makes room for n more groups: table slots at most half full, and
// group arrays that will not be copied while they fill.
func (p *partAgg[K]) reserve(pt *partition[K], n int) {
	if need := 2 * (pt.n + n); need > len(pt.slots) {
		size := 256
		for size < need {
			size *= 2
		}
		p.resize(pt, size)
	}
	pt.gkeys = slices.Grow(pt.gkeys, n)
	for a := range p.aggs {
		pt.counts[a] = slices.Grow(pt.counts[a], n)
		pt.has[a] = slices.Grow(pt.has[a], n)
	}
}

// resize rehashes a partition's table into size slots (a power of two).
func (p *partAgg[K]) resize(pt *partition[K], size int) {
	old := pt.slots
	pt.slots = make([]partSlot[K], size)
	mask := uint64(len(pt.slots) - 1)
	for _, s := range old {
		if s.id == 0 {
			continue
		}
		for i := (p.hash(s.key) >> 8) & mask; ; i = (i + 1) & mask {
			if pt.slots[i].id == 0 {
				pt.slots[i] = s
				break
			}
		}
	}
}

// finish folds what this worker still has buffered.
func (p *partAgg[K]) finish() {
	for i := range p.bufs {
		p.fold(i)
	}
}

// len returns the number of groups; every worker must have finished.
func (p *partAgg[K]) len() int {
	n := 0
	for i := range p.parts {
		n += p.parts[i].n
	}
	return n
}

// appendColumns passes the groups' keys to key, in order, and appends their
// aggregates to one column per aggregate, whose Valid slices are set for
// sums, and the float64 parts of sums past the int64 range to spills (by
// row of the columns); every worker must have finished.
func (p *partAgg[K]) appendColumns(aggs []*Vec, spills []map[int]float64, key func(K)) {
	for i := range p.parts {
		pt := &p.parts[i]
		for _, k := range pt.gkeys {
			key(k)
		}
		for a, kind := range p.aggs {
			base := len(aggs[a].I)
			aggs[a].I = append(aggs[a].I, pt.counts[a]...)
			if kind == partSum {
				aggs[a].Valid = append(aggs[a].Valid, pt.has[a]...)
			}
			for g, x := range pt.spill[a] {
				if spills[a] == nil {
					spills[a] = make(map[int]float64)
				}
				spills[a][base+int(g)] += x
			}
		}
	}
}

// addSpills turns the sums with float64 parts into a float64 column.
func addSpills(v *Vec, spill map[int]float64) {
	if len(spill) == 0 {
		return
	}
	v.F = make([]float64, len(v.I))
	for j, x := range v.I {
		v.F[j] = float64(x)
	}
	for j, x := range spill {
		v.F[j] += x
	}
	v.T, v.I = TFloat, nil
}

func addrOfV4(k uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)})
}

func addrOfV6(k [2]uint64) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k[0])
	binary.BigEndian.PutUint64(b[8:], k[1])
	return netip.AddrFrom16(b)
}
