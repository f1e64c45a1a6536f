package alarm

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxDimensions is CloudWatch Logs' limit on dimensions per metric filter.
const MaxDimensions = 3

// MaxDimensionValues is the number of distinct dimension name/value pairs
// after which a metric filter is disabled. CloudWatch Logs: "Amazon might
// disable your metric filter if it generates 1000 different name/value pairs
// for specified dimensions over a certain amount of time"; flowguard counts
// them per hour of event time.
const MaxDimensionValues = 1000

// MetricFilter is a metric filter as configured: CloudWatch Logs'
// AWS::Logs::MetricFilter with its one metric transformation.
type MetricFilter struct {
	Name    string `yaml:"name" json:"name"`
	Pattern string `yaml:"pattern" json:"pattern"`
	// LogGroup is informational (the log group the filter was defined on).
	LogGroup   string `yaml:"log_group,omitempty" json:"log_group,omitempty"`
	MetricName string `yaml:"metric_name" json:"metric_name"`
	Namespace  string `yaml:"namespace" json:"namespace"`
	// Value is the metric value published per match: a number ("1") or a
	// field reference ("$bytes", "$10", "$.latency").
	Value string `yaml:"value" json:"value"`
	// DefaultValue is published for a minute that had log events but no
	// match. Not allowed together with Dimensions.
	DefaultValue *float64 `yaml:"default_value,omitempty" json:"default_value,omitempty"`
	// Dimensions maps a dimension name to a field reference ("$srcaddr").
	Dimensions map[string]string `yaml:"dimensions,omitempty" json:"dimensions,omitempty"`
	Unit       string            `yaml:"unit,omitempty" json:"unit,omitempty"`
}

// Validate checks a metric filter's configuration without a store.
func (mf *MetricFilter) Validate() error {
	_, err := mf.compile(nil)
	return err
}

// Filter is a compiled metric filter publishing into a Store.
type Filter struct {
	spec    MetricFilter
	pat     *Pattern
	store   *Store
	key     SeriesKey // the series when there are no dimensions
	constV  float64
	valRef  ref
	dims    []dimRef // sorted by name
	fields  sync.Pool
	mu      sync.Mutex
	seenDim map[string]struct{} // distinct name/value pairs this hour
	dimHour int64
	keys    map[string]SeriesKey // canonical dimension key → series
	buf     []byte
	off     bool
	offWhy  string
	matched uint64
	events  uint64
}

type dimRef struct {
	name string
	ref  ref
}

// ref is a resolved field reference: a slot, a position or a JSON selector.
type ref struct {
	kind  byte // 0 none, 's' slot, 'p' position, 'j' JSON
	index int
	sel   selector
	text  string
}

// Compile checks the filter and returns it bound to store.
func (mf MetricFilter) Compile(store *Store) (*Filter, error) {
	if store == nil {
		return nil, fmt.Errorf("metric filter %q: no metric store", mf.Name)
	}
	return mf.compile(store)
}

func (mf MetricFilter) compile(store *Store) (*Filter, error) {
	name := mf.Name
	wrap := func(err error) error { return fmt.Errorf("metric filter %q: %w", name, err) }
	pat, err := ParseFilterPattern(mf.Pattern)
	if err != nil {
		return nil, wrap(err)
	}
	if mf.MetricName == "" || mf.Namespace == "" {
		return nil, wrap(fmt.Errorf("metric_name and namespace are required"))
	}
	f := &Filter{spec: mf, pat: pat, store: store, keys: map[string]SeriesKey{}}
	f.key = SeriesKey{Namespace: mf.Namespace, MetricName: mf.MetricName}
	v := strings.TrimSpace(mf.Value)
	if v == "" {
		v = "1"
	}
	if strings.HasPrefix(v, "$") {
		r, err := resolveRef(pat, v)
		if err != nil {
			return nil, wrap(fmt.Errorf("value: %w", err))
		}
		f.valRef = r
	} else {
		n, ok := parseNumber([]byte(v))
		if !ok {
			return nil, wrap(fmt.Errorf("value %q is neither a number nor a $field reference", v))
		}
		f.constV = n
	}
	if len(mf.Dimensions) > MaxDimensions {
		return nil, wrap(fmt.Errorf("%d dimensions; CloudWatch allows at most %d", len(mf.Dimensions), MaxDimensions))
	}
	if len(mf.Dimensions) > 0 && mf.DefaultValue != nil {
		return nil, wrap(fmt.Errorf("a default value cannot be used together with dimensions"))
	}
	for dn, dv := range mf.Dimensions {
		if dn == "" {
			return nil, wrap(fmt.Errorf("empty dimension name"))
		}
		if !strings.HasPrefix(dv, "$") {
			return nil, wrap(fmt.Errorf("dimension %s: value %q must be a $field reference", dn, dv))
		}
		r, err := resolveRef(pat, dv)
		if err != nil {
			return nil, wrap(fmt.Errorf("dimension %s: %w", dn, err))
		}
		f.dims = append(f.dims, dimRef{name: dn, ref: r})
	}
	sort.Slice(f.dims, func(i, j int) bool { return f.dims[i].name < f.dims[j].name })
	f.fields.New = func() any { return &Fields{spans: make([]span, 0, 32)} }
	return f, nil
}

