package flowlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// Rows as AWS's Parquet delivery writes them: underscore names, INT32 for
// version/ports/protocol/tcp_flags/traffic_path, INT64 for counters and
// times, optional UTF8 strings for the rest. Pointers are optional columns
// (nil = null).

type pqV2 struct {
	Version     *int32  `parquet:"version,optional"`
	AccountID   *string `parquet:"account_id,optional,dict"`
	InterfaceID *string `parquet:"interface_id,optional"`
	SrcAddr     *string `parquet:"srcaddr,optional"`
	DstAddr     *string `parquet:"dstaddr,optional"`
	SrcPort     *int32  `parquet:"srcport,optional"`
	DstPort     *int32  `parquet:"dstport,optional"`
	Protocol    *int32  `parquet:"protocol,optional"`
	Packets     *int64  `parquet:"packets,optional"`
	Bytes       *int64  `parquet:"bytes,optional"`
	Start       *int64  `parquet:"start,optional"`
	End         *int64  `parquet:"end,optional"`
	Action      *string `parquet:"action,optional,dict"`
	LogStatus   *string `parquet:"log_status,optional,dict"`
}

type pqV5 struct {
	pqV2
	VPCID            *string `parquet:"vpc_id,optional"`
	SubnetID         *string `parquet:"subnet_id,optional"`
	InstanceID       *string `parquet:"instance_id,optional"`
	TCPFlags         *int32  `parquet:"tcp_flags,optional"`
	Type             *string `parquet:"type,optional"`
	PktSrcAddr       *string `parquet:"pkt_srcaddr,optional"`
	PktDstAddr       *string `parquet:"pkt_dstaddr,optional"`
	Region           *string `parquet:"region,optional"`
	AZID             *string `parquet:"az_id,optional"`
	SublocationType  *string `parquet:"sublocation_type,optional"`
	SublocationID    *string `parquet:"sublocation_id,optional"`
	PktSrcAWSService *string `parquet:"pkt_src_aws_service,optional"`
	PktDstAWSService *string `parquet:"pkt_dst_aws_service,optional"`
	FlowDirection    *string `parquet:"flow_direction,optional"`
	TrafficPath      *int32  `parquet:"traffic_path,optional"`
	// Columns AWS might add later: kept as strings under their own names.
	FutureText  *string `parquet:"future_text,optional"`
	FutureCount *int64  `parquet:"future_count,optional"`
}

func sp(s string) *string { return &s }
func i32(v int32) *int32  { return &v }
func i64(v int64) *int64  { return &v }

func v2Row(src, dst string, sport, dport, proto int32, pkts, byts, start int64, action string) pqV2 {
	return pqV2{
		Version: i32(2), AccountID: sp("123456789012"), InterfaceID: sp("eni-0a1b2c3d4e5f60718"),
		SrcAddr: sp(src), DstAddr: sp(dst), SrcPort: i32(sport), DstPort: i32(dport), Protocol: i32(proto),
		Packets: i64(pkts), Bytes: i64(byts), Start: i64(start), End: i64(start + 60),
		Action: sp(action), LogStatus: sp("OK"),
	}
}

// noDataRow is what AWS writes for a window without traffic: only version,
// account, interface, times and log status.
func noDataRow(start int64) pqV2 {
	return pqV2{
		Version: i32(2), AccountID: sp("123456789012"), InterfaceID: sp("eni-0a1b2c3d4e5f60718"),
		Start: i64(start), End: i64(start + 600), LogStatus: sp("NODATA"),
	}
}

func writeParquet[T any](t testing.TB, rows []T, opts ...parquet.WriterOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, opts...)
	if _, err := w.Write(rows); err != nil {
		t.Fatalf("writing parquet: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("closing parquet writer: %v", err)
	}
	return buf.Bytes()
}

// expectedValue is the decoded value a test expects for one field: what
// the row held, typed as the field's kind, computed from the Go value.
type expectedValue struct {
	present bool
	u       uint64
	addr    netip.Addr
	action  Action
	status  LogStatus
	str     string
}

var wantAction = map[string]Action{"ACCEPT": ActionAccept, "REJECT": ActionReject}
var wantStatus = map[string]LogStatus{"OK": LogStatusOK, "NODATA": LogStatusNoData, "SKIPDATA": LogStatusSkipData}

