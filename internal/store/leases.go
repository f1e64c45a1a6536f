package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// LeaseOwners returns the owners of the leases on block and outbox rows
// that have not run out at now.
func (s *Store) LeaseOwners(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT lease_owner FROM blocks WHERE lease_owner <> '' AND lease_until > ?
		UNION SELECT lease_owner FROM outbox WHERE lease_owner <> '' AND lease_until > ?`, nanos(now), nanos(now))
	if err != nil {
		return nil, fmt.Errorf("cannot list lease owners: %w", err)
	}
	defer rows.Close()
	var owners []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, fmt.Errorf("cannot list lease owners: %w", err)
		}
		owners = append(owners, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list lease owners: %w", err)
	}
	return owners, nil
}

// EndLeases ends every lease owner holds, on block and outbox rows, for a
// holder known to be gone; it returns how many rows it freed.
func (s *Store) EndLeases(ctx context.Context, owner string) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, table := range []string{"blocks", "outbox"} {
			r, err := tx.ExecContext(ctx, `UPDATE `+table+` SET lease_owner = '', lease_until = 0 WHERE lease_owner = ?`, owner)
			if err != nil {
				return err
			}
			k, _ := r.RowsAffected()
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("cannot end the leases of %s: %w", owner, err)
	}
	return int(n), nil
}
