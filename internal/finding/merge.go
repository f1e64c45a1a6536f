package finding

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"
)

// MaxPorts caps the target ports a finding keeps: a scan over 65,535 ports
// keeps the lowest MaxPorts of them, and Evidence["ports_truncated"] says
// that the list was cut.
const MaxPorts = 100

// EvidenceRule says how Merge combines one evidence number of a stored
// finding with the same number from new activity.
type EvidenceRule int

// Evidence rules.
const (
	// EvidenceLast keeps the new value (a ratio, a threshold, a baseline, a
	// string): the latest observation describes the finding best.
	EvidenceLast EvidenceRule = iota
	// EvidenceSum adds the values: counts of records, packets, bytes,
	// rejects or attempts in disjoint stretches of activity.
	EvidenceSum
	// EvidenceMax keeps the larger value: distinct counts (the union of two
	// sets is at least as large as the larger one; the exact union is not
	// known) and peaks.
	EvidenceMax
	// EvidenceMin keeps the smaller value.
	EvidenceMin
)

// EvidenceKey names one number (or list) in a finding's evidence.
type EvidenceKey string

// The evidence keys flowguard's detectors write. Each is declared once, with
// how Merge (and the detection engine, across windows) combines it, in
// evidenceFields.
const (
	EvAccepted           EvidenceKey = "accepted"
	EvAttempts           EvidenceKey = "attempts"
	EvBaselineBytes      EvidenceKey = "baseline_bytes"
	EvBaselinePackets    EvidenceKey = "baseline_packets"
	EvBytes              EvidenceKey = "bytes"
	EvDistinctHosts      EvidenceKey = "distinct_hosts"
	EvDistinctPorts      EvidenceKey = "distinct_ports"
	EvDistinctRemotes    EvidenceKey = "distinct_remotes"
	EvDistinctSources    EvidenceKey = "distinct_sources"
	EvDistinctWindows    EvidenceKey = "distinct_windows"
	EvFloodPackets       EvidenceKey = "flood_packets"
	EvFlows              EvidenceKey = "flows"
	EvHeavySources       EvidenceKey = "heavy_sources"
	EvHorizonSeconds     EvidenceKey = "horizon_seconds"
	EvLearnedPorts       EvidenceKey = "learned_ports"
	EvPackets            EvidenceKey = "packets"
	EvPacketsIn          EvidenceKey = "packets_in"
	EvPeakWindowAttempts EvidenceKey = "peak_window_attempts"
	EvPeakWindowRejects  EvidenceKey = "peak_window_rejects"
	EvPortsTruncated     EvidenceKey = "ports_truncated"
	EvProbes             EvidenceKey = "probes"
	EvRecords            EvidenceKey = "records"
	EvRejected           EvidenceKey = "rejected"
	EvSourcesPrefix      EvidenceKey = "sources_prefix"
	EvSteadySources      EvidenceKey = "steady_sources"
	EvTopSources         EvidenceKey = "top_sources"
)

// EvidenceField declares one evidence key: how two values of it combine,
// and what it means.
type EvidenceField struct {
	Key  EvidenceKey
	Rule EvidenceRule
	Doc  string
}

