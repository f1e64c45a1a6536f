// Package lambda is flowguard as an AWS Lambda function (flowguard lambda,
// the binary named bootstrap on the provided.al2023 runtime). It takes the
// events that bring flow logs to a function: S3 ObjectCreated events
// (direct, or wrapped in SQS or SNS messages), CloudWatch Logs subscription
// events, Kinesis batches, Firehose transformation batches, and an
// EventBridge schedule that scans the last minutes of S3 prefixes and log
// groups. State lives in a store.Detections (DynamoDB in AWS).
//
// # Windows
//
// Invocations share no memory, and several run at once on different
// objects of the same minutes. Each input (an S3 object, a subscription
// payload) goes to the detection window of its time (Handler.Window long):
// the invocation adds it to the window in the store
// (store.Detections.AddWindowInput, which counts a version up), then runs
// detection over every input the window holds and commits the findings as
// the window's stream at that version (StreamCommit.Version). The commit
// of the invocation that saw the most inputs wins, whatever the order they
// finish in, so that the window's findings are those one process reading
// all its inputs finds. An input added twice (SQS and S3 deliver at least
// once) is one input.
//
// # Responses
//
// With a Responder (the response pipeline, its state in the same store),
// each invocation then runs the findings its commits created or changed
// through the routes, guards, blockers and notifiers, after completing
// what earlier invocations left (pending blocks, due expiries, queued
// notifications). Two invocations that commit the same finding at once
// both hand it to the pipeline: the store's block claims and notification
// log make one block and one message of it.
//
// # Alarms
//
// The configuration's metric filters and alarms are evaluated by the
// engine serve and alarms run use, their progress and states in the
// store's alarm clock, saved with a compare-and-swap (alarms.go): alarm
// state changes, made once across invocations, go through the same
// response pipeline.
package lambda

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/klauspost/compress/gzip"

	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/flowguard/flowguard/internal/store"
)

// Handler answers invocations. Its fields are set once, before the first.
type Handler struct {
	Store  store.Detections
	S3     *s3.Client
	Logs   *cloudwatchlogs.Client
	Config *config.Config
	// Window is the length of a detection window (default 10 minutes).
	Window time.Duration
	// Keep is how long a window's inputs are kept, beyond one window
	// length after the last input arrived, for inputs that arrive late
	// (default 24 hours; a DynamoDB TTL).
	Keep time.Duration
	// Scan are what a scheduled event scans: s3://bucket/prefix and
	// logs:LOG-GROUP entries.
	Scan []string
	// ScanLast is how far back a scheduled scan looks (default 15
	// minutes).
	ScanLast time.Duration
	// Respond, when set, runs the findings each invocation's commits
	// created or changed through the response pipeline.
	Respond Responder
	Log     *slog.Logger
}

// Responder is the response pipeline as the handler runs it
// (*respond.Pipeline).
type Responder interface {
	// Start completes what earlier runs left.
	Start(ctx context.Context) (respond.Report, error)
	// Handle routes, blocks and notifies events.
	Handle(ctx context.Context, events []respond.Event) (respond.Report, error)
}

// Stream names a window's stream in the store.
func Stream(window string) string { return "lambda:" + window }

// maxItemData bounds the data of one window input: a DynamoDB item holds
// 400 KB.
const maxItemData = 350 << 10

