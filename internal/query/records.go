package query

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// batchSource is what a program's first pipeline reads: batches of
// records, from workers() goroutines. The flow log scanner is one
// (scannerSource); records of other sources are another (RunRecords).
type batchSource interface {
	workers() int
	// scan calls fn for each batch from worker w; fields lists the flow
	// log fields the query reads.
	scan(ctx context.Context, fields []flowlog.Field, fn func(w int, b *flowlog.Batch) error) error
	// scanOrdered runs work on the workers and gives its results to
	// deliver one at a time, in the order of the records.
	scanOrdered(ctx context.Context, fields []flowlog.Field, work func(w int, b *flowlog.Batch) []row, deliver func([]row) error) error
}

// scannerSource is the flow log scanner over its inputs.
type scannerSource struct {
	sc     *flowlog.Scanner
	inputs []flowlog.Input
}

func (s *scannerSource) workers() int {
	if s.sc.Workers <= 0 {
		s.sc.Workers = defaultWorkers()
	}
	return s.sc.Workers
}

func (s *scannerSource) with(fields []flowlog.Field) *flowlog.Scanner {
	own := *s.sc
	own.Fields = fields
	return &own
}

func (s *scannerSource) scan(ctx context.Context, fields []flowlog.Field, fn func(int, *flowlog.Batch) error) error {
	return s.with(fields).Scan(ctx, s.inputs, fn)
}

func (s *scannerSource) scanOrdered(ctx context.Context, fields []flowlog.Field, work func(int, *flowlog.Batch) []row, deliver func([]row) error) error {
	return flowlog.ScanOrdered(ctx, s.with(fields), s.inputs, work, deliver)
}

// Record is one record of a source that is not a flow log (a CloudTrail
// record): its fields by name as Logs Insights discovers them in JSON
// (nested names joined with dots: userIdentity.arn, resources.0.ARN), its
// time (@timestamp) and its text (@message).
type Record struct {
	// Fields holds strings, json.Number, float64 or bool values; a field
	// that is absent (or JSON null) is left out.
	Fields  map[string]any
	Time    time.Time
	Message []byte
	Source  string // the input, in messages
}

// RecordSource yields records, in order.
type RecordSource interface {
	// Records calls fn for each record, which fn may keep; an error of
	// fn stops the reading and is returned.
	Records(ctx context.Context, fn func(*Record) error) error
}

// RunRecords executes the program over the records of src. Every field is
// a string (a number compares as one where the other side is a number),
// @timestamp is the record's time and @message its text; flow log field
// names are empty.
func (p *Program) RunRecords(ctx context.Context, src RecordSource) (*Table, error) {
	return p.run(ctx, &recordBatches{src: src})
}

// recordsPerBatch is the size of the batches records are gathered in.
const recordsPerBatch = 2048

// recordBatches turns records into batches of string columns, one worker
// reading them in order.
type recordBatches struct {
	src RecordSource
}

func (r *recordBatches) workers() int { return 1 }

func (r *recordBatches) scan(ctx context.Context, _ []flowlog.Field, fn func(int, *flowlog.Batch) error) error {
	return r.batches(ctx, func(b *flowlog.Batch) error { return fn(0, b) })
}

func (r *recordBatches) scanOrdered(ctx context.Context, _ []flowlog.Field, work func(int, *flowlog.Batch) []row, deliver func([]row) error) error {
	return r.batches(ctx, func(b *flowlog.Batch) error { return deliver(work(0, b)) })
}

// batches gathers the records in batches and calls fn for each; the
// batch is reused once fn returns.
func (r *recordBatches) batches(ctx context.Context, fn func(*flowlog.Batch) error) error {
	var (
		b    flowlog.Batch
		recs []*Record
		seq  int
		buf  []byte
		msgs [][]byte
	)
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		names := []string{"start"}
		pos := map[string]int{"start": 0}
		for _, rec := range recs {
			for k := range rec.Fields {
				if _, ok := pos[k]; !ok && k != "" { // a JSON key may be empty: no query can name it
					pos[k] = len(names)
					names = append(names, k)
				}
			}
		}
		slices.Sort(names[1:]) // a stable column order, whatever the maps'
		for i, n := range names {
			pos[n] = i
		}
		f, err := flowlog.RecordFormat(names)
		if err != nil {
			return fmt.Errorf("records of %s: %w", recs[0].Source, err)
		}
		b.ResetColumns(f, recs[0].Source, seq, len(recs))
		seq++
		vals, present := b.FillUints(0)
		msgs = msgs[:0]
		for i, rec := range recs {
			vals[i], present[i] = uint64(rec.Time.Unix()), !rec.Time.IsZero() && rec.Time.Unix() >= 0
			msgs = append(msgs, rec.Message)
		}
		for p := 1; p < len(names); p++ {
			for _, rec := range recs {
				v, ok := rec.Fields[names[p]]
				if ok {
					buf = appendText(buf[:0], v)
				}
				b.AppendString(p, buf, ok)
			}
		}
		b.SetMessages(msgs)
		err = fn(&b)
		recs = recs[:0]
		return err
	}
	err := r.src.Records(ctx, func(rec *Record) error {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if len(recs) > 0 && rec.Source != recs[0].Source || len(recs) == recordsPerBatch {
			if err := flush(); err != nil {
				return err
			}
		}
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// appendText appends a JSON value as Logs Insights shows it.
func appendText(dst []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return append(dst, x...)
	case json.Number:
		return append(dst, x...)
	case bool:
		return strconv.AppendBool(dst, x)
	case float64:
		return strconv.AppendFloat(dst, x, 'g', -1, 64)
	}
	return fmt.Append(dst, v)
}
