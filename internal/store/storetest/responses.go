package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/store"
)

// OpenResponses returns a new, empty store for one response contract test.
type OpenResponses func(t *testing.T) store.Responses

// RunResponses runs the contract tests of store.Responses (the response
// pipeline's block claims, leases and outbox) against the stores open
// makes: the guarantees under concurrency of docs/response.md.
func RunResponses(t *testing.T, open OpenResponses) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Responses)
	}{
		{"ClaimVerdicts", testClaimVerdicts},
		{"BlockLeases", testBlockLeases},
		{"BlockLocks", testBlockLocks},
		{"OutboxLeasesAndStaleDecisions", testOutbox},
		{"ConcurrentClaims", testConcurrentClaims},
		{"ConcurrentOutbox", testConcurrentOutbox},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func claimOf(ip, owner string, now time.Time, slots ...store.Slot) store.BlockClaim {
	return store.BlockClaim{Prefix: netip.MustParsePrefix(ip), FindingID: "f-" + ip, Severity: 8, Reason: "Recon:EC2/Portscan", LastSeen: now,
		Now: now, Owner: owner, Lease: 10 * time.Minute, MaxPerHour: 3, BanTime: func(n int) time.Duration { return time.Duration(n) * time.Hour }, Slots: slots}
}

func aclSlot(taken ...int32) store.Slot {
	return store.Slot{Target: "nacl:acl-1", RuleMin: 1, RuleMax: 5, Taken: taken, Room: 4}
}

func testClaimVerdicts(t *testing.T, s store.Responses) {
	ctx := context.Background()
	// Rule 1 is taken in AWS: the claim reserves 2, records ban 1.
	res, err := s.ClaimBlock(ctx, claimOf("198.51.100.1/32", "a", t0, aclSlot(1, 100)))
	if err != nil || res.Verdict != store.ClaimMade || len(res.Rows) != 1 || res.Rows[0].RuleNumber != 2 || res.Ban.Number != 1 {
		t.Fatalf("first claim: %v %+v", err, res)
	}
	if !res.Ban.Expires.Equal(t0.Add(time.Hour)) {
		t.Errorf("expires %v, want %v", res.Ban.Expires, t0.Add(time.Hour))
	}
	rows, err := s.ListBlocks(ctx, store.BlockFilter{Prefix: netip.MustParsePrefix("198.51.100.1/32")})
	if err != nil || len(rows) != 1 || rows[0].ID != res.Rows[0].ID || rows[0].State != store.BlockPending || rows[0].RuleNumber != 2 ||
		rows[0].Target != "nacl:acl-1" || rows[0].Severity != 8 || !rows[0].Expires.Equal(t0.Add(time.Hour)) {
		t.Fatalf("the claimed row as listed: %v %+v", err, rows)
	}
	// The same finding, no newer activity: done. Newer activity, but a
	// live block: live.
	if res, err := s.ClaimBlock(ctx, claimOf("198.51.100.1/32", "b", t0, aclSlot(1, 100))); err != nil || res.Verdict != store.ClaimDone {
		t.Errorf("same finding again: %v %+v", err, res)
	}
	if res, err := s.ClaimBlock(ctx, claimOf("198.51.100.1/32", "b", t0.Add(time.Minute), aclSlot(1, 100))); err != nil || res.Verdict != store.ClaimLive {
		t.Errorf("live: %v %+v", err, res)
	}
	// Another address gets the next free number (2 is in the ledger, not
	// yet in AWS).
	res, _ = s.ClaimBlock(ctx, claimOf("198.51.100.2/32", "b", t0, aclSlot(1, 100)))
	if res.Verdict != store.ClaimMade || res.Rows[0].RuleNumber != 3 {
		t.Fatalf("second address: %+v", res)
	}
	// Room: 2 pending rows wait for AWS, and the target takes 2 more:
	// full.
	full := aclSlot(1, 100, 7, 8)
	full.Room = 2
	if res, _ := s.ClaimBlock(ctx, claimOf("198.51.100.3/32", "b", t0, full)); res.Verdict != store.ClaimFull || len(res.Full) != 1 {
		t.Errorf("full: %+v", res)
	}
	// An entry already denying the address is taken over.
	adopt := aclSlot(1, 4, 100)
	adopt.Adopt = 4
	if res, _ := s.ClaimBlock(ctx, claimOf("198.51.100.4/32", "b", t0, adopt)); res.Verdict != store.ClaimMade || res.Rows[0].RuleNumber != 4 {
		t.Errorf("adopt: %+v", res)
	}
	// The cap (3 an hour) is reached.
	res, _ = s.ClaimBlock(ctx, claimOf("198.51.100.5/32", "b", t0, aclSlot()))
	if res.Verdict != store.ClaimCapped || res.Recent != 3 {
		t.Errorf("capped: %+v", res)
	}
	// A manual unban of a covering prefix refuses an address inside it
	// during its grace.
	if err := s.PutUnban(ctx, store.Unban{Prefix: netip.MustParsePrefix("203.0.113.0/24"), At: t0, Until: t0.Add(time.Hour), By: "alice"}); err != nil {
		t.Fatal(err)
	}
	res, _ = s.ClaimBlock(ctx, claimOf("203.0.113.77/32", "b", t0.Add(2*time.Hour), aclSlot()))
	if res.Verdict != store.ClaimMade {
		t.Errorf("after the grace: %+v", res)
	}
	res, _ = s.ClaimBlock(ctx, claimOf("203.0.113.78/32", "b", t0.Add(time.Minute), aclSlot()))
	if res.Verdict != store.ClaimUnbanned || res.Unban.Prefix.String() != "203.0.113.0/24" || res.Unban.By != "alice" {
		t.Errorf("inside an unbanned prefix: %+v", res)
	}
	// Dry run: the verdict, nothing written.
	other := aclSlot()
	other.Target = "nacl:acl-2"
	c := claimOf("192.0.2.9/32", "b", t0.Add(3*time.Hour), other)
	c.DryRun = true
	if res, _ := s.ClaimBlock(ctx, c); res.Verdict != store.ClaimMade || len(res.Rows) != 0 {
		t.Errorf("dry run: %+v", res)
	}
	if rows, _ := s.ListBlocks(ctx, store.BlockFilter{Prefix: c.Prefix}); len(rows) != 0 {
		t.Errorf("dry run wrote %+v", rows)
	}
	// A second ban of a prefix whose block ended counts up its number
	// and its ban time.
	id := mustClaimRow(t, s, "198.51.100.2/32")
	if err := s.UpdateBlock(ctx, id, store.BlockUpdate{State: store.BlockRemoved, RemovedBy: "expiry", At: t0.Add(4 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	again := claimOf("198.51.100.2/32", "b", t0.Add(5*time.Hour), aclSlot())
	res, err = s.ClaimBlock(ctx, again)
	if err != nil || res.Verdict != store.ClaimMade || res.Ban.Number != 2 || !res.Ban.Expires.Equal(again.Now.Add(2*time.Hour)) {
		t.Errorf("second ban: %v %+v", err, res)
	}
}

// mustClaimRow returns the id of the live row of prefix.
func mustClaimRow(t *testing.T, s store.Responses, prefix string) int64 {
	t.Helper()
	rows, err := s.ListBlocks(context.Background(), store.BlockFilter{Prefix: netip.MustParsePrefix(prefix), LiveOnly: true})
	if err != nil || len(rows) != 1 {
		t.Fatalf("live rows of %s: %v %+v", prefix, err, rows)
	}
	return rows[0].ID
}

func testBlockLeases(t *testing.T, s store.Responses) {
	ctx := context.Background()
	res, err := s.ClaimBlock(ctx, claimOf("198.51.100.1/32", "a", t0, aclSlot()))
	if err != nil || res.Verdict != store.ClaimMade {
		t.Fatal(err, res)
	}
	id := res.Rows[0].ID
	// While a's lease runs, b takes nothing, and cannot release it.
	if rows, _ := s.LeaseBlocks(ctx, store.BlockLease{Owner: "b", Now: t0.Add(time.Minute), Lease: time.Minute, Due: true}); len(rows) != 0 {
		t.Fatalf("b leased %+v while a holds it", rows)
	}
	if _, err := s.ReleaseBlock(ctx, id, "b", store.BlockUpdate{State: store.BlockActive}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("release by b: %v", err)
	}
	// a dies; when its lease runs out b takes the row over, and a's late
	// release is refused.
	rows, err := s.LeaseBlocks(ctx, store.BlockLease{Owner: "b", Now: t0.Add(11 * time.Minute), Lease: time.Minute, Due: true})
	if err != nil || len(rows) != 1 || rows[0].ID != id {
		t.Fatalf("takeover: %v %+v", err, rows)
	}
	if _, err := s.ReleaseBlock(ctx, id, "a", store.BlockUpdate{State: store.BlockActive}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("late release by a: %v", err)
	}
	// A manual unblock while b writes the entry: b's confirm keeps the
	// row marked for removal, and says so.
	if err := s.UpdateBlock(ctx, id, store.BlockUpdate{State: store.BlockRemoving, RemovedBy: "unblock"}); err != nil {
		t.Fatal(err)
	}
	st, err := s.ReleaseBlock(ctx, id, "b", store.BlockUpdate{State: store.BlockActive})
	if err != nil || st != store.BlockRemoving {
		t.Fatalf("confirm after unblock: %v %s", err, st)
	}
	// Renumbering needs the lease.
	if _, err := s.RenumberBlock(ctx, id, "b", aclSlot(1)); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("renumber without the lease: %v", err)
	}
	// Leasing it for removal, then removing it, ends it.
	rows, err = s.LeaseBlocks(ctx, store.BlockLease{Owner: "c", Now: t0.Add(12 * time.Minute), Lease: time.Minute, IDs: []int64{id}, Remove: "unblock"})
	if err != nil || len(rows) != 1 || rows[0].State != store.BlockRemoving || rows[0].RemovedBy != "unblock" {
		t.Fatalf("lease to remove: %v %+v", err, rows)
	}
	if st, err := s.ReleaseBlock(ctx, id, "c", store.BlockUpdate{State: store.BlockRemoved, RemovedBy: "unblock"}); err != nil || st != store.BlockRemoved {
		t.Fatalf("removed: %v %s", err, st)
	}
	if live, _ := s.ListBlocks(ctx, store.BlockFilter{LiveOnly: true}); len(live) != 0 {
		t.Errorf("live rows after the removal: %+v", live)
	}
}

// testBlockLocks checks one live row per target and prefix, and per
// target and rule number, whoever writes, and that renumbering moves a
// row's number.
func testBlockLocks(t *testing.T, s store.Responses) {
	ctx := context.Background()
	a, err := s.ClaimBlock(ctx, claimOf("198.51.100.1/32", "a", t0, aclSlot()))
	if err != nil || a.Verdict != store.ClaimMade || a.Rows[0].RuleNumber != 1 {
		t.Fatal(err, a)
	}
	b, err := s.ClaimBlock(ctx, claimOf("198.51.100.2/32", "a", t0, aclSlot()))
	if err != nil || b.Verdict != store.ClaimMade || b.Rows[0].RuleNumber != 2 {
		t.Fatal(err, b)
	}
	// Rule 1 turns out to be someone else's in AWS: renumbered to 3.
	r, err := s.RenumberBlock(ctx, a.Rows[0].ID, "a", aclSlot(1))
	if err != nil || r != 3 {
		t.Fatalf("renumber: %v %d, want 3", err, r)
	}
	// b's row cannot take 3 now, but can take the freed 1.
	if err := s.UpdateBlock(ctx, b.Rows[0].ID, store.BlockUpdate{RuleNumber: 3}); !errors.Is(err, store.ErrBlockExists) {
		t.Errorf("two live rows on rule 3: %v", err)
	}
	if err := s.UpdateBlock(ctx, b.Rows[0].ID, store.BlockUpdate{RuleNumber: 1}); err != nil {
		t.Errorf("moving to the freed rule 1: %v", err)
	}
	rows, _ := s.ListBlocks(ctx, store.BlockFilter{LiveOnly: true})
	got := map[string]int32{}
	for _, r := range rows {
		got[r.Prefix.String()] = r.RuleNumber
	}
	if fmt.Sprint(got) != "map[198.51.100.1/32:3 198.51.100.2/32:1]" {
		t.Errorf("rule numbers %v", got)
	}
}

func testOutbox(t *testing.T, s store.Responses) {
	ctx := context.Background()
	if _, err := s.Enqueue(ctx, []store.OutboxItem{{Notifier: "slack", Key: "g", Payload: `{}`}}, []store.NotifyRecord{{Key: "slack|f", LastSent: t0, Count: 1}}); err != nil {
		t.Fatal(err)
	}
	rec, ok, err := s.GetNotifyRecord(ctx, "slack|f")
	if err != nil || !ok || !rec.LastSent.Equal(t0) || rec.Count != 1 {
		t.Fatalf("notification log: %v %v %+v", err, ok, rec)
	}
	// A second process decided on what it read before the first wrote:
	// stale, nothing written.
	if _, err := s.Enqueue(ctx, []store.OutboxItem{{Notifier: "slack", Key: "g", Payload: `{}`}}, []store.NotifyRecord{{Key: "slack|f", LastSent: t0}}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("stale enqueue: %v", err)
	}
	// Deciding again on what is there now works.
	if _, err := s.Enqueue(ctx, nil, []store.NotifyRecord{{Key: "slack|f", LastSent: t0.Add(time.Hour), Prev: t0}}); err != nil {
		t.Fatal(err)
	}
	a, err := s.ClaimOutbox(ctx, "a", t0, time.Minute)
	if err != nil || len(a) != 1 || a[0].Notifier != "slack" || a[0].Payload != `{}` {
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
	if err := s.ReleaseOutbox(ctx, a[0].ID, "a", "sent", ""); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("a's late mark: %v", err)
	}
	if err := s.ReleaseOutbox(ctx, b[0].ID, "b", "sent", ""); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.ClaimOutbox(ctx, "c", t0.Add(time.Hour), time.Minute); len(left) != 0 {
		t.Errorf("sent item claimed again: %+v", left)
	}
}

// testConcurrentClaims races claimers: eight processes each claim the same
// twelve addresses. Each address gets one live row and one ban, the cap
// of five an hour holds, and no rule number is given twice.
func testConcurrentClaims(t *testing.T, s store.Responses) {
	ctx := context.Background()
	const procs, addrs, cap = 8, 12, 5
	var wg sync.WaitGroup
	errs := make(chan error, procs*addrs)
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range addrs {
				c := claimOf(fmt.Sprintf("198.51.100.%d/32", (i+p)%addrs+1), fmt.Sprintf("p%d", p), t0, store.Slot{Target: "nacl:acl-1", RuleMin: 1, RuleMax: 20, Room: 20})
				c.MaxPerHour = cap
				if _, err := s.ClaimBlock(ctx, c); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("claim: %v", err)
	}
	rows, err := s.ListBlocks(ctx, store.BlockFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != cap {
		t.Errorf("%d rows, want %d (the cap)", len(rows), cap)
	}
	prefixes, rules := map[netip.Prefix]int{}, map[int32]int{}
	for _, r := range rows {
		prefixes[r.Prefix]++
		rules[r.RuleNumber]++
	}
	for p, k := range prefixes {
		if k != 1 {
			t.Errorf("%s has %d rows", p, k)
		}
	}
	for r, k := range rules {
		if k != 1 || r < 1 || r > 20 {
			t.Errorf("rule %d given %d times", r, k)
		}
	}
}

// testConcurrentOutbox races deliverers: each queued notification is
// leased by one of them only.
func testConcurrentOutbox(t *testing.T, s store.Responses) {
	ctx := context.Background()
	const items, procs = 10, 6
	for i := range items {
		if _, err := s.Enqueue(ctx, []store.OutboxItem{{Notifier: "webhook", Key: fmt.Sprint(i), Payload: `{}`}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	got := map[int64]int{}
	var wg sync.WaitGroup
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			its, err := s.ClaimOutbox(ctx, fmt.Sprintf("p%d", p), t0, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			for _, it := range its {
				mu.Lock()
				got[it.ID]++
				mu.Unlock()
				if err := s.ReleaseOutbox(ctx, it.ID, fmt.Sprintf("p%d", p), "sent", ""); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(got) != items {
		t.Errorf("%d items delivered, want %d", len(got), items)
	}
	for id, k := range got {
		if k != 1 {
			t.Errorf("item %d delivered %d times", id, k)
		}
	}
}
