//go:build goexperiment.simd && amd64

package flowlog

import "simd/archsimd"

// useIndex says whether the decoder finds lines and fields through the
// structural index: with AVX2, building it costs a few instructions per 32
// bytes, and walking its bits is cheaper than scanning bytes.
var useIndex = archsimd.X86.AVX2()

// indexSIMD fills the space and newline bitmaps of data 32 bytes at a time
// with AVX2 compares and reports whether data holds a NUL byte (one more
// compare, so that the decoder needs no pass of its own to find NULs); ok
// is false when the CPU lacks AVX2.
func indexSIMD(data []byte, sp, nl []uint64) (ok, nul bool) {
	if !useIndex {
		return false, false
	}
	space, newline := archsimd.BroadcastUint8x32(' '), archsimd.BroadcastUint8x32('\n')
	// The smallest byte of each lane so far: a NUL anywhere leaves a
	// zero lane, found by one compare at the end.
	least := archsimd.BroadcastUint8x32(0xff)
	i := 0
	for ; i+64 <= len(data); i += 64 {
		a := archsimd.LoadUint8x32Slice(data[i:])
		b := archsimd.LoadUint8x32Slice(data[i+32:])
		sp[i>>6] = uint64(a.Equal(space).ToBits()) | uint64(b.Equal(space).ToBits())<<32
		nl[i>>6] = uint64(a.Equal(newline).ToBits()) | uint64(b.Equal(newline).ToBits())<<32
		least = least.Min(a).Min(b)
	}
	z := least.Equal(archsimd.BroadcastUint8x32(0)).ToBits()
	if i < len(data) {
		var s, l uint64
		for k, c := range data[i:] {
			switch c {
			case ' ':
				s |= 1 << k
			case '\n':
				l |= 1 << k
			case 0:
				z = 1
			}
		}
		sp[i>>6], nl[i>>6] = s, l
	}
	return true, z != 0
}