func (h *Handler) window() time.Duration {
	if h.Window <= 0 {
		return 10 * time.Minute
	}
	return h.Window
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

// input is one thing an event brings: an S3 object or a blob of records,
// with the time that picks its window and the id the trigger retries it
// by (an SQS message id, a Kinesis sequence number, a Firehose record id).
type input struct {
	item   string
	at     time.Time
	bucket string
	key    string
	data   []byte
	ref    string
}

// BatchItemFailure names an SQS message or Kinesis record to retry.
type BatchItemFailure struct {
	ItemIdentifier string `json:"itemIdentifier"`
}

// BatchResponse is the partial batch response of SQS and Kinesis event
// source mappings (ReportBatchItemFailures).
type BatchResponse struct {
	BatchItemFailures []BatchItemFailure `json:"batchItemFailures"`
}

// FirehoseRecord is one record of a Firehose transformation answer.
type FirehoseRecord struct {
	RecordID string `json:"recordId"`
	Result   string `json:"result"` // Ok, Dropped, ProcessingFailed
	Data     string `json:"data"`
}

// FirehoseResponse answers a Firehose transformation batch.
type FirehoseResponse struct {
	Records []FirehoseRecord `json:"records"`
}

// Summary is the answer to an S3, SNS, CloudWatch Logs or scheduled event.
type Summary struct {
	Inputs   int `json:"inputs"`
	Windows  int `json:"windows"`
	Created  int `json:"created"`
	Updated  int `json:"updated"`
	Findings int `json:"findings"`
	// Responded counts the findings handed to the response pipeline;
	// Actions what it did (blocks, dry-run blocks, refusals, removals);
	// Notified the messages it delivered.
	Responded int `json:"responded,omitempty"`
	Actions   int `json:"actions,omitempty"`
	Notified  int `json:"notified,omitempty"`
	// AlarmChanges counts the alarm state changes this invocation's
	// evaluation made (the alarms: section).
	AlarmChanges int `json:"alarm_changes,omitempty"`
}

// event is every shape the handler takes, decoded at once.
type event struct {
	Records []struct {
		EventSource  string `json:"eventSource"`
		EventSource2 string `json:"EventSource"`
		EventTime    string `json:"eventTime"`
		S3           *struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key string `json:"key"`
			} `json:"object"`
		} `json:"s3"`
		MessageID  string `json:"messageId"`
		Body       string `json:"body"`
		Attributes struct {
			SentTimestamp string `json:"SentTimestamp"`
		} `json:"attributes"`
		Sns *struct {
			Message   string `json:"Message"`
			Timestamp string `json:"Timestamp"`
		} `json:"Sns"`
		Kinesis *struct {
			Data                        []byte  `json:"data"`
			SequenceNumber              string  `json:"sequenceNumber"`
			ApproximateArrivalTimestamp float64 `json:"approximateArrivalTimestamp"`
		} `json:"kinesis"`
	} `json:"Records"`
	// Firehose transformation.
	InvocationID string `json:"invocationId"`
	FRecords     []struct {
		RecordID                    string `json:"recordId"`
		Data                        []byte `json:"data"`
		ApproximateArrivalTimestamp int64  `json:"approximateArrivalTimestamp"`
	} `json:"records"`
	// CloudWatch Logs subscription.
	AWSLogs *struct {
		Data []byte `json:"data"`
	} `json:"awslogs"`
	// EventBridge.
	Source     string `json:"source"`
	DetailType string `json:"detail-type"`
	Time       string `json:"time"`
}

// Invoke answers one invocation: payload is the event as Lambda delivers
// it. A bad event is an error (Lambda retries it, then gives it to the
// function's dead-letter destination); one bad message of an SQS or
// Kinesis batch is reported in the batch response, so that only it is
// retried.
func (h *Handler) Invoke(ctx context.Context, payload json.RawMessage) (any, error) {
	var ev event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("not an event flowguard takes: %w", err)
	}
	switch {
	case ev.AWSLogs != nil:
		sub, err := source.ParseSubscription(ev.AWSLogs.Data)
		if err != nil {
			return nil, fmt.Errorf("CloudWatch Logs event: %w", err)
		}
		if sub.MessageType == "CONTROL_MESSAGE" {
			return Summary{}, nil // CloudWatch Logs checking the function is there
		}
		in, err := blobInput("", ev.AWSLogs.Data, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("CloudWatch Logs event: %w", err)
		}
		return h.runAll(ctx, []input{in})
	case ev.InvocationID != "" && ev.FRecords != nil:
		return h.firehose(ctx, &ev)
	case ev.Source == "aws.events" || ev.DetailType == "Scheduled Event":
		at, err := time.Parse(time.RFC3339, ev.Time)
		if err != nil {
			return nil, fmt.Errorf("scheduled event: bad time %q: %w", ev.Time, err)
		}
		return h.scan(ctx, at)
	case len(ev.Records) > 0:
		return h.records(ctx, &ev)
	}
	return nil, errors.New("not an event flowguard takes: expected S3, SQS, SNS, Kinesis, Firehose, CloudWatch Logs or a scheduled event")
}

