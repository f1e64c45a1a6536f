package flowlog

import (
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
