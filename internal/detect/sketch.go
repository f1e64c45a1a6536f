package detect

import (
	"math"
	"math/bits"
	"slices"
)

// portSet is an exact set of ports: a short sorted list that becomes a
// 65,536-bit bitmap (8 KiB) past 64 ports.
type portSet struct {
	small []uint16
	bm    *[1024]uint64
	n     int
}

func (s *portSet) add(p uint16) bool {
	if s.bm != nil {
		w, b := p>>6, uint64(1)<<(p&63)
		if s.bm[w]&b != 0 {
			return false
		}
		s.bm[w] |= b
		s.n++
		return true
	}
	i, found := slices.BinarySearch(s.small, p)
	if found {
		return false
	}
	if len(s.small) < 64 {
		s.small = slices.Insert(s.small, i, p)
		s.n++
		return true
	}
	s.bm = new([1024]uint64)
	for _, q := range s.small {
		s.bm[q>>6] |= 1 << (q & 63)
	}
	s.small = nil
	return s.add(p)
}

func (s *portSet) has(p uint16) bool {
	if s == nil {
		return false
	}
	if s.bm != nil {
		return s.bm[p>>6]&(1<<(p&63)) != 0
	}
	_, found := slices.BinarySearch(s.small, p)
	return found
}

func (s *portSet) len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// each calls fn for every port in ascending order until fn returns false.
func (s *portSet) each(fn func(uint16) bool) {
	if s == nil {
		return
	}
	if s.bm == nil {
		for _, p := range s.small {
			if !fn(p) {
				return
			}
		}
		return
	}
	for w, x := range s.bm {
		for x != 0 {
			b := bits.TrailingZeros64(x)
			x &= x - 1
			if !fn(uint16(w<<6 | b)) {
				return
			}
		}
	}
}

// unionLen returns |s ∪ o|.
func (s *portSet) unionLen(o *portSet) int {
	if o == nil || o.n == 0 {
		return s.len()
	}
	if s == nil || s.n == 0 {
		return o.n
	}
	n := s.n
	o.each(func(p uint16) bool {
		if !s.has(p) {
			n++
		}
		return true
	})
	return n
}

// lowest returns up to k of the lowest ports of s ∪ o.
func lowestPorts(k int, sets ...*portSet) []uint16 {
	var out []uint16
	for _, s := range sets {
		s.each(func(p uint16) bool {
			if len(out) >= k && p > out[len(out)-1] {
				return false
			}
			i, found := slices.BinarySearch(out, p)
			if !found {
				out = slices.Insert(out, i, p)
				if len(out) > k {
					out = out[:k]
				}
			}
			return true
		})
	}
	return out
}

// distinct counts distinct 64-bit hashes: exactly up to 64 of them, then
// with a HyperLogLog sketch of 2^11 one-byte registers (about 2.3 %
// standard error) that never grows.
type distinct struct {
	small []uint64
	regs  *[1 << hllP]uint8
}

const hllP = 11

func (d *distinct) add(h uint64) {
	if d.regs != nil {
		d.addHLL(h)
		return
	}
	if slices.Contains(d.small, h) {
		return
	}
	if len(d.small) < 64 {
		d.small = append(d.small, h)
		return
	}
	d.regs = new([1 << hllP]uint8)
	for _, x := range d.small {
		d.addHLL(x)
	}
	d.small = nil
	d.addHLL(h)
}

func (d *distinct) addHLL(h uint64) {
	idx := h >> (64 - hllP)
	rank := uint8(bits.LeadingZeros64(h<<hllP|1<<(hllP-1)) + 1)
	if rank > d.regs[idx] {
		d.regs[idx] = rank
	}
}

// count estimates the number of distinct values.
func (d *distinct) count() int {
	if d == nil {
		return 0
	}
	if d.regs == nil {
		return len(d.small)
	}
	return hllEstimate(d.regs)
}

func hllEstimate(r *[1 << hllP]uint8) int {
	const m = float64(1 << hllP)
	sum, zeros := 0.0, 0
	for _, v := range r {
		sum += 1 / float64(uint64(1)<<v)
		if v == 0 {
			zeros++
		}
	}
	est := 0.7213 / (1 + 1.079/m) * m * m / sum
	if est <= 2.5*m && zeros > 0 {
		est = m * math.Log(m/float64(zeros))
	}
	return int(est + 0.5)
}

// unionCount estimates |d ∪ o|.
func (d *distinct) unionCount(o *distinct) int {
	if o == nil || o.count() == 0 {
		return d.count()
	}
	if d == nil || d.count() == 0 {
		return o.count()
	}
	if d.regs == nil && o.regs == nil {
		n := len(d.small)
		for _, h := range o.small {
			if !slices.Contains(d.small, h) {
				n++
			}
		}
		return n
	}
	var r [1 << hllP]uint8
	for _, x := range []*distinct{d, o} {
		if x.regs != nil {
			for i, v := range x.regs {
				r[i] = max(r[i], v)
			}
			continue
		}
		tmp := distinct{regs: &r}
		for _, h := range x.small {
			tmp.addHLL(h)
		}
	}
	return hllEstimate(&r)
}