// records answers S3, SNS, SQS and Kinesis events.
func (h *Handler) records(ctx context.Context, ev *event) (any, error) {
	var ins []input
	var failed []BatchItemFailure
	batch := false
	for i, r := range ev.Records {
		src := r.EventSource + r.EventSource2
		switch {
		case src == "aws:sqs":
			batch = true
			got, err := s3Inputs([]byte(r.Body), r.MessageID)
			if err != nil {
				h.log().Warn("skipped an SQS message", "message", r.MessageID, "error", err)
				failed = append(failed, BatchItemFailure{r.MessageID})
				continue
			}
			ins = append(ins, got...)
		case src == "aws:kinesis" && r.Kinesis != nil:
			batch = true
			at := time.UnixMilli(int64(r.Kinesis.ApproximateArrivalTimestamp * 1000))
			in, err := blobInput(r.Kinesis.SequenceNumber, r.Kinesis.Data, at)
			if err != nil {
				h.log().Warn("skipped a Kinesis record", "sequence", r.Kinesis.SequenceNumber, "error", err)
				failed = append(failed, BatchItemFailure{r.Kinesis.SequenceNumber})
				continue
			}
			ins = append(ins, in)
		case src == "aws:sns" && r.Sns != nil:
			got, err := s3Inputs([]byte(r.Sns.Message), "")
			if err != nil {
				return nil, fmt.Errorf("SNS record %d: %w", i+1, err)
			}
			ins = append(ins, got...)
		case src == "aws:s3" && r.S3 != nil:
			in, err := s3Input(r.S3.Bucket.Name, r.S3.Object.Key, r.EventTime, "")
			if err != nil {
				return nil, fmt.Errorf("S3 record %d: %w", i+1, err)
			}
			ins = append(ins, in)
		default:
			return nil, fmt.Errorf("record %d: event source %q is not one flowguard takes", i+1, src)
		}
	}
	sum, fails, err := h.run(ctx, ins)
	if !batch {
		if err != nil {
			return nil, err
		}
		return sum, nil
	}
	if err != nil {
		return nil, err
	}
	failed = append(failed, fails...)
	slices.SortFunc(failed, func(a, b BatchItemFailure) int { return strings.Compare(a.ItemIdentifier, b.ItemIdentifier) })
	return BatchResponse{BatchItemFailures: slices.Compact(failed)}, nil
}

