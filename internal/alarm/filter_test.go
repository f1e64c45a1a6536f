package alarm

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func ptr(f float64) *float64 { return &f }

func flowLine(src string, bytes int, action string) string {
	return fmt.Sprintf("2 123456789010 eni-0a1b2c3d %s 10.0.1.10 40000 22 6 3 %d 1700000000 1700000060 %s OK", src, bytes, action)
}

func minuteOf(t time.Time) int64 { return t.Unix() / 60 }

func TestMetricFilterCountsAndDefault(t *testing.T) {
	store := NewStore()
	mf := MetricFilter{Name: "rejects", Pattern: flowPattern, MetricName: "Rejects", Namespace: "VPC", Value: "1", DefaultValue: ptr(0)}
	f, err := mf.Compile(store)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	// Minute 0: two rejects and an accept. Minute 1: only accepts.
	// Minute 2: no events at all. Minute 3: one reject.
	f.Observe(t0.Add(5*time.Second), []byte(flowLine("198.51.100.1", 40, "REJECT")))
	f.Observe(t0.Add(50*time.Second), []byte(flowLine("198.51.100.2", 40, "REJECT")))
	f.Observe(t0.Add(59*time.Second), []byte(flowLine("10.0.1.20", 400, "ACCEPT")))
	f.Observe(t0.Add(61*time.Second), []byte(flowLine("10.0.1.20", 400, "ACCEPT")))
	f.Observe(t0.Add(62*time.Second), []byte(flowLine("10.0.1.20", 400, "ACCEPT")))
	f.Observe(t0.Add(3*time.Minute+1*time.Second), []byte(flowLine("198.51.100.3", 40, "REJECT")))

	key := SeriesKey{Namespace: "VPC", MetricName: "Rejects"}
	m0 := minuteOf(t0)
	tests := []struct {
		minute   int64
		present  bool
		sum, cnt float64
	}{
		{m0, true, 2, 2},
		{m0 + 1, true, 0, 1}, // events, no match: the default value, once
		{m0 + 2, false, 0, 0},
		{m0 + 3, true, 1, 1},
	}
	for _, tt := range tests {
		agg, ok := store.Aggregate(key, tt.minute, tt.minute+1)
		if ok != tt.present {
			t.Errorf("minute %d: present %v, want %v", tt.minute-m0, ok, tt.present)
			continue
		}
		if !ok {
			continue
		}
		if agg.Sum != tt.sum || agg.Count != tt.cnt {
			t.Errorf("minute %d: sum %v count %v, want %v %v", tt.minute-m0, agg.Sum, agg.Count, tt.sum, tt.cnt)
		}
	}
	if ev, m := f.Counts(); ev != 6 || m != 3 {
		t.Errorf("counts %d/%d, want 6/3", ev, m)
	}
}

func TestMetricFilterWithoutDefault(t *testing.T) {
	store := NewStore()
	f, err := MetricFilter{Name: "r", Pattern: flowPattern, MetricName: "Rejects", Namespace: "VPC"}.Compile(store)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f.Observe(t0, []byte(flowLine("10.0.1.20", 400, "ACCEPT")))
	if _, ok := store.Aggregate(SeriesKey{Namespace: "VPC", MetricName: "Rejects"}, minuteOf(t0), minuteOf(t0)+1); ok {
		t.Error("a minute without matches published data although no default value is set")
	}
}

func TestMetricFilterFieldValueAndDimensions(t *testing.T) {
	store := NewStore()
	mf := MetricFilter{
		Name: "bytes", Pattern: flowPattern, MetricName: "RejectedBytes", Namespace: "VPC",
		Value: "$bytes", Dimensions: map[string]string{"Source": "$source", "Port": "$7"}, Unit: "Bytes",
	}
	f, err := mf.Compile(store)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f.Observe(t0, []byte(flowLine("198.51.100.1", 40, "REJECT")))
	f.Observe(t0.Add(time.Second), []byte(flowLine("198.51.100.1", 60, "REJECT")))
	f.Observe(t0.Add(2*time.Second), []byte(flowLine("198.51.100.2", 1000, "REJECT")))
	f.Observe(t0.Add(3*time.Second), []byte(flowLine("198.51.100.2", 1000, "ACCEPT")))
	// A non-numeric value field publishes nothing.
	f.Observe(t0.Add(4*time.Second), []byte(strings.Replace(flowLine("198.51.100.3", 1, "REJECT"), " 1 1700000000", " - 1700000000", 1)))

	keys := store.Series("VPC", "RejectedBytes")
	if len(keys) != 2 {
		t.Fatalf("series %v, want 2", keys)
	}
	want := map[string]float64{
		DimensionsKey(map[string]string{"Source": "198.51.100.1", "Port": "22"}): 100,
		DimensionsKey(map[string]string{"Source": "198.51.100.2", "Port": "22"}): 1000,
	}
	for _, k := range keys {
		agg, _ := store.Aggregate(k, minuteOf(t0), minuteOf(t0)+1)
		if w, ok := want[k.Dimensions]; !ok || agg.Sum != w {
			t.Errorf("series %q: sum %v, want %v (known %v)", k.Dimensions, agg.Sum, w, ok)
		}
		if m := DimensionsMap(k.Dimensions); m["Port"] != "22" {
			t.Errorf("DimensionsMap(%q) = %v", k.Dimensions, m)
		}
	}
	// Repeated dimension sets do not allocate new keys.
	line := []byte(flowLine("198.51.100.1", 40, "REJECT"))
	if n := testing.AllocsPerRun(100, func() { f.Observe(t0, line) }); n != 0 {
		t.Errorf("Observe allocates %v times per known dimension set", n)
	}
}

