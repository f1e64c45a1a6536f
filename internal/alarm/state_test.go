package alarm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// stateCase is a configuration with a REJECT count (default value for
// minutes without a match) and a percentile of bytes, and two hours of
// timed lines with bursts and silences.
func stateCase(t *testing.T) (*Config, []time.Time, [][]byte) {
	t.Helper()
	cfg := &Config{}
	for _, path := range []string{"testdata/replay/reject_burst.yaml", "testdata/replay/percentile.yaml"} {
		rf, err := LoadReplayFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg.MetricFilters = append(cfg.MetricFilters, rf.Config.MetricFilters...)
		cfg.Alarms = append(cfg.Alarms, rf.Config.Alarms...)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var ts []time.Time
	var lines [][]byte
	for m := range 120 {
		if m%17 > 12 {
			continue // silence
		}
		for range rng.IntN(12) {
			at := start.Add(time.Duration(m)*time.Minute + time.Duration(rng.IntN(60))*time.Second)
			action := "ACCEPT"
			if rng.IntN(3) == 0 {
				action = "REJECT"
			}
			ts = append(ts, at)
			lines = append(lines, fmt.Appendf(nil, "2 123456789010 eni-0a1b2c3d 198.51.100.%d 10.0.2.20 40000 443 6 10 %d %d %d %s OK",
				rng.IntN(250), 100+rng.IntN(9000), at.Unix(), at.Unix()+60, action))
		}
	}
	return cfg, ts, lines
}

// TestClockStateRoundTrip: a clock saved at any point and restored into
// a new engine goes on exactly as one never stopped (state changes,
// final states), and saves to the same bytes it was restored from.
func TestClockStateRoundTrip(t *testing.T) {
	cfg, ts, lines := stateCase(t)
	run := func(c *Clock, from, to int) []StateChange {
		var out []StateChange
		for i := from; i < to; i++ {
			out = append(out, c.Observe(ts[i], lines[i])...)
		}
		return out
	}
	newClock := func() *Clock {
		eng, err := NewEngine(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return &Clock{Engine: eng, Lateness: 2 * time.Minute}
	}
	whole := newClock()
	want := append(run(whole, 0, len(lines)), whole.Drain(cfg)...)
	if len(want) < 4 {
		t.Fatalf("only %d state changes: the case does not exercise the alarms", len(want))
	}
	for _, cut := range []int{0, 1, len(lines) / 3, len(lines) / 2, len(lines) - 1, len(lines)} {
		a := newClock()
		got := run(a, 0, cut)
		saved, err := a.SaveState()
		if err != nil {
			t.Fatal(err)
		}
		b := newClock()
		if err := b.RestoreState(saved); err != nil {
			t.Fatal(err)
		}
		if again, _ := b.SaveState(); !bytes.Equal(again, saved) {
			t.Fatalf("cut %d: the restored clock saves other bytes", cut)
		}
		got = append(got, run(b, cut, len(lines))...)
		got = append(got, b.Drain(cfg)...)
		if !slices.EqualFunc(got, want, func(x, y StateChange) bool { return fmt.Sprint(x) == fmt.Sprint(y) }) {
			t.Fatalf("cut %d: state changes\n%v\nwant\n%v", cut, got, want)
		}
	}
}

// TestClockStateRefusesOtherConfig: a state saved under other alarms is
// refused and the clock left as it was; garbage is an error.
func TestClockStateRefusesOtherConfig(t *testing.T) {
	cfg, ts, lines := stateCase(t)
	eng, _ := NewEngine(cfg)
	c := &Clock{Engine: eng}
	for i := range lines {
		c.Observe(ts[i], lines[i])
	}
	saved, err := c.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	other := *cfg
	other.Alarms = slices.Clone(cfg.Alarms)
	other.Alarms[0].Threshold++
	eng2, _ := NewEngine(&other)
	c2 := &Clock{Engine: eng2}
	if err := c2.RestoreState(saved); !errors.Is(err, ErrStateConfig) {
		t.Errorf("other thresholds: %v, want ErrStateConfig", err)
	}
	if !c2.Newest().IsZero() {
		t.Error("a refused state changed the clock")
	}
	if err := c2.RestoreState(saved[:len(saved)/2]); err == nil {
		t.Error("a truncated state was accepted")
	}
}