// evidenceFields is the one table of evidence keys, in the manner of the
// flow-log fields of flowlog/field.go. Merge and the detection engine both
// combine values by it; keys not in it fall back to the naming rules of
// EvidenceRuleFor (for evidence written by other tools).
var evidenceFields = []EvidenceField{
	{EvAccepted, EvidenceSum, "accepted records"},
	{EvAttempts, EvidenceSum, "connection attempts (distinct client ports)"},
	{EvBaselineBytes, EvidenceLast, "the host's learned usual largest per-destination volume, as of the latest window"},
	{EvBaselinePackets, EvidenceLast, "the host's learned usual inbound packets per window, as of the latest window"},
	{EvBytes, EvidenceSum, "bytes"},
	{EvDistinctHosts, EvidenceMax, "distinct hosts (the union of two windows' sets is at least the larger)"},
	{EvDistinctPorts, EvidenceMax, "distinct ports"},
	{EvDistinctRemotes, EvidenceMax, "distinct remote hosts"},
	{EvDistinctSources, EvidenceMax, "distinct sources"},
	{EvDistinctWindows, EvidenceMax, "distinct windows with activity within the horizon"},
	{EvFloodPackets, EvidenceSum, "inbound packets of a flood, less those of steady sources"},
	{EvFlows, EvidenceSum, "flows (records not relayed by a middlebox)"},
	{EvHeavySources, EvidenceMax, "sources that sent heavy_source_packets in one window"},
	{EvHorizonSeconds, EvidenceLast, "the horizon of a long-horizon rule"},
	{EvLearnedPorts, EvidenceMax, "server ports the host used while learning"},
	{EvPackets, EvidenceSum, "packets"},
	{EvPacketsIn, EvidenceSum, "packets received in answer"},
	{EvPeakWindowAttempts, EvidenceMax, "attempts in the busiest pair of windows"},
	{EvPeakWindowRejects, EvidenceMax, "rejects in the busiest pair of windows"},
	{EvPortsTruncated, EvidenceLast, "target.ports was cut to its lowest MaxPorts"},
	{EvProbes, EvidenceSum, "failed or payload-less attempts"},
	{EvRecords, EvidenceSum, "records"},
	{EvRejected, EvidenceSum, "rejected records"},
	{EvSourcesPrefix, EvidenceLast, "the network that carries most of a flood's packets"},
	{EvSteadySources, EvidenceMax, "sources left out of a flood because their volume matched their own history"},
	{EvTopSources, EvidenceLast, "a flood's heaviest sources, each with its packets and share, in the latest window"},
}

var evidenceByKey = func() map[EvidenceKey]EvidenceField {
	m := make(map[EvidenceKey]EvidenceField, len(evidenceFields))
	for _, f := range evidenceFields {
		m[f.Key] = f
	}
	return m
}()

// LookupEvidence returns the declaration of key, if flowguard declares it.
func LookupEvidence(key EvidenceKey) (EvidenceField, bool) {
	f, ok := evidenceByKey[key]
	return f, ok
}

// EvidenceFields returns the declared evidence keys, sorted by key.
func EvidenceFields() []EvidenceField { return slices.Clone(evidenceFields) }

// sumKeys are evidence names that are counts of events, summed on merge.
var sumKeys = map[string]bool{
	"count": true, "records": true, "flows": true, "connections": true,
	"attempts": true, "rejected": true, "accepted": true, "packets": true,
	"bytes": true, "probes": true, "events": true,
}

// EvidenceRuleFor returns how Merge combines the evidence value named key:
// the rule of its declaration in the evidence table (LookupEvidence), else,
// for keys flowguard does not declare (evidence of other tools), a rule
// from the name:
//
//   - distinct_*, max_*, peak_*, *_max, *_peak: the larger value (EvidenceMax);
//   - min_*, *_min: the smaller value (EvidenceMin);
//   - total_*, sum_*, bytes_*, packets_*, *_total, *_count, *_sum, *_bytes,
//     *_packets, and the plain counts count, records, flows, connections,
//     attempts, rejected, accepted, packets, bytes, probes, events: the sum
//     (EvidenceSum);
//   - anything else, and every value that is not a number: the new value
//     (EvidenceLast).
func EvidenceRuleFor(key string) EvidenceRule {
	if f, ok := evidenceByKey[EvidenceKey(key)]; ok {
		return f.Rule
	}
	switch {
	case hasPrefix(key, "distinct_", "max_", "peak_") || hasSuffix(key, "_max", "_peak"):
		return EvidenceMax
	case hasPrefix(key, "min_") || hasSuffix(key, "_min"):
		return EvidenceMin
	case sumKeys[key] ||
		hasPrefix(key, "total_", "sum_", "bytes_", "packets_") ||
		hasSuffix(key, "_total", "_count", "_sum", "_bytes", "_packets"):
		return EvidenceSum
	}
	return EvidenceLast
}

// CombineInt combines two integer evidence values by rule r, as Merge does
// for numbers: the detection engine uses it to add up windows.
func CombineInt(r EvidenceRule, old, new int64) int64 {
	switch r {
	case EvidenceSum:
		return old + new
	case EvidenceMax:
		return max(old, new)
	case EvidenceMin:
		return min(old, new)
	}
	return new
}