func TestMetricFilterDimensionLimit(t *testing.T) {
	store := NewStore()
	f, err := MetricFilter{Name: "bysrc", Pattern: flowPattern, MetricName: "R", Namespace: "VPC",
		Dimensions: map[string]string{"Source": "$source"}}.Compile(store)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := 0; i < MaxDimensionValues-1; i++ {
		f.Observe(t0, []byte(flowLine(fmt.Sprintf("198.51.%d.%d", i/256, i%256), 40, "REJECT")))
	}
	if off, _ := f.Disabled(); off {
		t.Fatal("disabled before the limit")
	}
	f.Observe(t0, []byte(flowLine("203.0.113.1", 40, "REJECT")))
	off, why := f.Disabled()
	if !off || !strings.Contains(why, "1000") {
		t.Fatalf("not disabled at %d values: %v %q", MaxDimensionValues, off, why)
	}
	if n := len(store.Series("VPC", "R")); n != MaxDimensionValues-1 {
		t.Errorf("%d series, want %d", n, MaxDimensionValues-1)
	}
	f.Observe(t0, []byte(flowLine("198.51.0.1", 40, "REJECT")))
	if ev, _ := f.Counts(); ev != MaxDimensionValues {
		t.Errorf("disabled filter still counts events: %d", ev)
	}
}

func TestMetricFilterJSONValue(t *testing.T) {
	store := NewStore()
	f, err := MetricFilter{Name: "lat", Pattern: `{ $.latency = * }`, MetricName: "Latency", Namespace: "App",
		Value: "$.latency", Dimensions: map[string]string{"Code": "$.code"}}.Compile(store)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f.Observe(t0, []byte(`{"latency": 120, "code": "E1"}`))
	f.Observe(t0, []byte(`{"latency": 80, "code": "E1"}`))
	f.Observe(t0, []byte(`{"code": "E1"}`))
	agg, ok := store.Aggregate(SeriesKey{Namespace: "App", MetricName: "Latency", Dimensions: "Code=E1"}, minuteOf(t0), minuteOf(t0)+1)
	if !ok || agg.Sum != 200 || agg.Count != 2 {
		t.Errorf("got %+v %v, want sum 200 over 2", agg, ok)
	}
}

func TestMetricFilterValidation(t *testing.T) {
	base := MetricFilter{Name: "x", Pattern: flowPattern, MetricName: "M", Namespace: "N", Value: "1"}
	cases := []struct {
		mut  func(*MetricFilter)
		want string
	}{
		{func(m *MetricFilter) { m.Pattern = "[a," }, "column"},
		{func(m *MetricFilter) { m.Value = "$nosuch" }, "not a field"},
		{func(m *MetricFilter) { m.Value = "one" }, "neither a number"},
		{func(m *MetricFilter) { m.Pattern = "ERROR"; m.Value = "$bytes" }, "only space-delimited and JSON"},
		{func(m *MetricFilter) { m.Value = "$.bytes" }, "JSON selector"},
		{func(m *MetricFilter) { m.Dimensions = map[string]string{"a": "$source"}; m.DefaultValue = ptr(0) }, "default value"},
		{func(m *MetricFilter) {
			m.Dimensions = map[string]string{"a": "$source", "b": "$destination", "c": "$eni", "d": "$account"}
		}, "at most 3"},
		{func(m *MetricFilter) { m.Dimensions = map[string]string{"a": "source"} }, "$field reference"},
		{func(m *MetricFilter) { m.Namespace = "" }, "required"},
	}
	for _, c := range cases {
		m := base
		c.mut(&m)
		err := m.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `"x"`) {
			t.Errorf("got %v, want error naming the filter and containing %q", err, c.want)
		}
	}
}

func TestStoreRetention(t *testing.T) {
	store := NewStore()
	store.Retention = time.Hour
	key := SeriesKey{Namespace: "n", MetricName: "m"}
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5*60; i++ {
		store.Put(key, "", t0.Add(time.Duration(i)*time.Minute), 1)
	}
	sr := store.series[key]
	if n := len(sr.minutes); n > 60+16+1 {
		t.Errorf("%d minutes kept with a one-hour retention", n)
	}
	// Data older than the retention is refused.
	store.Put(key, "", t0, 1)
	if _, ok := store.Aggregate(key, minuteOf(t0), minuteOf(t0)+1); ok {
		t.Error("data older than the retention was stored")
	}
}

func BenchmarkFilterObserve(b *testing.B) {
	store := NewStore()
	f, err := MetricFilter{Name: "r", Pattern: flowPattern, MetricName: "R", Namespace: "VPC", DefaultValue: ptr(0)}.Compile(store)
	if err != nil {
		b.Fatal(err)
	}
	lines := [][]byte{[]byte(rejectLine), []byte(acceptLine), []byte(nodataLine)}
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.Observe(t0.Add(time.Duration(i)*time.Millisecond), lines[i%3])
	}
}

func BenchmarkPatternMatch(b *testing.B) {
	p := MustParseFilterPattern(flowPattern)
	line := []byte(rejectLine)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		p.Match(line)
	}
}
