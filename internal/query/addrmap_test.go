package query

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestAddrMapAgreesWithMap checks the address table against a Go map over
// many IPv4 and IPv6 addresses, through several growths.
func TestAddrMapAgreesWithMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	m := newAddrMap()
	want := map[netip.Addr]int32{}
	for i := 0; i < 200000; i++ {
		var a netip.Addr
		switch r.IntN(3) {
		case 0:
			a = netip.AddrFrom4([4]byte{byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		case 1:
			a = netip.AddrFrom4([4]byte{0, 0, 0, byte(r.IntN(3))}) // 0.0.0.0 included
		default:
			var b [16]byte
			b[0], b[15] = 0x20, byte(r.IntN(256))
			b[7] = byte(r.IntN(50))
			a = netip.AddrFrom16(b)
		}
		id, added := m.getOrAdd(a, int32(len(want)))
		w, ok := want[a]
		if !ok {
			want[a] = int32(len(want))
			w = want[a]
		}
		if added == ok || id != w {
			t.Fatalf("%v: got %d added %v; want %d present %v", a, id, added, w, ok)
		}
	}
	seen := 0
	m.each(func(a netip.Addr, id int32) {
		seen++
		if want[a] != id {
			t.Errorf("each: %v id %d, want %d", a, id, want[a])
		}
	})
	if seen != len(want) {
		t.Errorf("each saw %d, want %d", seen, len(want))
	}
}

// TestPartAggAgreesWithMap drives the partitioned aggregation through
// many folds and a merge, against a Go map.
func TestPartAggAgreesWithMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	kinds := []partAggKind{partCount, partSum}
	a := newPartAgg(kinds, hashV4)
	b := a.worker()
	type agg struct {
		n, sum int64
		has    bool
	}
	want := map[uint32]*agg{}
	vals := &Vec{T: TInt, I: make([]int64, 1), Valid: make([]bool, 1)}
	args := []*Vec{nil, vals}
	for i := 0; i < 2_000_000; i++ {
		k := uint32(r.IntN(300_000)) * 2654435761
		vals.I[0], vals.Valid[0] = int64(r.IntN(1000)), r.IntN(10) > 0
		p := a
		if i%3 == 0 {
			p = b
		}
		p.add(k, 0, args)
		w := want[k]
		if w == nil {
			w = &agg{}
			want[k] = w
		}
		w.n++
		if vals.Valid[0] {
			w.sum += vals.I[0]
			w.has = true
		}
	}
	a.finish()
	b.finish()
	cols := []*Vec{{T: TInt}, {T: TInt, Valid: []bool{}}}
	var keys []netip.Addr
	a.appendColumns(cols, make([]map[int]float64, 2), func(k uint32) { keys = append(keys, addrOfV4(k)) })
	if len(keys) != len(want) {
		t.Fatalf("%d groups, want %d", len(keys), len(want))
	}
	for i, k := range keys {
		b4 := k.As4()
		w := want[uint32(b4[0])<<24|uint32(b4[1])<<16|uint32(b4[2])<<8|uint32(b4[3])]
		if w == nil || cols[0].I[i] != w.n || cols[1].I[i] != w.sum || cols[1].Valid[i] != w.has {
			t.Fatalf("%v: count %d sum %d (%v), want %+v", k, cols[0].I[i], cols[1].I[i], cols[1].Valid[i], w)
		}
	}
}
