package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// blocksSchema is migration step 5: the response pipeline's action log.
//
//   - blocks: one row per deny entry flowguard wrote (or means to write)
//     somewhere: a network ACL entry or an address in a WAFv2 IP set. A row
//     is written before the call to AWS (state pending), so that a run that
//     dies half-way is completed by the next one, never duplicated. Its
//     rule number is the ledger (claims.go): reserved in the claim's
//     transaction. Entries in AWS are flowguard's when a row names their
//     address at that target (network ACL entries: a deny of all traffic
//     for the address inside flowguard's rule range); the rest are someone
//     else's and are never touched.
//   - bans: one row per decision to ban an address (however many entries
//     it takes), for the ban-time increment and the blocks-per-hour guard.
//   - unbans: manual unblocks, so that the same activity does not block the
//     address again at once.
//   - notify_log: when each routed notification key was last sent, and
//     what it said, for repeat intervals and publishing frequencies.
//   - outbox: notifications decided but not yet delivered.
const blocksSchema = `CREATE TABLE blocks (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		target      TEXT NOT NULL,
		prefix      TEXT NOT NULL,
		rule_number INTEGER NOT NULL DEFAULT 0,
		finding_id  TEXT NOT NULL DEFAULT '',
		severity    REAL NOT NULL DEFAULT 0,
		reason      TEXT NOT NULL DEFAULT '',
		state       TEXT NOT NULL,
		created_at  INTEGER NOT NULL,
		expires_at  INTEGER NOT NULL,
		removed_at  INTEGER NOT NULL DEFAULT 0,
		removed_by  TEXT NOT NULL DEFAULT '',
		attempts    INTEGER NOT NULL DEFAULT 0,
		last_error  TEXT NOT NULL DEFAULT '',
		updated_at  INTEGER NOT NULL
	);
	CREATE UNIQUE INDEX blocks_live ON blocks(target, prefix) WHERE state IN ('pending','active','removing');
	CREATE UNIQUE INDEX blocks_live_rule ON blocks(target, rule_number) WHERE rule_number > 0 AND state IN ('pending','active','removing');
	CREATE INDEX blocks_prefix ON blocks(prefix, created_at);
	CREATE INDEX blocks_state ON blocks(state, expires_at);
	CREATE TABLE bans (
		seq        INTEGER PRIMARY KEY AUTOINCREMENT,
		prefix     TEXT NOT NULL,
		finding_id TEXT NOT NULL DEFAULT '',
		severity   REAL NOT NULL DEFAULT 0,
		at         INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		last_seen  INTEGER NOT NULL DEFAULT 0,
		number     INTEGER NOT NULL
	);
	CREATE INDEX bans_prefix ON bans(prefix, at);
	CREATE INDEX bans_at ON bans(at);
	CREATE TABLE unbans (
		prefix TEXT PRIMARY KEY,
		at     INTEGER NOT NULL,
		until  INTEGER NOT NULL,
		by     TEXT NOT NULL DEFAULT '',
		reason TEXT NOT NULL DEFAULT ''
	);
	CREATE TABLE notify_log (
		key       TEXT PRIMARY KEY,
		last_sent INTEGER NOT NULL,
		count     INTEGER NOT NULL DEFAULT 0,
		last_seen INTEGER NOT NULL DEFAULT 0,
		severity  REAL NOT NULL DEFAULT 0
	);
	CREATE TABLE outbox (
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		notifier   TEXT NOT NULL,
		key        TEXT NOT NULL,
		payload    TEXT NOT NULL,
		state      TEXT NOT NULL,
		attempts   INTEGER NOT NULL DEFAULT 0,
		last_error TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	);
	CREATE INDEX outbox_state ON outbox(state, id);`

// BlockState is where a block row is in its life.
type BlockState string

// Block states. Pending, active and removing rows are live: at most one
// live row per target and prefix, and per target and rule number.
const (
	BlockPending  BlockState = "pending"  // recorded, not yet confirmed in AWS
	BlockActive   BlockState = "active"   // the entry exists in AWS
	BlockRemoving BlockState = "removing" // to be removed, not yet confirmed
	BlockRemoved  BlockState = "removed"  // flowguard removed it
	BlockGone     BlockState = "gone"     // found missing in AWS (removed by someone else)
	BlockFailed   BlockState = "failed"   // abandoned before it existed in AWS
)

// Live reports whether the state holds (or may hold) an entry in AWS.
func (s BlockState) Live() bool {
	return s == BlockPending || s == BlockActive || s == BlockRemoving
}

