package lambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
	"github.com/flowguard/flowguard/internal/synth"
)

// newHandler is a handler on a fresh SQLite store (the store contract says
// it behaves as DynamoDB does) and the default configuration.
func newHandler(t *testing.T) (*Handler, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "fg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg, err := config.Parse([]byte("home_networks: [10.0.0.0/16, 2600:1f18:abc::/56]\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return &Handler{Store: st, Config: cfg, Window: 24 * time.Hour}, st
}

// attackLines are flow log lines holding labelled attacks.
func attackLines(t testing.TB) []byte {
	t.Helper()
	cfg := synth.DefaultConfig()
	cfg.Records, cfg.Seed = 8000, 3
	var buf bytes.Buffer
	if err := synth.New(cfg).WriteText(&buf, false); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func halves(b []byte) [2][]byte {
	lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
	return [2][]byte{[]byte(strings.Join(lines[:len(lines)/2], "")), []byte(strings.Join(lines[len(lines)/2:], ""))}
}

func invoke(t *testing.T, h *Handler, ev any) any {
	t.Helper()
	b, _ := json.Marshal(ev)
	out, err := h.Invoke(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func findingCount(t *testing.T, st *store.Store) (int, int64) {
	t.Helper()
	fs, err := st.ListFindings(context.Background(), finding.Filter{Archived: finding.AnyArchived})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range fs {
		n += f.Count
	}
	return len(fs), n
}

// TestKinesisBatch: a Kinesis batch of flow log lines (as put by an agent)
// is counted, a record that is not a subscription payload nor text is
// reported by its sequence number, and the same batch again changes
// nothing.
func TestKinesisBatch(t *testing.T) {
	h, st := newHandler(t)
	parts := halves(attackLines(t))
	rec := func(seq string, data []byte) map[string]any {
		return map[string]any{"eventSource": "aws:kinesis", "kinesis": map[string]any{
			"data": base64.StdEncoding.EncodeToString(data), "sequenceNumber": seq, "approximateArrivalTimestamp": 1.7e9}}
	}
	bad := append([]byte{0x1f, 0x8b}, "not gzip"...)
	ev := map[string]any{"Records": []any{rec("1", parts[0]), rec("2", bad), rec("3", parts[1])}}
	out := invoke(t, h, ev).(BatchResponse)
	if len(out.BatchItemFailures) != 1 || out.BatchItemFailures[0].ItemIdentifier != "2" {
		t.Fatalf("batchItemFailures %+v, want only record 2", out.BatchItemFailures)
	}
	n, count := findingCount(t, st)
	if n == 0 {
		t.Fatal("no finding from a batch of attack traffic")
	}
	invoke(t, h, ev)
	if n2, count2 := findingCount(t, st); n2 != n || count2 != count {
		t.Fatalf("the same batch again: %d findings (count %d), before %d (%d)", n2, count2, n, count)
	}
}

// TestFirehoseTransformation: each record is passed on unchanged (Ok),
// or ProcessingFailed when it cannot be read, and the records are counted.
func TestFirehoseTransformation(t *testing.T) {
	h, st := newHandler(t)
	lines := attackLines(t)
	ev := map[string]any{"invocationId": "inv-1", "deliveryStreamArn": "arn:aws:firehose:us-east-1:1:deliverystream/fl",
		"records": []any{
			map[string]any{"recordId": "r1", "data": base64.StdEncoding.EncodeToString(lines), "approximateArrivalTimestamp": 1700000000000},
			map[string]any{"recordId": "r2", "data": base64.StdEncoding.EncodeToString([]byte{0x1f, 0x8b, 1}), "approximateArrivalTimestamp": 1700000000000},
		}}
	out := invoke(t, h, ev).(FirehoseResponse)
	if len(out.Records) != 2 || out.Records[0].Result != "Ok" || out.Records[1].Result != "ProcessingFailed" {
		for _, r := range out.Records {
			t.Errorf("record %s: %s", r.RecordID, r.Result)
		}
		t.FailNow()
	}
	if out.Records[0].Data != base64.StdEncoding.EncodeToString(lines) {
		t.Error("an Ok record's data was changed")
	}
	if n, _ := findingCount(t, st); n == 0 {
		t.Fatal("no finding from the Firehose records")
	}
}

// TestBadEvents: what is not an event the function takes is an error
// naming what it expected, never a panic.
func TestBadEvents(t *testing.T) {
	h, _ := newHandler(t)
	for _, ev := range []string{`[]`, `{}`, `{"Records":[{"eventSource":"aws:dynamodb"}]}`, `{"source":"aws.events","time":"yesterday"}`,
		`{"awslogs":{"data":"bm90IGd6aXA="}}`, `{"Records":[{"eventSource":"aws:s3","eventTime":"x","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`} {
		if _, err := h.Invoke(context.Background(), json.RawMessage(ev)); err == nil {
			t.Errorf("%s: no error", ev)
		}
	}
	if _, err := h.Invoke(context.Background(), json.RawMessage(`{"source":"aws.events","detail-type":"Scheduled Event","time":"2026-11-22T10:00:00Z"}`)); err == nil || !strings.Contains(err.Error(), "FLOWGUARD_SCAN") {
		t.Errorf("a schedule with nothing to scan: %v", err)
	}
}
