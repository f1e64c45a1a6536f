package finding

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestMerge(t *testing.T) {
	actor := netip.MustParseAddr("198.51.100.23")
	target := netip.MustParseAddr("10.0.1.10")
	old := Finding{
		ID: ID("Recon:EC2/Portscan", actor, target.String()), Type: "Recon:EC2/Portscan",
		Severity: 5, Title: "old title", Description: "old description",
		Actor:  Actor{IP: actor, Direction: Inbound},
		Target: Target{IP: target, Ports: []uint16{22, 23}},
		Count:  10, FirstSeen: t0, LastSeen: t0.Add(2 * time.Minute),
		Archived: true, Feedback: NotUseful,
		Evidence: map[string]any{"rejected": 9, "distinct_ports": 2, "ratio": 0.9, "min_interval": 3, "only_old": "x"},
	}
	new := Finding{
		ID: old.ID, Type: old.Type, Severity: 3, Title: "new title",
		Actor:  Actor{IP: actor, Direction: Inbound, InterfaceID: "eni-1"},
		Target: Target{IP: target, Ports: []uint16{443, 22, 80}, InstanceID: "i-1"},
		Count:  5, FirstSeen: t0.Add(-time.Minute), LastSeen: t0.Add(time.Minute),
		Evidence: map[string]any{"rejected": int64(4), "distinct_ports": 3, "ratio": 0.5, "min_interval": 1, "bytes_out": 1.5},
	}
	oldCopy := old
	oldCopy.Target.Ports = slices.Clone(old.Target.Ports)
	m := Merge(old, new)

	if m.Count != 15 {
		t.Errorf("count = %d, want 10+5", m.Count)
	}
	if !m.FirstSeen.Equal(t0.Add(-time.Minute)) || !m.LastSeen.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("first/last = %s/%s, want the earlier first and the later last", m.FirstSeen, m.LastSeen)
	}
	if m.Severity != 5 {
		t.Errorf("severity = %v, want the max, 5", m.Severity)
	}
	if m.Title != "new title" || m.Description != "old description" {
		t.Errorf("title/description = %q/%q", m.Title, m.Description)
	}
	if !m.Archived || m.Feedback != NotUseful {
		t.Errorf("archived/feedback = %v/%q, want kept from old", m.Archived, m.Feedback)
	}
	if !slices.Equal(m.Target.Ports, []uint16{22, 23, 80, 443}) {
		t.Errorf("ports = %v", m.Target.Ports)
	}
	if m.Actor.InterfaceID != "eni-1" || m.Target.InstanceID != "i-1" {
		t.Errorf("ids not filled in: %+v %+v", m.Actor, m.Target)
	}
	want := map[string]any{
		"rejected":       int64(13), // sum
		"distinct_ports": int64(3),  // max
		"ratio":          0.5,       // last
		"min_interval":   int64(1),  // min
		"only_old":       "x",
		"bytes_out":      1.5,
	}
	if !reflect.DeepEqual(m.Evidence, want) {
		t.Errorf("evidence = %#v\nwant %#v", m.Evidence, want)
	}
	// Inputs untouched.
	if !reflect.DeepEqual(old.Target.Ports, oldCopy.Target.Ports) || old.Evidence["rejected"] != 9 {
		t.Errorf("Merge modified its input: %v %v", old.Target.Ports, old.Evidence)
	}
}

func TestMergeZeroTimesAndNilEvidence(t *testing.T) {
	a := Finding{Count: 1, LastSeen: t0}
	b := Finding{Count: 2, FirstSeen: t0.Add(time.Hour), LastSeen: t0.Add(time.Hour)}
	m := Merge(a, b)
	if !m.FirstSeen.Equal(t0.Add(time.Hour)) {
		t.Errorf("first seen = %s: a zero time is unknown, not the earliest", m.FirstSeen)
	}
	if m.Evidence != nil || m.Target.Ports != nil {
		t.Errorf("evidence/ports = %v/%v, want nil", m.Evidence, m.Target.Ports)
	}
}

func TestMergeAfterJSONRoundTrip(t *testing.T) {
	// A stored finding comes back from JSON with float64 numbers.
	var old Finding
	if err := json.Unmarshal([]byte(`{"count":3,"evidence":{"packets":100,"peak_pps":7.5}}`), &old); err != nil {
		t.Fatal(err)
	}
	m := Merge(old, Finding{Count: 1, Evidence: map[string]any{"packets": uint64(20), "peak_pps": 9.25}})
	if m.Evidence["packets"] != int64(120) || m.Evidence["peak_pps"] != 9.25 {
		t.Errorf("evidence = %#v", m.Evidence)
	}
}

