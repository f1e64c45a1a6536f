package store

import (
	"context"
	"database/sql"
	"fmt"
)

// earlySchema records which of a stream's contributions are early: a
// finding an open window raised (the daemon's early firing) that the
// window's closing has not confirmed yet. A daemon restarted after a
// crash reads them back, so that an early finding the closing does not
// confirm is still withdrawn (StreamCommit.Retract).
const earlySchema = `CREATE TABLE stream_early (
	stream     TEXT NOT NULL,
	finding_id TEXT NOT NULL,
	PRIMARY KEY (stream, finding_id)
);`

// saveEarly replaces the stream's early findings with ids.
func saveEarly(ctx context.Context, tx *sql.Tx, stream string, ids []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM stream_early WHERE stream = ?`, stream); err != nil {
		return fmt.Errorf("cannot clear the early findings of stream %s: %w", stream, err)
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO stream_early(stream, finding_id) VALUES (?,?)`, stream, id); err != nil {
			return fmt.Errorf("cannot record early finding %s of stream %s: %w", id, stream, err)
		}
	}
	return nil
}

// LoadEarly returns the ids of the stream's early findings, as the last
// commit that set them (StreamCommit.Early) left them.
func (s *Store) LoadEarly(ctx context.Context, stream string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT finding_id FROM stream_early WHERE stream = ? ORDER BY finding_id`, stream)
	if err != nil {
		return nil, fmt.Errorf("cannot read the early findings of stream %s: %w", stream, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("cannot read the early findings of stream %s: %w", stream, err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