// s3Inputs reads the S3 objects of a message body: an S3 event
// notification, or an SNS notification carrying one (SNS to SQS without
// raw delivery). S3's test event names no object.
func s3Inputs(body []byte, item string) ([]input, error) {
	var sns struct {
		Type    string `json:"Type"`
		Message string `json:"Message"`
	}
	if json.Unmarshal(body, &sns) == nil && sns.Type == "Notification" {
		body = []byte(sns.Message)
	}
	var n struct {
		Event   string `json:"Event"`
		Records []struct {
			EventSource string `json:"eventSource"`
			EventName   string `json:"eventName"`
			EventTime   string `json:"eventTime"`
			S3          struct {
				Bucket struct {
					Name string `json:"name"`
				} `json:"bucket"`
				Object struct {
					Key string `json:"key"`
				} `json:"object"`
			} `json:"s3"`
		} `json:"Records"`
	}
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, fmt.Errorf("not an S3 event notification: %w", err)
	}
	if n.Event == "s3:TestEvent" {
		return nil, nil
	}
	if len(n.Records) == 0 {
		return nil, errors.New("not an S3 event notification: no Records")
	}
	var out []input
	for _, r := range n.Records {
		if r.EventSource != "aws:s3" {
			return nil, fmt.Errorf("not an S3 event notification: eventSource %q", r.EventSource)
		}
		if !strings.HasPrefix(r.EventName, "ObjectCreated:") {
			continue
		}
		in, err := s3Input(r.S3.Bucket.Name, r.S3.Object.Key, r.EventTime, item)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

// s3Input is an S3 object of an event: its key is URL-encoded there.
func s3Input(bucket, key, eventTime, item string) (input, error) {
	k, err := url.QueryUnescape(key)
	if err != nil {
		return input{}, fmt.Errorf("object key %q: %w", key, err)
	}
	at, err := time.Parse(time.RFC3339Nano, eventTime)
	if err != nil {
		return input{}, fmt.Errorf("s3://%s/%s: bad eventTime %q", bucket, k, eventTime)
	}
	if bucket == "" || k == "" {
		return input{}, errors.New("an S3 record without a bucket or key")
	}
	return input{item: item, at: at, bucket: bucket, key: k, ref: "s3://" + bucket + "/" + k}, nil
}

// blobInput is a blob of records (a subscription payload, flow log
// lines), checked with the sources' decoder; its window is its newest
// event's time, else at.
func blobInput(item string, data []byte, at time.Time) (input, error) {
	lines, newest, err := source.RecordLines(nil, data)
	if err != nil {
		return input{}, err
	}
	if newest > 0 {
		at = time.UnixMilli(newest)
	}
	if at.IsZero() {
		return input{}, errors.New("records without a time")
	}
	if len(data) > 0 && data[0] != 0x1f {
		// Plain lines (put by an agent): stored compressed, in the
		// shape of a subscription payload, which the same decoder reads.
		var evs []logEvent
		for l := range bytes.Lines(lines) {
			evs = append(evs, logEvent{Timestamp: at.UnixMilli(), Message: string(bytes.TrimSuffix(l, []byte("\n")))})
		}
		if data, err = payload("", evs); err != nil {
			return input{}, err
		}
	}
	if len(data) > maxItemData {
		return input{}, fmt.Errorf("a blob of %d bytes is more than the %d a window input holds", len(data), maxItemData)
	}
	// The ref starts with the time, so that a window reads its blobs in
	// time order, and ends with a hash of the data, so that a blob
	// delivered twice is one input.
	sum := sha256.Sum256(data)
	return input{item: item, at: at, data: data, ref: "blob:" + at.UTC().Format("20060102T150405.000Z") + ":" + hex.EncodeToString(sum[:16])}, nil
}

// firehose answers a Firehose transformation batch: every record is
// passed on unchanged (Ok), or ProcessingFailed when it cannot be read.
func (h *Handler) firehose(ctx context.Context, ev *event) (any, error) {
	resp := FirehoseResponse{}
	var ins []input
	bad := map[string]bool{}
	for _, r := range ev.FRecords {
		in, err := blobInput(r.RecordID, r.Data, time.UnixMilli(r.ApproximateArrivalTimestamp))
		if err != nil {
			h.log().Warn("cannot read a Firehose record", "record", r.RecordID, "error", err)
			bad[r.RecordID] = true
			continue
		}
		ins = append(ins, in)
	}
	_, fails, err := h.run(ctx, ins)
	if err != nil {
		return nil, err
	}
	for _, f := range fails {
		bad[f.ItemIdentifier] = true
	}
	for _, r := range ev.FRecords {
		res := "Ok"
		if bad[r.RecordID] {
			res = "ProcessingFailed"
		}
		resp.Records = append(resp.Records, FirehoseRecord{RecordID: r.RecordID, Result: res, Data: base64.StdEncoding.EncodeToString(r.Data)})
	}
	return resp, nil
}

// runAll runs inputs and fails when any fails.
func (h *Handler) runAll(ctx context.Context, ins []input) (any, error) {
	sum, fails, err := h.run(ctx, ins)
	if err == nil && len(fails) > 0 {
		err = fmt.Errorf("%d input(s) failed; see the log", len(fails))
	}
	if err != nil {
		return nil, err
	}
	return sum, nil
}

// run adds each input to its window, then runs detection once per window
// touched. An input whose window fails is returned as a failure by its
// item (all of them when the inputs have no item ids: the caller fails the
// invocation).
func (h *Handler) run(ctx context.Context, ins []input) (Summary, []BatchItemFailure, error) {
	var sum Summary
	var failed []BatchItemFailure
	fail := func(in input, err error) {
		h.log().Error("input failed", "input", in.ref, "error", err)
		failed = append(failed, BatchItemFailure{in.item})
	}
	latest := map[string]store.Window{}
	members := map[string][]input{}
	for _, in := range ins {
		if in.bucket != "" {
			// Check the object exists before it joins a window, where
			// every later invocation would read it.
			if _, err := h.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(in.bucket), Key: aws.String(in.key)}); err != nil {
				if in.item == "" {
					return sum, nil, fmt.Errorf("cannot read %s: %w", in.ref, err)
				}
				fail(in, fmt.Errorf("cannot read %s: %w", in.ref, err))
				continue
			}
		}
		name := in.at.UTC().Truncate(h.window()).Format(time.RFC3339)
		keep := h.Keep
		if keep <= 0 {
			keep = 24 * time.Hour
		}
		w, err := h.Store.AddWindowInput(ctx, name, store.WindowInput{Ref: in.ref, Data: in.data,
			Expires: time.Now().Add(h.window() + keep)})
		if err != nil {
			if in.item == "" {
				return sum, nil, err
			}
			fail(in, err)
			continue
		}
		sum.Inputs++
		if w.Version > latest[name].Version {
			latest[name] = w
		}
		members[name] = append(members[name], in)
	}
	var events []respond.Event
	names := make([]string, 0, len(latest))
	for name := range latest {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		res, err := h.detect(ctx, latest[name])
		if err != nil {
			if members[name][0].item == "" {
				return sum, nil, fmt.Errorf("window %s: %w", name, err)
			}
			for _, in := range members[name] {
				fail(in, fmt.Errorf("window %s: %w", name, err))
			}
			continue
		}
		sum.Windows++
		sum.Created += res.Created
		sum.Updated += res.Updated
		sum.Findings += res.Created + res.Updated + res.Unchanged
		for i := range res.Changed {
			f := &res.Changed[i]
			events = append(events, respond.Event{Finding: f, Updated: !slices.Contains(res.New, f.ID)})
		}
	}
	run, err := h.alarms(ctx, names)
	if err != nil {
		// The findings are committed; the next invocation evaluates
		// the alarms from where the clock stands.
		h.log().Error("cannot evaluate the alarms; the next invocation resumes them", "error", err)
	}
	sum.AlarmChanges = len(run.changes)
	for i := range run.clock.Pending {
		events = append(events, respond.Event{Alarm: &run.clock.Pending[i]})
	}
	if h.respond(ctx, events, &sum) {
		h.donePending(ctx, run.clock)
	}
	return sum, failed, nil
}

