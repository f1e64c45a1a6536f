package store

import (
	"context"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/finding"
)

// TestCommitStreamIdempotent: writing a stream's state twice, as a replay
// after a crash or a second detect over the same files does, leaves the
// counts as they were; another stream adds to them; a stream whose inputs
// cover an earlier one's replaces it.
func TestCommitStreamIdempotent(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	f := scan("198.51.100.23", "10.0.1.10", 30, []uint16{22}, t0, t0.Add(time.Minute), map[string]any{"rejected": 30})
	commit := func(stream string, count int64, inputs []StreamInput) CommitResult {
		t.Helper()
		g := f
		g.Count = count
		res, err := s.CommitStream(ctx, StreamCommit{Stream: stream, Findings: []finding.Finding{g}, Inputs: inputs,
			Positions: []Position{{Source: "local", Object: "1:2:ab", Token: "100"}}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	count := func() int64 {
		t.Helper()
		got, err := s.GetFinding(ctx, f.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Count
	}
	a := []StreamInput{{Identity: "a", Size: 100}}
	if r := commit("detect:a", 30, a); r.Created != 1 {
		t.Fatalf("first commit: %+v", r)
	}
	if r := commit("detect:a", 30, a); r.Unchanged != 1 || r.Updated != 0 || count() != 30 {
		t.Fatalf("same stream again: %+v, count %d; want unchanged 30", r, count())
	}
	commit("detect:b", 5, []StreamInput{{Identity: "b", Size: 10}})
	if c := count(); c != 35 {
		t.Fatalf("second stream: count %d, want 35", c)
	}
	// a and b grown: covers both earlier streams, which are dropped.
	r := commit("detect:ab", 40, []StreamInput{{Identity: "a", Size: 120}, {Identity: "b", Size: 10}})
	if r.Superseded != 2 || count() != 40 {
		t.Fatalf("covering stream: %+v, count %d; want 2 superseded, count 40", r, count())
	}
	ps, err := s.LoadPositions(ctx, "local")
	if err != nil || len(ps) != 1 || ps[0].Token != "100" {
		t.Fatalf("positions: %+v, %v", ps, err)
	}
}

// TestCommitStreamLegacy: a finding recorded by the old adding upsert
// keeps its count as a contribution of its own.
func TestCommitStreamLegacy(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	f := scan("198.51.100.23", "10.0.1.10", 30, nil, t0, t0.Add(time.Minute), nil)
	if _, _, err := s.UpsertFindings(ctx, []finding.Finding{f}); err != nil {
		t.Fatal(err)
	}
	g := f
	g.Count = 7
	for range 2 {
		if _, err := s.CommitStream(ctx, StreamCommit{Stream: "serve", Findings: []finding.Finding{g}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetFinding(ctx, f.ID)
	if err != nil || got.Count != 37 {
		t.Fatalf("count %d (%v), want 30 + 7", got.Count, err)
	}
}

// TestPendingResponses: changed findings and alarm changes are queued in
// the commit's transaction, read back until answered, and an entry
// queued again while being answered stays.
func TestPendingResponses(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	f := scan("198.51.100.23", "10.0.1.10", 30, nil, t0, t0.Add(time.Minute), nil)
	ch := alarm.StateChange{Alarm: "reject-spike", From: alarm.StateOK, To: alarm.StateAlarm, Time: t0}
	if _, err := s.CommitStream(ctx, StreamCommit{Stream: "serve", Findings: []finding.Finding{f}, Respond: true, AlarmChanges: []alarm.StateChange{ch}}); err != nil {
		t.Fatal(err)
	}
	pend, err := s.PendingResponses(ctx)
	if err != nil || len(pend) != 2 {
		t.Fatalf("pending: %d, %v; want a finding and an alarm change", len(pend), err)
	}
	var sawFinding, sawAlarm bool
	for _, p := range pend {
		sawFinding = sawFinding || p.Finding != nil && p.Finding.ID == f.ID && !p.Updated
		sawAlarm = sawAlarm || p.Alarm != nil && p.Alarm.Alarm == "reject-spike" && p.Alarm.To == alarm.StateAlarm
	}
	if !sawFinding || !sawAlarm {
		t.Fatalf("pending: %+v", pend)
	}
	// The finding changes again before the answer is recorded: it stays.
	time.Sleep(time.Millisecond)
	g := f
	g.Count = 31
	if _, err := s.CommitStream(ctx, StreamCommit{Stream: "serve", Findings: []finding.Finding{g}, Respond: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.DonePending(ctx, pend); err != nil {
		t.Fatal(err)
	}
	left, err := s.PendingResponses(ctx)
	// Still new to the pipeline, which has not answered it yet.
	if err != nil || len(left) != 1 || left[0].Finding == nil || left[0].Updated || left[0].Finding.Count != 31 {
		t.Fatalf("left: %+v, %v; want the finding changed since, still new", left, err)
	}
}
