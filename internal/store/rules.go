package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
)

// SuppressionRule is a stored rule and when it was added.
type SuppressionRule struct {
	finding.SuppressionRule
	Created time.Time `json:"created"`
}

// AddSuppressionRule validates and stores a rule, and archives the current
// findings it matches (as GuardDuty does when a suppression rule is
// created); it returns how many it archived. A rule with the same name is
// an error: remove it first.
func (s *Store) AddSuppressionRule(ctx context.Context, r finding.SuppressionRule) (archived int, err error) {
	m, err := r.Compile()
	if err != nil {
		return 0, err
	}
	if r.Action == "" {
		r.Action = finding.ActionArchive
	}
	body, err := json.Marshal(&r)
	if err != nil {
		return 0, fmt.Errorf("cannot encode suppression rule %q: %w", r.Name, err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM suppression_rules WHERE name = ?`, r.Name).Scan(&n); err != nil {
			return fmt.Errorf("cannot read suppression rules: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("suppression rule %q already exists", r.Name)
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO suppression_rules(name, rule, created_at) VALUES (?,?,?)`, r.Name, string(body), nanos(now)); err != nil {
			return fmt.Errorf("cannot store suppression rule %q: %w", r.Name, err)
		}
		// Check the current findings against the new rule.
		rows, err := tx.QueryContext(ctx, `SELECT id, body, feedback FROM findings WHERE archived = 0`)
		if err != nil {
			return fmt.Errorf("cannot apply suppression rule %q: %w", r.Name, err)
		}
		var ids []string
		for rows.Next() {
			var id, b, fb string
			if err := rows.Scan(&id, &b, &fb); err != nil {
				rows.Close()
				return fmt.Errorf("cannot apply suppression rule %q: %w", r.Name, err)
			}
			f, err := decodeFinding(id, b, false, fb)
			if err != nil {
				rows.Close()
				return err
			}
			if m.Match(&f) {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("cannot apply suppression rule %q: %w", r.Name, err)
		}
		d, _ := json.Marshal(map[string]string{"rule": r.Name})
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE findings SET archived = 1, updated_at = ? WHERE id = ?`, nanos(now), id); err != nil {
				return fmt.Errorf("cannot apply suppression rule %q: %w", r.Name, err)
			}
			if err := addHistory(ctx, tx, id, now, HistorySuppressed, 0, 0, time.Time{}, d); err != nil {
				return err
			}
		}
		archived = len(ids)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return archived, nil
}

// ListSuppressionRules returns the stored rules by name.
func (s *Store) ListSuppressionRules(ctx context.Context) ([]SuppressionRule, error) {
	return listRules(ctx, s.r)
}

func listRules(ctx context.Context, q queryer) ([]SuppressionRule, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, rule, created_at FROM suppression_rules ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("cannot read suppression rules: %w", err)
	}
	defer rows.Close()
	var out []SuppressionRule
	for rows.Next() {
		var name, body string
		var created int64
		if err := rows.Scan(&name, &body, &created); err != nil {
			return nil, fmt.Errorf("cannot read suppression rules: %w", err)
		}
		var r SuppressionRule
		if err := json.Unmarshal([]byte(body), &r.SuppressionRule); err != nil {
			return nil, fmt.Errorf("suppression rule %q is damaged in the store: %w", name, err)
		}
		r.Name = name
		r.Created = fromNanos(created)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read suppression rules: %w", err)
	}
	return out, nil
}

// loadRules compiles the stored rules. A stored rule that no longer
// compiles (written by another version) is an error rather than silently
// ignored.
func loadRules(ctx context.Context, q queryer) (*finding.Policy, error) {
	rs, err := listRules(ctx, q)
	if err != nil {
		return nil, err
	}
	plain := make([]finding.SuppressionRule, len(rs))
	for i := range rs {
		plain[i] = rs[i].SuppressionRule
	}
	p, err := finding.NewPolicy(plain, nil)
	if err != nil {
		return nil, fmt.Errorf("stored suppression rules: %w", err)
	}
	return p, nil
}

// RemoveSuppressionRule deletes a rule. Findings it archived stay archived
// (unarchive them if wanted), as in GuardDuty.
func (s *Store) RemoveSuppressionRule(ctx context.Context, name string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM suppression_rules WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("cannot remove suppression rule %q: %w", name, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("cannot remove suppression rule %q: %w", name, err)
		}
		if n == 0 {
			return &NotFoundError{Kind: "suppression rule", ID: name}
		}
		return nil
	})
}