// respond runs the pipeline: what earlier invocations left, then events,
// and reports whether the pipeline took the events. A failure is logged,
// not returned: the findings are committed, and the pipeline's work is in
// the store (pending rows, the outbox, the alarm clock's pending changes),
// for the next invocation to complete; failing the invocation would only
// make Lambda run detection again.
func (h *Handler) respond(ctx context.Context, events []respond.Event, sum *Summary) bool {
	if h.Respond == nil {
		return false
	}
	report := func(what string, rep respond.Report, err error) {
		for _, o := range rep.Outcomes {
			h.log().Info("response", "kind", o.Kind, "prefix", o.Prefix, "target", o.Target, "finding", o.FindingID, "guard", o.Guard, "reason", o.Reason)
		}
		for _, f := range rep.Failures {
			h.log().Error("responder failed", "responder", f.Responder, "error", f.Error)
		}
		if err != nil {
			h.log().Error("the response pipeline failed; the next invocation resumes it", "step", what, "error", err)
		}
		sum.Actions += len(rep.Outcomes)
		sum.Notified += rep.Notified
	}
	rep, err := h.Respond.Start(ctx)
	report("start", rep, err)
	if len(events) == 0 {
		return true
	}
	rep, err = h.Respond.Handle(ctx, events)
	report("handle", rep, err)
	sum.Responded += len(events)
	return err == nil
}