func hasPrefix(s string, ps ...string) bool {
	for _, p := range ps {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func hasSuffix(s string, ps ...string) bool {
	for _, p := range ps {
		if strings.HasSuffix(s, p) {
			return true
		}
	}
	return false
}

// Merge folds new activity into a stored finding with the same id and
// returns the result; neither argument is modified.
//
//   - identity (id, type, actor IP, target IP) and the user's state
//     (archived, feedback) are kept from old;
//   - count is the sum, first_seen the earlier and last_seen the later time
//     (a zero time counts as unknown);
//   - severity is the higher one;
//   - title and description come from new when it has them (they describe
//     the latest activity), else from old;
//   - target ports are the sorted union, capped at MaxPorts;
//   - interface and instance ids are filled in from new where old lacks them;
//   - evidence: keys of either side are kept; a key on both sides is
//     combined by EvidenceRuleFor when both values are numbers, else new's
//     value wins.
func Merge(old, new Finding) Finding {
	m := old
	m.Count = old.Count + new.Count
	m.FirstSeen = minTime(old.FirstSeen, new.FirstSeen)
	m.LastSeen = maxTime(old.LastSeen, new.LastSeen)
	m.Severity = max(old.Severity, new.Severity)
	if new.Title != "" {
		m.Title = new.Title
	}
	if new.Description != "" {
		m.Description = new.Description
	}
	if m.Actor.InterfaceID == "" {
		m.Actor.InterfaceID = new.Actor.InterfaceID
	}
	if m.Actor.InstanceID == "" {
		m.Actor.InstanceID = new.Actor.InstanceID
	}
	if m.Actor.Direction == "" {
		m.Actor.Direction = new.Actor.Direction
	}
	if m.Target.InterfaceID == "" {
		m.Target.InterfaceID = new.Target.InterfaceID
	}
	if m.Target.InstanceID == "" {
		m.Target.InstanceID = new.Target.InstanceID
	}
	ports, cut := UnionPorts(old.Target.Ports, new.Target.Ports, MaxPorts)
	m.Target.Ports = ports
	m.Evidence = mergeEvidence(old.Evidence, new.Evidence)
	if cut {
		if m.Evidence == nil {
			m.Evidence = map[string]any{}
		}
		m.Evidence[string(EvPortsTruncated)] = true
	}
	return m
}

// UnionPorts returns the sorted union of a and b without duplicates, cut to
// the lowest limit ports (limit <= 0: no cut), and whether it was cut. The
// result never shares memory with a or b.
func UnionPorts(a, b []uint16, limit int) ([]uint16, bool) {
	if len(a) == 0 && len(b) == 0 {
		return nil, false
	}
	u := make([]uint16, 0, len(a)+len(b))
	u = append(u, a...)
	u = append(u, b...)
	slices.Sort(u)
	u = slices.Compact(u)
	if limit > 0 && len(u) > limit {
		return u[:limit:limit], true
	}
	return u, false
}

func minTime(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func mergeEvidence(old, new map[string]any) map[string]any {
	if len(old) == 0 && len(new) == 0 {
		return nil
	}
	m := make(map[string]any, len(old)+len(new))
	for k, v := range old {
		m[k] = v
	}
	for k, nv := range new {
		ov, ok := m[k]
		if !ok {
			m[k] = nv
			continue
		}
		m[k] = combine(EvidenceRuleFor(k), ov, nv)
	}
	return m
}

// combine applies rule r to two evidence values. Integers stay integers when
// both sides are integers (in memory, or float64 holding a whole number as
// JSON decoding gives); otherwise the result is a float64.
func combine(r EvidenceRule, a, b any) any {
	if r == EvidenceLast {
		return b
	}
	x, xi, ok1 := number(a)
	y, yi, ok2 := number(b)
	if !ok1 || !ok2 {
		return b
	}
	var z float64
	switch r {
	case EvidenceSum:
		z = x + y
	case EvidenceMax:
		z = max(x, y)
	case EvidenceMin:
		z = min(x, y)
	}
	if xi && yi && z >= math.MinInt64 && z < math.MaxInt64 {
		return int64(z)
	}
	return z
}

// number reads an evidence value as a float64, and says whether it is a
// whole number.
func number(v any) (f float64, whole, ok bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true, true
	case int8:
		return float64(n), true, true
	case int16:
		return float64(n), true, true
	case int32:
		return float64(n), true, true
	case int64:
		return float64(n), true, true
	case uint:
		return float64(n), true, true
	case uint8:
		return float64(n), true, true
	case uint16:
		return float64(n), true, true
	case uint32:
		return float64(n), true, true
	case uint64:
		return float64(n), true, true
	case float32:
		f = float64(n)
	case float64:
		f = n
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return 0, false, false
		}
	default:
		return 0, false, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, false
	}
	return f, f == math.Trunc(f), true
}