// ErrBlockExists is returned when a live block already holds the target and
// prefix, or the target and rule number.
var ErrBlockExists = errors.New("a live block already holds this target and prefix or rule number")

// BlockRecord is one row of the blocks table.
type BlockRecord struct {
	ID         int64        `json:"id"`
	Target     string       `json:"target"`
	Prefix     netip.Prefix `json:"prefix"`
	RuleNumber int32        `json:"rule_number,omitempty"`
	FindingID  string       `json:"finding_id,omitempty"`
	Severity   float64      `json:"severity,omitempty"`
	Reason     string       `json:"reason,omitempty"`
	State      BlockState   `json:"state"`
	Created    time.Time    `json:"created"`
	Expires    time.Time    `json:"expires"`
	Removed    time.Time    `json:"removed,omitzero"`
	RemovedBy  string       `json:"removed_by,omitempty"` // expiry, unblock, evict, reconcile
	Attempts   int          `json:"attempts,omitempty"`
	LastError  string       `json:"last_error,omitempty"`
	Updated    time.Time    `json:"updated"`
}

// BlockFilter selects block rows; the zero value selects all.
type BlockFilter struct {
	Target string
	// Prefix selects rows whose prefix equals it (when valid).
	Prefix netip.Prefix
	States []BlockState
	// LiveOnly selects pending, active and removing rows.
	LiveOnly bool
	// Since selects rows created at or after it.
	Since time.Time
	// DueBy selects rows expiring at or before it.
	DueBy time.Time
	// Limit keeps the newest Limit rows (0: all).
	Limit int
}

const blockCols = `id, target, prefix, rule_number, finding_id, severity, reason, state, created_at, expires_at, removed_at, removed_by, attempts, last_error, updated_at`

// InsertBlock records a block (normally in state pending) and returns its
// id. It returns an error wrapping ErrBlockExists when a live row holds the
// same target and prefix, or the same target and rule number.
func (s *Store) InsertBlock(ctx context.Context, r BlockRecord) (int64, error) {
	if r.Target == "" || !r.Prefix.IsValid() {
		return 0, errors.New("block without a target or prefix")
	}
	if r.State == "" {
		r.State = BlockPending
	}
	now := s.now()
	if r.Created.IsZero() {
		r.Created = now
	}
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO blocks(target, prefix, rule_number, finding_id, severity, reason, state, created_at, expires_at, updated_at)
			VALUES (?,?,?,?,?,?,?,?,?,?)`,
			r.Target, r.Prefix.String(), r.RuleNumber, r.FindingID, r.Severity, r.Reason, string(r.State),
			nanos(r.Created), nanos(r.Expires), nanos(now))
		if err != nil {
			if strings.Contains(err.Error(), "UNIQUE") {
				return fmt.Errorf("cannot record block of %s at %s: %w", r.Prefix, r.Target, ErrBlockExists)
			}
			return fmt.Errorf("cannot record block of %s at %s: %w", r.Prefix, r.Target, err)
		}
		id, err = res.LastInsertId()
		if err != nil {
			return fmt.Errorf("cannot record block of %s at %s: %w", r.Prefix, r.Target, err)
		}
		return nil
	})
	return id, err
}

// BlockUpdate changes a block row: its state, and optionally who removed
// it, its rule number and the last error. Zero fields are left alone,
// except LastError, which is always written (clearing it on success).
type BlockUpdate struct {
	State      BlockState
	RemovedBy  string
	RuleNumber int32
	LastError  string
	// Attempt adds one to the attempt count.
	Attempt bool
	// Expires moves the expiry time.
	Expires time.Time
	// At is when the change happened (zero: now).
	At time.Time
}

// UpdateBlock applies u to the row with id. Moving to removed or gone
// stamps the removal time.
func (s *Store) UpdateBlock(ctx context.Context, id int64, u BlockUpdate) error {
	now := u.At
	if now.IsZero() {
		now = s.now()
	}
	return s.write(ctx, func(tx *sql.Tx) error { return updateBlockTx(ctx, tx, id, u, now) })
}

// updateBlockTx applies u to the row with id inside tx (BlockUpdate.Apply,
// the rule the DynamoDB store applies too).
func updateBlockTx(ctx context.Context, tx *sql.Tx, id int64, u BlockUpdate, now time.Time) error {
	rows, err := tx.QueryContext(ctx, `SELECT `+blockCols+` FROM blocks WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("cannot read block %d: %w", id, err)
	}
	found, err := scanBlocks(rows)
	if err != nil {
		return err
	}
	if len(found) == 0 {
		return &NotFoundError{Kind: "block", ID: fmt.Sprint(id)}
	}
	r := found[0]
	u.Apply(&r, now)
	if _, err := tx.ExecContext(ctx, `UPDATE blocks SET state = ?, removed_at = ?, removed_by = ?, rule_number = ?, attempts = ?,
		expires_at = ?, last_error = ?, updated_at = ? WHERE id = ?`,
		string(r.State), nanos(r.Removed), r.RemovedBy, r.RuleNumber, r.Attempts, nanos(r.Expires), r.LastError, nanos(r.Updated), id); err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return fmt.Errorf("cannot update block %d: %w", id, ErrBlockExists)
		}
		return fmt.Errorf("cannot update block %d: %w", id, err)
	}
	return nil
}