// expectRow flattens a row struct into (column name, expected value) in
// column order, by reflection over the parquet tags.
func expectRow(t *testing.T, row any) (names []string, vals []expectedValue) {
	t.Helper()
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			sf := v.Type().Field(i)
			if sf.Anonymous {
				walk(v.Field(i))
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("parquet"), ",")
			names = append(names, name)
			fv := v.Field(i)
			var e expectedValue
			if !fv.IsNil() {
				e.present = true
				kind := KindString
				if f, ok := LookupField(name); ok {
					kind = f.Kind()
				}
				switch x := fv.Elem().Interface().(type) {
				case int32:
					e.u, e.str = uint64(x), fmt.Sprint(x)
				case int64:
					e.u, e.str = uint64(x), fmt.Sprint(x)
				case string:
					e.str = x
					switch kind {
					case KindAddr:
						e.addr = netip.MustParseAddr(x)
					case KindAction:
						e.action = wantAction[x]
					case KindLogStatus:
						e.status = wantStatus[x]
					}
				}
			}
			vals = append(vals, e)
		}
	}
	walk(reflect.ValueOf(row))
	return names, vals
}

func decodeAll(t *testing.T, name string, data []byte, maxRows int, errs ErrorSink, fn func(b *Batch, i int)) (batches, rows int) {
	t.Helper()
	err := decodeParquet(context.Background(), name, bytes.NewReader(data), int64(len(data)), maxRows, errs, func(b *Batch) error {
		if b.N > maxRows {
			t.Errorf("batch of %d rows, max %d", b.N, maxRows)
		}
		batches++
		for i := 0; i < b.N; i++ {
			fn(b, i)
		}
		rows += b.N
		return nil
	})
	if err != nil {
		t.Fatalf("decodeParquet: %v", err)
	}
	return batches, rows
}

// checkRecord compares record i of b with the expected values of row.
func checkRecord(t *testing.T, b *Batch, i int, row any, where string) {
	t.Helper()
	names, want := expectRow(t, row)
	if b.Format.Len() != len(names) {
		t.Fatalf("%s: format has %d fields, want %d", where, b.Format.Len(), len(names))
	}
	for pos, name := range names {
		f, known := LookupField(name)
		if known {
			if b.Format.Field(pos) != f || b.Format.Name(pos) != f.String() {
				t.Fatalf("%s: field %d is %v %q, want %v", where, pos, b.Format.Field(pos), b.Format.Name(pos), f)
			}
		} else if b.Format.Field(pos) != FieldUnknown || b.Format.Name(pos) != name {
			t.Fatalf("%s: field %d is %v %q, want unknown %q", where, pos, b.Format.Field(pos), b.Format.Name(pos), name)
		}
		w := want[pos]
		switch b.Format.Field(pos).Kind() {
		case KindUint:
			vals, present := b.Uints(pos, nil)
			if present[i] != w.present || vals[i] != w.u {
				t.Errorf("%s %s = %d (present %v), want %d (present %v)", where, name, vals[i], present[i], w.u, w.present)
			}
		case KindAddr:
			if got := b.Addrs(pos, nil)[i]; got != w.addr {
				t.Errorf("%s %s = %v, want %v", where, name, got, w.addr)
			}
		case KindAction:
			if got := b.Actions(pos, nil)[i]; got != w.action {
				t.Errorf("%s %s = %v, want %v", where, name, got, w.action)
			}
		case KindLogStatus:
			if got := b.LogStatuses(pos, nil)[i]; got != w.status {
				t.Errorf("%s %s = %v, want %v", where, name, got, w.status)
			}
		default:
			s, ok := b.String(i, pos)
			if ok != w.present || string(s) != w.str {
				t.Errorf("%s %s = %q (present %v), want %q (present %v)", where, name, s, ok, w.str, w.present)
			}
		}
	}
	if b.Bad(i) {
		t.Errorf("%s: marked bad", where)
	}
}

