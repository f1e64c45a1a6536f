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

// splitTrail separates, by their first bytes, the inputs that hold
// CloudTrail or EventBridge JSON (CloudTrail records, GuardDuty findings)
// from the flow logs. Standard input is read once: it stays a flow log.
func splitTrail(ctx context.Context, inputs []flowlog.Input) (flows, trails []flowlog.Input) {
	for _, in := range inputs {
		if in.Name != "-" {
			if ok, err := cloudtrail.SniffInput(ctx, in); err == nil && ok {
				trails = append(trails, in)
				continue
			}
		}
		flows = append(flows, in)
	}
	return flows, trails
}

// trailRun is what the CloudTrail and GuardDuty inputs gave.
type trailRun struct {
	results []*detect.Result
	changes []cloudtrail.GuardDutyChange
}

// trailOptions derives the CloudTrail detections' settings from the
// configuration, joined with this run's flow findings.
func trailOptions(cfg *config.Config, flows []*detect.Result) cloudtrail.Options {
	o := trail.Options(cfg)
	o.Attackers = map[netip.Addr][]finding.Finding{}
	for _, r := range flows {
		if cloudtrail.IsAttack(&r.Finding) {
			o.Attackers[r.Actor.IP] = append(o.Attackers[r.Actor.IP], r.Finding)
		}
	}
	return o
}

// detectTrail reads the CloudTrail and GuardDuty inputs: CloudTrail
// records go through the CloudTrail detections (joined with the flow
// findings), GuardDuty findings are taken as they are.
func detectTrail(ctx context.Context, cfg *config.Config, trails []flowlog.Input, flows []*detect.Result, errs flowlog.ErrorSink) (*trailRun, error) {
	run := &trailRun{}
	if len(trails) == 0 {
		return run, nil
	}
	d := cloudtrail.New(trailOptions(cfg, flows))
	gd := map[string]*detect.Result{}
	rd := trail.Reader(d, errs, func(f finding.Finding) {
		// The latest update of a GuardDuty finding wins.
		if old := gd[f.ID]; old == nil || !f.LastSeen.Before(old.LastSeen) {
			gd[f.ID] = &detect.Result{Finding: f, Rule: "GuardDuty finding"}
		}
	})
	for _, in := range trails {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		if err := rd.ReadInput(ctx, in); err != nil {
			return nil, fmt.Errorf("%s: %w", in.Name, err)
		}
	}
	for _, f := range d.Findings() {
		run.results = append(run.results, &detect.Result{Finding: f, Rule: "CloudTrail: " + f.Type})
	}
	for _, id := range slices.Sorted(maps.Keys(gd)) {
		run.results = append(run.results, gd[id])
	}
	run.changes = d.Changes
	return run, nil
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
