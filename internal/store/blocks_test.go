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
		n, err := s.RecordBan(ctx, Ban{Prefix: p, FindingID: "f", At: t0.Add(time.Duration(i) * time.Hour), LastSeen: t0.Add(time.Duration(i) * time.Minute)})
		if err != nil || n != i {
			t.Fatalf("ban %d: %d %v", i, n, err)
		}
	}
	if n, _ := s.BansSince(ctx, t0.Add(2*time.Hour)); n != 2 {
		t.Errorf("bans since: %d", n)
	}
	b, ok, err := s.LastBan(ctx, p, "f")
	if err != nil || !ok || b.Number != 3 || !b.LastSeen.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("last ban %+v %v %v", b, ok, err)
	}
	if err := s.PutUnban(ctx, Unban{Prefix: p, At: t0, Until: t0.Add(time.Hour), By: "bob"}); err != nil {
		t.Fatal(err)
	}
	u, ok, _ := s.GetUnban(ctx, p)
	if !ok || u.By != "bob" || !u.Until.Equal(t0.Add(time.Hour)) {
		t.Errorf("unban %+v", u)
	}
	ids, err := s.Enqueue(ctx, []OutboxItem{{Notifier: "slack", Key: "k", Payload: `{}`}}, []NotifyRecord{{Key: "slack|f", LastSent: t0, Count: 4}})
	if err != nil || len(ids) != 1 {
		t.Fatal(err)
	}
	rec, ok, _ := s.GetNotifyRecord(ctx, "slack|f")
	if !ok || rec.Count != 4 || !rec.LastSent.Equal(t0) {
		t.Errorf("record %+v", rec)
	}
	if err := s.MarkOutbox(ctx, ids[0], "sent", ""); err != nil {
		t.Fatal(err)
	}
	if items, _ := s.PendingOutbox(ctx); len(items) != 0 {
		t.Errorf("pending after sent: %+v", items)
	}
}