// ListBlocks returns block rows, oldest first.
func (s *Store) ListBlocks(ctx context.Context, fl BlockFilter) ([]BlockRecord, error) {
	var where []string
	var args []any
	if fl.Target != "" {
		where = append(where, "target = ?")
		args = append(args, fl.Target)
	}
	if fl.Prefix.IsValid() {
		where = append(where, "prefix = ?")
		args = append(args, fl.Prefix.String())
	}
	states := fl.States
	if fl.LiveOnly {
		states = append(states, BlockPending, BlockActive, BlockRemoving)
	}
	if len(states) > 0 {
		where = append(where, "state IN ("+strings.TrimSuffix(strings.Repeat("?,", len(states)), ",")+")")
		for _, st := range states {
			args = append(args, string(st))
		}
	}
	if !fl.Since.IsZero() {
		where = append(where, "created_at >= ?")
		args = append(args, nanos(fl.Since))
	}
	if !fl.DueBy.IsZero() {
		where = append(where, "expires_at <= ?")
		args = append(args, nanos(fl.DueBy))
	}
	q := `SELECT ` + blockCols + ` FROM blocks`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if fl.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", fl.Limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read blocks: %w", err)
	}
	out, err := scanBlocks(rows)
	if err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// scanBlocks reads block rows (blockCols) and closes them.
func scanBlocks(rows *sql.Rows) ([]BlockRecord, error) {
	defer rows.Close()
	var out []BlockRecord
	for rows.Next() {
		var r BlockRecord
		var prefix, state string
		var created, expires, removed, updated int64
		if err := rows.Scan(&r.ID, &r.Target, &prefix, &r.RuleNumber, &r.FindingID, &r.Severity, &r.Reason, &state,
			&created, &expires, &removed, &r.RemovedBy, &r.Attempts, &r.LastError, &updated); err != nil {
			return nil, fmt.Errorf("cannot read blocks: %w", err)
		}
		var err error
		if r.Prefix, err = netip.ParsePrefix(prefix); err != nil {
			return nil, fmt.Errorf("block %d: bad prefix %q in the store: %w", r.ID, prefix, err)
		}
		r.State = BlockState(state)
		r.Created, r.Expires, r.Removed, r.Updated = fromNanos(created), fromNanos(expires), fromNanos(removed), fromNanos(updated)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read blocks: %w", err)
	}
	return out, nil
}

// Ban is one decision to ban an address.
type Ban struct {
	Prefix    netip.Prefix `json:"prefix"`
	FindingID string       `json:"finding_id,omitempty"`
	Severity  float64      `json:"severity,omitempty"`
	At        time.Time    `json:"at"`
	Expires   time.Time    `json:"expires"`
	// LastSeen is the finding's last activity when it was banned: the
	// same finding with no newer activity does not ban the address again.
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Number counts the bans of this prefix, this one included (1 for the
	// first).
	Number int `json:"number"`
}

// ListBans returns bans at or after since, oldest first.
func (s *Store) ListBans(ctx context.Context, since time.Time) ([]Ban, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT prefix, finding_id, severity, at, expires_at, last_seen, number FROM bans WHERE at >= ? ORDER BY seq`, nanos(since))
	if err != nil {
		return nil, fmt.Errorf("cannot read bans: %w", err)
	}
	defer rows.Close()
	var out []Ban
	for rows.Next() {
		var b Ban
		var prefix string
		var at, exp, seen int64
		if err := rows.Scan(&prefix, &b.FindingID, &b.Severity, &at, &exp, &seen, &b.Number); err != nil {
			return nil, fmt.Errorf("cannot read bans: %w", err)
		}
		if b.Prefix, err = netip.ParsePrefix(prefix); err != nil {
			return nil, fmt.Errorf("bad prefix %q in the store: %w", prefix, err)
		}
		b.At, b.Expires, b.LastSeen = fromNanos(at), fromNanos(exp), fromNanos(seen)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read bans: %w", err)
	}
	return out, nil
}

// Unban is a manual unblock: the prefix is not blocked again before Until.
type Unban struct {
	Prefix netip.Prefix `json:"prefix"`
	At     time.Time    `json:"at"`
	Until  time.Time    `json:"until"`
	By     string       `json:"by,omitempty"`
	Reason string       `json:"reason,omitempty"`
}

// PutUnban records (or replaces) the manual unban of a prefix.
func (s *Store) PutUnban(ctx context.Context, u Unban) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO unbans(prefix, at, until, by, reason) VALUES (?,?,?,?,?)
			ON CONFLICT(prefix) DO UPDATE SET at = excluded.at, until = excluded.until, by = excluded.by, reason = excluded.reason`,
			u.Prefix.String(), nanos(u.At), nanos(u.Until), u.By, u.Reason); err != nil {
			return fmt.Errorf("cannot record the unban of %s: %w", u.Prefix, err)
		}
		return nil
	})
}

