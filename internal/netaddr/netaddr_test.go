package netaddr

import (
	"net/netip"
	"slices"
	"testing"
)

func TestCanon(t *testing.T) {
	tests := []struct{ in, want string }{
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"::ffff:cb00:7107", "203.0.113.7"},
		{"203.0.113.7", "203.0.113.7"},
		{"fe80::1%eth0", "fe80::1"},
		{"2001:db8::1", "2001:db8::1"},
		{"::a00:1", "::a00:1"}, // IPv4-compatible: an IPv6 address (see EmbeddedIPv4)
	}
	for _, tt := range tests {
		if got := Canon(netip.MustParseAddr(tt.in)); got.String() != tt.want {
			t.Errorf("Canon(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if got := Canon(netip.Addr{}); got.IsValid() {
		t.Errorf("Canon(zero) = %v", got)
	}
}

func TestCanonPrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"::ffff:203.0.113.0/120", "203.0.113.0/24"},
		{"::ffff:203.0.113.7/120", "203.0.113.0/24"}, // host bits cleared
		{"::ffff:0.0.0.0/96", "0.0.0.0/0"},
		{"::ffff:203.0.113.7/128", "203.0.113.7/32"},
		{"::ffff:0:0/95", "::fffe:0:0/95"}, // wider than the mapped range: stays IPv6
		{"10.0.1.0/16", "10.0.0.0/16"},
		{"2001:db8::1/64", "2001:db8::/64"},
	}
	for _, tt := range tests {
		if got := CanonPrefix(netip.MustParsePrefix(tt.in)); got.String() != tt.want {
			t.Errorf("CanonPrefix(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if got := CanonPrefix(netip.Prefix{}); got.IsValid() {
		t.Errorf("CanonPrefix(zero) = %v", got)
	}
}

func TestEmbeddedIPv4(t *testing.T) {
	tests := []struct {
		in, want string // want "" = embeds none
	}{
		{"::ffff:10.0.0.9", "10.0.0.9"},
		{"64:ff9b::a00:1", "10.0.0.1"},          // NAT64 well-known prefix
		{"64:ff9b::203.0.113.7", "203.0.113.7"}, // the same, written with a dotted tail
		{"64:ff9b:1::a00:1", "10.0.0.1"},        // NAT64 local-use, read as /96
		{"::a00:1", "10.0.0.1"},                 // IPv4-compatible
		{"2002:a00:1::1", "10.0.0.1"},           // 6to4
		{"2002:cb00:7107:1::5", "203.0.113.7"},
		// Teredo: server 65.54.227.120, client 192.0.2.45 stored inverted
		// (RFC 4380 §4's example: 2001:0:4136:e378:8000:63bf:3fff:fdd2).
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"},
		{"::", ""},
		{"::1", ""},
		{"10.0.0.1", ""},
		{"2001:db8::a00:1", ""},
		{"2600:1f18::1", ""},
	}
	for _, tt := range tests {
		got, ok := EmbeddedIPv4(netip.MustParseAddr(tt.in))
		s := ""
		if ok {
			s = got.String()
		}
		if s != tt.want {
			t.Errorf("EmbeddedIPv4(%s) = %q, want %q", tt.in, s, tt.want)
		}
	}
}

func TestEmbedded(t *testing.T) {
	tests := []struct {
		in   string
		want []string // scheme=IPv4 prefix
	}{
		{"64:ff9b::a00:1/128", []string{"NAT64=10.0.0.1/32"}},
		{"64:ff9b::a00:0/120", []string{"NAT64=10.0.0.0/24"}},
		{"64:ff9b::/96", []string{"NAT64=0.0.0.0/0"}},
		{"64:ff9b::/64", []string{"NAT64=0.0.0.0/0"}},
		{"::/64", []string{"IPv4-mapped=0.0.0.0/0", "IPv4-compatible=0.0.0.0/0"}},
		{"::a00:0/104", []string{"IPv4-compatible=10.0.0.0/8"}},
		{"2002:a00::/24", []string{"6to4=10.0.0.0/8"}},
		{"2002:a00:1::/48", []string{"6to4=10.0.0.1/32"}},
		{"2002:a00:1:5::/64", []string{"6to4=10.0.0.1/32"}},
		{"2002::/16", []string{"6to4=0.0.0.0/0"}},
		{"2000::/3", []string{"6to4=0.0.0.0/0", "Teredo=0.0.0.0/0"}},
		{"2001:0:4136:e378:8000:63bf:3fff:fd00/120", []string{"Teredo=192.0.2.0/24"}},
		{"2001:0:4136:e378::/64", []string{"Teredo=0.0.0.0/0"}},
		// The local-use prefix, every RFC 6052 length: 10.0.0.1 at /96
		// is 64:ff9b:1::a00:1; the same bits read at /48 (bits 48-63,
		// 72-87), /56 (56-63, 72-95) and /64 (72-103).
		{"64:ff9b:1::a00:1/128", []string{"NAT64 local-use /96=10.0.0.1/32", "NAT64 local-use /64=0.0.0.10/32", "NAT64 local-use /56=0.0.0.0/32", "NAT64 local-use /48=0.0.0.0/32"}},
		{"64:ff9b:1:a00:0:100::/128", []string{"NAT64 local-use /96=0.0.0.0/32", "NAT64 local-use /64=0.1.0.0/32", "NAT64 local-use /56=0.0.1.0/32", "NAT64 local-use /48=10.0.0.1/32"}},
		{"64:ff9b:1:a00::/64", []string{"NAT64 local-use /96=0.0.0.0/0", "NAT64 local-use /64=0.0.0.0/0", "NAT64 local-use /56=0.0.0.0/8", "NAT64 local-use /48=10.0.0.0/16"}},
		{"10.0.0.0/8", nil},
		{"::ffff:10.0.0.0/104", nil}, // canonical: 10.0.0.0/8
		{"2001:db8::/32", nil},
		{"2600:1f18::/32", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, e := range Embedded(netip.MustParsePrefix(tt.in)) {
			got = append(got, e.Scheme+"="+e.IPv4.String())
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Embedded(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzEmbedded(f *testing.F) {
	for _, s := range []string{"64:ff9b::a00:1/128", "2002::/16", "2001::/32", "::/0", "10.0.0.0/8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return
		}
		for _, e := range Embedded(p) {
			if !e.IPv4.IsValid() || !e.IPv4.Addr().Is4() || e.IPv4 != e.IPv4.Masked() {
				t.Fatalf("Embedded(%s): %+v", p, e)
			}
		}
		if a, ok := EmbeddedIPv4(p.Addr()); ok && !a.Is4() {
			t.Fatalf("EmbeddedIPv4(%s) = %s", p.Addr(), a)
		}
	})
}
