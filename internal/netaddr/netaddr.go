// Package netaddr puts IP addresses and prefixes in the one form flowguard
// compares them in, and finds the IPv4 address an IPv6 address stands for.
//
// An address enters flowguard in many places (flow-log records, the
// configuration file, flags, threat lists, suppression rules, the API);
// each calls Canon or CanonPrefix there, so that ::ffff:203.0.113.7 and
// 203.0.113.7 are one address everywhere after.
//
// Several IPv6 forms carry an IPv4 address inside them: NAT64 (RFC 6052),
// the deprecated IPv4-compatible form, 6to4 (RFC 3056) and Teredo
// (RFC 4380). Blocking such an address blocks traffic to or from the IPv4
// host it embeds, so the response guards judge the embedded address too
// (Embedded, EmbeddedIPv4).
package netaddr

import (
	"encoding/binary"
	"net/netip"
)

// Canon returns a in canonical form: an IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) as the IPv4 address a.b.c.d, without an IPv6 zone. Other
// addresses, and the zero Addr, are returned unchanged.
func Canon(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// CanonPrefix returns p in canonical form, host bits cleared: a prefix of
// IPv4-mapped addresses at least /96 long (::ffff:203.0.113.0/120) as the
// IPv4 prefix it holds (203.0.113.0/24). A shorter IPv6 prefix holds more
// than mapped addresses and stays IPv6. The zero Prefix is returned
// unchanged.
func CanonPrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return p
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// An Embedding is an IPv4 range that the addresses of an IPv6 prefix stand
// for under one addressing scheme.
type Embedding struct {
	// Scheme names the form: "IPv4-mapped", "IPv4-compatible", "NAT64",
	// "NAT64 local-use /48" (… /56, /64, /96), "6to4" or "Teredo".
	Scheme string
	// IPv4 is the range of embedded addresses: a /32 for a single
	// address whose embedded bits are all given, 0.0.0.0/0 when none are.
	IPv4 netip.Prefix
}

// span is a run of bits of the IPv6 address that holds the next bits of
// the IPv4 address.
type span struct{ off, n int }

// scheme is an IPv6 range whose addresses embed an IPv4 address at known
// bit positions.
type scheme struct {
	name   string
	within netip.Prefix
	spans  []span // in order, 32 bits in all
	invert bool   // Teredo stores the client address with every bit flipped
}

// schemes are the IPv6 ranges that embed IPv4 addresses.
//
// NAT64 (RFC 6052 §2.2): the well-known prefix 64:ff9b::/96 holds the
// address in the last 32 bits. The local-use prefix 64:ff9b:1::/48
// (RFC 8215) may be used with any RFC 6052 prefix length from /48, and the
// length an operator chose cannot be read from the address, so every one
// is tried: bits 64-71 (the "u" octet) are never part of the address.
// 6to4 (RFC 3056): 2002:V4ADDR::/48. Teredo (RFC 4380 §4): 2001:0::/32,
// the client's public address in the last 32 bits, each bit inverted (the
// server's address in bits 32-63 is the relay's, not the host's).
var schemes = []scheme{
	{name: "IPv4-mapped", within: netip.MustParsePrefix("::ffff:0:0/96"), spans: []span{{96, 32}}},
	{name: "IPv4-compatible", within: netip.MustParsePrefix("::/96"), spans: []span{{96, 32}}},
	{name: "NAT64", within: netip.MustParsePrefix("64:ff9b::/96"), spans: []span{{96, 32}}},
	{name: "NAT64 local-use /96", within: netip.MustParsePrefix("64:ff9b:1::/48"), spans: []span{{96, 32}}},
	{name: "NAT64 local-use /64", within: netip.MustParsePrefix("64:ff9b:1::/48"), spans: []span{{72, 32}}},
	{name: "NAT64 local-use /56", within: netip.MustParsePrefix("64:ff9b:1::/48"), spans: []span{{56, 8}, {72, 24}}},
	{name: "NAT64 local-use /48", within: netip.MustParsePrefix("64:ff9b:1::/48"), spans: []span{{48, 16}, {72, 16}}},
	{name: "6to4", within: netip.MustParsePrefix("2002::/16"), spans: []span{{16, 32}}},
	{name: "Teredo", within: netip.MustParsePrefix("2001::/32"), spans: []span{{96, 32}}, invert: true},
}

// Embedded returns the IPv4 ranges that the addresses of p embed, one per
// scheme p meets (a prefix wider than a scheme's range meets it and
// embeds every IPv4 address under it). An IPv4 prefix, or an IPv6 prefix
// outside every scheme, embeds nothing. IPv4-mapped prefixes of /96 or
// longer are IPv4 prefixes once canonical (CanonPrefix) and embed nothing
// either.
func Embedded(p netip.Prefix) []Embedding {
	p = CanonPrefix(p)
	if !p.IsValid() || p.Addr().Is4() {
		return nil
	}
	var out []Embedding
	b := p.Addr().As16()
	for _, s := range schemes {
		if !s.within.Overlaps(p) {
			continue
		}
		// The spans run in address order, so the IPv4 bits that every
		// address of p shares (those before p.Bits()) come first.
		var v uint32
		fixed := 0
		for _, sp := range s.spans {
			for bit := sp.off; bit < sp.off+sp.n; bit++ {
				v <<= 1
				if bit < p.Bits() {
					v |= uint32(b[bit/8]>>(7-bit%8)) & 1
					fixed++
				}
			}
		}
		if s.invert {
			v = ^v
		}
		var a4 [4]byte
		binary.BigEndian.PutUint32(a4[:], v)
		out = append(out, Embedding{Scheme: s.name, IPv4: netip.PrefixFrom(netip.AddrFrom4(a4), fixed).Masked()})
	}
	return out
}

// EmbeddedIPv4 returns the IPv4 address that the IPv6 address a stands for
// and true, or false when a embeds none (IPv4 addresses, ordinary IPv6
// addresses, and the unspecified and loopback addresses :: and ::1, which
// are not IPv4-compatible addresses). An IPv4-mapped address gives its
// IPv4 address. In the NAT64 local-use prefix, the /96 reading is given;
// Embedded lists the others.
func EmbeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.IsValid() || a.Is4() || a.IsUnspecified() || a.IsLoopback() {
		return netip.Addr{}, false
	}
	if a.Is4In6() {
		return a.Unmap(), true
	}
	es := Embedded(netip.PrefixFrom(a.WithZone(""), 128))
	if len(es) == 0 {
		return netip.Addr{}, false
	}
	return es[0].IPv4.Addr(), true
}
