package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"

	"github.com/flowguard/flowguard/internal/cloudtrail"
	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/guardduty"
	"github.com/flowguard/flowguard/internal/query"
	"github.com/flowguard/flowguard/internal/store"
	"github.com/flowguard/flowguard/internal/trail"
)

// trailRun is what the CloudTrail and GuardDuty inputs gave.
type trailRun struct {
	results []*detect.Result
	changes []cloudtrail.GuardDutyChange
}

// trailReading reads the inputs that hold CloudTrail or EventBridge JSON
// (CloudTrail records, GuardDuty findings), which the flow log scan hands
// over as it opens each input (trail.Divert: each input is opened once).
// CloudTrail records go through the CloudTrail detections, whose join
// with the flow findings waits for the end of the scan; GuardDuty
// findings are taken as they are.
type trailReading struct {
	d  *cloudtrail.Detector
	rd *cloudtrail.Reader
	gd map[string]*detect.Result
}

func newTrailReading(cfg *config.Config, errs flowlog.ErrorSink) *trailReading {
	o := trail.Options(cfg)
	o.DeferJoin = true
	t := &trailReading{d: cloudtrail.New(o), gd: map[string]*detect.Result{}}
	t.rd = trail.Reader(t.d, errs, func(f finding.Finding) {
		// The latest update of a GuardDuty finding wins.
		if old := t.gd[f.ID]; old == nil || !f.LastSeen.Before(old.LastSeen) {
			t.gd[f.ID] = &detect.Result{Finding: f, Rule: "GuardDuty finding"}
		}
	})
	return t
}

// inputs returns the inputs for the flow log scan: those that hold
// CloudTrail or EventBridge JSON are read here instead, one at a time, in
// order. Standard input stays a flow log.
func (t *trailReading) inputs(inputs []flowlog.Input) []flowlog.Input {
	return trail.Divert(inputs, t.rd.ReadInput)
}

// finish joins the sign-ins with this run's flow findings and returns the
// CloudTrail and GuardDuty results.
func (t *trailReading) finish(flows []*detect.Result) *trailRun {
	attackers := map[netip.Addr][]finding.Finding{}
	for _, r := range flows {
		if cloudtrail.IsAttack(&r.Finding) {
			attackers[r.Actor.IP] = append(attackers[r.Actor.IP], r.Finding)
		}
	}
	t.d.SetAttackers(attackers)
	run := &trailRun{changes: t.d.Changes}
	for _, f := range t.d.Findings() {
		run.results = append(run.results, &detect.Result{Finding: f, Rule: "CloudTrail: " + f.Type})
	}
	for _, id := range slices.Sorted(maps.Keys(t.gd)) {
		run.results = append(run.results, t.gd[id])
	}
	return run
}

// applyTrailChanges carries the archives and feedback given in GuardDuty
// (read from CloudTrail) to the GuardDuty findings in the store.
func applyTrailChanges(ctx context.Context, w io.Writer, path string, changes []cloudtrail.GuardDutyChange) error {
	if len(changes) == 0 {
		return nil
	}
	if path == "" {
		p, err := store.DefaultPath()
		if err != nil {
			return err
		}
		path = p
	}
	st, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := guardduty.ApplyChanges(ctx, st, changes)
	if err != nil {
		return err
	}
	if n > 0 {
		fmt.Fprintf(w, "flowguard: %d GuardDuty finding(s) archived, unarchived or given feedback in GuardDuty (from CloudTrail)\n", n)
	}
	return nil
}

// runQuery runs a query over the inputs: flow logs, or CloudTrail when
// the first input holds CloudTrail (each input is opened once). The
// inputs of one run are of one kind, as a Logs Insights query reads one
// kind of log group; an input of the other kind is skipped input.
func runQuery(r *reading, prog *query.Program, stderr io.Writer) (*query.Table, error) {
	inputs := slices.Clone(r.inputs)
	isTrail := false
	if len(inputs) > 0 && inputs[0].Name != "-" {
		ok, first, err := trail.Sniff(r.ctx, inputs[0])
		if err == nil {
			isTrail, inputs[0] = ok, first
		}
	}
	if !isTrail {
		for _, w := range prog.Warnings() {
			fmt.Fprintln(stderr, "flowguard: warning:", w)
		}
		inputs = trail.Divert(inputs, func(ctx context.Context, in flowlog.Input) error {
			rc, err := in.Open(ctx)
			if err == nil {
				rc.Close()
			}
			r.scanner.Errors.Skip(&flowlog.LineError{Source: in.Name, Msg: "CloudTrail among flow logs: query the two kinds of logs in separate runs"})
			return nil
		})
		return prog.Run(r.ctx, r.scanner, inputs)
	}
	return prog.RunRecords(r.ctx, &trail.Records{Inputs: inputs, Errors: r.scanner.Errors})
}
