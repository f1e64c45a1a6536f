package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
)

// AlarmClock is the progress of alarm evaluation shared by processes that
// take turns evaluating the same alarms (Lambda invocations, which share
// no memory and may run at once): where the evaluation stands, the
// alarms' states there, and the state changes not yet answered. A process
// loads it, evaluates the alarms from Next on (alarm.Clock), and saves
// the result with SwapAlarmClock, which succeeds for one of the processes
// that loaded the same version: the others load it again and go on from
// where the winner left it, so that each evaluation time is evaluated
// once, as in one process.
type AlarmClock struct {
	// Version counts the saves; 0 before the first.
	Version int64 `json:"version"`
	// Next is the next evaluation time; zero before the first.
	Next time.Time `json:"next,omitzero"`
	// Newest is the newest log event time seen.
	Newest time.Time `json:"newest,omitzero"`
	// States are the alarms' states after the evaluations before Next.
	States []AlarmState `json:"states,omitempty"`
	// Pending are the state changes not yet handed to the response
	// pipeline (whose notification log makes a change handed twice one
	// message).
	Pending []alarm.StateChange `json:"pending,omitempty"`
}

// ErrClockMoved is SwapAlarmClock's answer when another process saved
// the alarm clock since it was loaded.
var ErrClockMoved = errors.New("the alarm clock moved since it was loaded")

// AlarmClocks is what processes taking turns at the alarms need of a
// store: the shared alarm clock, saved with a compare-and-swap on its
// version, and the inputs of detection windows to rebuild the metrics
// from.
type AlarmClocks interface {
	// LoadAlarmClock returns the saved clock (Version 0 when none).
	LoadAlarmClock(ctx context.Context) (AlarmClock, error)
	// SwapAlarmClock saves c if the saved clock's version is still
	// c.Version (else ErrClockMoved), together with c.States as the
	// alarm states LoadAlarmStates returns, and returns it as saved,
	// at version c.Version+1.
	SwapAlarmClock(ctx context.Context, c AlarmClock) (AlarmClock, error)
	// LoadWindow returns a window's inputs as they stand (none for a
	// window never filled), without adding one.
	LoadWindow(ctx context.Context, window string) (Window, error)
}

// CheckAlarmClock checks a clock before it is saved.
func CheckAlarmClock(c AlarmClock) error {
	if c.Version < 0 {
		return fmt.Errorf("alarm clock version %d", c.Version)
	}
	for _, st := range c.States {
		if st.Name == "" {
			return errors.New("alarm state without an alarm name")
		}
		switch st.State {
		case alarm.StateOK, alarm.StateAlarm, alarm.StateInsufficientData:
		default:
			return fmt.Errorf("alarm %q: unknown state %q", st.Name, st.State)
		}
	}
	return nil
}

// alarmClockKey is the clock's row in the checkpoints table: a name no
// source takes (source names are the configuration's).
const alarmClockKey = "flowguard:alarm-clock"

// LoadAlarmClock implements AlarmClocks.
func (s *Store) LoadAlarmClock(ctx context.Context) (AlarmClock, error) {
	pos, ok, err := s.LoadCheckpoint(ctx, alarmClockKey)
	if err != nil || !ok {
		return AlarmClock{}, err
	}
	var c AlarmClock
	if err := json.Unmarshal([]byte(pos), &c); err != nil {
		return AlarmClock{}, fmt.Errorf("the alarm clock is damaged in the store: %w", err)
	}
	return c, nil
}

// SwapAlarmClock implements AlarmClocks: the version check and the
// writes are one transaction.
func (s *Store) SwapAlarmClock(ctx context.Context, c AlarmClock) (AlarmClock, error) {
	if err := CheckAlarmClock(c); err != nil {
		return c, err
	}
	old := c.Version
	c.Version++
	body, err := json.Marshal(c)
	if err != nil {
		return c, fmt.Errorf("cannot encode the alarm clock: %w", err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var pos string
		err := tx.QueryRowContext(ctx, `SELECT position FROM checkpoints WHERE source = ?`, alarmClockKey).Scan(&pos)
		var have AlarmClock
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("cannot read the alarm clock: %w", err)
		default:
			if err := json.Unmarshal([]byte(pos), &have); err != nil {
				return fmt.Errorf("the alarm clock is damaged in the store: %w", err)
			}
		}
		if have.Version != old {
			return ErrClockMoved
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints(source, position, updated_at) VALUES (?,?,?)
			ON CONFLICT(source) DO UPDATE SET position=excluded.position, updated_at=excluded.updated_at`,
			alarmClockKey, string(body), nanos(now)); err != nil {
			return fmt.Errorf("cannot save the alarm clock: %w", err)
		}
		return saveAlarmStates(ctx, tx, c.States, now)
	})
	if err != nil {
		c.Version = old
		return c, err
	}
	return c, nil
}

// LoadWindow implements AlarmClocks.
func (s *Store) LoadWindow(ctx context.Context, window string) (Window, error) {
	w := Window{Name: window}
	if err := s.r.QueryRowContext(ctx, `SELECT version FROM window_versions WHERE window = ?`, window).Scan(&w.Version); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return w, nil
		}
		return w, fmt.Errorf("cannot read window %s: %w", window, err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT ref, data, expires FROM window_inputs WHERE window = ? AND (expires = 0 OR expires >= ?) ORDER BY ref`,
		window, nanos(s.now()))
	if err != nil {
		return w, fmt.Errorf("cannot read window %s: %w", window, err)
	}
	defer rows.Close()
	for rows.Next() {
		var wi WindowInput
		var exp int64
		if err := rows.Scan(&wi.Ref, &wi.Data, &exp); err != nil {
			return w, fmt.Errorf("cannot read window %s: %w", window, err)
		}
		wi.Expires = fromNanos(exp)
		w.Inputs = append(w.Inputs, wi)
	}
	if err := rows.Err(); err != nil {
		return w, fmt.Errorf("cannot read window %s: %w", window, err)
	}
	return w, nil
}