func v2Rows() []pqV2 {
	return []pqV2{
		v2Row("10.0.1.5", "203.0.113.12", 49152, 443, 6, 10, 8400, 1700000000, "ACCEPT"),
		v2Row("198.51.100.23", "10.0.1.10", 51234, 22, 6, 1, 40, 1700000060, "REJECT"),
		noDataRow(1700000120),
		v2Row("2600:1f18:abc:1::10", "2001:db8::1", 443, 60000, 6, 3, 180, 1700000180, "ACCEPT"),
		v2Row("10.0.1.5", "10.0.2.9", 0, 0, 1, 4, 336, 1700000240, "ACCEPT"),
		{Version: i32(2), AccountID: sp("123456789012"), InterfaceID: sp("eni-0a1b2c3d4e5f60718"),
			Start: i64(1700000300), End: i64(1700000360), LogStatus: sp("SKIPDATA")},
		v2Row("10.0.1.5", "203.0.113.12", 65535, 65535, 17, 4294967296, 1<<40, 1700000400, "ACCEPT"),
	}
}

func TestDecodeParquetV2(t *testing.T) {
	rows := v2Rows()
	for _, tc := range []struct {
		name string
		opts []parquet.WriterOption
	}{
		{"default", nil},
		{"gzip, data page v1", []parquet.WriterOption{parquet.Compression(&parquet.Gzip), parquet.DataPageVersion(1)}},
		{"snappy, small pages and row groups", []parquet.WriterOption{parquet.Compression(&parquet.Snappy), parquet.PageBufferSize(64), parquet.MaxRowsPerRowGroup(3)}},
	} {
		for _, maxRows := range []int{1, 2, 4, 100} {
			t.Run(fmt.Sprintf("%s/max%d", tc.name, maxRows), func(t *testing.T) {
				data := writeParquet(t, rows, tc.opts...)
				var sink Skipped
				next := 0
				batches, n := decodeAll(t, "v2.parquet", data, maxRows, &sink, func(b *Batch, i int) {
					if b.Source != "v2.parquet" {
						t.Errorf("batch source %q", b.Source)
					}
					if next < len(rows) {
						checkRecord(t, b, i, rows[next], fmt.Sprintf("row %d:", next))
					}
					next++
				})
				if n != len(rows) {
					t.Errorf("decoded %d rows, want %d", n, len(rows))
				}
				if batches < (len(rows)+maxRows-1)/maxRows {
					t.Errorf("%d batches for %d rows of at most %d", batches, n, maxRows)
				}
				if sink.Count() != 0 {
					t.Errorf("skipped %d: %v", sink.Count(), sink.First())
				}
			})
		}
	}
}

func TestDecodeParquetV5UnknownColumns(t *testing.T) {
	base := v2Rows()
	rows := make([]pqV5, len(base))
	for i, r := range base {
		rows[i] = pqV5{pqV2: r}
		if r.SrcAddr == nil { // NODATA and SKIPDATA: no v3+ fields either
			continue
		}
		rows[i].VPCID = sp("vpc-0123456789abcdef0")
		rows[i].SubnetID = sp("subnet-0123456789abcdef0")
		rows[i].InstanceID = sp("i-0123456789abcdef0")
		rows[i].TCPFlags = i32(int32(2 + 16*(i%2)))
		rows[i].Type = sp("IPv4")
		rows[i].PktSrcAddr = r.SrcAddr
		rows[i].PktDstAddr = r.DstAddr
		rows[i].Region = sp("us-east-1")
		rows[i].AZID = sp("use1-az1")
		rows[i].FlowDirection = sp([]string{"ingress", "egress"}[i%2])
		rows[i].TrafficPath = i32(int32(1 + i%8))
		if i%3 == 0 {
			rows[i].PktDstAWSService = sp("S3")
			rows[i].FutureText = sp("something new")
			rows[i].FutureCount = i64(int64(i) * 1000)
		}
	}
	rows[3].Type = sp("IPv6")
	data := writeParquet(t, rows, parquet.Compression(&parquet.Gzip))
	var sink Skipped
	next := 0
	_, n := decodeAll(t, "v5.parquet", data, 3, &sink, func(b *Batch, i int) {
		if v := b.Format.Version(); v != 5 {
			t.Fatalf("format version %d, want 5", v)
		}
		checkRecord(t, b, i, rows[next], fmt.Sprintf("row %d:", next))
		next++
	})
	if n != len(rows) || sink.Count() != 0 {
		t.Errorf("decoded %d rows, skipped %d (%v); want %d, 0", n, sink.Count(), sink.First(), len(rows))
	}
}

