package store

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "sub", "flowguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// scan returns a port-scan finding of actor on target.
func scan(actor, target string, count int64, ports []uint16, first, last time.Time, ev map[string]any) finding.Finding {
	a, tg := netip.MustParseAddr(actor), netip.MustParseAddr(target)
	return finding.Finding{
		ID:        finding.ID("Recon:EC2/Portscan", a, tg.String()),
		Type:      "Recon:EC2/Portscan",
		Severity:  finding.Medium,
		Title:     actor + " scanned " + target,
		Actor:     finding.Actor{IP: a, Direction: finding.Inbound},
		Target:    finding.Target{IP: tg, Ports: ports},
		Count:     count,
		FirstSeen: first,
		LastSeen:  last,
		Evidence:  ev,
	}
}

func TestUpsertMergesRepeatedActivity(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	f1 := scan("198.51.100.23", "10.0.1.10", 10, []uint16{22, 23}, t0, t0.Add(time.Minute),
		map[string]any{"rejected": 9, "distinct_ports": 2})
	f2 := scan("198.51.100.23", "10.0.1.10", 32, []uint16{23, 80, 443}, t0.Add(-time.Minute), t0.Add(5*time.Minute),
		map[string]any{"rejected": 30, "distinct_ports": 3})
	f2.Severity = finding.High
	c, u, err := s.UpsertFindings(ctx, []finding.Finding{f1})
	if err != nil || c != 1 || u != 0 {
		t.Fatalf("first upsert: created %d updated %d err %v; want 1 0 nil", c, u, err)
	}
	c, u, err = s.UpsertFindings(ctx, []finding.Finding{f2})
	if err != nil || c != 0 || u != 1 {
		t.Fatalf("second upsert: created %d updated %d err %v; want 0 1 nil", c, u, err)
	}
	all, err := s.ListFindings(ctx, finding.Filter{Archived: finding.AnyArchived})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("got %d findings, want one merged finding", len(all))
	}
	g := all[0]
	if g.ID != f1.ID || g.Count != 42 || !g.FirstSeen.Equal(t0.Add(-time.Minute)) || !g.LastSeen.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("merged id/count/first/last = %s %d %s %s", g.ID, g.Count, g.FirstSeen, g.LastSeen)
	}
	if !slices.Equal(g.Target.Ports, []uint16{22, 23, 80, 443}) {
		t.Errorf("ports = %v, want [22 23 80 443]", g.Target.Ports)
	}
	if g.Severity != finding.High {
		t.Errorf("severity = %v, want %v", g.Severity, finding.High)
	}
	// After the JSON round trip numbers are float64.
	if g.Evidence["rejected"] != float64(39) || g.Evidence["distinct_ports"] != float64(3) {
		t.Errorf("evidence = %v, want rejected 39 (sum), distinct_ports 3 (max)", g.Evidence)
	}
	got, err := s.GetFinding(ctx, f1.ID)
	if err != nil || got.Count != 42 {
		t.Fatalf("GetFinding: %v %v", got.Count, err)
	}
	if _, err := s.GetFinding(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetFinding(nope) error = %v, want ErrNotFound", err)
	}
}
