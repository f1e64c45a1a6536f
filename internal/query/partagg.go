package query

import (
	"net/netip"
	"sync"
)

// partAgg is radix-partitioned aggregation for the most common flow log
// statistic: counts and integer sums grouped by one IPv4 address
// (stats count() by srcaddr). With a million distinct addresses a single
// hash table misses the cache on every row. Here each row's key and values
// are appended to one of 256 small buffers chosen by the key's hash
// (sequential writes), and a full buffer is folded into that partition's
// own hash table, which is small enough to stay in cache while it is
// being updated. Workers merge partition by partition, in parallel.
type partAgg struct {
	aggs  []partAggKind
	parts [numParts]partition
}

const (
	numParts   = 256
	partBuffer = 2048 // rows buffered per partition before folding
)

type partAggKind uint8

const (
	partCount partAggKind = iota // count(), count(*)
	partSum                      // sum of an integer column
)

type partition struct {
	// Buffered rows.
	keys []uint32
	vals [][]int64 // per sum: the value, or a value with valid false
	ok   [][]bool

	// The partition's groups.
	slots  []uint64 // key<<32 | group+1; 0 empty
	n      int
	gkeys  []uint32
	counts [][]int64 // per aggregate: count, or sum
	has    [][]bool  // per sum: whether any value was added
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

func newPartAgg(kinds []partAggKind) *partAgg {
	p := &partAgg{aggs: kinds}
	for i := range p.parts {
		pt := &p.parts[i]
		pt.vals = make([][]int64, len(kinds))
		pt.ok = make([][]bool, len(kinds))
		pt.counts = make([][]int64, len(kinds))
		pt.has = make([][]bool, len(kinds))
	}
	return p
}

func hashV4(k uint32) uint64 {
	h := uint64(k) * 0x9e3779b97f4a7c15
	return h ^ h>>32
}

// add buffers one row: IPv4 address k and its aggregate arguments.
func (p *partAgg) add(k uint32, i int, args []*Vec) {
	pt := &p.parts[hashV4(k)>>56]
	pt.keys = append(pt.keys, k)
	for a, kind := range p.aggs {
		if kind == partSum {
			v := args[a]
			j := v.idx(i)
			pt.vals[a] = append(pt.vals[a], v.I[j])
			pt.ok[a] = append(pt.ok[a], v.Valid == nil || v.Valid[j])
		}
	}
	if len(pt.keys) >= partBuffer {
		p.fold(pt)
	}
}

// fold adds a partition's buffered rows to its groups.
func (p *partAgg) fold(pt *partition) {
	for r, k := range pt.keys {
		g := pt.group(k, len(p.aggs))
		for a, kind := range p.aggs {
			if kind == partCount {
				pt.counts[a][g]++
			} else if pt.ok[a][r] {
				pt.counts[a][g] += pt.vals[a][r]
				pt.has[a][g] = true
			}
		}
	}
	pt.keys = pt.keys[:0]
	for a := range p.aggs {
		pt.vals[a] = pt.vals[a][:0]
		pt.ok[a] = pt.ok[a][:0]
	}
}

// group finds or adds the group of k in the partition.
func (pt *partition) group(k uint32, naggs int) int32 {
	if 2*(pt.n+1) > len(pt.slots) {
		pt.grow()
	}
	mask := uint64(len(pt.slots) - 1)
	for i := (hashV4(k) >> 8) & mask; ; i = (i + 1) & mask {
		s := pt.slots[i]
		if s == 0 {
			g := int32(pt.n)
			pt.slots[i] = uint64(k)<<32 | uint64(g+1)
			pt.n++
			pt.gkeys = append(pt.gkeys, k)
			for a := 0; a < naggs; a++ {
				pt.counts[a] = append(pt.counts[a], 0)
				pt.has[a] = append(pt.has[a], false)
			}
			return g
		}
		if uint32(s>>32) == k {
			return int32(uint32(s) - 1)
		}
	}
}

func (pt *partition) grow() {
	old := pt.slots
	pt.slots = make([]uint64, max(64, 2*len(old)))
	mask := uint64(len(pt.slots) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		for i := (hashV4(uint32(s>>32)) >> 8) & mask; ; i = (i + 1) & mask {
			if pt.slots[i] == 0 {
				pt.slots[i] = s
				break
			}
		}
	}
}

// finish folds what is still buffered.
func (p *partAgg) finish() {
	for i := range p.parts {
		p.fold(&p.parts[i])
	}
}

// merge adds the groups of o into p, partitions in parallel.
func (p *partAgg) merge(o *partAgg) {
	p.finish()
	o.finish()
	var wg sync.WaitGroup
	const lanes = 2
	for lane := 0; lane < lanes; lane++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lane; i < numParts; i += lanes {
				dst, src := &p.parts[i], &o.parts[i]
				for sg, k := range src.gkeys {
					g := dst.group(k, len(p.aggs))
					for a, kind := range p.aggs {
						dst.counts[a][g] += src.counts[a][sg]
						if kind == partSum {
							dst.has[a][g] = dst.has[a][g] || src.has[a][sg]
						}
					}
				}
			}
		}()
	}
	wg.Wait()
}

// columns returns the groups as a key column and one column per aggregate.
func (p *partAgg) columns() (keys []netip.Addr, aggs []*Vec) {
	p.finish()
	n := 0
	for i := range p.parts {
		n += p.parts[i].n
	}
	keys = make([]netip.Addr, 0, n)
	aggs = make([]*Vec, len(p.aggs))
	for a, kind := range p.aggs {
		aggs[a] = &Vec{T: TInt, I: make([]int64, 0, n)}
		if kind == partSum {
			aggs[a].Valid = make([]bool, 0, n)
		}
	}
	for i := range p.parts {
		pt := &p.parts[i]
		for _, k := range pt.gkeys {
			keys = append(keys, netip.AddrFrom4([4]byte{byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}))
		}
		for a, kind := range p.aggs {
			aggs[a].I = append(aggs[a].I, pt.counts[a]...)
			if kind == partSum {
				aggs[a].Valid = append(aggs[a].Valid, pt.has[a]...)
			}
		}
	}
	return keys, aggs
}
