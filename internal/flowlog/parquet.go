package flowlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Parquet delivery (S3, FileFormat parquet) writes one flat column per
// field, named as the field with '_' for '-' (account_id, log_status,
// pkt_srcaddr …). AWS documents the physical types as INT32 for version,
// srcport, dstport, protocol, tcp_flags and traffic_path, INT64 for packets,
// bytes, start, end and the Transit Gateway packets_lost_* counters, and
// STRING (BYTE_ARRAY, UTF8) for the rest; every column is optional and a
// null is an absent value ("-" in text).
//
// The decoder does not insist on those types: an integer field may be any
// integer column (or a string holding a decimal number), a string field may
// be an integer column (kept as its decimal text), so that a file written by
// another tool (Athena CTAS, Glue, Spark writes protocol as bigint) decodes
// too. A value that cannot be converted marks its record bad.

var notText = []byte{0}

// parquetValueBuf is how many values are read from a column at a time.
const parquetValueBuf = 1024

// parquetColumn is the reading state of one column of the current row group.
type parquetColumn struct {
	name     string
	kind     parquet.Kind
	unsigned bool // INT32/INT64 annotated as an unsigned integer
	values   parquet.ColumnChunkValueReader
}

// decodeParquet reads a Parquet flow log file and calls emit with batches of at most maxRows rows
// (reuse one Batch; emit must not keep it). Column order/format comes from the file schema
// (flowlog.LookupField accepts underscore names; unknown columns are kept as strings with their name).
func decodeParquet(ctx context.Context, name string, r io.ReaderAt, size int64, maxRows int, errs ErrorSink, emit func(*Batch) error) (err error) {
	if maxRows <= 0 {
		maxRows = 8192
	}
	d := &parquetDecoder{name: name, errs: errs, emit: emit, maxRows: maxRows}
	// parquet-go trusts the file more than a decoder of untrusted input
	// should and can panic on corrupt pages; turn that into an error naming
	// the file. Panics raised by emit are not ours to hide.
	defer func() {
		if p := recover(); p != nil {
			if d.inEmit {
				panic(p)
			}
			err = fmt.Errorf("%s: corrupt Parquet file: %v", name, p)
		}
	}()
	return d.decode(ctx, r, size)
}

type parquetDecoder struct {
	name    string
	errs    ErrorSink
	emit    func(*Batch) error
	maxRows int
	inEmit  bool

	format  *Format
	cols    []parquetColumn
	batch   Batch
	seq     int
	vals    []parquet.Value
	scratch []byte
}

func (d *parquetDecoder) decode(ctx context.Context, r io.ReaderAt, size int64) error {
	if err := checkParquetFrame(r, size); err != nil {
		return fmt.Errorf("%s: not a readable Parquet file: %w", d.name, err)
	}
	f, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return fmt.Errorf("%s: not a readable Parquet file: %w", d.name, err)
	}
	if err := d.readSchema(f); err != nil {
		return err
	}
	d.vals = make([]parquet.Value, min(d.maxRows, parquetValueBuf))
	for g, rg := range f.RowGroups() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.decodeRowGroup(ctx, g, rg); err != nil {
			return err
		}
	}
	return nil
}

// checkParquetFrame checks the magic bytes at both ends of the file and
// that the footer length fits in it, before parquet-go allocates a buffer
// of the length the file claims.
func checkParquetFrame(r io.ReaderAt, size int64) error {
	const magic = "PAR1"
	if size < 12 {
		return fmt.Errorf("%d bytes is too short", size)
	}
	var head [4]byte
	var tail [8]byte
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return err
	}
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return err
	}
	if string(head[:]) != magic {
		return errors.New("no Parquet magic bytes at the start")
	}
	if string(tail[4:]) != magic {
		return errors.New("no Parquet magic bytes at the end (truncated?)")
	}
	footer := int64(uint32(tail[0]) | uint32(tail[1])<<8 | uint32(tail[2])<<16 | uint32(tail[3])<<24)
	if footer > size-12 {
		return fmt.Errorf("footer of %d bytes does not fit in %d bytes (truncated?)", footer, size)
	}
	return nil
}

