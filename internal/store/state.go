package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
)

// AlarmState is an alarm's persisted state, so that a restarted daemon
// resumes where it was (alarm.Evaluator.Restore) instead of starting every
// alarm in INSUFFICIENT_DATA and repeating its actions.
type AlarmState struct {
	Name   string      `json:"name"`
	State  alarm.State `json:"state"`
	Since  time.Time   `json:"since"`
	Reason string      `json:"reason,omitempty"`
}

// SaveAlarmState records the states of the alarms given (others are left
// as they are), in one transaction.
func (s *Store) SaveAlarmState(ctx context.Context, states ...AlarmState) error {
	for _, st := range states {
		if st.Name == "" {
			return errors.New("alarm state without an alarm name")
		}
		switch st.State {
		case alarm.StateOK, alarm.StateAlarm, alarm.StateInsufficientData:
		default:
			return fmt.Errorf("alarm %q: unknown state %q", st.Name, st.State)
		}
	}
	return s.write(ctx, func(tx *sql.Tx) error { return saveAlarmStates(ctx, tx, states, s.now()) })
}

func saveAlarmStates(ctx context.Context, tx *sql.Tx, states []AlarmState, now time.Time) error {
	for _, st := range states {
		if _, err := tx.ExecContext(ctx, `INSERT INTO alarm_state(name, state, since, reason, updated_at) VALUES (?,?,?,?,?)
			ON CONFLICT(name) DO UPDATE SET state=excluded.state, since=excluded.since, reason=excluded.reason, updated_at=excluded.updated_at`,
			st.Name, string(st.State), nanos(st.Since), st.Reason, nanos(now)); err != nil {
			return fmt.Errorf("cannot save the state of alarm %q: %w", st.Name, err)
		}
	}
	return nil
}

// LoadAlarmStates returns every saved alarm state by alarm name.
func (s *Store) LoadAlarmStates(ctx context.Context) (map[string]AlarmState, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, state, since, reason FROM alarm_state`)
	if err != nil {
		return nil, fmt.Errorf("cannot read alarm states: %w", err)
	}
	defer rows.Close()
	out := map[string]AlarmState{}
	for rows.Next() {
		var st AlarmState
		var state string
		var since int64
		if err := rows.Scan(&st.Name, &state, &since, &st.Reason); err != nil {
			return nil, fmt.Errorf("cannot read alarm states: %w", err)
		}
		st.State, st.Since = alarm.State(state), fromNanos(since)
		out[st.Name] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read alarm states: %w", err)
	}
	return out, nil
}

// SaveCheckpoint records a source's position (an opaque string: a file
// offset, an S3 key, a CloudWatch token, a Kafka offset). Save it only
// after the records before it are fully processed.
func (s *Store) SaveCheckpoint(ctx context.Context, source, position string) error {
	if source == "" {
		return errors.New("checkpoint without a source")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints(source, position, updated_at) VALUES (?,?,?)
			ON CONFLICT(source) DO UPDATE SET position=excluded.position, updated_at=excluded.updated_at`,
			source, position, nanos(s.now())); err != nil {
			return fmt.Errorf("cannot save the checkpoint of %s: %w", source, err)
		}
		return nil
	})
}

// LoadCheckpoint returns a source's saved position; ok is false when there
// is none.
func (s *Store) LoadCheckpoint(ctx context.Context, source string) (position string, ok bool, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT position FROM checkpoints WHERE source = ?`, source).Scan(&position)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("cannot read the checkpoint of %s: %w", source, err)
	}
	return position, true, nil
}

// Position is a live source's saved position in one of its objects (see
// source.Position): saved in the same transaction as the state the records
// before it produced.
type Position struct {
	Source string `json:"source"`
	Object string `json:"object"`
	Token  string `json:"token"`
	Name   string `json:"name,omitempty"`
}

func savePositions(ctx context.Context, tx *sql.Tx, ps []Position, now time.Time) error {
	for _, p := range ps {
		if p.Source == "" || p.Object == "" {
			return fmt.Errorf("position without a source or object: %+v", p)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO source_positions(source, object, token, name, updated_at) VALUES (?,?,?,?,?)
			ON CONFLICT(source, object) DO UPDATE SET token=excluded.token, name=excluded.name, updated_at=excluded.updated_at`,
			p.Source, p.Object, p.Token, p.Name, nanos(now)); err != nil {
			return fmt.Errorf("cannot save the position of %s in %s: %w", p.Source, p.Object, err)
		}
	}
	return nil
}

// LoadPositions returns the saved positions of a source, by object.
func (s *Store) LoadPositions(ctx context.Context, source string) ([]Position, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT object, token, name FROM source_positions WHERE source = ? ORDER BY object`, source)
	if err != nil {
		return nil, fmt.Errorf("cannot read the positions of %s: %w", source, err)
	}
	defer rows.Close()
	var out []Position
	for rows.Next() {
		p := Position{Source: source}
		if err := rows.Scan(&p.Object, &p.Token, &p.Name); err != nil {
			return nil, fmt.Errorf("cannot read the positions of %s: %w", source, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the positions of %s: %w", source, err)
	}
	return out, nil
}
