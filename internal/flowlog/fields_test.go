package flowlog

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// rangeCases are values of the integer fields at and past the ends of their
// ranges: ok says whether the record is valid.
var rangeCases = []struct {
	field string
	value uint64
	ok    bool
}{
	{"srcport", 0, true},
	{"srcport", 65535, true},
	{"srcport", 65536, false},
	{"dstport", 70000, false},
	{"dstport", 4294967296, false},
	{"protocol", 255, true},
	{"protocol", 256, false},
	{"tcp-flags", 255, true},
	{"tcp-flags", 256, false},
	{"version", 8, true},
	{"version", 256, false},
	{"traffic-path", 8, true},
	{"traffic-path", 256, false},
	{"start", MaxUnixSeconds, true},
	{"start", MaxUnixSeconds + 1, false},
	{"end", 1 << 62, false},
	{"bytes", 1<<64 - 1, true},
	{"packets", 1<<64 - 1, true},
	{"packets-lost-no-route", 1<<64 - 1, true},
}

const rangeFormat = "version srcport dstport protocol tcp-flags traffic-path start end bytes packets packets-lost-no-route"

// TestFieldRangesText checks that an integer beyond its field's range makes
// its line one malformed line, reported with line, column, field and the
// range, and that the valid values at the ends of each range are kept.
func TestFieldRangesText(t *testing.T) {
	f := MustParseFormat(rangeFormat)
	var text strings.Builder
	text.WriteString(rangeFormat + "\n")
	var wantErrs []string
	wantOK := 0
	for i, tc := range rangeCases {
		vals := []string{"5", "443", "49152", "6", "2", "1", "1700000000", "1700000060", "10", "1", "0"}
		pos := f.IndexName(tc.field)
		vals[pos] = strconv.FormatUint(tc.value, 10)
		text.WriteString(strings.Join(vals, " ") + "\n")
		line := i + 2
		if tc.ok {
			wantOK++
			continue
		}
		col := len(strings.Join(vals[:pos], " ")) + 2
		if pos == 0 {
			col = 1
		}
		wantErrs = append(wantErrs, fmt.Sprintf("r:%d:%d: %s: out of range (0 to %d) (%q)", line, col, tc.field, Field(f.Field(pos)).Max(), vals[pos]))
	}
	for kind, in := range inputKinds(t, []byte(text.String())) {
		got := scanLines(t, &Scanner{}, in)
		if len(got.lines) != wantOK {
			t.Errorf("%s: kept %d records, want %d", kind, len(got.lines), wantOK)
		}
		if len(got.skips) != len(wantErrs) {
			t.Fatalf("%s: skipped %d, want %d: %v", kind, len(got.skips), len(wantErrs), got.skips)
		}
		for i, e := range got.skips {
			if msg := strings.TrimPrefix(e.Error(), in.Name); msg != strings.TrimPrefix(wantErrs[i], "r") {
				t.Errorf("%s: skipped %q, want %q", kind, msg, strings.TrimPrefix(wantErrs[i], "r"))
			}
		}
	}
}

type pqRange struct {
	Version     *int32 `parquet:"version,optional"`
	SrcPort     *int32 `parquet:"srcport,optional"`
	DstPort     *int64 `parquet:"dstport,optional"` // another tool's choice of type
	Protocol    *int32 `parquet:"protocol,optional"`
	TCPFlags    *int32 `parquet:"tcp_flags,optional"`
	TrafficPath *int32 `parquet:"traffic_path,optional"`
	Start       *int64 `parquet:"start,optional"`
	End         *int64 `parquet:"end,optional"`
	Bytes       *int64 `parquet:"bytes,optional,uint(64)"`
	Packets     *int64 `parquet:"packets,optional,uint(64)"`
	Lost        *int64 `parquet:"packets_lost_no_route,optional,uint(64)"`
}