func TestMergePortCap(t *testing.T) {
	var a, b []uint16
	for p := 1; p <= 80; p++ {
		a = append(a, uint16(p))
	}
	for p := 60; p <= 150; p++ {
		b = append(b, uint16(p))
	}
	m := Merge(Finding{Target: Target{Ports: a}}, Finding{Target: Target{Ports: b}})
	if len(m.Target.Ports) != MaxPorts || m.Target.Ports[0] != 1 || m.Target.Ports[MaxPorts-1] != MaxPorts {
		t.Errorf("ports = %d of them, %v…%v; want 1…%d", len(m.Target.Ports), m.Target.Ports[0], m.Target.Ports[len(m.Target.Ports)-1], MaxPorts)
	}
	if m.Evidence["ports_truncated"] != true {
		t.Errorf("ports_truncated not set: %v", m.Evidence)
	}
}

func TestEvidenceRuleFor(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want EvidenceRule
	}{
		{"rejected", EvidenceSum},
		{"bytes", EvidenceSum},
		{"bytes_out", EvidenceSum},
		{"sent_bytes", EvidenceSum},
		{"flow_count", EvidenceSum},
		{"total_sources", EvidenceSum},
		{"distinct_ports", EvidenceMax},
		{"distinct_hosts", EvidenceMax},
		{"peak_pps", EvidenceMax},
		{"rate_max", EvidenceMax},
		{"min_interval", EvidenceMin},
		// Declared keys follow the table, not the name patterns.
		{"baseline_packets", EvidenceLast},
		{"baseline_bytes", EvidenceLast},
		{"heavy_sources", EvidenceMax},
		{"flood_packets", EvidenceSum},
		{"top_sources", EvidenceLast},
		{"baseline", EvidenceLast},
		{"ratio", EvidenceLast},
		{"threshold", EvidenceLast},
	} {
		if got := EvidenceRuleFor(tc.key); got != tc.want {
			t.Errorf("EvidenceRuleFor(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}

func TestCombineNonNumbers(t *testing.T) {
	if got := combine(EvidenceSum, "a", 3); got != 3 {
		t.Errorf("sum of a string and a number = %v, want the new value", got)
	}
	if got := combine(EvidenceMax, 2, "b"); got != "b" {
		t.Errorf("max with a string = %v, want the new value", got)
	}
}

// TestMergeBaselineIsNotSummed: a baseline is a learned mean, not a count of
// activity; merging two findings keeps the newer baseline (the name ends in
// _packets, which the naming rules would sum: 1000 + 1000 = 2000).
func TestMergeBaselineIsNotSummed(t *testing.T) {
	old := Finding{Count: 1, Evidence: map[string]any{"baseline_packets": int64(1000), "baseline_bytes": int64(5000), "packets": int64(30000)}}
	new := Finding{Count: 1, Evidence: map[string]any{"baseline_packets": int64(1200), "baseline_bytes": int64(5000), "packets": int64(20000)}}
	m := Merge(old, new)
	want := map[string]any{"baseline_packets": int64(1200), "baseline_bytes": int64(5000), "packets": int64(50000)}
	if !reflect.DeepEqual(m.Evidence, want) {
		t.Errorf("evidence = %v, want %v", m.Evidence, want)
	}
}

// TestEvidenceTable: the table is sorted by key, declares each key once,
// documents each, and CombineInt agrees with Merge on every declared key.
func TestEvidenceTable(t *testing.T) {
	fs := EvidenceFields()
	for i, f := range fs {
		if i > 0 && fs[i-1].Key >= f.Key {
			t.Errorf("%q after %q: keep the table sorted, each key once", f.Key, fs[i-1].Key)
		}
		if f.Doc == "" {
			t.Errorf("%q has no doc", f.Key)
		}
		if g, ok := LookupEvidence(f.Key); !ok || g != f {
			t.Errorf("LookupEvidence(%q) = %v, %v", f.Key, g, ok)
		}
		if EvidenceRuleFor(string(f.Key)) != f.Rule {
			t.Errorf("EvidenceRuleFor(%q) disagrees with the table", f.Key)
		}
		m := Merge(Finding{Evidence: map[string]any{string(f.Key): int64(7)}}, Finding{Evidence: map[string]any{string(f.Key): int64(3)}})
		if got, want := m.Evidence[string(f.Key)], CombineInt(f.Rule, 7, 3); got != want {
			t.Errorf("%q: Merge gives %v, CombineInt %v", f.Key, got, want)
		}
	}
	if _, ok := LookupEvidence("no_such_key"); ok {
		t.Error("an undeclared key was found")
	}
}

// TestNoActorJSON: a finding without a single actor (a distributed flood)
// leaves actor.ip out rather than writing it empty, and reads back.
func TestNoActorJSON(t *testing.T) {
	f := Finding{ID: "x", Type: "Impact:EC2/InboundFlood", Actor: Actor{Direction: Inbound}, Target: Target{IP: netip.MustParseAddr("10.0.1.10")}}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"actor":{"direction":"inbound"}`) {
		t.Errorf("JSON %s: want actor without ip", b)
	}
	var g Finding
	if err := json.Unmarshal(b, &g); err != nil || g.Actor.IP.IsValid() || g.Actor.Direction != Inbound {
		t.Errorf("read back %+v, %v", g.Actor, err)
	}
}
