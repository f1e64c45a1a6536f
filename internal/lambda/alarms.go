package lambda

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/store"
)

// The alarms (the configuration's alarms: section) are evaluated by the
// engine and clock serve and alarms run use (alarm.Engine, alarm.Clock),
// on the records' own time, with the progress shared through the store's
// alarm clock (store.AlarmClock):
//
//   - after its windows' detection, an invocation loads the clock (where
//     the evaluation stands, the alarms' states there, the newest record
//     time seen);
//   - it rebuilds the metrics from the inputs of the windows that can hold
//     records of the minutes the next evaluations look at (from the
//     clock's next evaluation time less the alarms' longest evaluation
//     range, to its own newest window), each record a log event at its
//     start time, as CloudWatch and alarms run see them;
//   - it restores the states and evaluates every minute from the clock's
//     next evaluation time up to the newest record time less the allowed
//     lateness (detectors.allowed_lateness), as the daemon's clock does.
//     Until the first evaluation, the clock has no next time: the first
//     is the minute after the earliest record the windows hold then, so
//     that invocations racing at the start agree on it;
//   - it saves the clock with a compare-and-swap on its version: of two
//     invocations that loaded the same clock, one saves; the other loads
//     the saved clock and goes on from there, rebuilding the metrics with
//     the inputs added since. Each minute is evaluated once, and each
//     state change is made once, as in one process;
//   - the state changes are kept in the clock (Pending) until handed to
//     the response pipeline, whose notification log makes a change handed
//     twice (a crash between the two, a retry) one message.

// maxAlarmRounds bounds the rounds of an invocation whose clock saves
// others keep overtaking.
const maxAlarmRounds = 20

// maxPending bounds the state changes the clock keeps for the response
// pipeline (the newest are kept).
const maxPending = 100

// alarmRun is what an invocation's alarm evaluation did.
type alarmRun struct {
	changes []alarm.StateChange // made by this invocation
	clock   store.AlarmClock    // as saved or loaded last
}