// TestFieldRangesParquet is TestFieldRangesText on a Parquet file.
func TestFieldRangesParquet(t *testing.T) {
	var rows []pqRange
	for _, tc := range rangeCases {
		r := pqRange{i32(5), i32(443), i64(49152), i32(6), i32(2), i32(1), i64(1700000000), i64(1700000060), i64(10), i64(1), i64(0)}
		v := tc.value
		switch tc.field {
		case "version":
			r.Version = i32(int32(v))
		case "srcport":
			r.SrcPort = i32(int32(v))
		case "dstport":
			r.DstPort = i64(int64(v))
		case "protocol":
			r.Protocol = i32(int32(v))
		case "tcp-flags":
			r.TCPFlags = i32(int32(v))
		case "traffic-path":
			r.TrafficPath = i32(int32(v))
		case "start":
			r.Start = i64(int64(v))
		case "end":
			r.End = i64(int64(v))
		case "bytes":
			r.Bytes = i64(int64(v))
		case "packets":
			r.Packets = i64(int64(v))
		case "packets-lost-no-route":
			r.Lost = i64(int64(v))
		}
		rows = append(rows, r)
	}
	sink := &Skipped{Keep: 100}
	decodeAll(t, "r.parquet", writeParquet(t, rows), 100, sink, func(b *Batch, i int) {
		tc := rangeCases[i]
		if b.Bad(i) == tc.ok {
			t.Errorf("%s %d: bad %v", tc.field, tc.value, b.Bad(i))
		}
		if pos := b.Format.IndexName(tc.field); tc.ok {
			if vals, present := b.Uints(pos, nil); !present[i] || vals[i] != tc.value {
				t.Errorf("%s: %d, %v; want %d", tc.field, vals[i], present[i], tc.value)
			}
		}
	})
	var msgs []string
	for _, e := range sink.First() {
		msgs = append(msgs, e.Error())
	}
	for _, tc := range rangeCases {
		if tc.ok {
			continue
		}
		want := fmt.Sprintf("r.parquet: %s: out of range (0 to %d)", tc.field, must(LookupField(tc.field)).Max())
		if !strings.Contains(strings.Join(msgs, "\n"), want) {
			t.Errorf("no %q in:\n%s", want, strings.Join(msgs, "\n"))
		}
	}
}

func must(f Field, ok bool) Field {
	if !ok {
		panic("unknown field")
	}
	return f
}

// TestMappedAddressesAreUnmapped checks that an IPv4-mapped IPv6 address in
// any address field reaches consumers as the IPv4 address, in text and in
// Parquet, and that other IPv6 addresses are left alone.
func TestMappedAddressesAreUnmapped(t *testing.T) {
	want := map[string]netip.Addr{
		"::ffff:203.0.113.7":   netip.MustParseAddr("203.0.113.7"),
		"::FFFF:10.0.0.9":      netip.MustParseAddr("10.0.0.9"),
		"::ffff:cb00:7107":     netip.MustParseAddr("203.0.113.7"),
		"203.0.113.7":          netip.MustParseAddr("203.0.113.7"),
		"2001:db8::1":          netip.MustParseAddr("2001:db8::1"),
		"64:ff9b::203.0.113.7": netip.MustParseAddr("64:ff9b::cb00:7107"), // NAT64 is the guards' concern, not the decoder's
	}
	f := MustParseFormat("srcaddr dstaddr pkt-srcaddr pkt-dstaddr")
	var text strings.Builder
	text.WriteString(f.Header() + "\n")
	var order []string
	for s := range want {
		order = append(order, s)
		text.WriteString(strings.Repeat(s+" ", 3) + s + "\n")
	}
	check := func(kind string, b *Batch, i int, s string) {
		for pos := 0; pos < 4; pos++ {
			if got := b.Addrs(pos, nil)[i]; got != want[s] {
				t.Errorf("%s: %s in %s is %v, want %v", kind, s, f.Name(pos), got, want[s])
			}
		}
		if js := string(b.AppendJSON(nil, i)); !strings.Contains(js, `"srcaddr":"`+want[s].String()+`"`) {
			t.Errorf("%s: JSON %s", kind, js)
		}
	}
	for kind, in := range inputKinds(t, []byte(text.String())) {
		sk := &Skipped{}
		n := 0
		err := (&Scanner{Workers: 1, Errors: sk}).Scan(t.Context(), []Input{in}, func(_ int, b *Batch) error {
			b.Validate()
			for i := 0; i < b.N; i++ {
				check(kind, b, i, order[b.Line(i)-2])
				n++
			}
			return nil
		})
		if err != nil || n != len(want) || sk.Count() != 0 {
			t.Errorf("%s: %d records, err %v, skipped %v", kind, n, err, sk.First())
		}
	}
	type pqAddr struct {
		Src    *string `parquet:"srcaddr,optional"`
		Dst    *string `parquet:"dstaddr,optional"`
		PktSrc *string `parquet:"pkt_srcaddr,optional"`
		PktDst *string `parquet:"pkt_dstaddr,optional"`
	}
	var rows []pqAddr
	for _, s := range order {
		rows = append(rows, pqAddr{sp(s), sp(s), sp(s), sp(s)})
	}
	decodeAll(t, "a.parquet", writeParquet(t, rows), 100, nil, func(b *Batch, i int) {
		check("parquet", b, i, order[i])
	})
}