// readSchema builds the format from the file's top-level columns, which
// must all be flat (no groups, no repeated fields).
func (d *parquetDecoder) readSchema(f *parquet.File) error {
	top := f.Root().Columns()
	if len(top) == 0 {
		return fmt.Errorf("%s: Parquet file has no columns", d.name)
	}
	names := make([]string, len(top))
	d.cols = make([]parquetColumn, len(top))
	for i, c := range top {
		if !c.Leaf() || c.Repeated() || c.MaxRepetitionLevel() > 0 {
			return fmt.Errorf("%s: Parquet column %q is nested or repeated: not a flow log file", d.name, c.Name())
		}
		typ := c.Type()
		d.cols[i] = parquetColumn{name: c.Name(), kind: typ.Kind(), unsigned: isUnsigned(typ)}
		names[i] = c.Name()
	}
	fm, err := ParseFormat(strings.Join(names, " "))
	if err != nil {
		return fmt.Errorf("%s: Parquet columns are not flow log fields: %w", d.name, err)
	}
	if fm.Len() != len(top) { // a name with white space in it
		return fmt.Errorf("%s: Parquet column names are not flow log field names", d.name)
	}
	d.format = fm
	return nil
}

func isUnsigned(t parquet.Type) bool {
	lt := t.LogicalType()
	if lt == nil {
		return false
	}
	it, ok := lt.Value.(*format.IntType)
	return ok && !it.IsSigned
}

func (d *parquetDecoder) decodeRowGroup(ctx context.Context, g int, rg parquet.RowGroup) error {
	chunks := rg.ColumnChunks()
	if len(chunks) != len(d.cols) {
		return fmt.Errorf("%s: row group %d has %d columns, the schema %d", d.name, g, len(chunks), len(d.cols))
	}
	for i := range d.cols {
		d.cols[i].values = parquet.NewColumnChunkValueReader(chunks[i])
	}
	defer func() {
		for i := range d.cols {
			if d.cols[i].values != nil {
				d.cols[i].values.Close()
				d.cols[i].values = nil
			}
		}
	}()
	total := rg.NumRows()
	if total < 0 {
		return fmt.Errorf("%s: row group %d: negative row count", d.name, g)
	}
	for done := int64(0); done < total; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(total-done, int64(d.maxRows)))
		b := &d.batch
		b.ResetColumns(d.format, d.name, d.seq, n)
		b.errs = d.errs
		for pos := range d.cols {
			if err := d.fillColumn(b, pos, n); err != nil {
				return fmt.Errorf("%s: row group %d, column %q: %w", d.name, g, d.cols[pos].name, err)
			}
		}
		d.seq++
		done += int64(n)
		d.inEmit = true
		err := d.emit(b)
		d.inEmit = false
		if err != nil {
			return err
		}
	}
	return nil
}

// fillColumn reads the next n values of column pos into the batch.
func (d *parquetDecoder) fillColumn(b *Batch, pos, n int) error {
	pc := &d.cols[pos]
	kind := d.format.Field(pos).Kind()
	var (
		uints   []uint64
		present []bool
		addrs   []netip.Addr
		enums   []uint8
	)
	switch kind {
	case KindUint:
		uints, present = b.FillUints(pos)
	case KindAddr:
		addrs = b.FillAddrs(pos)
	case KindAction, KindLogStatus:
		enums = b.FillEnums(pos)
	}
	for row := 0; row < n; {
		want := min(n-row, len(d.vals))
		got, err := pc.values.ReadValues(d.vals[:want])
		if got == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return fmt.Errorf("%d values where the row group has %d rows", row, n)
			}
			return err
		}
		vals := d.vals[:got]
		switch kind {
		case KindUint:
			d.fillUints(b, pc, pos, row, vals, uints[row:row+got], present[row:row+got])
		case KindAddr:
			for k, v := range vals {
				a, valid := pc.addrValue(v)
				if !valid {
					b.MarkBad(row+k, pos, "not an IP address")
				}
				addrs[row+k] = a
			}
		case KindAction:
			for k, v := range vals {
				var a Action
				ok := true
				if !v.IsNull() {
					a, ok = parseAction(pc.bytes(v))
				}
				if !ok {
					b.MarkBad(row+k, pos, "action is not ACCEPT or REJECT")
				}
				enums[row+k] = uint8(a)
			}
		case KindLogStatus:
			for k, v := range vals {
				var s LogStatus
				ok := true
				if !v.IsNull() {
					s, ok = parseLogStatus(pc.bytes(v))
				}
				if !ok {
					b.MarkBad(row+k, pos, "log-status is not OK, NODATA or SKIPDATA")
				}
				enums[row+k] = uint8(s)
			}
		default:
			for _, v := range vals {
				s, ok := d.stringValue(pc, v)
				b.AppendString(pos, s, ok)
			}
		}
		row += got
	}
	return nil
}

