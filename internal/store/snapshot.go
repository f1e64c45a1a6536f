package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/flowguard/flowguard/internal/finding"
)

// snapshotSchema keeps the daemon's engine snapshot: one row per stream,
// the detection engine's state (detect.Engine.Snapshot) compressed with
// zstd, and the position of every source when it was taken. It is written
// in the same transaction as the findings and positions it goes with
// (StreamCommit.Snapshot), so that a restart resumes the sources exactly
// where the saved state stops.
const snapshotSchema = `CREATE TABLE engine_snapshots (
	stream     TEXT PRIMARY KEY,
	encoding   TEXT NOT NULL,
	state      BLOB NOT NULL,
	raw_bytes  INTEGER NOT NULL,
	alarms     BLOB NOT NULL,
	positions  TEXT NOT NULL,
	taken_at   INTEGER NOT NULL
);`

// EngineSnapshot is a stream's saved detection state.
type EngineSnapshot struct {
	// State is the engine's state as detect.Engine.Snapshot writes it;
	// the store compresses it.
	State []byte
	// Alarms is the alarm clock's state (alarm.Clock.SaveState), empty
	// when no alarm is configured.
	Alarms []byte
	// Positions are every source's positions when the state was taken:
	// the state holds the records before them and none after.
	Positions []Position
	// TakenAt is when it was saved.
	TakenAt time.Time
	// Stored is the size of the compressed state in the database (set by
	// LoadSnapshot).
	Stored int
}

var zstdCodec struct {
	once sync.Once
	enc  *zstd.Encoder
	dec  *zstd.Decoder
}

func codec() (*zstd.Encoder, *zstd.Decoder) {
	zstdCodec.once.Do(func() {
		// Neither fails with these options.
		zstdCodec.enc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		zstdCodec.dec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(4<<30))
	})
	return zstdCodec.enc, zstdCodec.dec
}

// saveSnapshot replaces the stream's snapshot.
func saveSnapshot(ctx context.Context, tx *sql.Tx, stream string, s *EngineSnapshot, now time.Time) error {
	enc, _ := codec()
	z := enc.EncodeAll(s.State, make([]byte, 0, len(s.State)/4))
	ps := s.Positions
	if ps == nil {
		ps = []Position{}
	}
	js, err := json.Marshal(ps)
	if err != nil {
		return fmt.Errorf("cannot save the engine snapshot of %s: %w", stream, err)
	}
	alarms := enc.EncodeAll(s.Alarms, nil)
	if _, err := tx.ExecContext(ctx, `INSERT INTO engine_snapshots(stream, encoding, state, raw_bytes, alarms, positions, taken_at) VALUES (?,?,?,?,?,?,?)
		ON CONFLICT(stream) DO UPDATE SET encoding=excluded.encoding, state=excluded.state, raw_bytes=excluded.raw_bytes,
		alarms=excluded.alarms, positions=excluded.positions, taken_at=excluded.taken_at`,
		stream, "zstd", z, len(s.State), alarms, string(js), nanos(now)); err != nil {
		return fmt.Errorf("cannot save the engine snapshot of %s: %w", stream, err)
	}
	return nil
}

// LoadSnapshot returns the stream's engine snapshot, nil when it has none.
// A row that cannot be read back (a broken compression, bad positions) is
// an error.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (*EngineSnapshot, error) {
	var (
		encoding, positions string
		z, za               []byte
		raw                 int64
		at                  int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT encoding, state, raw_bytes, alarms, positions, taken_at FROM engine_snapshots WHERE stream = ?`, stream).
		Scan(&encoding, &z, &raw, &za, &positions, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the engine snapshot of %s: %w", stream, err)
	}
	if encoding != "zstd" {
		return nil, fmt.Errorf("the engine snapshot of %s has unknown encoding %q", stream, encoding)
	}
	_, dec := codec()
	state, err := dec.DecodeAll(z, make([]byte, 0, max(min(raw, 1<<30), 0)))
	if err != nil {
		return nil, fmt.Errorf("cannot decompress the engine snapshot of %s: %w", stream, err)
	}
	alarms, err := dec.DecodeAll(za, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot decompress the alarm state of %s: %w", stream, err)
	}
	out := &EngineSnapshot{State: state, Alarms: alarms, TakenAt: fromNanos(at), Stored: len(z)}
	if err := json.Unmarshal([]byte(positions), &out.Positions); err != nil {
		return nil, fmt.Errorf("cannot read the positions of the engine snapshot of %s: %w", stream, err)
	}
	return out, nil
}

// DropSnapshot deletes the stream's engine snapshot (one that cannot be
// restored under the configuration in force).
func (s *Store) DropSnapshot(ctx context.Context, stream string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM engine_snapshots WHERE stream = ?`, stream); err != nil {
			return fmt.Errorf("cannot delete the engine snapshot of %s: %w", stream, err)
		}
		return nil
	})
}

// StreamContributions returns the findings as the stream last wrote them
// (its contributions), by id.
func (s *Store) StreamContributions(ctx context.Context, stream string) (map[string]finding.Finding, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT finding_id, body FROM finding_contributions WHERE stream = ?`, stream)
	if err != nil {
		return nil, fmt.Errorf("cannot read the findings of stream %s: %w", stream, err)
	}
	defer rows.Close()
	out := map[string]finding.Finding{}
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, fmt.Errorf("cannot read the findings of stream %s: %w", stream, err)
		}
		var f finding.Finding
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			return nil, fmt.Errorf("cannot read finding %s of stream %s: %w", id, stream, err)
		}
		out[id] = f
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the findings of stream %s: %w", stream, err)
	}
	return out, nil
}
