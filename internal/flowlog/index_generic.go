//go:build !(goexperiment.simd && amd64)

package flowlog

// useIndex is false without SIMD: building the structural index in
// portable Go costs more than scanning the bytes directly.
const useIndex = false

func indexSIMD(data []byte, sp, nl []uint64) (ok, nul bool) { return false, false }