// detect runs detection over every input of a window and commits the
// findings as the window's stream at the window's version.
func (h *Handler) detect(ctx context.Context, w store.Window) (store.CommitResult, error) {
	opts, err := h.Config.DetectOptions()
	if err != nil {
		return store.CommitResult{}, err
	}
	policy, err := h.Config.Config.Policy()
	if err != nil {
		return store.CommitResult{}, err
	}
	eng, err := detect.New(opts)
	if err != nil {
		return store.CommitResult{}, err
	}
	sink := &errLog{log: h.log()}
	var inputs []flowlog.Input
	for _, wi := range w.Inputs {
		inputs = append(inputs, h.open(wi, sink))
	}
	sc := &flowlog.Scanner{Workers: 1, Errors: sink}
	if err := eng.Run(ctx, sc, inputs); err != nil {
		return store.CommitResult{}, err
	}
	eng.Flush()
	fs := policy.Apply(eng.Findings())
	slices.SortFunc(fs, func(a, b finding.Finding) int { return strings.Compare(a.ID, b.ID) })
	res, err := h.Store.CommitStream(ctx, store.StreamCommit{Stream: Stream(w.Name), Version: w.Version, Findings: fs})
	if err != nil {
		return res, err
	}
	h.log().Info("window detected", "window", w.Name, "version", w.Version, "inputs", len(w.Inputs),
		"findings", len(fs), "created", res.Created, "updated", res.Updated, "stale", res.Stale, "bad_lines", sink.n)
	return res, nil
}

// open is a window input as the scanner reads it: an S3 object, or a
// blob decoded by the sources' decoder.
func (h *Handler) open(wi store.WindowInput, sink *errLog) flowlog.Input {
	if bucket, key, ok := strings.Cut(strings.TrimPrefix(wi.Ref, "s3://"), "/"); ok && strings.HasPrefix(wi.Ref, "s3://") {
		return flowlog.Input{Name: wi.Ref, Size: -1, Open: func(ctx context.Context) (io.ReadCloser, error) {
			out, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				var nk *s3types.NoSuchKey
				if errors.As(err, &nk) {
					// Deleted since it joined the window: the rest
					// of the window is still read.
					sink.Skip(&flowlog.LineError{Source: wi.Ref, Msg: "object deleted since it arrived; skipped"})
					return io.NopCloser(bytes.NewReader(nil)), nil
				}
				return nil, fmt.Errorf("cannot read %s: %w", wi.Ref, err)
			}
			return out.Body, nil
		}}
	}
	data := wi.Data
	return flowlog.Input{Name: wi.Ref, Size: -1, Open: func(context.Context) (io.ReadCloser, error) {
		lines, _, err := source.RecordLines(nil, data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", wi.Ref, err)
		}
		return io.NopCloser(bytes.NewReader(lines)), nil
	}}
}

// errLog logs the first bad lines of a run and counts them all.
type errLog struct {
	log *slog.Logger
	n   int
}

// Skip implements flowlog.ErrorSink.
func (e *errLog) Skip(le *flowlog.LineError) {
	e.n++
	if e.n <= 10 {
		e.log.Warn("skipped bad input", "at", le.Error())
	}
}

