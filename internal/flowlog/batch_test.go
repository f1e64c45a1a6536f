package flowlog

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestParseIPv4AgreesWithNetip checks the fast IPv4 parser against the
// standard library on valid and invalid text.
func TestParseIPv4AgreesWithNetip(t *testing.T) {
	for _, s := range []string{
		"10.0.0.1", "0.0.0.0", "255.255.255.255", "256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4",
		"1.2.3.04", "1..2.3", ".1.2.3", "1.2.3.", "1.2.3.4 ", "", "-", "a.b.c.d", "2001:db8::1",
		"::ffff:1.2.3.4", "1.2.3.255", "10.0.0.1%eth0", "0.0.0.00", "1.2.3.1000",
	} {
		got, ok := parseIPv4([]byte(s))
		want, err := netip.ParseAddr(s)
		wantOK := err == nil && want.Is4()
		if ok != wantOK || ok && got != want {
			t.Errorf("parseIPv4(%q) = %v, %v; netip gives %v, %v", s, got, ok, want, err)
		}
	}
}

func FuzzParseIPv4(f *testing.F) {
	f.Add("10.0.0.1")
	f.Add("300.1.1.1")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseIPv4([]byte(s))
		want, err := netip.ParseAddr(s)
		if ok != (err == nil && want.Is4()) || ok && got != want {
			t.Errorf("parseIPv4(%q) = %v, %v; netip gives %v, %v", s, got, ok, want, err)
		}
	})
}

// TestIndexAgreesWithBytes checks the structural index (spaces and
// newlines as bits) against a byte-by-byte look, at every length and
// alignment around the 64-byte words.
func TestIndexAgreesWithBytes(t *testing.T) {
	if !useIndex {
		t.Skip("the structural index needs a SIMD build (GOEXPERIMENT=simd) and AVX2")
	}
	r := rand.New(rand.NewPCG(5, 6))
	var w worker
	for n := 0; n < 300; n++ {
		data := make([]byte, n)
		for i := range data {
			data[i] = " \nab\x00\xa0\x2a\x20"[r.IntN(8)]
		}
		sp, nl, nul := w.index(data)
		if nul != (bytes.IndexByte(data, 0) >= 0) {
			t.Fatalf("len %d: NUL %v", n, nul)
		}
		for i, c := range data {
			gotS := sp[i>>6]>>(i&63)&1 == 1
			gotN := nl[i>>6]>>(i&63)&1 == 1
			if gotS != (c == ' ') || gotN != (c == '\n') {
				t.Fatalf("len %d byte %d (%q): space %v newline %v", n, i, c, gotS, gotN)
			}
		}
	}
}