// NotifyRecord is what was last sent for a notification key.
type NotifyRecord struct {
	Key      string
	LastSent time.Time
	Count    int64
	LastSeen time.Time
	Severity float64
	// Prev is the LastSent the caller read before deciding (zero: it read
	// no record): Enqueue refuses with ErrStale when the log no longer
	// says so, because another process decided the same key meanwhile.
	Prev time.Time
}

// GetNotifyRecord returns the record of a notification key, if any.
func (s *Store) GetNotifyRecord(ctx context.Context, key string) (NotifyRecord, bool, error) {
	r := NotifyRecord{Key: key}
	var sent, seen int64
	err := s.r.QueryRowContext(ctx, `SELECT last_sent, count, last_seen, severity FROM notify_log WHERE key = ?`, key).Scan(&sent, &r.Count, &seen, &r.Severity)
	if errors.Is(err, sql.ErrNoRows) {
		return NotifyRecord{}, false, nil
	}
	if err != nil {
		return NotifyRecord{}, false, fmt.Errorf("cannot read notification log %s: %w", key, err)
	}
	r.LastSent, r.LastSeen = fromNanos(sent), fromNanos(seen)
	return r, true, nil
}

// OutboxItem is a notification decided but maybe not yet delivered.
type OutboxItem struct {
	ID       int64
	Notifier string
	Key      string
	// Payload is the JSON the pipeline needs to render the message again.
	Payload   string
	State     string // "pending", "sent", "failed"
	Attempts  int
	LastError string
	Created   time.Time
}

// Enqueue records notifications to deliver together with the notification
// log records that say they were decided, in one transaction: a crash
// after it loses nothing (the outbox is delivered on the next run) and
// sends nothing twice (the log says it was decided). When a record's key
// changed since the caller read it (Prev), nothing is written and the
// error wraps ErrStale: the caller reads again and decides again.
func (s *Store) Enqueue(ctx context.Context, items []OutboxItem, recs []NotifyRecord) ([]int64, error) {
	now := s.now()
	ids := make([]int64, 0, len(items))
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, it := range items {
			res, err := tx.ExecContext(ctx, `INSERT INTO outbox(notifier, key, payload, state, created_at, updated_at) VALUES (?,?,?,'pending',?,?)`,
				it.Notifier, it.Key, it.Payload, nanos(now), nanos(now))
			if err != nil {
				return fmt.Errorf("cannot queue a notification for %s: %w", it.Notifier, err)
			}
			id, err := res.LastInsertId()
			if err != nil {
				return fmt.Errorf("cannot queue a notification for %s: %w", it.Notifier, err)
			}
			ids = append(ids, id)
		}
		for _, r := range recs {
			var sent int64
			err := tx.QueryRowContext(ctx, `SELECT last_sent FROM notify_log WHERE key = ?`, r.Key).Scan(&sent)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("cannot read notification log %s: %w", r.Key, err)
			}
			if sent != nanos(r.Prev) {
				return fmt.Errorf("notification %s: %w", r.Key, ErrStale)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO notify_log(key, last_sent, count, last_seen, severity) VALUES (?,?,?,?,?)
				ON CONFLICT(key) DO UPDATE SET last_sent = excluded.last_sent, count = excluded.count, last_seen = excluded.last_seen, severity = excluded.severity`,
				r.Key, nanos(r.LastSent), r.Count, nanos(r.LastSeen), r.Severity); err != nil {
				return fmt.Errorf("cannot record notification %s: %w", r.Key, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}
