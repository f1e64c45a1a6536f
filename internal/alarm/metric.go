package alarm

import (
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// maxValuesPerMinute bounds the samples a datum keeps for percentiles; beyond
// it the datum keeps a uniform random sample (reservoir sampling).
const maxValuesPerMinute = 2048

// DefaultRetention is how much metric history a Store keeps: CloudWatch limits
// EvaluationPeriods × Period to one day, and evaluation looks a little further
// back than that.
const DefaultRetention = 26 * time.Hour

// Datum is the aggregate of one minute of one metric series: CloudWatch's
// statistic set (SampleCount, Sum, Minimum, Maximum) plus, when percentiles
// are needed, the sample values.
type Datum struct {
	Count    float64
	Sum      float64
	Min, Max float64
	values   []float64
	seen     uint64 // values offered, for reservoir sampling
	rng      uint64
}

func (d *Datum) add(v float64, keep bool) {
	if d.Count == 0 {
		d.Min, d.Max = v, v
	} else {
		d.Min = math.Min(d.Min, v)
		d.Max = math.Max(d.Max, v)
	}
	d.Count++
	d.Sum += v
	if !keep {
		return
	}
	d.seen++
	if len(d.values) < maxValuesPerMinute {
		d.values = append(d.values, v)
		return
	}
	// Algorithm R with a xorshift generator seeded per datum.
	if d.rng == 0 {
		d.rng = 0x9E3779B97F4A7C15
	}
	d.rng ^= d.rng << 13
	d.rng ^= d.rng >> 7
	d.rng ^= d.rng << 17
	if j := d.rng % d.seen; j < maxValuesPerMinute {
		d.values[j] = v
	}
}

// SeriesKey names one metric series: namespace, metric name and dimensions.
type SeriesKey struct {
	Namespace  string
	MetricName string
	// Dimensions in canonical form: "Name=Value" pairs sorted by name,
	// joined with "\x00"; "" when the series has no dimensions.
	Dimensions string
}

// DimensionsKey returns the canonical form of a dimension set.
func DimensionsKey(dims map[string]string) string {
	if len(dims) == 0 {
		return ""
	}
	names := make([]string, 0, len(dims))
	for k := range dims {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(dims[k])
	}
	return b.String()
}

// DimensionsMap parses the canonical form back into a map.
func DimensionsMap(key string) map[string]string {
	if key == "" {
		return nil
	}
	out := map[string]string{}
	for _, p := range strings.Split(key, "\x00") {
		k, v, _ := strings.Cut(p, "=")
		out[k] = v
	}
	return out
}

type series struct {
	key     SeriesKey
	unit    string
	minutes map[int64]*Datum // Unix minute → datum
	// defaults: minutes that saw log events but no match, with the filter's
	// default value to publish when no sample arrives for that minute.
	defaults map[int64]float64
	newest   int64
}

// Store holds per-minute metric data published by metric filters, for alarms
// to read. It is safe for concurrent use.
type Store struct {
	// Retention is how far behind the newest minute of a series data is kept;
	// 0 means DefaultRetention.
	Retention time.Duration

	mu          sync.Mutex
	series      map[SeriesKey]*series
	percentiles map[[2]string]bool // namespace, metric name → keep values
}

// NewStore returns an empty metric store.
func NewStore() *Store {
	return &Store{series: map[SeriesKey]*series{}, percentiles: map[[2]string]bool{}}
}

// KeepValues makes the store keep sample values (bounded) for a metric so that
// percentile statistics can be computed; alarms on extended statistics call it.
func (s *Store) KeepValues(namespace, metricName string) {
	s.mu.Lock()
	s.percentiles[[2]string{namespace, metricName}] = true
	s.mu.Unlock()
}

func (s *Store) getLocked(k SeriesKey, unit string) *series {
	sr := s.series[k]
	if sr == nil {
		sr = &series{key: k, unit: unit, minutes: map[int64]*Datum{}, newest: math.MinInt64}
		s.series[k] = sr
	}
	return sr
}

// Put records one sample value for the minute containing ts.
func (s *Store) Put(k SeriesKey, unit string, ts time.Time, v float64) {
	s.mu.Lock()
	s.putLocked(k, unit, ts.Unix(), v)
	s.mu.Unlock()
}

func floorMinute(unix int64) int64 {
	m := unix / 60
	if unix < 0 && unix%60 != 0 {
		m--
	}
	return m
}

func (s *Store) putLocked(k SeriesKey, unit string, unix int64, v float64) {
	sr := s.getLocked(k, unit)
	m := floorMinute(unix)
	d := sr.minutes[m]
	if d == nil {
		if s.tooOld(sr, m) {
			return
		}
		d = &Datum{}
		sr.minutes[m] = d
		s.advance(sr, m)
	}
	d.add(v, s.percentiles[[2]string{k.Namespace, k.MetricName}])
}

// putDefault notes that the minute containing ts saw log events, so that def
// is published for it if no sample arrives.
func (s *Store) putDefaultLocked(k SeriesKey, unit string, unix int64, def float64) {
	sr := s.getLocked(k, unit)
	m := floorMinute(unix)
	if _, ok := sr.defaults[m]; ok || s.tooOld(sr, m) {
		return
	}
	if sr.defaults == nil {
		sr.defaults = map[int64]float64{}
	}
	sr.defaults[m] = def
	s.advance(sr, m)
}

func (s *Store) retentionMinutes() int64 {
	r := s.Retention
	if r <= 0 {
		r = DefaultRetention
	}
	return int64(r / time.Minute)
}

func (s *Store) tooOld(sr *series, m int64) bool {
	return sr.newest != math.MinInt64 && m < sr.newest-s.retentionMinutes()
}

// advance moves the series' newest minute and prunes data that fell out of
// retention (amortised: pruning runs when the newest minute moves on).
func (s *Store) advance(sr *series, m int64) {
	if m <= sr.newest {
		return
	}
	sr.newest = m
	cut := m - s.retentionMinutes()
	if m%16 != 0 { // prune every 16 minutes of progress
		return
	}
	for t := range sr.minutes {
		if t < cut {
			delete(sr.minutes, t)
		}
	}
	for t := range sr.defaults {
		if t < cut {
			delete(sr.defaults, t)
		}
	}
}

// Series returns the keys of all series of a metric, sorted by dimensions.
func (s *Store) Series(namespace, metricName string) []SeriesKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SeriesKey
	for k := range s.series {
		if k.Namespace == namespace && k.MetricName == metricName {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dimensions < out[j].Dimensions })
	return out
}