// Another writer's types: protocol as INT64 (Athena's bigint), ports as
// strings, unsigned INT32s, and "-" in string columns for absent.
type pqOther struct {
	Protocol  int64   `parquet:"protocol"`
	SrcPort   *string `parquet:"srcport,optional"`
	DstPort   uint32  `parquet:"dstport"`
	SrcAddr   string  `parquet:"srcaddr"`
	Action    string  `parquet:"action"`
	LogStatus string  `parquet:"log-status"`
	Packets   uint32  `parquet:"packets"`
	AccountID int64   `parquet:"account_id"`
}

func TestDecodeParquetOtherTypes(t *testing.T) {
	rows := []pqOther{
		{6, sp("443"), 65535, "10.0.0.1", "ACCEPT", "OK", 3000000000, 123456789012},
		{17, sp("-"), 53, "-", "-", "NODATA", 0, 42},
		{1, nil, 0, "fe80::1", "REJECT", "OK", 1, 7},
	}
	data := writeParquet(t, rows)
	var sink Skipped
	got := 0
	decodeAll(t, "other.parquet", data, 10, &sink, func(b *Batch, i int) {
		got++
		f := b.Format
		if f.Name(5) != "log-status" || f.Name(7) != "account-id" {
			t.Fatalf("format %s", f)
		}
		r := rows[i]
		protos, _ := b.Uints(f.Index(FieldProtocol), nil)
		if protos[i] != uint64(r.Protocol) {
			t.Errorf("row %d protocol %d", i, protos[i])
		}
		sports, sok := b.Uints(f.Index(FieldSrcPort), nil)
		wantPort, wantOK := map[int]uint64{0: 443}[i], i == 0
		if sports[i] != wantPort || sok[i] != wantOK {
			t.Errorf("row %d srcport %d %v, want %d %v", i, sports[i], sok[i], wantPort, wantOK)
		}
		dports, _ := b.Uints(f.Index(FieldDstPort), nil)
		if dports[i] != uint64(r.DstPort) {
			t.Errorf("row %d dstport %d, want %d", i, dports[i], r.DstPort)
		}
		packets, _ := b.Uints(f.Index(FieldPackets), nil)
		if packets[i] != uint64(r.Packets) {
			t.Errorf("row %d packets %d, want %d", i, packets[i], r.Packets)
		}
		addr := b.Addrs(f.Index(FieldSrcAddr), nil)[i]
		wantAddr := map[int]netip.Addr{0: netip.MustParseAddr("10.0.0.1"), 2: netip.MustParseAddr("fe80::1")}[i]
		if addr != wantAddr {
			t.Errorf("row %d srcaddr %v, want %v", i, addr, wantAddr)
		}
		acts := b.Actions(f.Index(FieldAction), nil)
		if want := []Action{ActionAccept, ActionAbsent, ActionReject}[i]; acts[i] != want {
			t.Errorf("row %d action %v, want %v", i, acts[i], want)
		}
		acct, ok := b.String(i, f.Index(FieldAccountID))
		if !ok || string(acct) != fmt.Sprint(r.AccountID) {
			t.Errorf("row %d account %q %v", i, acct, ok)
		}
	})
	if got != len(rows) || sink.Count() != 0 {
		t.Errorf("got %d rows, skipped %d %v", got, sink.Count(), sink.First())
	}
}

// Values that are not what the field needs mark their record bad, with the
// file and the field named; the other records decode.
type pqBad struct {
	SrcAddr   *string `parquet:"srcaddr,optional"`
	DstPort   *int32  `parquet:"dstport,optional"`
	Action    *string `parquet:"action,optional"`
	LogStatus *string `parquet:"log_status,optional"`
	Bytes     *int64  `parquet:"bytes,optional"`
}

