package store

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestEndLeases: the owners of live leases are listed (block and outbox
// rows alike, run-out leases not), and ending an owner's leases frees
// its rows for another process at once.
func TestEndLeases(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	if _, err := s.ClaimBlock(ctx, claimOf("198.51.100.1/32", "gone", t0, aclSlot())); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimBlock(ctx, claimOf("198.51.100.2/32", "old", t0.Add(-time.Hour), aclSlot())); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(ctx, []OutboxItem{{Notifier: "slack", Key: "k", Payload: `{}`}}, nil); err != nil {
		t.Fatal(err)
	}
	if items, err := s.ClaimOutbox(ctx, "gone", t0, time.Minute); err != nil || len(items) != 1 {
		t.Fatal(items, err)
	}
	owners, err := s.LeaseOwners(ctx, t0)
	if err != nil || !slices.Equal(owners, []string{"gone"}) {
		t.Fatalf("owners %q %v, want [gone] (old's lease ran out)", owners, err)
	}
	// Another process cannot take the rows while the lease runs.
	if rows, _ := s.LeaseBlocks(ctx, BlockLease{Owner: "next", Now: t0, Lease: time.Minute, Due: true}); len(rows) != 1 || rows[0].Prefix.String() != "198.51.100.2/32" {
		t.Fatalf("before: leased %+v", rows)
	}
	n, err := s.EndLeases(ctx, "gone")
	if err != nil || n != 2 {
		t.Fatalf("ended %d %v, want 2 rows", n, err)
	}
	if rows, _ := s.LeaseBlocks(ctx, BlockLease{Owner: "next", Now: t0, Lease: time.Minute, Due: true}); len(rows) != 2 {
		t.Fatalf("after: leased %+v", rows)
	}
	if items, _ := s.ClaimOutbox(ctx, "next", t0, time.Minute); len(items) != 1 {
		t.Fatalf("after: outbox %+v", items)
	}
	if owners, _ := s.LeaseOwners(ctx, t0); !slices.Equal(owners, []string{"next"}) {
		t.Fatalf("owners after %q", owners)
	}
}