// Aggregate returns the aggregate of a series over the minutes [from, to)
// (Unix minutes), and whether any data (samples or default values) exists.
func (s *Store) Aggregate(k SeriesKey, from, to int64) (Datum, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sr := s.series[k]
	var out Datum
	if sr == nil {
		return out, false
	}
	any := false
	merge := func(d *Datum) {
		if d.Count == 0 {
			return
		}
		if !any || d.Min < out.Min {
			out.Min = d.Min
		}
		if !any || d.Max > out.Max {
			out.Max = d.Max
		}
		out.Count += d.Count
		out.Sum += d.Sum
		out.values = append(out.values, d.values...)
		any = true
	}
	for m := from; m < to; m++ {
		if d := sr.minutes[m]; d != nil && d.Count > 0 {
			merge(d)
			continue
		}
		if def, ok := sr.defaults[m]; ok {
			merge(&Datum{Count: 1, Sum: def, Min: def, Max: def, values: []float64{def}})
		}
	}
	return out, any
}

// Statistic computes a CloudWatch statistic over an aggregate: Sum, Average,
// Minimum, Maximum, SampleCount, or a percentile pNN / pNN.N.
func (d Datum) Statistic(stat string) (float64, bool) {
	if d.Count == 0 {
		return 0, false
	}
	switch stat {
	case "Sum":
		return d.Sum, true
	case "Average":
		return d.Sum / d.Count, true
	case "Minimum":
		return d.Min, true
	case "Maximum":
		return d.Max, true
	case "SampleCount":
		return d.Count, true
	}
	if p, ok := parsePercentile(stat); ok {
		if len(d.values) == 0 {
			return 0, false
		}
		v := append([]float64(nil), d.values...)
		sort.Float64s(v)
		return nearestRank(v, p), true
	}
	return 0, false
}

// nearestRank returns the p-th percentile (0 < p <= 100) of sorted values by
// the nearest-rank method.
func nearestRank(sorted []float64, p float64) float64 {
	r := int(math.Ceil(p / 100 * float64(len(sorted))))
	if r < 1 {
		r = 1
	}
	if r > len(sorted) {
		r = len(sorted)
	}
	return sorted[r-1]
}

// parsePercentile parses "p99" or "p99.9" into 99 or 99.9.
func parsePercentile(s string) (float64, bool) {
	if len(s) < 2 || (s[0] != 'p' && s[0] != 'P') {
		return 0, false
	}
	f, ok := parseNumber([]byte(s[1:]))
	if !ok || f <= 0 || f > 100 || s[1] == '+' || s[1] == '-' {
		return 0, false
	}
	return f, true
}
