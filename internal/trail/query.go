package trail

import (
	"context"
	"fmt"

	"github.com/flowguard/flowguard/internal/cloudtrail"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/query"
)

// Records is a query.RecordSource over CloudTrail inputs: each record's
// fields flattened as Logs Insights names them (userIdentity.arn,
// responseElements.ConsoleLogin), @timestamp its eventTime, @message its
// JSON. Inputs that do not hold CloudTrail, EventBridge events of other
// kinds (GuardDuty findings) and bad records are skipped into Errors, with
// file, line and column.
type Records struct {
	Inputs []flowlog.Input
	Errors flowlog.ErrorSink
}

var _ query.RecordSource = (*Records)(nil)

// Records reads the inputs in order and calls fn for each record.
func (r *Records) Records(ctx context.Context, fn func(*query.Record) error) error {
	rd := &cloudtrail.Reader{
		Errors: r.Errors,
		Event: func(e cloudtrail.Event) error {
			fields, err := cloudtrail.Flatten(e.Raw)
			if err != nil { // the reader decoded it: cannot happen
				return fmt.Errorf("%s:%d: %w", e.Source, e.Line, err)
			}
			return fn(&query.Record{Fields: fields, Time: e.EventTime, Message: e.Raw, Source: e.Source})
		},
	}
	for _, in := range r.Inputs {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		ok, h, err := Sniff(ctx, in)
		if err != nil {
			r.skip(&flowlog.LineError{Source: in.Name, Msg: err.Error()})
			continue
		}
		if !ok {
			if rc, err := h.Open(ctx); err == nil {
				rc.Close()
			}
			r.skip(&flowlog.LineError{Source: in.Name, Line: 1, Column: 1, Msg: "not CloudTrail (flow logs among CloudTrail?): query the two kinds of logs in separate runs"})
			continue
		}
		if err := rd.ReadInput(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

func (r *Records) skip(e *flowlog.LineError) {
	if r.Errors != nil {
		r.Errors.Skip(e)
	}
}
