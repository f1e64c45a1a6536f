package query

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// addrMap maps addresses to group ids with open addressing and linear
// probing. It is the group-by table of the hot path (stats … by srcaddr):
// with a million distinct addresses every probe is a cache miss, so IPv4
// keys, the common case, live in 8-byte slots (address and id in one
// word), and IPv6 keys in 24-byte slots of their own. Either is several
// times faster than a Go map keyed by netip.Addr, whose key also carries a
// zone pointer.
type addrMap struct {
	v4     []uint64 // address<<32 | id+1; 0 is empty
	v4n    int
	v4mask uint64

	v6     []addrSlot
	v6n    int
	v6mask uint64
}

type addrSlot struct {
	hi, lo uint64
	val    int32
	used   bool
}

func newAddrMap() *addrMap {
	m := &addrMap{}
	m.v4 = make([]uint64, 1024)
	m.v4mask = 1023
	m.v6 = make([]addrSlot, 1024)
	m.v6mask = 1023
	return m
}

func hash32(x uint32) uint64 {
	h := uint64(x) * 0x9e3779b97f4a7c15
	return h ^ h>>29
}

func hashKey(hi, lo uint64) uint64 {
	h, l := bits.Mul64(hi^0x9e3779b97f4a7c15, lo^0xc2b2ae3d27d4eb4f)
	return h ^ l
}

// getOrAdd returns a's id; a new address gets id next, and added is true.
func (m *addrMap) getOrAdd(a netip.Addr, next int32) (id int32, added bool) {
	if a.Is4() {
		b := a.As4()
		k := binary.BigEndian.Uint32(b[:])
		for i := hash32(k) & m.v4mask; ; i = (i + 1) & m.v4mask {
			s := m.v4[i]
			if s == 0 {
				if 2*(m.v4n+1) > len(m.v4) {
					m.growV4()
					return m.getOrAdd(a, next)
				}
				m.v4[i] = uint64(k)<<32 | uint64(uint32(next)+1)
				m.v4n++
				return next, true
			}
			if uint32(s>>32) == k {
				return int32(uint32(s) - 1), false
			}
		}
	}
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	for i := hashKey(hi, lo) & m.v6mask; ; i = (i + 1) & m.v6mask {
		s := &m.v6[i]
		if !s.used {
			if 2*(m.v6n+1) > len(m.v6) {
				m.growV6()
				return m.getOrAdd(a, next)
			}
			*s = addrSlot{hi: hi, lo: lo, val: next, used: true}
			m.v6n++
			return next, true
		}
		if s.lo == lo && s.hi == hi {
			return s.val, false
		}
	}
}

// growV4 quadruples the IPv4 table: fewer rehashes while a table grows to
// a million entries.
func (m *addrMap) growV4() {
	old := m.v4
	m.v4 = make([]uint64, 4*len(old))
	m.v4mask = uint64(len(m.v4) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		for i := hash32(uint32(s>>32)) & m.v4mask; ; i = (i + 1) & m.v4mask {
			if m.v4[i] == 0 {
				m.v4[i] = s
				break
			}
		}
	}
}

func (m *addrMap) growV6() {
	old := m.v6
	m.v6 = make([]addrSlot, 4*len(old))
	m.v6mask = uint64(len(m.v6) - 1)
	for _, s := range old {
		if !s.used {
			continue
		}
		for i := hashKey(s.hi, s.lo) & m.v6mask; ; i = (i + 1) & m.v6mask {
			if !m.v6[i].used {
				m.v6[i] = s
				break
			}
		}
	}
}

// each calls fn for every address and its id.
func (m *addrMap) each(fn func(a netip.Addr, id int32)) {
	for _, s := range m.v4 {
		if s != 0 {
			k := uint32(s >> 32)
			fn(netip.AddrFrom4([4]byte{byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}), int32(uint32(s)-1))
		}
	}
	for _, s := range m.v6 {
		if s.used {
			var b [16]byte
			binary.BigEndian.PutUint64(b[:8], s.hi)
			binary.BigEndian.PutUint64(b[8:], s.lo)
			fn(netip.AddrFrom16(b), s.val)
		}
	}
}

// pairKey is the key of a pair of IPv4 addresses: a<<32 | b.
func pairKey(a, b netip.Addr) uint64 {
	x, y := a.As4(), b.As4()
	return uint64(binary.BigEndian.Uint32(x[:]))<<32 | uint64(binary.BigEndian.Uint32(y[:]))
}

// pairMap maps pairs of IPv4 addresses (pairKey) to group ids with open
// addressing and linear probing, for stats … by srcaddr, dstaddr with
// aggregates the partitioned path does not compute.
type pairMap struct {
	slots []pairSlot
	n     int
	mask  uint64
}

type pairSlot struct {
	key uint64
	id  int32 // group id + 1; 0 is empty
}

func newPairMap() *pairMap { return &pairMap{slots: make([]pairSlot, 1024), mask: 1023} }

// getOrAdd returns k's id; a new key gets id next, and added is true.
func (m *pairMap) getOrAdd(k uint64, next int32) (id int32, added bool) {
	for i := hashPair(k) & m.mask; ; i = (i + 1) & m.mask {
		s := &m.slots[i]
		if s.id == 0 {
			if 2*(m.n+1) > len(m.slots) {
				m.grow()
				return m.getOrAdd(k, next)
			}
			*s = pairSlot{key: k, id: next + 1}
			m.n++
			return next, true
		}
		if s.key == k {
			return s.id - 1, false
		}
	}
}

func (m *pairMap) grow() {
	old := m.slots
	m.slots = make([]pairSlot, 4*len(old))
	m.mask = uint64(len(m.slots) - 1)
	for _, s := range old {
		if s.id == 0 {
			continue
		}
		for i := hashPair(s.key) & m.mask; ; i = (i + 1) & m.mask {
			if m.slots[i].id == 0 {
				m.slots[i] = s
				break
			}
		}
	}
}
