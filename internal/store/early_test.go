package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
)

// TestRetractAndEarly: a stream's early finding withdrawn (Retract) is
// deleted with its pending response when no other stream holds it, and
// falls back to the other streams' counts when one does; the set of
// early findings is saved with the commit and read back.
func TestRetractAndEarly(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	f := scan("198.51.100.23", "10.0.1.10", 30, []uint16{22}, t0, t0.Add(time.Minute), map[string]any{"rejected": 30})
	g := scan("198.51.100.24", "10.0.1.10", 7, []uint16{22}, t0, t0.Add(time.Minute), map[string]any{"rejected": 7})
	if _, err := s.CommitStream(ctx, StreamCommit{Stream: "serve", Findings: []finding.Finding{f, g}, Respond: true, Early: []string{f.ID, g.ID}}); err != nil {
		t.Fatal(err)
	}
	other := g
	other.Count = 3
	if _, err := s.CommitStream(ctx, StreamCommit{Stream: "detect:x", Findings: []finding.Finding{other}}); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.LoadEarly(ctx, "serve"); err != nil || !slices.Equal(ids, slices.Sorted(slices.Values([]string{f.ID, g.ID}))) {
		t.Fatalf("early: %v, %v", ids, err)
	}
	res, err := s.CommitStream(ctx, StreamCommit{Stream: "serve", Retract: []string{f.ID, g.ID}, Early: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 1 {
		t.Errorf("removed %d, want 1 (the finding no other stream holds)", res.Removed)
	}
	if _, err := s.GetFinding(ctx, f.ID); err == nil {
		t.Error("the withdrawn finding is still there")
	}
	if got, err := s.GetFinding(ctx, g.ID); err != nil || got.Count != 3 {
		t.Errorf("the finding another stream holds: %+v, %v; want count 3", got, err)
	}
	pend, err := s.PendingResponses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rows int
	s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM respond_pending WHERE finding_id = ?`, f.ID).Scan(&rows)
	if rows != 0 {
		t.Errorf("%d pending responses left for the deleted finding (%d pending in all)", rows, len(pend))
	}
	if ids, err := s.LoadEarly(ctx, "serve"); err != nil || len(ids) != 0 {
		t.Errorf("early after emptying: %v, %v", ids, err)
	}
}