func TestDecodeParquetBadValues(t *testing.T) {
	good := pqBad{sp("10.0.0.1"), i32(80), sp("ACCEPT"), sp("OK"), i64(100)}
	rows := []pqBad{
		good,
		{sp("10.0.0.300"), i32(80), sp("ACCEPT"), sp("OK"), i64(1)},
		{sp("10.0.0.1"), i32(-1), sp("ACCEPT"), sp("OK"), i64(1)},
		{sp("10.0.0.1"), i32(80), sp("DROP"), sp("OK"), i64(1)},
		{sp("10.0.0.1"), i32(80), sp("ACCEPT"), sp("ok"), i64(1)},
		{sp("fe80::1%eth0"), i32(80), sp("ACCEPT"), sp("OK"), i64(1)},
		{sp("10.0.0.1"), i32(80), sp("ACCEPT"), sp("OK"), i64(-5)},
		good,
	}
	wantBad := map[int]string{
		1: "srcaddr: not an IP address",
		2: "dstport: not a number",
		3: "action: action is not ACCEPT or REJECT",
		4: "log-status: log-status is not OK, NODATA or SKIPDATA",
		5: "srcaddr: not an IP address",
		6: "bytes: not a number",
	}
	data := writeParquet(t, rows)
	sink := Skipped{Keep: 100}
	decodeAll(t, "bad.parquet", data, 100, &sink, func(b *Batch, i int) {
		if _, bad := wantBad[i]; b.Bad(i) != bad {
			t.Errorf("row %d: bad %v, want %v", i, b.Bad(i), bad)
		}
	})
	if sink.Count() != int64(len(wantBad)) {
		t.Fatalf("skipped %d, want %d: %v", sink.Count(), len(wantBad), sink.First())
	}
	var got []string
	for _, e := range sink.First() {
		got = append(got, e.Error())
	}
	for row, msg := range wantBad {
		want := "bad.parquet: " + msg
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("row %d: no error %q in %q", row, want, got)
		}
	}
}

func TestDecodeParquetBroken(t *testing.T) {
	data := writeParquet(t, v2Rows(), parquet.Compression(&parquet.Gzip))
	cases := map[string][]byte{
		"empty":          {},
		"text":           []byte("version account-id interface-id\n2 123 eni-1\n"),
		"magic only":     []byte("PAR1"),
		"truncated tail": data[:len(data)-10],
		"truncated half": data[:len(data)/2],
		"no footer":      append(append([]byte(nil), data[:len(data)-8]...), "XXXXPAR1"...),
	}
	// A file whose pages are damaged but whose footer is intact.
	damaged := append([]byte(nil), data...)
	for i := 8; i < len(damaged)/2; i += 7 {
		damaged[i] ^= 0x5a
	}
	cases["damaged pages"] = damaged
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			err := decodeParquet(context.Background(), "broken.parquet", bytes.NewReader(in), int64(len(in)), 4, nil, func(*Batch) error { return nil })
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "broken.parquet") {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
}

func TestDecodeParquetEmitErrorAndCancel(t *testing.T) {
	data := writeParquet(t, v2Rows())
	stop := errors.New("stop")
	calls := 0
	err := decodeParquet(context.Background(), "x.parquet", bytes.NewReader(data), int64(len(data)), 2, nil, func(*Batch) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("err %v after %d calls; want stop after 1", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = decodeParquet(ctx, "x.parquet", bytes.NewReader(data), int64(len(data)), 2, nil, func(*Batch) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

// Nested columns are not flow logs.
func TestDecodeParquetNested(t *testing.T) {
	type inner struct {
		A string `parquet:"a"`
	}
	type row struct {
		Version int32    `parquet:"version"`
		Tags    []string `parquet:"tags,list"`
		In      inner    `parquet:"in"`
	}
	data := writeParquet(t, []row{{2, []string{"x"}, inner{"y"}}})
	err := decodeParquet(context.Background(), "nested.parquet", bytes.NewReader(data), int64(len(data)), 4, nil, func(*Batch) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "nested.parquet") {
		t.Errorf("err = %v, want an error naming the file", err)
	}
}

func BenchmarkDecodeParquet(b *testing.B) {
	base := v2Rows()
	rows := make([]pqV2, 0, 100000)
	for len(rows) < cap(rows) {
		rows = append(rows, base[len(rows)%len(base)])
	}
	data := writeParquet(b, rows, parquet.Compression(&parquet.Gzip))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := decodeParquet(context.Background(), "bench.parquet", bytes.NewReader(data), int64(len(data)), 16<<10, nil, func(bt *Batch) error {
			n += bt.N
			return nil
		})
		if err != nil || n != len(rows) {
			b.Fatalf("%d rows, %v", n, err)
		}
	}
}

func FuzzDecodeParquet(f *testing.F) {
	f.Add(writeParquet(f, v2Rows()[:3]))
	f.Add(writeParquet(f, v2Rows()[2:5], parquet.Compression(&parquet.Gzip), parquet.DataPageVersion(1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = decodeParquet(context.Background(), "fuzz.parquet", bytes.NewReader(data), int64(len(data)), 2, &Skipped{}, func(b *Batch) error {
			for i := 0; i < b.N; i++ {
				b.Bad(i)
			}
			return nil
		})
	})
}