// scan answers a scheduled event: each S3 prefix's objects modified in the
// last ScanLast before at, and each log group's events of the same
// minutes, join their windows as if an event had brought them.
func (h *Handler) scan(ctx context.Context, at time.Time) (any, error) {
	last := h.ScanLast
	if last <= 0 {
		last = 15 * time.Minute
	}
	if len(h.Scan) == 0 {
		return nil, errors.New("a scheduled event, but nothing to scan: set FLOWGUARD_SCAN")
	}
	from := at.Add(-last)
	var ins []input
	for _, target := range h.Scan {
		switch {
		case strings.HasPrefix(target, "s3://"):
			got, err := h.scanS3(ctx, target, from, at)
			if err != nil {
				return nil, err
			}
			ins = append(ins, got...)
		case strings.HasPrefix(target, "logs:"):
			got, err := h.scanLogs(ctx, strings.TrimPrefix(target, "logs:"), from, at)
			if err != nil {
				return nil, err
			}
			ins = append(ins, got...)
		default:
			return nil, fmt.Errorf("scan target %q: use s3://bucket/prefix or logs:LOG-GROUP", target)
		}
	}
	return h.runAll(ctx, ins)
}

func (h *Handler) scanS3(ctx context.Context, target string, from, to time.Time) ([]input, error) {
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(target, "s3://"), "/")
	var out []input
	p := s3.NewListObjectsV2Paginator(h.S3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("cannot list %s: %w", target, err)
		}
		for _, o := range page.Contents {
			if o.LastModified == nil || o.LastModified.Before(from) || o.LastModified.After(to) {
				continue
			}
			k := aws.ToString(o.Key)
			out = append(out, input{at: *o.LastModified, bucket: bucket, key: k, ref: "s3://" + bucket + "/" + k})
		}
	}
	return out, nil
}

// logEvent is a log event in a subscription payload's shape.
type logEvent struct {
	ID        string `json:"id"`
	Timestamp int64  `json:"timestamp"`
	Message   string `json:"message"`
}

// scanLogs reads a log group's events between from (moved back to its
// window's start) and to into subscription payloads, one or more per
// window, whose refs name the group, the window and the part, so that a
// scan run again over the same minutes replaces them instead of adding
// them.
func (h *Handler) scanLogs(ctx context.Context, group string, from, to time.Time) ([]input, error) {
	from = from.Truncate(h.window())
	type part struct {
		events []logEvent
		size   int
	}
	parts := map[string][]*part{}
	p := cloudwatchlogs.NewFilterLogEventsPaginator(h.Logs, &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName: aws.String(group), StartTime: aws.Int64(from.UnixMilli()), EndTime: aws.Int64(to.UnixMilli())})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("cannot read log group %s: %w", group, err)
		}
		for _, e := range page.Events {
			w := time.UnixMilli(aws.ToInt64(e.Timestamp)).UTC().Truncate(h.window()).Format(time.RFC3339)
			ps := parts[w]
			if len(ps) == 0 || ps[len(ps)-1].size > maxItemData*3 {
				ps = append(ps, &part{})
				parts[w] = ps
			}
			last := ps[len(ps)-1]
			last.events = append(last.events, logEvent{ID: aws.ToString(e.EventId), Timestamp: aws.ToInt64(e.Timestamp), Message: aws.ToString(e.Message)})
			last.size += len(aws.ToString(e.Message))
		}
	}
	var out []input
	for w, ps := range parts {
		at, _ := time.Parse(time.RFC3339, w)
		for i, pt := range ps {
			z, err := payload(group, pt.events)
			if err != nil {
				return nil, err
			}
			if len(z) > maxItemData {
				return nil, fmt.Errorf("log group %s: %d events of window %s do not fit a window input (%d bytes compressed)", group, len(pt.events), w, len(z))
			}
			out = append(out, input{at: at, data: z, ref: "logs:" + group + "@" + w + "#" + strconv.Itoa(i)})
		}
	}
	return out, nil
}

// payload is a gzip subscription payload of events.
func payload(group string, events []logEvent) ([]byte, error) {
	js, err := json.Marshal(map[string]any{"messageType": "DATA_MESSAGE", "logGroup": group, "logEvents": events})
	if err != nil {
		return nil, err
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	if _, err := zw.Write(js); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return z.Bytes(), nil
}