// alarms evaluates the alarms after the windows named were added to (see
// above). With no alarms configured it does nothing.
func (h *Handler) alarms(ctx context.Context, windows []string) (alarmRun, error) {
	var run alarmRun
	cfg := h.Config.Alarms
	if cfg == nil || len(cfg.Alarms) == 0 || len(windows) == 0 {
		return run, nil
	}
	var first, last time.Time
	for _, name := range windows {
		at, err := time.Parse(time.RFC3339, name)
		if err != nil {
			return run, fmt.Errorf("window %q: %w", name, err)
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	lateness := time.Duration(h.Config.Detectors.AllowedLateness)
	for round := 0; round < maxAlarmRounds; round++ {
		clk, err := h.Store.LoadAlarmClock(ctx)
		if err != nil {
			return run, err
		}
		run.clock = clk
		eng, err := alarm.NewEngine(cfg)
		if err != nil {
			return run, fmt.Errorf("alarms: %w", err)
		}
		// The windows whose inputs may hold records of the minutes the
		// next evaluations look at: a window is named by its inputs'
		// arrival, which follows their records.
		from := first.Add(-alarm.MaxRange(cfg))
		if !clk.Next.IsZero() {
			from = clk.Next.Add(-time.Minute - alarm.MaxRange(cfg))
		}
		if oldest := last.Add(-alarm.DefaultRetention); from.Before(oldest) {
			from = oldest
		}
		earliest, newest, err := h.feedAlarms(ctx, eng, from.Truncate(h.window()), last)
		if err != nil {
			return run, err
		}
		if clk.Newest.After(newest) {
			newest = clk.Newest
		}
		clock := &alarm.Clock{Engine: eng, Lateness: lateness}
		switch {
		case !clk.Next.IsZero():
			clock.Start(clk.Next.Add(-time.Minute))
		case !earliest.IsZero():
			// As a clock's first event starts it.
			clock.Start(earliest.Truncate(time.Minute))
		default:
			return run, nil // no records yet
		}
		states := map[string]store.AlarmState{}
		for _, st := range clk.States {
			states[st.Name] = st
		}
		for _, ev := range eng.Alarms {
			if st, ok := states[ev.Alarm().Name]; ok {
				ev.Restore(st.State, st.Since)
			}
		}
		start := clock.Next()
		changes := clock.Until(newest.Add(-lateness))
		next := store.AlarmClock{Version: clk.Version, Next: clock.Next(), Newest: newest, Pending: clk.Pending}
		if clk.Next.IsZero() && next.Next.Equal(start) {
			// Nothing evaluated yet: the first evaluation is set by the
			// earliest record the windows hold when it comes, not by
			// whichever invocation saved first.
			next.Next = time.Time{}
		}
		if next.Next.Equal(clk.Next) && newest.Equal(clk.Newest) {
			return run, nil // nothing new to save
		}
		for _, ch := range changes {
			states[ch.Alarm] = store.AlarmState{Name: ch.Alarm, State: ch.To, Since: ch.Time, Reason: ch.Reason}
		}
		for _, ev := range eng.Alarms {
			name := ev.Alarm().Name
			st, since := ev.State()
			next.States = append(next.States, store.AlarmState{Name: name, State: st, Since: since, Reason: states[name].Reason})
		}
		if h.Respond != nil {
			next.Pending = append(next.Pending, changes...)
			if len(next.Pending) > maxPending {
				next.Pending = slices.Clone(next.Pending[len(next.Pending)-maxPending:])
			}
		}
		saved, err := h.Store.SwapAlarmClock(ctx, next)
		if errors.Is(err, store.ErrClockMoved) {
			h.log().Debug("another invocation saved the alarm clock first; evaluating again from where it left it", "round", round+1)
			select {
			case <-ctx.Done():
				return run, ctx.Err()
			case <-time.After(time.Duration(rand.IntN(50)+1) * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return run, err
		}
		for _, ch := range changes {
			h.log().Info("alarm state changed", "alarm", ch.Alarm, "from", ch.From, "to", ch.To, "at", ch.Time, "reason", ch.Reason)
		}
		run.changes, run.clock = changes, saved
		return run, nil
	}
	return run, fmt.Errorf("the alarm clock kept moving under %d rounds of evaluation", maxAlarmRounds)
}

// donePending clears the pending state changes of clk once the response
// pipeline has them. When another invocation saved the clock since, it
// keeps them, and hands them again: the notification log makes that one
// message.
func (h *Handler) donePending(ctx context.Context, clk store.AlarmClock) {
	if len(clk.Pending) == 0 {
		return
	}
	clk.Pending = nil
	if _, err := h.Store.SwapAlarmClock(ctx, clk); err != nil && !errors.Is(err, store.ErrClockMoved) {
		h.log().Warn("cannot clear the answered alarm state changes; the next invocation hands them again", "error", err)
	}
}

// feedAlarms feeds the records of the windows from from to last
// (inclusive) to the metric filters, each a log event at its start time,
// and returns the earliest and newest of those times.
func (h *Handler) feedAlarms(ctx context.Context, eng *alarm.Engine, from, last time.Time) (earliest, newest time.Time, err error) {
	sink := &errLog{log: h.log()}
	var inputs []flowlog.Input
	for at := from; !at.After(last); at = at.Add(h.window()) {
		w, err := h.Store.LoadWindow(ctx, at.UTC().Format(time.RFC3339))
		if err != nil {
			return earliest, newest, err
		}
		for _, wi := range w.Inputs {
			inputs = append(inputs, h.open(wi, sink))
		}
	}
	sc := &flowlog.Scanner{Workers: 1, Errors: sink}
	var line []byte
	err = sc.Scan(ctx, inputs, func(_ int, b *flowlog.Batch) error {
		pos := b.Format.Index(flowlog.FieldStart)
		if pos < 0 {
			return nil // no time: CloudWatch would not have it either
		}
		starts, present := b.Uints(pos, nil)
		for i := 0; i < b.N; i++ {
			if b.Bad(i) || !present[i] {
				continue
			}
			ts := time.Unix(int64(starts[i]), 0).UTC()
			if earliest.IsZero() || ts.Before(earliest) {
				earliest = ts
			}
			if ts.After(newest) {
				newest = ts
			}
			line = b.Message(i, line[:0])
			eng.Observe(ts, line)
		}
		return nil
	})
	if err != nil {
		return earliest, newest, fmt.Errorf("alarms: %w", err)
	}
	return earliest, newest, nil
}
