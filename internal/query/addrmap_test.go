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
