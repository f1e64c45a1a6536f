package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/flowguard/flowguard/internal/finding"
)

// windowsSchema is migration step 8: the inputs of detection windows that
// concurrent Lambda invocations fill (AddWindowInput), and the version of
// each stream's last commit (StreamCommit.Version).
const windowsSchema = `CREATE TABLE window_inputs (
		window  TEXT NOT NULL,
		ref     TEXT NOT NULL,
		data    BLOB,
		expires INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (window, ref)
	);
	CREATE INDEX window_inputs_expires ON window_inputs(expires) WHERE expires > 0;
	CREATE TABLE window_versions (
		window  TEXT PRIMARY KEY,
		version INTEGER NOT NULL
	);
	CREATE TABLE stream_versions (
		stream  TEXT PRIMARY KEY,
		version INTEGER NOT NULL
	);`

// AddWindowInput adds an input to a window (replacing one with the same
// Ref), counts the window's version up and returns the window as it then
// stands. Inputs past their expiry are dropped first, as DynamoDB's TTL
// drops them.
func (s *Store) AddWindowInput(ctx context.Context, window string, in WindowInput) (Window, error) {
	w := Window{Name: window}
	if window == "" || in.Ref == "" {
		return w, errors.New("window input without a window or a ref")
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		w.Inputs = nil
		now := nanos(s.now())
		if _, err := tx.ExecContext(ctx, `DELETE FROM window_inputs WHERE expires > 0 AND expires < ?`, now); err != nil {
			return fmt.Errorf("cannot expire window inputs: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO window_inputs(window, ref, data, expires) VALUES (?,?,?,?)
			ON CONFLICT(window, ref) DO UPDATE SET data=excluded.data, expires=excluded.expires`,
			window, in.Ref, in.Data, nanos(in.Expires)); err != nil {
			return fmt.Errorf("cannot add %s to window %s: %w", in.Ref, window, err)
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO window_versions(window, version) VALUES (?, 1)
			ON CONFLICT(window) DO UPDATE SET version = version + 1 RETURNING version`, window).Scan(&w.Version); err != nil {
			return fmt.Errorf("cannot count window %s up: %w", window, err)
		}
		return eachRow(ctx, tx, `SELECT ref, data, expires FROM window_inputs WHERE window = ? ORDER BY ref`, []any{window}, func(r *sql.Rows) error {
			var wi WindowInput
			var exp int64
			if err := r.Scan(&wi.Ref, &wi.Data, &exp); err != nil {
				return fmt.Errorf("cannot read window %s: %w", window, err)
			}
			wi.Expires = fromNanos(exp)
			w.Inputs = append(w.Inputs, wi)
			return nil
		})
	})
	return w, err
}

// staleStream reports whether a commit of stream at version v is older
// than one already applied, and records v otherwise.
func staleStream(ctx context.Context, tx *sql.Tx, stream string, v int64) (bool, error) {
	var have int64
	err := tx.QueryRowContext(ctx, `SELECT version FROM stream_versions WHERE stream = ?`, stream).Scan(&have)
	switch {
	case err == nil:
		if have >= v {
			return true, nil
		}
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("cannot read the version of stream %s: %w", stream, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO stream_versions(stream, version) VALUES (?,?)
		ON CONFLICT(stream) DO UPDATE SET version=excluded.version`, stream, v); err != nil {
		return false, fmt.Errorf("cannot record the version of stream %s: %w", stream, err)
	}
	return false, nil
}

// dropVanished drops the stream's contributions to findings not in fs (an
// older version of the stream found them with fewer inputs; the newer
// finds something else), and deletes those findings that no other stream
// contributes to; the others are added to affected, to be folded again. It
// returns how many it deleted.
func dropVanished(ctx context.Context, tx *sql.Tx, stream string, fs []finding.Finding, affected map[string]bool) (int, error) {
	keep := make(map[string]bool, len(fs))
	for i := range fs {
		keep[fs[i].ID] = true
	}
	var gone []string
	if err := eachRow(ctx, tx, `SELECT finding_id FROM finding_contributions WHERE stream = ?`, []any{stream}, func(r *sql.Rows) error {
		var id string
		if err := r.Scan(&id); err != nil {
			return err
		}
		if !keep[id] {
			gone = append(gone, id)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("cannot read stream %s: %w", stream, err)
	}
	return retract(ctx, tx, stream, gone, affected)
}

// retract drops stream's contributions to the findings ids: a finding no
// other stream contributes to is deleted (counted in removed) with its
// pending response, the others are marked affected to be folded again.
func retract(ctx context.Context, tx *sql.Tx, stream string, ids []string, affected map[string]bool) (int, error) {
	removed := 0
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `DELETE FROM finding_contributions WHERE stream = ? AND finding_id = ?`, stream, id); err != nil {
			return 0, fmt.Errorf("cannot drop finding %s from stream %s: %w", id, stream, err)
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM findings WHERE id = ? AND NOT EXISTS (SELECT 1 FROM finding_contributions WHERE finding_id = ?)`, id, id)
		if err != nil {
			return 0, fmt.Errorf("cannot delete finding %s: %w", id, err)
		}
		if n, _ := r.RowsAffected(); n > 0 {
			removed++
			// Nothing left to answer for a finding that is gone.
			if _, err := tx.ExecContext(ctx, `DELETE FROM respond_pending WHERE finding_id = ?`, id); err != nil {
				return 0, fmt.Errorf("cannot drop the pending response of finding %s: %w", id, err)
			}
		} else {
			affected[id] = true
		}
	}
	return removed, nil
}
