package store

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func claimOf(ip, owner string, now time.Time, slots ...Slot) BlockClaim {
	return BlockClaim{Prefix: netip.MustParsePrefix(ip), FindingID: "f-" + ip, Severity: 8, Reason: "Recon:EC2/Portscan", LastSeen: now,
		Now: now, Owner: owner, Lease: 10 * time.Minute, MaxPerHour: 3, BanTime: func(n int) time.Duration { return time.Duration(n) * time.Hour }, Slots: slots}
}

func aclSlot(taken ...int32) Slot {
	return Slot{Target: "nacl:acl-1", RuleMin: 1, RuleMax: 5, Taken: taken, Room: 4}
}

func TestClaimBlockVerdicts(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	// Rule 1 is taken in AWS: the claim reserves 2, records ban 1.
	res, err := s.ClaimBlock(ctx, claimOf("198.51.100.1/32", "a", t0, aclSlot(1, 100)))
	if err != nil || res.Verdict != ClaimMade || len(res.Rows) != 1 || res.Rows[0].RuleNumber != 2 || res.Ban.Number != 1 {
		t.Fatalf("first claim: %v %+v", err, res)
	}
	if !res.Ban.Expires.Equal(t0.Add(time.Hour)) {
		t.Errorf("expires %v", res.Ban.Expires)
	}
	// The same finding, no newer activity: done. Newer activity, but a
	// live block: live.
	if res, _ := s.ClaimBlock(ctx, claimOf("198.51.100.1/32", "b", t0, aclSlot(1, 100))); res.Verdict != ClaimDone {
		t.Errorf("same finding again: %+v", res)
	}
	if res, _ := s.ClaimBlock(ctx, claimOf("198.51.100.1/32", "b", t0.Add(time.Minute), aclSlot(1, 100))); res.Verdict != ClaimLive {
		t.Errorf("live: %+v", res)
	}
	// Another address gets the next free number (2 is in the ledger,
	// not yet in AWS).
	res, _ = s.ClaimBlock(ctx, claimOf("198.51.100.2/32", "b", t0, aclSlot(1, 100)))
	if res.Verdict != ClaimMade || res.Rows[0].RuleNumber != 3 {
		t.Fatalf("second address: %+v", res)
	}
	// Room: 4 entries fit, 2 pending rows wait for AWS, and two more
	// entries sit there: full.
	full := aclSlot(1, 100, 7, 8)
	full.Room = 2
	if res, _ := s.ClaimBlock(ctx, claimOf("198.51.100.3/32", "b", t0, full)); res.Verdict != ClaimFull || len(res.Full) != 1 {
		t.Errorf("full: %+v", res)
	}
	// An entry already denying the address is taken over.
	adopt := aclSlot(1, 4, 100)
	adopt.Adopt = 4
	if res, _ := s.ClaimBlock(ctx, claimOf("198.51.100.4/32", "b", t0, adopt)); res.Verdict != ClaimMade || res.Rows[0].RuleNumber != 4 {
		t.Errorf("adopt: %+v", res)
	}
	// The cap (3 an hour) is reached.
	res, _ = s.ClaimBlock(ctx, claimOf("198.51.100.5/32", "b", t0, aclSlot()))
	if res.Verdict != ClaimCapped || res.Recent != 3 {
		t.Errorf("capped: %+v", res)
	}
	// A manual unban of a covering prefix refuses an address inside it.
	if err := s.PutUnban(ctx, Unban{Prefix: netip.MustParsePrefix("203.0.113.0/24"), At: t0, Until: t0.Add(time.Hour), By: "alice"}); err != nil {
		t.Fatal(err)
	}
	res, _ = s.ClaimBlock(ctx, claimOf("203.0.113.77/32", "b", t0.Add(2*time.Hour), aclSlot()))
	if res.Verdict != ClaimMade {
		t.Errorf("after the grace: %+v", res)
	}
	res, _ = s.ClaimBlock(ctx, claimOf("203.0.113.78/32", "b", t0.Add(time.Minute), aclSlot()))
	if res.Verdict != ClaimUnbanned || res.Unban.Prefix.String() != "203.0.113.0/24" {
		t.Errorf("inside an unbanned prefix: %+v", res)
	}
	// Dry run: the verdict, nothing written.
	other := aclSlot()
	other.Target = "nacl:acl-2"
	c := claimOf("192.0.2.9/32", "b", t0.Add(3*time.Hour), other)
	c.DryRun = true
	if res, _ := s.ClaimBlock(ctx, c); res.Verdict != ClaimMade || len(res.Rows) != 0 {
		t.Errorf("dry run: %+v", res)
	}
	if rows, _ := s.ListBlocks(ctx, BlockFilter{Prefix: c.Prefix}); len(rows) != 0 {
		t.Errorf("dry run wrote %+v", rows)
	}
}