// fillUints converts the values of an integer field, rows row… of the
// batch, with a tight loop for the types AWS writes.
func (d *parquetDecoder) fillUints(b *Batch, pc *parquetColumn, pos, row int, vals []parquet.Value, dst []uint64, present []bool) {
	switch {
	case pc.kind == parquet.Int32 && !pc.unsigned:
		for k, v := range vals {
			x := v.Int32()
			dst[k], present[k] = uint64(x), !v.IsNull() && x >= 0
			if x < 0 && !v.IsNull() {
				dst[k] = 0
				b.MarkBad(row+k, pos, "not a number")
			}
		}
	case pc.kind == parquet.Int64 && !pc.unsigned:
		for k, v := range vals {
			x := v.Int64()
			dst[k], present[k] = uint64(x), !v.IsNull() && x >= 0
			if x < 0 && !v.IsNull() {
				dst[k] = 0
				b.MarkBad(row+k, pos, "not a number")
			}
		}
	default:
		for k, v := range vals {
			u, ok, valid := pc.uintValue(v)
			if !valid {
				b.MarkBad(row+k, pos, "not a number")
			}
			dst[k], present[k] = u, ok && valid
		}
	}
	if limit := d.format.Field(pos).Max(); limit != 1<<64-1 {
		for k, v := range dst {
			if v > limit && present[k] {
				dst[k], present[k] = 0, false
				b.MarkBad(row+k, pos, outOfRange(limit))
			}
		}
	}
}

// bytes returns the bytes of a string column's value, or a value no
// enum parser accepts for a column of another type.
func (pc *parquetColumn) bytes(v parquet.Value) []byte {
	if pc.kind != parquet.ByteArray {
		return notText
	}
	return v.ByteArray()
}

// uintValue converts an integer field's value. present is false for null
// (and "-" in a string column); valid is false when the value is not a
// non-negative integer.
func (pc *parquetColumn) uintValue(v parquet.Value) (u uint64, present, valid bool) {
	if v.IsNull() {
		return 0, false, true
	}
	switch pc.kind {
	case parquet.Int32:
		x := v.Int32()
		if pc.unsigned {
			return uint64(uint32(x)), true, true
		}
		if x < 0 {
			return 0, false, false
		}
		return uint64(x), true, true
	case parquet.Int64:
		x := v.Int64()
		if pc.unsigned {
			return uint64(x), true, true
		}
		if x < 0 {
			return 0, false, false
		}
		return uint64(x), true, true
	case parquet.ByteArray:
		return parseUint(v.ByteArray())
	case parquet.Double, parquet.Float:
		var x float64
		if pc.kind == parquet.Float {
			x = float64(v.Float())
		} else {
			x = v.Double()
		}
		if x < 0 || x != math.Trunc(x) || x >= 1<<64 {
			return 0, false, false
		}
		return uint64(x), true, true
	}
	return 0, false, false
}

// addrValue converts an address field's value: null and "-" are the zero
// Addr (absent), an IPv4-mapped IPv6 address is unmapped; valid is false
// for anything that is not an IPv4 or IPv6 address without a zone.
func (pc *parquetColumn) addrValue(v parquet.Value) (a netip.Addr, valid bool) {
	if v.IsNull() {
		return netip.Addr{}, true
	}
	if pc.kind != parquet.ByteArray {
		return netip.Addr{}, false
	}
	p := v.ByteArray()
	if isAbsent(p) {
		return netip.Addr{}, true
	}
	a, err := netip.ParseAddr(bytesString(p))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// stringValue returns the text of a string field's value; null and "-" are
// absent. Numbers are kept as their decimal text.
func (d *parquetDecoder) stringValue(pc *parquetColumn, v parquet.Value) ([]byte, bool) {
	if v.IsNull() {
		return nil, false
	}
	d.scratch = d.scratch[:0]
	switch pc.kind {
	case parquet.ByteArray, parquet.FixedLenByteArray:
		p := v.ByteArray()
		if isAbsent(p) {
			return nil, false
		}
		return p, true
	case parquet.Int32:
		if pc.unsigned {
			d.scratch = strconv.AppendUint(d.scratch, uint64(uint32(v.Int32())), 10)
		} else {
			d.scratch = strconv.AppendInt(d.scratch, int64(v.Int32()), 10)
		}
	case parquet.Int64:
		if pc.unsigned {
			d.scratch = strconv.AppendUint(d.scratch, uint64(v.Int64()), 10)
		} else {
			d.scratch = strconv.AppendInt(d.scratch, v.Int64(), 10)
		}
	case parquet.Boolean:
		d.scratch = strconv.AppendBool(d.scratch, v.Boolean())
	case parquet.Float:
		d.scratch = strconv.AppendFloat(d.scratch, float64(v.Float()), 'g', -1, 32)
	case parquet.Double:
		d.scratch = strconv.AppendFloat(d.scratch, v.Double(), 'g', -1, 64)
	default:
		d.scratch = v.AppendBytes(d.scratch)
	}
	return d.scratch, true
}
