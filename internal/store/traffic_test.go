package store

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"
)

// TestTrafficAddedTrimmedPruned: counts add up across commits; each
// minute's top table keeps its TrafficTopKeep heaviest keys; the minutes
// before PruneBefore go.
func TestTrafficAddedTrimmedPruned(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	m := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	old := m.Add(-8 * 24 * time.Hour)
	var top []TrafficTop
	for i := range TrafficTopKeep + 20 { // key i counted i+1 times
		top = append(top, TrafficTop{Minute: m, Kind: TopDstPorts, Key: fmt.Sprint(i), Count: int64(i + 1), Bytes: 10})
	}
	top = append(top, TrafficTop{Minute: m, Kind: TopTalkers, Key: "a b", Count: 1, Bytes: 7}, TrafficTop{Minute: old, Kind: TopDstPorts, Key: "22", Count: 5})
	d := TrafficDelta{Counts: []TrafficCount{{Minute: m, Source: "k", Action: "ACCEPT", Records: 3, Bytes: 30}, {Minute: old, Source: "k", Action: "ACCEPT", Records: 9}}, Top: top}
	for range 2 {
		if _, err := s.CommitStream(ctx, StreamCommit{Stream: "serve", Traffic: &d}); err != nil {
			t.Fatal(err)
		}
	}
	bins, err := s.TrafficSeries(ctx, m.Add(-time.Hour), m.Add(time.Hour), time.Minute)
	if err != nil || len(bins) != 1 || bins[0].Records != 6 || bins[0].Bytes != 60 || !bins[0].Time.Equal(m) {
		t.Fatalf("series %+v, %v: want 6 records and 60 bytes at %s", bins, err, m)
	}
	ports, err := s.TrafficTops(ctx, TopDstPorts, m, m.Add(time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != TrafficTopKeep || ports[0].Key != fmt.Sprint(TrafficTopKeep+19) || ports[0].Count != 2*int64(TrafficTopKeep+20) || ports[len(ports)-1].Key != "20" {
		t.Errorf("kept %d ports, first %+v, last %+v: want the %d heaviest, counts doubled", len(ports), ports[0], ports[len(ports)-1], TrafficTopKeep)
	}
	if tt, _ := s.TrafficTops(ctx, TopTalkers, m, m.Add(time.Minute), 5); len(tt) != 1 || tt[0].Bytes != 14 {
		t.Errorf("talkers %+v", tt)
	}
	// Pruning drops the old minute only.
	if _, err := s.CommitStream(ctx, StreamCommit{Stream: "serve", Traffic: &TrafficDelta{PruneBefore: m.Add(-7 * 24 * time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	all, _ := s.TrafficBySource(ctx, time.Unix(0, 0), m.Add(time.Hour))
	if len(all) != 1 || all[0].Records != 6 {
		t.Errorf("after pruning: %+v, want only the recent minute", all)
	}
	if p, _ := s.TrafficTops(ctx, TopDstPorts, time.Unix(0, 0), old.Add(time.Minute), 0); len(p) != 0 {
		t.Errorf("the old minute's top rows stayed: %+v", p)
	}
}

// TestPortSetEstimate: the sketch counts distinct ports within three
// standard errors of linear counting, and merging two sets counts their
// union.
func TestPortSetEstimate(t *testing.T) {
	within := func(got int64, n int) bool {
		tl := float64(n) / 512
		se := math.Sqrt(512*(math.Exp(tl)-tl-1)) / float64(n)
		return math.Abs(float64(got)-float64(n)) <= math.Max(0.5, 3*se*float64(n))
	}
	for _, n := range []int{1, 6, 15, 100, 1000, 2000} {
		var a, b PortSet
		for p := range n {
			a.Add(uint16(p))
			a.Add(uint16(p)) // twice: counted once
			b.Add(uint16(p + n/2))
		}
		got := a.Estimate()
		if !within(got, n) {
			t.Errorf("%d ports estimated %d", n, got)
		}
		a.Merge(b)
		want := n + n/2
		if got := a.Estimate(); !within(got, want) {
			t.Errorf("union of %d ports estimated %d", want, got)
		}
	}
}
