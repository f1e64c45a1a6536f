package query

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// addrMap maps addresses to group ids: open addressing with linear
// probing, one 24-byte slot per entry so that a probe costs one cache
// line. It is the group-by table of the hot path (stats … by srcaddr),
// several times faster than a Go map keyed by netip.Addr, whose key
// carries a zone pointer.
type addrMap struct {
	slots []addrSlot
	n     int
	mask  uint64
}

type addrSlot struct {
	hi, lo uint64
	val    int32
	fam    uint8 // 0 empty, 4 or 6
}

func newAddrMap() *addrMap {
	m := &addrMap{}
	m.alloc(1024)
	return m
}

func (m *addrMap) alloc(size int) {
	m.slots = make([]addrSlot, size)
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
		s := &m.slots[i]
		switch {
		case s.fam == 0:
			return 0, false
		case s.lo == lo && s.hi == hi && s.fam == fam:
			return s.val, true
		}
	}
}

// put sets the id of a, which must not be in the map.
func (m *addrMap) put(a netip.Addr, v int32) {
	if 2*(m.n+1) > len(m.slots) {
		m.grow()
	}
	hi, lo, fam := addrKey(a)
	m.insert(addrSlot{hi: hi, lo: lo, fam: fam, val: v})
}

func (m *addrMap) insert(e addrSlot) {
	i := hashKey(e.hi, e.lo) & m.mask
	for m.slots[i].fam != 0 {
		i = (i + 1) & m.mask
	}
	m.slots[i] = e
	m.n++
}

func (m *addrMap) grow() {
	old := m.slots
	m.alloc(2 * len(old))
	for _, e := range old {
		if e.fam != 0 {
			m.insert(e)
		}
	}
}
