package alarm

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ReplayFile is a time-replay test file in the manner of `promtool test
// rules`: a configuration, and tests that feed log lines at given times and
// list the alarm state changes expected.
//
//	config:
//	  metric_filters: [...]
//	  alarms: [...]
//	tests:
//	  - name: a burst of rejects
//	    start: 2026-11-22T10:00:00Z
//	    duration: 15m          # evaluate until start+duration
//	    evaluate_every: 1m     # default 1m
//	    input:
//	      - at: 30s            # offset from start (or an RFC 3339 time)
//	        line: "2 123456789010 eni-... REJECT OK"
//	        repeat: 3          # default 1
//	        every: 10s         # spacing of the repeats
//	    expect:                # every state change, in order
//	      - at: 2m
//	        alarm: reject-spike
//	        from: INSUFFICIENT_DATA
//	        to: ALARM
//	        reason_contains: "minimum 1 datapoints"
type ReplayFile struct {
	Config Config       `yaml:"config"`
	Tests  []ReplayTest `yaml:"tests"`
}

// ReplayTest is one test of a replay file.
type ReplayTest struct {
	Name          string         `yaml:"name"`
	Start         time.Time      `yaml:"start"`
	Duration      string         `yaml:"duration"`
	EvaluateEvery string         `yaml:"evaluate_every,omitempty"`
	Input         []ReplayInput  `yaml:"input"`
	Expect        []ReplayExpect `yaml:"expect"`
	// FinalStates optionally gives each alarm's state at the end.
	FinalStates map[string]State `yaml:"final_states,omitempty"`
}

// ReplayInput is a log line fed at a time, possibly repeated.
type ReplayInput struct {
	At     string `yaml:"at"`
	Line   string `yaml:"line"`
	Repeat int    `yaml:"repeat,omitempty"`
	Every  string `yaml:"every,omitempty"`
}

// ReplayExpect is an expected state change.
type ReplayExpect struct {
	At             string `yaml:"at"`
	Alarm          string `yaml:"alarm"`
	From           State  `yaml:"from"`
	To             State  `yaml:"to"`
	ReasonContains string `yaml:"reason_contains,omitempty"`
}

// LoadReplayFile reads a replay file.
func LoadReplayFile(path string) (*ReplayFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open replay file: %w", err)
	}
	defer f.Close()
	rf, err := ReadReplayFile(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rf, nil
}

// ReadReplayFile parses a replay file; unknown keys are errors.
func ReadReplayFile(r io.Reader) (*ReplayFile, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("cannot read replay file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var rf ReplayFile
	if err := dec.Decode(&rf); err != nil {
		return nil, fmt.Errorf("cannot parse replay file: %w", err)
	}
	return &rf, nil
}

// at parses an offset ("90s", "2m") from start, or an absolute RFC 3339 time.
func at(start time.Time, s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return start.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration from the start nor an RFC 3339 time", s)
	}
	return t, nil
}

type timedLine struct {
	t    time.Time
	seq  int
	line []byte
}

// Run replays one test and returns the state changes it produced. It feeds
// every line whose time is before an evaluation time, then evaluates all
// alarms at that time, once per EvaluateEvery.
func (rt *ReplayTest) Run(cfg *Config) ([]StateChange, map[string]State, error) {
	eng, err := NewEngine(cfg)
	if err != nil {
		return nil, nil, err
	}
	every := time.Minute
	if rt.EvaluateEvery != "" {
		if every, err = time.ParseDuration(rt.EvaluateEvery); err != nil || every <= 0 {
			return nil, nil, fmt.Errorf("evaluate_every %q: not a positive duration", rt.EvaluateEvery)
		}
	}
	dur, err := time.ParseDuration(rt.Duration)
	if err != nil || dur <= 0 {
		return nil, nil, fmt.Errorf("duration %q: not a positive duration", rt.Duration)
	}
	var lines []timedLine
	for i, in := range rt.Input {
		t, err := at(rt.Start, in.At)
		if err != nil {
			return nil, nil, fmt.Errorf("input %d: %w", i+1, err)
		}
		n := max(in.Repeat, 1)
		var step time.Duration
		if in.Every != "" {
			if step, err = time.ParseDuration(in.Every); err != nil {
				return nil, nil, fmt.Errorf("input %d: every %q: %w", i+1, in.Every, err)
			}
		}
		for k := 0; k < n; k++ {
			lines = append(lines, timedLine{t: t.Add(time.Duration(k) * step), seq: len(lines), line: []byte(in.Line)})
		}
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].t.Before(lines[j].t) })
	clock := &Clock{Engine: eng, Every: every}
	clock.Start(rt.Start)
	end := rt.Start.Add(dur)
	var changes []StateChange
	for _, l := range lines {
		if !l.t.Before(end) {
			break // after the last evaluation: never judged
		}
		changes = append(changes, clock.Observe(l.t, l.line)...)
	}
	changes = append(changes, clock.Until(end)...)
	final := map[string]State{}
	for _, a := range eng.Alarms {
		final[a.Alarm().Name], _ = a.State()
	}
	return changes, final, nil
}

// Check runs the test and compares the state changes with the expected ones;
// it returns a description of every difference (none when the test passes).
func (rt *ReplayTest) Check(cfg *Config) ([]string, error) {
	got, final, err := rt.Run(cfg)
	if err != nil {
		return nil, err
	}
	var diffs []string
	for i := 0; i < max(len(got), len(rt.Expect)); i++ {
		var g *StateChange
		if i < len(got) {
			g = &got[i]
		}
		if i >= len(rt.Expect) {
			diffs = append(diffs, fmt.Sprintf("unexpected state change %d: %s", i+1, describe(rt.Start, g)))
			continue
		}
		x := rt.Expect[i]
		want, err := at(rt.Start, x.At)
		if err != nil {
			return nil, fmt.Errorf("expect %d: %w", i+1, err)
		}
		if g == nil {
			diffs = append(diffs, fmt.Sprintf("missing state change %d: at %s %s %s -> %s", i+1, x.At, x.Alarm, x.From, x.To))
			continue
		}
		if !g.Time.Equal(want) || g.Alarm != x.Alarm || g.From != x.From || g.To != x.To ||
			(x.ReasonContains != "" && !strings.Contains(g.Reason, x.ReasonContains)) {
			diffs = append(diffs, fmt.Sprintf("state change %d: got %s; want at %s %s %s -> %s (reason containing %q)",
				i+1, describe(rt.Start, g), x.At, x.Alarm, x.From, x.To, x.ReasonContains))
		}
	}
	names := make([]string, 0, len(rt.FinalStates))
	for n := range rt.FinalStates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if final[n] != rt.FinalStates[n] {
			diffs = append(diffs, fmt.Sprintf("final state of %s: got %s, want %s", n, final[n], rt.FinalStates[n]))
		}
	}
	return diffs, nil
}

func describe(start time.Time, g *StateChange) string {
	return fmt.Sprintf("at %s %s %s -> %s (%s)", g.Time.Sub(start), g.Alarm, g.From, g.To, g.Reason)
}
