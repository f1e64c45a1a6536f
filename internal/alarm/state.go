package alarm

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// The state of a Clock and its Engine — the metric store's minutes, the
// filters' counters and dimension limits, the alarms' states and the
// clock's next evaluation — saved with the daemon's engine snapshot, so
// that alarms over a source that cannot replay its data survive a crash
// as the detection does (docs/daemon.md, "Engine snapshots").

// ErrStateConfig is returned by RestoreState for a state saved under
// another alarm configuration.
var ErrStateConfig = errors.New("the alarm state was saved under another alarm configuration")

type clockState struct {
	Config       [32]byte // fingerprint of the metric filters and alarms
	Next, Newest time.Time
	Series       []seriesState
	Filters      []filterState
	Alarms       []alarmState
}

type seriesState struct {
	Namespace, MetricName, Dimensions, Unit string
	Newest                                  int64
	Minutes                                 []minuteState
	Defaults                                []defaultState
}

type minuteState struct {
	Minute                int64
	Count, Sum, Min, Max  float64
	Values                []float64
	SeenValues, RandState uint64
}

type defaultState struct {
	Minute int64
	Value  float64
}

type filterState struct {
	SeenDim          []string
	DimHour          int64
	Off              bool
	OffWhy           string
	Matched, Events  uint64
	HasSeenDim, Keep bool
}

type alarmState struct {
	State State
	Since time.Time
}

// configPrint fingerprints what the state depends on.
func (e *Engine) configPrint() [32]byte {
	h := sha256.New()
	for _, f := range e.Filters {
		b, _ := json.Marshal(f.spec)
		h.Write(b)
		h.Write([]byte{0})
	}
	for _, a := range e.Alarms {
		b, _ := json.Marshal(a.alarm)
		h.Write(b)
		h.Write([]byte{0})
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// SaveState returns the clock's and its engine's state (RestoreState reads
// it back). It must not run while events are observed.
func (c *Clock) SaveState() ([]byte, error) {
	e := c.Engine
	st := clockState{Config: e.configPrint(), Next: c.next, Newest: c.newest}
	s := e.Store
	s.mu.Lock()
	keys := slices.SortedFunc(maps.Keys(s.series), func(a, b SeriesKey) int {
		switch {
		case a.Namespace != b.Namespace:
			return cmpString(a.Namespace, b.Namespace)
		case a.MetricName != b.MetricName:
			return cmpString(a.MetricName, b.MetricName)
		}
		return cmpString(a.Dimensions, b.Dimensions)
	})
	for _, k := range keys {
		sr := s.series[k]
		ss := seriesState{Namespace: k.Namespace, MetricName: k.MetricName, Dimensions: k.Dimensions, Unit: sr.unit, Newest: sr.newest}
		for _, m := range slices.Sorted(maps.Keys(sr.minutes)) {
			d := sr.minutes[m]
			ss.Minutes = append(ss.Minutes, minuteState{Minute: m, Count: d.Count, Sum: d.Sum, Min: d.Min, Max: d.Max,
				Values: d.values, SeenValues: d.seen, RandState: d.rng})
		}
		for _, m := range slices.Sorted(maps.Keys(sr.defaults)) {
			ss.Defaults = append(ss.Defaults, defaultState{m, sr.defaults[m]})
		}
		st.Series = append(st.Series, ss)
	}
	s.mu.Unlock()
	for _, f := range e.Filters {
		f.mu.Lock()
		fs := filterState{DimHour: f.dimHour, Off: f.off, OffWhy: f.offWhy, Matched: f.matched, Events: f.events, HasSeenDim: f.seenDim != nil}
		fs.SeenDim = slices.Sorted(maps.Keys(f.seenDim))
		f.mu.Unlock()
		st.Filters = append(st.Filters, fs)
	}
	for _, a := range e.Alarms {
		st.Alarms = append(st.Alarms, alarmState{a.state, a.since})
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		return nil, fmt.Errorf("cannot save the alarm state: %w", err)
	}
	return buf.Bytes(), nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// RestoreState sets a new clock's and engine's state to one SaveState
// returned under the same alarm configuration (ErrStateConfig otherwise).
// On error the clock is left as it was.
func (c *Clock) RestoreState(b []byte) error {
	var st clockState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return fmt.Errorf("cannot restore the alarm state: %w", err)
	}
	e := c.Engine
	if st.Config != e.configPrint() || len(st.Filters) != len(e.Filters) || len(st.Alarms) != len(e.Alarms) {
		return ErrStateConfig
	}
	byKey := map[SeriesKey]*series{}
	for _, ss := range st.Series {
		k := SeriesKey{ss.Namespace, ss.MetricName, ss.Dimensions}
		if _, dup := byKey[k]; dup {
			return fmt.Errorf("cannot restore the alarm state: series %v appears twice", k)
		}
		sr := &series{key: k, unit: ss.Unit, minutes: make(map[int64]*Datum, len(ss.Minutes)), newest: ss.Newest}
		for _, m := range ss.Minutes {
			if len(m.Values) > maxValuesPerMinute {
				return fmt.Errorf("cannot restore the alarm state: %d values in a minute (at most %d)", len(m.Values), maxValuesPerMinute)
			}
			sr.minutes[m.Minute] = &Datum{Count: m.Count, Sum: m.Sum, Min: m.Min, Max: m.Max, values: m.Values, seen: m.SeenValues, rng: m.RandState}
		}
		if len(ss.Defaults) > 0 {
			sr.defaults = make(map[int64]float64, len(ss.Defaults))
			for _, d := range ss.Defaults {
				sr.defaults[d.Minute] = d.Value
			}
		}
		byKey[k] = sr
	}
	s := e.Store
	s.mu.Lock()
	s.series = byKey
	s.mu.Unlock()
	for i, f := range e.Filters {
		fs := st.Filters[i]
		f.mu.Lock()
		f.dimHour, f.off, f.offWhy, f.matched, f.events = fs.DimHour, fs.Off, fs.OffWhy, fs.Matched, fs.Events
		f.seenDim = nil
		if fs.HasSeenDim {
			f.seenDim = make(map[string]struct{}, len(fs.SeenDim))
			for _, d := range fs.SeenDim {
				f.seenDim[d] = struct{}{}
			}
		}
		f.mu.Unlock()
	}
	for i, a := range e.Alarms {
		a.state, a.since = st.Alarms[i].State, st.Alarms[i].Since
	}
	c.next, c.newest = st.Next, st.Newest
	return nil
}
