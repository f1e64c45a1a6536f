package query

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// addrMap maps addresses to group ids: open addressing with linear
// probing over the address's 16 bytes. It is the group-by table of the hot
// path (stats … by srcaddr), several times faster than a Go map keyed by
// netip.Addr, whose key carries a zone pointer.
type addrMap struct {
	hi, lo []uint64 // As16 halves
	fam    []uint8  // 0 empty, 4 or 6
	val    []int32
	n      int
	mask   uint64
}

func newAddrMap() *addrMap {
	m := &addrMap{}
	m.alloc(1024)
	return m
}

func (m *addrMap) alloc(size int) {
	m.hi = make([]uint64, size)
	m.lo = make([]uint64, size)
	m.fam = make([]uint8, size)
	m.val = make([]int32, size)
	m.mask = uint64(size - 1)
	m.n = 0
}

func addrKey(a netip.Addr) (hi, lo uint64, fam uint8) {
	if a.Is4() {
		b := a.As4()
		return 0, uint64(binary.BigEndian.Uint32(b[:])), 4
	}
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), 6
}

func hashKey(hi, lo uint64) uint64 {
	h, l := bits.Mul64(hi^0x9e3779b97f4a7c15, lo^0xc2b2ae3d27d4eb4f)
	return h ^ l
}

// get returns the id of a, or ok false.
func (m *addrMap) get(a netip.Addr) (int32, bool) {
	hi, lo, fam := addrKey(a)
	for i := hashKey(hi, lo) & m.mask; ; i = (i + 1) & m.mask {
		switch {
		case m.fam[i] == 0:
			return 0, false
		case m.hi[i] == hi && m.lo[i] == lo && m.fam[i] == fam:
			return m.val[i], true
		}
	}
}

// put sets the id of a, which must not be in the map.
func (m *addrMap) put(a netip.Addr, v int32) {
	if 2*(m.n+1) > len(m.fam) {
		m.grow()
	}
	hi, lo, fam := addrKey(a)
	m.insert(hi, lo, fam, v)
}

func (m *addrMap) insert(hi, lo uint64, fam uint8, v int32) {
	i := hashKey(hi, lo) & m.mask
	for m.fam[i] != 0 {
		i = (i + 1) & m.mask
	}
	m.hi[i], m.lo[i], m.fam[i], m.val[i] = hi, lo, fam, v
	m.n++
}

func (m *addrMap) grow() {
	hi, lo, fam, val := m.hi, m.lo, m.fam, m.val
	m.alloc(2 * len(fam))
	for i, f := range fam {
		if f != 0 {
			m.insert(hi[i], lo[i], f, val[i])
		}
	}
}
