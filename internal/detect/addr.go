package detect

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
)

// addrKey is an IP address as two words, without netip.Addr's zone
// pointer, so that maps keyed by it hold no pointers for the garbage
// collector to scan. IPv4 addresses are held in their IPv4-mapped IPv6 form.
type addrKey struct{ hi, lo uint64 }

func keyOf(a netip.Addr) addrKey {
	b := a.As16()
	return addrKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

const v4MappedHi = 0

func (k addrKey) is4() bool { return k.hi == v4MappedHi && k.lo>>32 == 0xffff }

func (k addrKey) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	a := netip.AddrFrom16(b)
	if k.is4() {
		return a.Unmap()
	}
	return a
}

func (k addrKey) valid() bool { return k != addrKey{} }

// hash mixes the key into 64 bits (for sketches and dedup sets).
func (k addrKey) hash() uint64 { return mix64(k.hi*0x9e3779b97f4a7c15 ^ mix64(k.lo)) }

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func cmpKey(a, b addrKey) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

// prefixSet answers "is this address in one of these prefixes" quickly for
// any number of prefixes: one map per prefix length in use (threat lists
// can hold many thousand entries), or a plain scan when there are few.
type prefixSet struct {
	few    []netip.Prefix // when len <= 8
	byBits []prefixLevel  // otherwise, longest first
	n      int
}

type prefixLevel struct {
	bits int // in the 128-bit space
	set  map[addrKey]struct{}
}

func newPrefixSet(ps []netip.Prefix) *prefixSet {
	s := &prefixSet{}
	for _, p := range ps {
		if p.IsValid() {
			s.add(p)
		}
	}
	return s
}

func (s *prefixSet) add(p netip.Prefix) {
	p = p.Masked()
	s.n++
	if s.byBits == nil && len(s.few) < 8 {
		s.few = append(s.few, p)
		return
	}
	if s.byBits == nil {
		old := s.few
		s.few = nil
		s.byBits = []prefixLevel{}
		for _, q := range old {
			s.addLevel(q)
		}
	}
	s.addLevel(p)
}

func (s *prefixSet) addLevel(p netip.Prefix) {
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	i := slices.IndexFunc(s.byBits, func(l prefixLevel) bool { return l.bits == bits })
	if i < 0 {
		s.byBits = append(s.byBits, prefixLevel{bits: bits, set: map[addrKey]struct{}{}})
		slices.SortFunc(s.byBits, func(a, b prefixLevel) int { return b.bits - a.bits })
		i = slices.IndexFunc(s.byBits, func(l prefixLevel) bool { return l.bits == bits })
	}
	s.byBits[i].set[maskKey(keyOf(p.Addr()), bits)] = struct{}{}
}

func maskKey(k addrKey, bits int) addrKey {
	switch {
	case bits <= 0:
		return addrKey{}
	case bits < 64:
		return addrKey{hi: k.hi &^ (^uint64(0) >> bits)}
	case bits == 64:
		return addrKey{hi: k.hi}
	case bits < 128:
		return addrKey{hi: k.hi, lo: k.lo &^ (^uint64(0) >> (bits - 64))}
	}
	return k
}

// contains reports whether a (given also as its key k) is in the set.
func (s *prefixSet) contains(a netip.Addr, k addrKey) bool {
	if s == nil || s.n == 0 {
		return false
	}
	if s.byBits == nil {
		for _, p := range s.few {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	is4 := k.is4()
	for _, l := range s.byBits {
		if is4 && l.bits < 96 {
			continue // an IPv6 prefix shorter than /96 does not hold IPv4
		}
		if _, ok := l.set[maskKey(k, l.bits)]; ok {
			return true
		}
	}
	return false
}

// commonPrefix returns the longest prefix holding every address of ks (all
// of one family).
func commonPrefix(ks []addrKey) netip.Prefix {
	if len(ks) == 0 {
		return netip.Prefix{}
	}
	a := ks[0]
	n := 128
	for _, k := range ks[1:] {
		d := 0
		if x := a.hi ^ k.hi; x != 0 {
			d = lz64(x)
		} else if x := a.lo ^ k.lo; x != 0 {
			d = 64 + lz64(x)
		} else {
			d = 128
		}
		n = min(n, d)
	}
	if a.is4() {
		n = max(n, 96)
		return netip.PrefixFrom(maskKey(a, n).addr(), n-96)
	}
	return netip.PrefixFrom(maskKey(a, n).addr(), n)
}

func lz64(x uint64) int { return bits.LeadingZeros64(x) }