func TestBlockLeases(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	res, err := s.ClaimBlock(ctx, claimOf("198.51.100.1/32", "a", t0, aclSlot()))
	if err != nil || res.Verdict != ClaimMade {
		t.Fatal(err, res)
	}
	id := res.Rows[0].ID
	// While a's lease runs, b takes nothing, and cannot release it.
	if rows, _ := s.LeaseBlocks(ctx, BlockLease{Owner: "b", Now: t0.Add(time.Minute), Lease: time.Minute, Due: true}); len(rows) != 0 {
		t.Fatalf("b leased %+v while a holds it", rows)
	}
	if _, err := s.ReleaseBlock(ctx, id, "b", BlockUpdate{State: BlockActive}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("release by b: %v", err)
	}
	// a dies; when its lease runs out b takes the row over, and a's late
	// release is refused.
	rows, err := s.LeaseBlocks(ctx, BlockLease{Owner: "b", Now: t0.Add(11 * time.Minute), Lease: time.Minute, Due: true})
	if err != nil || len(rows) != 1 || rows[0].ID != id {
		t.Fatalf("takeover: %v %+v", err, rows)
	}
	if _, err := s.ReleaseBlock(ctx, id, "a", BlockUpdate{State: BlockActive}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("late release by a: %v", err)
	}
	// A manual unblock while b writes the entry: b's confirm keeps the
	// row marked for removal, and says so.
	if err := s.UpdateBlock(ctx, id, BlockUpdate{State: BlockRemoving, RemovedBy: "unblock"}); err != nil {
		t.Fatal(err)
	}
	st, err := s.ReleaseBlock(ctx, id, "b", BlockUpdate{State: BlockActive})
	if err != nil || st != BlockRemoving {
		t.Fatalf("confirm after unblock: %v %s", err, st)
	}
	// Renumbering needs the lease.
	if _, err := s.RenumberBlock(ctx, id, "b", aclSlot(1)); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("renumber without the lease: %v", err)
	}
}

func TestOutboxLeasesAndStaleDecisions(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	if _, err := s.Enqueue(ctx, []OutboxItem{{Notifier: "slack", Key: "g", Payload: `{}`}}, []NotifyRecord{{Key: "slack|f", LastSent: t0}}); err != nil {
		t.Fatal(err)
	}
	// A second process decided on what it read before the first wrote:
	// stale, nothing written.
	if _, err := s.Enqueue(ctx, []OutboxItem{{Notifier: "slack", Key: "g", Payload: `{}`}}, []NotifyRecord{{Key: "slack|f", LastSent: t0}}); !errors.Is(err, ErrStale) {
		t.Fatalf("stale enqueue: %v", err)
	}
	// Deciding again on what is there now works.
	if _, err := s.Enqueue(ctx, nil, []NotifyRecord{{Key: "slack|f", LastSent: t0.Add(time.Hour), Prev: t0}}); err != nil {
		t.Fatal(err)
	}
	a, err := s.ClaimOutbox(ctx, "a", t0, time.Minute)
	if err != nil || len(a) != 1 {
		t.Fatalf("a claims: %v %+v", err, a)
	}
	if b, _ := s.ClaimOutbox(ctx, "b", t0.Add(30*time.Second), time.Minute); len(b) != 0 {
		t.Fatalf("b claimed %+v under a's lease", b)
	}
	// a dies; b retries after the lease; a's late mark is refused.
	b, _ := s.ClaimOutbox(ctx, "b", t0.Add(2*time.Minute), time.Minute)
	if len(b) != 1 {
		t.Fatalf("b after the lease: %+v", b)
	}
	if err := s.ReleaseOutbox(ctx, a[0].ID, "a", "sent", ""); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("a's late mark: %v", err)
	}
	if err := s.ReleaseOutbox(ctx, b[0].ID, "b", "sent", ""); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.ClaimOutbox(ctx, "c", t0.Add(time.Hour), time.Minute); len(left) != 0 {
		t.Errorf("sent item claimed again: %+v", left)
	}
}
