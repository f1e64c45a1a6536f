package store

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/flowguard/flowguard/internal/finding"
)

// TestEngineSnapshot: the snapshot is saved with the commit's positions,
// read back as written (compressed in between), replaced by the next one,
// and not saved when its commit fails; DropSnapshot deletes it.
func TestEngineSnapshot(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if got, err := s.LoadSnapshot(ctx, "serve"); err != nil || got != nil {
		t.Fatalf("no snapshot yet: %v, %v", got, err)
	}
	// Mostly zeros and small numbers, as engine state is.
	state := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range state {
		if rng.IntN(8) == 0 {
			state[i] = byte(rng.IntN(256))
		}
	}
	ps := []Position{{Source: "events", Object: "s3://b/k", Token: "3"}, {Source: "local", Object: "ino:1", Token: "100"}}
	f := scan("198.51.100.23", "10.0.1.10", 30, []uint16{22}, t0, t0, map[string]any{"rejected": 30})
	if _, err := s.CommitStream(ctx, StreamCommit{Stream: "serve", Findings: []finding.Finding{f}, Positions: ps[:1],
		Snapshot: &EngineSnapshot{State: state, Alarms: []byte("alarm state"), Positions: ps}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadSnapshot(ctx, "serve")
	if err != nil {
		t.Fatal(err)
	}
	if cs, err := s.StreamContributions(ctx, "serve"); err != nil || len(cs) != 1 || cs[f.ID].Count != 30 || !cs[f.ID].LastSeen.Equal(f.LastSeen) {
		t.Errorf("contributions %+v, %v", cs, err)
	}
	if !bytes.Equal(got.State, state) || string(got.Alarms) != "alarm state" || !slices.Equal(got.Positions, ps) || got.TakenAt.IsZero() {
		t.Fatalf("read back %d bytes, positions %v, taken %v", len(got.State), got.Positions, got.TakenAt)
	}
	if got.Stored >= len(state)/2 {
		t.Errorf("stored %d bytes for %d: not compressed", got.Stored, len(state))
	}
	// A failing commit (a position without a source) saves no snapshot.
	_, err = s.CommitStream(ctx, StreamCommit{Stream: "serve", Positions: []Position{{Object: "x"}},
		Snapshot: &EngineSnapshot{State: []byte("other")}})
	if err == nil {
		t.Fatal("a bad position was accepted")
	}
	if got, _ := s.LoadSnapshot(ctx, "serve"); got == nil || !bytes.Equal(got.State, state) {
		t.Fatal("a failed commit replaced the snapshot")
	}
	if _, err := s.CommitStream(ctx, StreamCommit{Stream: "serve", Snapshot: &EngineSnapshot{State: []byte("other")}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadSnapshot(ctx, "serve"); got == nil || string(got.State) != "other" || len(got.Positions) != 0 {
		t.Fatalf("not replaced: %+v", got)
	}
	if err := s.DropSnapshot(ctx, "serve"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadSnapshot(ctx, "serve"); err != nil || got != nil {
		t.Fatalf("dropped, still %v, %v", got, err)
	}
}
