package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/store"
)

// testAlarmClock: the alarm clock round-trips, its states are the alarm
// states LoadAlarmStates returns, and a save from a stale load is refused.
func testAlarmClock(t *testing.T, s store.Interface) {
	ctx := context.Background()
	c, err := s.LoadAlarmClock(ctx)
	if err != nil || c.Version != 0 || !c.Next.IsZero() || len(c.States) != 0 {
		t.Fatalf("clock before any save: %+v %v, want version 0 and nothing else", c, err)
	}
	change := alarm.StateChange{Alarm: "rejects", From: alarm.StateInsufficientData, To: alarm.StateAlarm, Reason: "Threshold Crossed", Time: t0.Add(5 * time.Minute)}
	first := store.AlarmClock{Next: t0.Add(6 * time.Minute), Newest: t0.Add(9 * time.Minute),
		States:  []store.AlarmState{{Name: "rejects", State: alarm.StateAlarm, Since: t0.Add(5 * time.Minute), Reason: "Threshold Crossed"}},
		Pending: []alarm.StateChange{change}}
	saved, err := s.SwapAlarmClock(ctx, first)
	if err != nil || saved.Version != 1 {
		t.Fatalf("first save: %+v %v, want version 1", saved, err)
	}
	got, err := s.LoadAlarmClock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || !got.Next.Equal(first.Next) || !got.Newest.Equal(first.Newest) || len(got.States) != 1 ||
		got.States[0].State != alarm.StateAlarm || len(got.Pending) != 1 || got.Pending[0].Alarm != "rejects" || !got.Pending[0].Time.Equal(change.Time) {
		t.Fatalf("clock loaded %+v, want the one saved", got)
	}
	as, err := s.LoadAlarmStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a := as["rejects"]; a.State != alarm.StateAlarm || !a.Since.Equal(first.States[0].Since) {
		t.Fatalf("alarm states %+v, want rejects in ALARM since %s", as, first.States[0].Since)
	}
	// A process that loaded version 0 too saves after the first: refused,
	// and nothing of it is kept.
	late := store.AlarmClock{Next: t0.Add(time.Minute), States: []store.AlarmState{{Name: "rejects", State: alarm.StateOK, Since: t0}}}
	if _, err := s.SwapAlarmClock(ctx, late); !errors.Is(err, store.ErrClockMoved) {
		t.Fatalf("save from a stale load: %v, want ErrClockMoved", err)
	}
	if as, _ := s.LoadAlarmStates(ctx); as["rejects"].State != alarm.StateAlarm {
		t.Fatalf("a refused save changed the alarm state: %+v", as)
	}
	if got, _ := s.LoadAlarmClock(ctx); got.Version != 1 || !got.Next.Equal(first.Next) {
		t.Fatalf("a refused save changed the clock: %+v", got)
	}
	// Clearing what was answered is a save like any other.
	got.Pending = nil
	if got, err = s.SwapAlarmClock(ctx, got); err != nil || got.Version != 2 {
		t.Fatalf("second save: %+v %v", got, err)
	}
	if got, _ := s.LoadAlarmClock(ctx); len(got.Pending) != 0 || len(got.States) != 1 {
		t.Fatalf("clock after clearing its pending changes: %+v", got)
	}
	if _, err := s.SwapAlarmClock(ctx, store.AlarmClock{Version: 2, States: []store.AlarmState{{Name: "x", State: "FIRING"}}}); err == nil {
		t.Fatal("a clock with an unknown state was saved")
	}
}

// testConcurrentAlarmClock: eight processes advance the clock by one
// minute five times each, loading it again when another saved first:
// every step lands once (40 minutes, version 40), as if one process had
// taken all forty.
func testConcurrentAlarmClock(t *testing.T, s store.Interface) {
	const procs, steps = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, procs)
	for range procs {
		wg.Go(func() {
			ctx := context.Background()
			for done := 0; done < steps; {
				c, err := s.LoadAlarmClock(ctx)
				if err != nil {
					errs <- err
					return
				}
				if c.Next.IsZero() {
					c.Next = t0
				}
				c.Next = c.Next.Add(time.Minute)
				c.States = []store.AlarmState{{Name: "rejects", State: alarm.StateOK, Since: c.Next}}
				switch _, err := s.SwapAlarmClock(ctx, c); {
				case errors.Is(err, store.ErrClockMoved):
				case err != nil:
					errs <- err
					return
				default:
					done++
				}
			}
			errs <- nil
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.LoadAlarmClock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != procs*steps || !c.Next.Equal(t0.Add(procs*steps*time.Minute)) {
		t.Fatalf("clock %d at %s after %d steps, want version %d at %s", c.Version, c.Next, procs*steps, procs*steps, t0.Add(procs*steps*time.Minute))
	}
	as, err := s.LoadAlarmStates(context.Background())
	if err != nil || !as["rejects"].Since.Equal(c.Next) {
		t.Fatalf("alarm state %+v %v, want the last save's (since %s)", as, err, c.Next)
	}
}

// testLoadWindow: a window read without adding holds what the adds left.
func testLoadWindow(t *testing.T, s store.Interface) {
	ctx := context.Background()
	if w, err := s.LoadWindow(ctx, "never"); err != nil || w.Version != 0 || len(w.Inputs) != 0 {
		t.Fatalf("a window never filled: %+v %v", w, err)
	}
	var last store.Window
	for i, ref := range []string{"s3://b/2", "blob:1"} {
		w, err := s.AddWindowInput(ctx, "lw", store.WindowInput{Ref: ref, Data: []byte(fmt.Sprint(i)), Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		last = w
	}
	w, err := s.LoadWindow(ctx, "lw")
	if err != nil {
		t.Fatal(err)
	}
	if w.Version != last.Version || fmt.Sprint(w.Inputs) != fmt.Sprint(last.Inputs) {
		t.Fatalf("window loaded %+v, want %+v", w, last)
	}
	if _, err := s.AddWindowInput(ctx, "gone", store.WindowInput{Ref: "s3://b/old", Expires: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if w, err := s.LoadWindow(ctx, "gone"); err != nil || len(w.Inputs) != 0 {
		t.Fatalf("an expired input was read: %+v %v", w, err)
	}
}
