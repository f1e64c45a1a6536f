package store

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestBlocksLifecycle(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	p := netip.MustParsePrefix("198.51.100.23/32")
	r := BlockRecord{Target: "nacl:acl-1", Prefix: p, RuleNumber: 5, FindingID: "f1", Severity: 8, Created: t0, Expires: t0.Add(time.Hour)}
	id, err := s.InsertBlock(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	// A second live row for the same target and prefix, or rule number,
	// is refused.
	if _, err := s.InsertBlock(ctx, r); !errors.Is(err, ErrBlockExists) {
		t.Errorf("duplicate prefix: %v", err)
	}
	r2 := r
	r2.Prefix = netip.MustParsePrefix("198.51.100.24/32")
	if _, err := s.InsertBlock(ctx, r2); !errors.Is(err, ErrBlockExists) {
		t.Errorf("duplicate rule number: %v", err)
	}
	// Another target is fine.
	r2.Target = "nacl:acl-2"
	if _, err := s.InsertBlock(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateBlock(ctx, id, BlockUpdate{State: BlockRemoved, RemovedBy: "expiry", At: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// Once removed, the number and prefix are free again.
	if _, err := s.InsertBlock(ctx, r); err != nil {
		t.Fatalf("after removal: %v", err)
	}
	all, err := s.ListBlocks(ctx, BlockFilter{Target: "nacl:acl-1"})
	if err != nil || len(all) != 2 {
		t.Fatalf("%v %+v", err, all)
	}
	if all[0].State != BlockRemoved || all[0].RemovedBy != "expiry" || !all[0].Removed.Equal(t0.Add(2*time.Hour)) || all[1].State != BlockPending {
		t.Errorf("rows %+v", all)
	}
	live, _ := s.ListBlocks(ctx, BlockFilter{LiveOnly: true})
	if len(live) != 2 {
		t.Errorf("live %+v", live)
	}
	if err := s.UpdateBlock(ctx, 999, BlockUpdate{State: BlockActive}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing row: %v", err)
	}
}

func TestBansUnbansOutbox(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	p := netip.MustParsePrefix("2001:db8::1/128")
	for i := 1; i <= 3; i++ {
		at := t0.Add(time.Duration(i) * time.Hour)
		c := claimOf(p.String(), "a", at, Slot{Target: "wafv2:REGIONAL/v6/1", Room: 10})
		c.LastSeen = t0.Add(time.Duration(i) * time.Minute)
		res, err := s.ClaimBlock(ctx, c)
		if err != nil || res.Verdict != ClaimMade || res.Ban.Number != i || !res.Ban.Expires.Equal(at.Add(time.Duration(i)*time.Hour)) {
			t.Fatalf("ban %d: %+v %v", i, res, err)
		}
		if _, err := s.ReleaseBlock(ctx, res.Rows[0].ID, "a", BlockUpdate{State: BlockRemoved, RemovedBy: "expiry"}); err != nil {
			t.Fatal(err)
		}
	}
	if bans, _ := s.ListBans(ctx, t0.Add(2*time.Hour)); len(bans) != 2 || bans[1].Number != 3 || !bans[1].LastSeen.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("bans since: %+v", bans)
	}
	if err := s.PutUnban(ctx, Unban{Prefix: netip.MustParsePrefix("2001:db8::/64"), At: t0, Until: t0.Add(time.Hour), By: "bob"}); err != nil {
		t.Fatal(err)
	}
	u, ok, _ := s.UnbanCovering(ctx, p, t0.Add(time.Minute))
	if !ok || u.By != "bob" || !u.Until.Equal(t0.Add(time.Hour)) {
		t.Errorf("unban %+v", u)
	}
	if _, ok, _ := s.UnbanCovering(ctx, p, t0.Add(time.Hour)); ok {
		t.Error("unban in force after its end")
	}
	ids, err := s.Enqueue(ctx, []OutboxItem{{Notifier: "slack", Key: "k", Payload: `{}`}}, []NotifyRecord{{Key: "slack|f", LastSent: t0, Count: 4}})
	if err != nil || len(ids) != 1 {
		t.Fatal(err)
	}
	rec, ok, _ := s.GetNotifyRecord(ctx, "slack|f")
	if !ok || rec.Count != 4 || !rec.LastSent.Equal(t0) {
		t.Errorf("record %+v", rec)
	}
	if err := s.ReleaseOutbox(ctx, ids[0], "", "sent", ""); err != nil {
		t.Fatal(err)
	}
	if items, _ := s.ClaimOutbox(ctx, "a", t0, time.Minute); len(items) != 0 {
		t.Errorf("pending after sent: %+v", items)
	}
}
