// Package storetest holds the contract tests of store.Interface, written
// once and run against every implementation: the SQLite store
// (internal/store) and the DynamoDB store (internal/store/dynamo).
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

// Open returns a new, empty store for one test; the caller closes it when
// the test ends (t.Cleanup).
type Open func(t *testing.T) store.Interface

// Run runs the contract tests against the stores open makes.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Interface)
	}{
		{"ReplayIsIdempotent", testReplay},
		{"StreamsMerge", testStreamsMerge},
		{"VersionGuard", testVersionGuard},
		{"VersionDropsVanished", testVersionDropsVanished},
		{"PositionsAndAlarms", testPositionsAndAlarms},
		{"Checkpoints", testCheckpoints},
		{"WindowInputs", testWindowInputs},
		{"ConcurrentStreams", testConcurrentStreams},
		{"ConcurrentWindow", testConcurrentWindow},
		{"AlarmClock", testAlarmClock},
		{"ConcurrentAlarmClock", testConcurrentAlarmClock},
		{"LoadWindow", testLoadWindow},
		{"FindingsRead", testFindingsRead},
		{"Audit", testAudit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// Finding returns a port-scan finding of actor with count and last seen
// minute minutes after t0.
func Finding(actor string, count int64, minute int) finding.Finding {
	ip := netip.MustParseAddr(actor)
	return finding.Finding{
		ID: finding.ID("Recon:EC2/Portscan", ip, ""), Type: "Recon:EC2/Portscan", Severity: 5, Title: "scan",
		Actor: finding.Actor{IP: ip}, Count: count,
		FirstSeen: t0, LastSeen: t0.Add(time.Duration(minute) * time.Minute),
		Target: finding.Target{Ports: []uint16{22}},
	}
}

func commit(t *testing.T, s store.Interface, c store.StreamCommit) store.CommitResult {
	t.Helper()
	res, err := s.CommitStream(context.Background(), c)
	if err != nil {
		t.Fatalf("CommitStream(%s): %v", c.Stream, err)
	}
	return res
}

func get(t *testing.T, s store.Interface, id string) finding.Finding {
	t.Helper()
	f, err := s.GetFinding(context.Background(), id)
	if err != nil {
		t.Fatalf("GetFinding(%s): %v", id, err)
	}
	return f
}

func testReplay(t *testing.T, s store.Interface) {
	f := Finding("203.0.113.7", 5, 1)
	res := commit(t, s, store.StreamCommit{Stream: "a", Findings: []finding.Finding{f}})
	if res.Created != 1 || len(res.New) != 1 || res.New[0] != f.ID {
		t.Fatalf("first commit: %+v, want one created", res)
	}
	res = commit(t, s, store.StreamCommit{Stream: "a", Findings: []finding.Finding{f}})
	if res.Unchanged != 1 || res.Created+res.Updated != 0 {
		t.Fatalf("replay: %+v, want one unchanged", res)
	}
	if got := get(t, s, f.ID); got.Count != 5 {
		t.Fatalf("count after a replay = %d, want 5", got.Count)
	}
	f.Count, f.LastSeen = 9, f.LastSeen.Add(time.Minute)
	res = commit(t, s, store.StreamCommit{Stream: "a", Findings: []finding.Finding{f}})
	if res.Updated != 1 || len(res.Changed) != 1 || res.Changed[0].Count != 9 {
		t.Fatalf("grown state: %+v, want one updated to 9", res)
	}
}

func testStreamsMerge(t *testing.T, s store.Interface) {
	a, b := Finding("203.0.113.8", 5, 1), Finding("203.0.113.8", 3, 4)
	b.Target.Ports = []uint16{23}
	commit(t, s, store.StreamCommit{Stream: "a", Findings: []finding.Finding{a}})
	commit(t, s, store.StreamCommit{Stream: "b", Findings: []finding.Finding{b}})
	got := get(t, s, a.ID)
	if got.Count != 8 || !got.LastSeen.Equal(b.LastSeen) || !got.FirstSeen.Equal(t0) {
		t.Fatalf("merged finding: count %d last %v first %v, want 8, %v, %v", got.Count, got.LastSeen, got.FirstSeen, b.LastSeen, t0)
	}
	if fmt.Sprint(got.Target.Ports) != "[22 23]" {
		t.Fatalf("merged ports %v, want [22 23]", got.Target.Ports)
	}
}

func testVersionGuard(t *testing.T, s store.Interface) {
	newer, older := Finding("203.0.113.9", 8, 2), Finding("203.0.113.9", 5, 1)
	if res := commit(t, s, store.StreamCommit{Stream: "w", Version: 2, Findings: []finding.Finding{newer}}); res.Stale || res.Created != 1 {
		t.Fatalf("version 2: %+v, want created", res)
	}
	if res := commit(t, s, store.StreamCommit{Stream: "w", Version: 1, Findings: []finding.Finding{older}}); !res.Stale {
		t.Fatalf("version 1 after 2: %+v, want stale", res)
	}
	if res := commit(t, s, store.StreamCommit{Stream: "w", Version: 2, Findings: []finding.Finding{older}}); !res.Stale {
		t.Fatalf("version 2 again: %+v, want stale", res)
	}
	if got := get(t, s, newer.ID); got.Count != 8 {
		t.Fatalf("count %d after a stale commit, want 8 (version 2's)", got.Count)
	}
	newest := Finding("203.0.113.9", 11, 3)
	if res := commit(t, s, store.StreamCommit{Stream: "w", Version: 3, Findings: []finding.Finding{newest}}); res.Stale || res.Updated != 1 {
		t.Fatalf("version 3: %+v, want updated", res)
	}
	if got := get(t, s, newer.ID); got.Count != 11 {
		t.Fatalf("count %d after version 3, want 11", got.Count)
	}
}

func testPositionsAndAlarms(t *testing.T, s store.Interface) {
	ctx := context.Background()
	commit(t, s, store.StreamCommit{Stream: "serve",
		Positions: []store.Position{{Source: "cw", Object: "g/s1", Token: "10"}, {Source: "cw", Object: "g/s0", Token: "4", Name: "stream 0"}},
		Alarms:    []store.AlarmState{{Name: "rejects", State: alarm.StateAlarm, Since: t0, Reason: "above 10"}}})
	commit(t, s, store.StreamCommit{Stream: "serve", Positions: []store.Position{{Source: "cw", Object: "g/s1", Token: "12"}}})
	ps, err := s.LoadPositions(ctx, "cw")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Position{{Source: "cw", Object: "g/s0", Token: "4", Name: "stream 0"}, {Source: "cw", Object: "g/s1", Token: "12"}}
	if fmt.Sprint(ps) != fmt.Sprint(want) {
		t.Fatalf("positions %+v, want %+v", ps, want)
	}
	if ps, err := s.LoadPositions(ctx, "other"); err != nil || len(ps) != 0 {
		t.Fatalf("positions of another source: %v %v, want none", ps, err)
	}
	as, err := s.LoadAlarmStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := as["rejects"]; got.State != alarm.StateAlarm || !got.Since.Equal(t0) || got.Reason != "above 10" || len(as) != 1 {
		t.Fatalf("alarm states %+v", as)
	}
}

func testCheckpoints(t *testing.T, s store.Interface) {
	ctx := context.Background()
	if _, ok, err := s.LoadCheckpoint(ctx, "scan:s3://b/p/"); ok || err != nil {
		t.Fatalf("checkpoint before any: ok %v err %v", ok, err)
	}
	for _, p := range []string{"2026-11-30T12:00:00Z", "2026-11-30T12:05:00Z"} {
		if err := s.SaveCheckpoint(ctx, "scan:s3://b/p/", p); err != nil {
			t.Fatal(err)
		}
	}
	if p, ok, err := s.LoadCheckpoint(ctx, "scan:s3://b/p/"); !ok || err != nil || p != "2026-11-30T12:05:00Z" {
		t.Fatalf("checkpoint %q %v %v, want the last saved", p, ok, err)
	}
	if err := s.SaveCheckpoint(ctx, "", "x"); err == nil {
		t.Fatal("a checkpoint without a source was saved")
	}
}

func testWindowInputs(t *testing.T, s store.Interface) {
	ctx := context.Background()
	add := func(win, ref, data string) store.Window {
		t.Helper()
		w, err := s.AddWindowInput(ctx, win, store.WindowInput{Ref: ref, Data: []byte(data), Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w1 := add("w1", "s3://b/k2", "")
	w2 := add("w1", "cw:g/s/1", "payload")
	w3 := add("w1", "s3://b/k2", "")
	add("w2", "s3://b/other", "")
	if w1.Version != 1 || w2.Version != 2 || w3.Version != 3 {
		t.Fatalf("versions %d %d %d, want 1 2 3", w1.Version, w2.Version, w3.Version)
	}
	var refs []string
	for _, in := range w3.Inputs {
		refs = append(refs, in.Ref)
	}
	if fmt.Sprint(refs) != "[cw:g/s/1 s3://b/k2]" {
		t.Fatalf("window inputs %v, want each ref once, sorted", refs)
	}
	if string(w3.Inputs[0].Data) != "payload" || len(w3.Inputs[1].Data) != 0 {
		t.Fatalf("window data %q %q", w3.Inputs[0].Data, w3.Inputs[1].Data)
	}
	if _, err := s.AddWindowInput(ctx, "w1", store.WindowInput{}); err == nil {
		t.Fatal("an input without a ref was added")
	}
}

// inParallel runs fn(0) … fn(n-1) at once and fails the test on the
// first error any returns.
func inParallel(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- fn(i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// testConcurrentStreams commits eight streams' contributions to one
// finding at once: the row must be the merge of all eight.
func testConcurrentStreams(t *testing.T, s store.Interface) {
	inParallel(t, 8, func(i int) error {
		_, err := s.CommitStream(context.Background(), store.StreamCommit{Stream: fmt.Sprintf("inv-%d", i),
			Findings: []finding.Finding{Finding("198.51.100.1", int64(i+1), i)}})
		return err
	})
	if got := get(t, s, Finding("198.51.100.1", 0, 0).ID); got.Count != 36 {
		t.Fatalf("count %d after eight concurrent streams, want 36 (1+…+8)", got.Count)
	}
}

// testConcurrentWindow adds six inputs to a window at once, each adder
// committing the window's count of inputs at the version it read: the
// last state must count all six, whatever the order.
func testConcurrentWindow(t *testing.T, s store.Interface) {
	inParallel(t, 6, func(i int) error {
		ctx := context.Background()
		w, err := s.AddWindowInput(ctx, "cw", store.WindowInput{Ref: fmt.Sprintf("s3://b/%d", i)})
		if err == nil {
			_, err = s.CommitStream(ctx, store.StreamCommit{Stream: "window:cw", Version: w.Version,
				Findings: []finding.Finding{Finding("198.51.100.2", int64(len(w.Inputs)), 0)}})
		}
		return err
	})
	if got := get(t, s, Finding("198.51.100.2", 0, 0).ID); got.Count != 6 {
		t.Fatalf("count %d, want 6: a commit of fewer inputs replaced one of all", got.Count)
	}
}

func testFindingsRead(t *testing.T, s store.Interface) {
	ctx := context.Background()
	lo, hi := Finding("192.0.2.1", 1, 1), Finding("192.0.2.2", 1, 2)
	hi.Severity = 8
	commit(t, s, store.StreamCommit{Stream: "a", Findings: []finding.Finding{lo, hi}})
	if _, err := s.GetFinding(ctx, "0123456789abcdef0123456789abcdef"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetFinding of an unknown id: %v, want ErrNotFound", err)
	}
	fs, err := s.ListFindings(ctx, finding.Filter{MinSeverity: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].ID != hi.ID {
		t.Fatalf("findings of severity ≥ 7: %v, want only %s", fs, hi.ID)
	}
	fs, err = s.ListFindings(ctx, finding.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || fs[0].ID != hi.ID {
		t.Fatalf("all findings: %d, first %v, want 2, most recently seen first", len(fs), fs)
	}
}

func testAudit(t *testing.T, s store.Interface) {
	ctx := context.Background()
	var seqs []int64
	for i, a := range []string{"block", "notify", "block"} {
		seq, err := s.AppendAudit(ctx, store.AuditEntry{Time: t0.Add(time.Duration(i) * time.Minute), Action: a, Subject: "203.0.113.7/32",
			FindingID: "f1", Detail: json.RawMessage(`{"n":` + fmt.Sprint(i) + `}`)})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	if !(seqs[0] < seqs[1] && seqs[1] < seqs[2]) {
		t.Fatalf("audit sequence numbers %v, want increasing", seqs)
	}
	es, err := s.ListAudit(ctx, store.AuditFilter{Action: "block"})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Seq != seqs[0] || es[1].Seq != seqs[2] || string(es[1].Detail) != `{"n":2}` {
		t.Fatalf("block entries %+v", es)
	}
	es, err = s.ListAudit(ctx, store.AuditFilter{Since: t0.Add(time.Minute), Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Seq != seqs[2] {
		t.Fatalf("newest entry since t0+1m: %+v", es)
	}
}

// testVersionDropsVanished commits a window's findings at version 1, then
// at version 2 without one of them (more inputs turned it into another
// finding): the vanished finding goes, unless another stream holds it.
func testVersionDropsVanished(t *testing.T, s store.Interface) {
	x, y, z := Finding("192.0.2.10", 5, 1), Finding("192.0.2.11", 3, 1), Finding("192.0.2.12", 2, 1)
	commit(t, s, store.StreamCommit{Stream: "other", Findings: []finding.Finding{z}})
	commit(t, s, store.StreamCommit{Stream: "w", Version: 1, Findings: []finding.Finding{x, y, z}})
	if got := get(t, s, z.ID); got.Count != 4 {
		t.Fatalf("z count %d, want 4 (2 from each stream)", got.Count)
	}
	y.Count = 7
	res := commit(t, s, store.StreamCommit{Stream: "w", Version: 2, Findings: []finding.Finding{y}})
	if res.Removed != 1 {
		t.Fatalf("version 2: %+v, want one finding removed", res)
	}
	if _, err := s.GetFinding(context.Background(), x.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("x after version 2: %v, want not found", err)
	}
	if got := get(t, s, y.ID); got.Count != 7 {
		t.Fatalf("y count %d, want 7", got.Count)
	}
	if got := get(t, s, z.ID); got.Count != 2 {
		t.Fatalf("z count %d, want 2 (the other stream's only)", got.Count)
	}
	if res := commit(t, s, store.StreamCommit{Stream: "w", Version: 1, Findings: []finding.Finding{x, y, z}}); !res.Stale {
		t.Fatalf("version 1 again: %+v, want stale", res)
	}
	if _, err := s.GetFinding(context.Background(), x.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("x after a stale commit: %v, want not found", err)
	}
}
