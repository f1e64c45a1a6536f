package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AuditEntry is one action taken (a block, a notification, an unblock, a
// user's archive), for the audit trail.
type AuditEntry struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Action    string    `json:"action"`            // "block", "notify", "unblock" …
	Subject   string    `json:"subject,omitempty"` // what it acted on: an IP, a topic, an ACL
	FindingID string    `json:"finding_id,omitempty"`
	// Detail is any JSON value (an object usually); empty means {}.
	Detail json.RawMessage `json:"detail,omitempty"`
}

// AuditFilter selects audit entries; the zero value selects all.
type AuditFilter struct {
	Since     time.Time
	FindingID string
	Action    string
	// Limit keeps the newest Limit entries (0: all).
	Limit int
}

// AppendAudit records an entry and returns its sequence number. A zero Time
// means now.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) (int64, error) {
	if e.Action == "" {
		return 0, errors.New("audit entry without an action")
	}
	detail := "{}"
	if len(e.Detail) > 0 {
		if !json.Valid(e.Detail) {
			return 0, fmt.Errorf("audit entry %s: detail is not valid JSON", e.Action)
		}
		detail = string(e.Detail)
	}
	var seq int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		at := e.Time
		if at.IsZero() {
			at = s.now()
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO audit(at, action, subject, finding_id, detail) VALUES (?,?,?,?,?)`,
			nanos(at), e.Action, e.Subject, e.FindingID, detail)
		if err != nil {
			return fmt.Errorf("cannot record audit entry %s: %w", e.Action, err)
		}
		seq, err = res.LastInsertId()
		if err != nil {
			return fmt.Errorf("cannot record audit entry %s: %w", e.Action, err)
		}
		return nil
	})
	return seq, err
}

// ListAudit returns audit entries, oldest first.
func (s *Store) ListAudit(ctx context.Context, fl AuditFilter) ([]AuditEntry, error) {
	var where []string
	var args []any
	if !fl.Since.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, nanos(fl.Since))
	}
	if fl.FindingID != "" {
		where = append(where, "finding_id = ?")
		args = append(args, fl.FindingID)
	}
	if fl.Action != "" {
		where = append(where, "action = ?")
		args = append(args, fl.Action)
	}
	q := `SELECT seq, at, action, subject, finding_id, detail FROM audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq DESC"
	if fl.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", fl.Limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read the audit trail: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		var detail string
		if err := rows.Scan(&e.Seq, &at, &e.Action, &e.Subject, &e.FindingID, &detail); err != nil {
			return nil, fmt.Errorf("cannot read the audit trail: %w", err)
		}
		e.Time = fromNanos(at)
		if detail != "{}" {
			e.Detail = json.RawMessage(detail)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the audit trail: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
