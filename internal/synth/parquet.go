package synth

import (
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// ParquetColumnName is the column name Parquet delivery uses for a field:
// the AWS name with '_' for '-' (account_id, log_status).
func ParquetColumnName(name string) string { return strings.ReplaceAll(name, "-", "_") }

// ParquetSchema returns the schema of Parquet delivery for format f: one
// optional column per field, in the format's order, named as
// ParquetColumnName says and typed as flowlog.FieldInfo.Parquet says
// (INT32, INT64, or STRING as UTF-8 BYTE_ARRAY).
func ParquetSchema(f *flowlog.Format) *parquet.Schema {
	cols := make(orderedGroup, f.Len())
	for i := range f.Len() {
		var leaf parquet.Node
		switch f.Field(i).Info().Parquet {
		case "INT32":
			leaf = parquet.Leaf(parquet.Int32Type)
		case "INT64":
			leaf = parquet.Leaf(parquet.Int64Type)
		default:
			leaf = parquet.String()
			if f.Field(i).Kind() != flowlog.KindAddr {
				// Few distinct values: IDs, action, log-status, region …
				leaf = parquet.Encoded(leaf, &parquet.RLEDictionary)
			}
		}
		cols[i] = &column{Node: parquet.Optional(leaf), name: ParquetColumnName(f.Name(i))}
	}
	return parquet.NewSchema("schema", cols)
}

// column is a named field of orderedGroup.
type column struct {
	parquet.Node
	name string
}

func (c *column) Name() string { return c.name }
func (c *column) Value(base reflect.Value) reflect.Value {
	return base.FieldByName(goFieldName(c.name))
}

func goFieldName(name string) string { return "F_" + strings.ReplaceAll(name, "-", "_") }

// orderedGroup is a Parquet group whose columns keep their order
// (parquet.Group sorts them by name; AWS's files follow the format).
type orderedGroup []parquet.Field

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }

func (g orderedGroup) String() string {
	var b strings.Builder
	b.WriteString("{")
	for i, f := range g {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Name())
		b.WriteString(" ")
		b.WriteString(f.String())
	}
	b.WriteString("}")
	return b.String()
}

func (g orderedGroup) GoType() reflect.Type {
	fields := make([]reflect.StructField, len(g))
	for i, f := range g {
		fields[i] = reflect.StructField{Name: goFieldName(f.Name()), Type: f.GoType(), Tag: reflect.StructTag(`parquet:"` + f.Name() + `,optional"`)}
	}
	return reflect.StructOf(fields)
}

// WriteParquet writes the records as a Parquet file, as S3 delivery with
// FileFormat parquet does.
func (g *Generator) WriteParquet(w io.Writer) error {
	pw := g.newParquetWriter(w)
	err := g.run(func(r *Record, _ int) error { return pw.add(r) })
	if err == nil {
		err = pw.close()
	}
	if err != nil {
		return fmt.Errorf("cannot write Parquet flow logs: %w", err)
	}
	return nil
}

type parquetWriter struct {
	g      *Generator
	tw     *textWriter
	w      *parquet.Writer
	fields []flowlog.Field
	rows   []parquet.Row
	n      int
	arena  []byte
}

const parquetBatch = 4096

func (g *Generator) newParquetWriter(out io.Writer) *parquetWriter {
	f := g.cfg.Format
	pw := &parquetWriter{g: g, tw: g.newTextWriter(), rows: make([]parquet.Row, parquetBatch)}
	for i := range f.Len() {
		pw.fields = append(pw.fields, f.Field(i))
	}
	for i := range pw.rows {
		pw.rows[i] = make(parquet.Row, len(pw.fields))
	}
	pw.w = parquet.NewWriter(out, ParquetSchema(f), parquet.Compression(&gzip.Codec{Level: gzip.DefaultCompression}),
		parquet.CreatedBy("flowguard synth", "", ""))
	return pw
}

func (pw *parquetWriter) add(r *Record) error {
	row := pw.rows[pw.n]
	ok := r.LogStatus == flowlog.LogStatusOK
	for i, f := range pw.fields {
		var v parquet.Value
		var present bool
		switch f {
		case flowlog.FieldVersion:
			v, present = parquet.Int32Value(int32(pw.g.version)), true
		case flowlog.FieldStart:
			v, present = parquet.Int64Value(r.Start), true
		case flowlog.FieldEnd:
			v, present = parquet.Int64Value(r.End), true
		case flowlog.FieldSrcPort, flowlog.FieldDstPort, flowlog.FieldProtocol, flowlog.FieldTCPFlags:
			if ok {
				v, present = parquet.Int32Value(int32(intField(f, r))), true
			}
		case flowlog.FieldTrafficPath:
			if ok && r.TrafficPath != 0 {
				v, present = parquet.Int32Value(int32(r.TrafficPath)), true
			}
		case flowlog.FieldPackets:
			if ok {
				v, present = parquet.Int64Value(int64(r.Packets)), true
			}
		case flowlog.FieldBytes:
			if ok {
				v, present = parquet.Int64Value(int64(r.Bytes)), true
			}
		default:
			// Strings: format as text, null when absent.
			start := len(pw.arena)
			pw.arena = pw.appendString(pw.arena, f, r)
			s := pw.arena[start:]
			if len(s) != 1 || s[0] != '-' {
				v, present = parquet.ByteArrayValue(s), true
			}
		}
		if present {
			row[i] = v.Level(0, 1, i)
		} else {
			row[i] = parquet.NullValue().Level(0, 0, i)
		}
	}
	pw.n++
	if pw.n == len(pw.rows) {
		return pw.flush()
	}
	return nil
}

func intField(f flowlog.Field, r *Record) int {
	switch f {
	case flowlog.FieldSrcPort:
		return int(r.SrcPort)
	case flowlog.FieldDstPort:
		return int(r.DstPort)
	case flowlog.FieldProtocol:
		return int(r.Protocol)
	case flowlog.FieldTCPFlags:
		return int(r.TCPFlags)
	}
	return 0
}

// appendString appends the text of a string field, "-" when absent.
func (pw *parquetWriter) appendString(b []byte, f flowlog.Field, r *Record) []byte {
	return pw.tw.appendField(b, f, r)
}

func (pw *parquetWriter) flush() error {
	if pw.n == 0 {
		return nil
	}
	if _, err := pw.w.WriteRows(pw.rows[:pw.n]); err != nil {
		return err
	}
	pw.n = 0
	pw.arena = pw.arena[:0]
	return nil
}

func (pw *parquetWriter) close() error {
	if err := pw.flush(); err != nil {
		return err
	}
	return pw.w.Close()
}
