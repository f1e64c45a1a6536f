package main

import (
	"context"
	"fmt"
	"github.com/aws/aws-sdk-go-v2/aws"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/flowguard/flowguard/internal/awsmetrics"
	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/respond/notify"
	"github.com/flowguard/flowguard/internal/store"
)

// buildPipeline assembles the response pipeline a configuration describes:
// guards over the home networks, allow-list and AWS's ranges, the enabled
// blockers and notifiers on the SDK's default credential chain, and the
// message templates.
func buildPipeline(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*respond.Pipeline, error) {
	return buildPipelineWith(ctx, cfg, st, log, responseBlockers)
}

// buildPipelineWith is buildPipeline with the blockers that blockers
// makes (the demo's are simulated).
// st is the SQLite store, or the DynamoDB store of flowguard lambda.
func buildPipelineWith(ctx context.Context, cfg *config.Config, st store.Responses, log *slog.Logger,
	blockers func(aws.Config, *respond.Config) []respond.Planner) (*respond.Pipeline, error) {
	if cfg.Response == nil {
		return nil, fmt.Errorf("%s has no response: section (see docs/response.md)", cfg.Path)
	}
	rc := cfg.Response
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot load AWS credentials: %w", err)
	}
	awsmetrics.Attach(&awsCfg)
	var ranges *respond.AWSRanges
	if rc.AWSIPRanges != "" {
		if ranges, err = respond.LoadAWSRanges(rc.AWSIPRanges); err != nil {
			return nil, err
		}
	}
	guards, err := respond.NewGuards(rc, config.Prefixes(cfg.HomeNetworks), config.Prefixes(cfg.Allowlist), ranges)
	if err != nil {
		return nil, err
	}
	opts := respond.Options{}
	var notifiers []respond.Notifier
	if cfg.Notify != nil {
		ns, tm, err := notify.Build(cfg.Notify, awsCfg, notify.Options{Logger: log, Language: cfg.Notify.Language})
		if err != nil {
			return nil, err
		}
		notifiers = ns
		link := cfg.Notify.DashboardURL
		opts.Render = func(events []respond.Event, outs []respond.Outcome, dryRun bool) (respond.Message, error) {
			acts := make([]notify.Action, len(outs))
			for i, o := range outs {
				acts[i] = notify.Action{FindingID: o.FindingID, Kind: notify.ActionKind(o.Kind), Prefix: o.Prefix,
					Target: o.Target, Expires: o.Expires, Reason: o.Reason}
			}
			return tm.Render(notify.Data{Events: events, Actions: acts, DryRun: dryRun, Link: link, Now: time.Now()})
		}
	}
	return respond.New(rc, st, guards, blockers(awsCfg, rc), notifiers, opts)
}

// respondTo runs findings through the pipeline.
func respondTo(ctx context.Context, w io.Writer, pl *respond.Pipeline, fs []finding.Finding) error {
	events := make([]respond.Event, len(fs))
	for i := range fs {
		events[i] = respond.Event{Finding: &fs[i]}
	}
	return respondEvents(ctx, w, pl, events)
}

// respondEvents runs events through the pipeline: first what earlier runs
// left (pending blocks, due expiries, queued messages), then the events.
// A responder that failed (AWS unreachable) does not stop the others; the
// run then ends with exit code 3 (exitResponderFailed).
func respondEvents(ctx context.Context, w io.Writer, pl *respond.Pipeline, events []respond.Event) error {
	start, err := pl.Start(ctx)
	if err != nil {
		writeReport(w, start)
		return fmt.Errorf("cannot resume earlier work: %w", err)
	}
	rep, err := pl.Handle(ctx, events)
	writeReport(w, start)
	writeReport(w, rep)
	if err != nil {
		return err
	}
	return responderFailed(start, rep)
}

// exitResponderFailed is the exit code of a run in which a responder
// failed: the findings were recorded and the rest of the response went
// on, but something was not blocked or removed (the next run retries).
const exitResponderFailed = 3

// responderFailed returns an exitError with exitResponderFailed when any
// report names a failed responder.
func responderFailed(reps ...respond.Report) error {
	var names []string
	for _, r := range reps {
		for _, f := range r.Failures {
			if !slices.Contains(names, f.Responder) {
				names = append(names, f.Responder)
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	return exitError{code: exitResponderFailed, msg: fmt.Sprintf("responder(s) failed: %s; the findings are recorded, the rest of the response went on, and the next run tries again (see flowguard audit)", strings.Join(names, ", "))}
}

// writeReport prints one line per action taken or refused.
func writeReport(w io.Writer, rep respond.Report) {
	for _, o := range rep.Outcomes {
		line := fmt.Sprintf("flowguard: %s %s", o.Kind, o.Prefix)
		if o.Target != "" {
			line += " on " + o.Target
		}
		if !o.Expires.IsZero() {
			line += " until " + o.Expires.UTC().Format(time.RFC3339)
		}
		if o.Guard != "" {
			line += " (" + o.Guard + ")"
		}
		if o.Reason != "" {
			line += ": " + o.Reason
		}
		fmt.Fprintln(w, line)
	}
	if rep.Notified > 0 || rep.Queued > 0 {
		fmt.Fprintf(w, "flowguard: %d message(s) sent, %d queued for a later run\n", rep.Notified, rep.Queued)
	}
	for _, f := range rep.Failures {
		fmt.Fprintf(w, "flowguard: responder %s failed: %s\n", f.Responder, f.Error)
	}
	if rep.Reconciled > 0 {
		fmt.Fprintf(w, "flowguard: %d block(s) were removed outside flowguard; marked gone\n", rep.Reconciled)
	}
}