// resolveRef resolves "$name", "$N" or "$.selector" against a pattern.
func resolveRef(p *Pattern, s string) (ref, error) {
	switch {
	case strings.HasPrefix(s, "$."):
		if p.kind != KindJSON {
			return ref{}, fmt.Errorf("%s is a JSON selector but the pattern is %s", s, p.kind)
		}
		sel, err := (&parser{src: s}).selector()
		if err != nil {
			return ref{}, fmt.Errorf("%s: %w", s, err)
		}
		return ref{kind: 'j', sel: sel, text: s}, nil
	case p.kind != KindSpaceDelimited:
		return ref{}, fmt.Errorf("%s names a field, but only space-delimited and JSON patterns have fields", s)
	}
	name := s[1:]
	if n, err := strconv.Atoi(name); err == nil {
		if n < 1 {
			return ref{}, fmt.Errorf("%s: positions start at $1", s)
		}
		return ref{kind: 'p', index: n, text: s}, nil
	}
	for i, sl := range p.slots {
		if sl.name == name {
			return ref{kind: 's', index: i, text: s}, nil
		}
	}
	return ref{}, fmt.Errorf("%s is not a field of the pattern %s", s, p.src)
}

func (r *ref) get(f *Fields) ([]byte, bool) {
	switch r.kind {
	case 's':
		return f.Index(f.pat.position(r.index, len(f.spans)) + 1)
	case 'p':
		return f.Index(r.index)
	case 'j':
		if f.doc == nil {
			return nil, false
		}
		v, ok := r.sel.lookup(f.doc)
		if !ok {
			return nil, false
		}
		t, ok := jsonText(v)
		return []byte(t), ok
	}
	return nil, false
}

// Spec returns the filter's configuration.
func (f *Filter) Spec() MetricFilter { return f.spec }

// Pattern returns the compiled filter pattern.
func (f *Filter) Pattern() *Pattern { return f.pat }

// Disabled reports whether the filter was disabled (too many dimension
// values) and why.
func (f *Filter) Disabled() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.off, f.offWhy
}

// Counts returns how many log events the filter saw and how many matched.
func (f *Filter) Counts() (events, matched uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.events, f.matched
}

// Observe feeds one log event to the filter. A match publishes the metric
// value (per dimension set) into the minute of ts; a minute with events but
// no match publishes the default value, if one is set. A match whose value
// field is not a number publishes nothing. Observe is safe for concurrent use.
func (f *Filter) Observe(ts time.Time, line []byte) {
	fs := f.fields.Get().(*Fields)
	ok := f.pat.MatchFields(line, fs)
	unix := ts.Unix()

	f.mu.Lock()
	defer func() {
		f.mu.Unlock()
		fs.line, fs.doc = nil, nil
		f.fields.Put(fs)
	}()
	if f.off {
		return
	}
	f.events++
	if !ok {
		if f.spec.DefaultValue != nil {
			f.store.mu.Lock()
			f.store.putDefaultLocked(f.key, f.spec.Unit, unix, *f.spec.DefaultValue)
			f.store.mu.Unlock()
		}
		return
	}
	f.matched++
	v := f.constV
	if f.valRef.kind != 0 {
		b, ok := f.valRef.get(fs)
		if !ok {
			return
		}
		if v, ok = parseNumber(b); !ok {
			return
		}
	}
	key := f.key
	if len(f.dims) > 0 {
		var ok bool
		if key, ok = f.dimKey(fs, unix); !ok {
			return
		}
	}
	f.store.mu.Lock()
	f.store.putLocked(key, f.spec.Unit, unix, v)
	f.store.mu.Unlock()
}

// dimKey builds the series key for the matched fields; it allocates only for
// a dimension set not seen before. Called with f.mu held.
func (f *Filter) dimKey(fs *Fields, unix int64) (SeriesKey, bool) {
	f.buf = f.buf[:0]
	for i, d := range f.dims {
		b, ok := d.ref.get(fs)
		if !ok || len(b) == 0 {
			return SeriesKey{}, false
		}
		if i > 0 {
			f.buf = append(f.buf, 0)
		}
		f.buf = append(f.buf, d.name...)
		f.buf = append(f.buf, '=')
		f.buf = append(f.buf, b...)
	}
	if k, ok := f.keys[string(f.buf)]; ok {
		return k, true
	}
	// A new dimension set: count its new name/value pairs this hour.
	hour := unix / 3600
	if hour != f.dimHour || f.seenDim == nil {
		f.dimHour = hour
		f.seenDim = map[string]struct{}{}
	}
	dims := string(f.buf)
	for _, p := range strings.Split(dims, "\x00") {
		f.seenDim[p] = struct{}{}
	}
	if len(f.seenDim) >= MaxDimensionValues {
		f.off = true
		f.offWhy = fmt.Sprintf("disabled: dimensions produced %d distinct name/value pairs within an hour (limit %d)", len(f.seenDim), MaxDimensionValues)
		f.seenDim = nil
		return SeriesKey{}, false
	}
	k := SeriesKey{Namespace: f.spec.Namespace, MetricName: f.spec.MetricName, Dimensions: dims}
	if len(f.keys) >= 4*MaxDimensionValues {
		clear(f.keys) // a cache of keys; keep it bounded
	}
	f.keys[dims] = k
	return k, true
}
