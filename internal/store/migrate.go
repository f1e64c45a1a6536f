package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations are the schema, one step per version: step i brings the
// database to version i+1. Steps are only ever appended; a released step is
// never edited, so that every database reaches the same schema.
var migrations = []string{
	// 1: findings, with the columns that list filters use indexed; body is
	// the finding's JSON (DESIGN.md shape) minus the mutable archived and
	// feedback state, which live in their own columns.
	`CREATE TABLE findings (
		id         TEXT PRIMARY KEY,
		type       TEXT NOT NULL,
		severity   REAL NOT NULL,
		actor_ip   TEXT NOT NULL,
		target_ip  TEXT NOT NULL DEFAULT '',
		count      INTEGER NOT NULL,
		first_seen INTEGER NOT NULL,
		last_seen  INTEGER NOT NULL,
		archived   INTEGER NOT NULL DEFAULT 0,
		feedback   TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		body       TEXT NOT NULL
	);
	CREATE INDEX findings_type ON findings(type);
	CREATE INDEX findings_severity ON findings(severity);
	CREATE INDEX findings_actor ON findings(actor_ip);
	CREATE INDEX findings_last_seen ON findings(last_seen);
	CREATE INDEX findings_archived ON findings(archived, last_seen);`,

	// 2: what happened to each finding, feedback given, suppression rules.
	`CREATE TABLE finding_history (
		seq        INTEGER PRIMARY KEY AUTOINCREMENT,
		finding_id TEXT NOT NULL REFERENCES findings(id) ON DELETE CASCADE,
		at         INTEGER NOT NULL,
		kind       TEXT NOT NULL,
		count      INTEGER NOT NULL DEFAULT 0,
		severity   REAL NOT NULL DEFAULT 0,
		last_seen  INTEGER NOT NULL DEFAULT 0,
		detail     TEXT NOT NULL DEFAULT '{}'
	);
	CREATE INDEX finding_history_finding ON finding_history(finding_id, seq);
	CREATE TABLE feedback (
		seq        INTEGER PRIMARY KEY AUTOINCREMENT,
		finding_id TEXT NOT NULL REFERENCES findings(id) ON DELETE CASCADE,
		value      TEXT NOT NULL,
		at         INTEGER NOT NULL
	);
	CREATE INDEX feedback_finding ON feedback(finding_id);
	CREATE TABLE suppression_rules (
		name       TEXT PRIMARY KEY,
		rule       TEXT NOT NULL,
		created_at INTEGER NOT NULL
	);`,

	// 3: alarm state across restarts, and source positions.
	`CREATE TABLE alarm_state (
		name       TEXT PRIMARY KEY,
		state      TEXT NOT NULL,
		since      INTEGER NOT NULL,
		reason     TEXT NOT NULL DEFAULT '',
		updated_at INTEGER NOT NULL
	);
	CREATE TABLE checkpoints (
		source     TEXT PRIMARY KEY,
		position   TEXT NOT NULL,
		updated_at INTEGER NOT NULL
	);`,

	// 4: the audit trail of actions (responders, users).
	`CREATE TABLE audit (
		seq        INTEGER PRIMARY KEY AUTOINCREMENT,
		at         INTEGER NOT NULL,
		action     TEXT NOT NULL,
		subject    TEXT NOT NULL DEFAULT '',
		finding_id TEXT NOT NULL DEFAULT '',
		detail     TEXT NOT NULL DEFAULT '{}'
	);
	CREATE INDEX audit_at ON audit(at);
	CREATE INDEX audit_finding ON audit(finding_id);`,

	// 5: the response pipeline's action log: blocks, bans, manual unbans,
	// notification log and outbox (blocks.go).
	blocksSchema,

	// 6: leases on block and outbox rows, so that one process at a time
	// works on a row and a crashed one's rows are taken over when the
	// lease runs out (claims.go).
	leasesSchema,

	// 7: exactly-once counting (findings.go, state.go). A stream (one
	// detect over a set of inputs, or the daemon) contributes its own
	// cumulative finding, replaced, never added, when it is written
	// again; a finding's row is the merge of its contributions. Source
	// positions are saved per object in the same transaction.
	`CREATE TABLE finding_contributions (
		stream     TEXT NOT NULL,
		finding_id TEXT NOT NULL REFERENCES findings(id) ON DELETE CASCADE,
		count      INTEGER NOT NULL,
		body       TEXT NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (stream, finding_id)
	);
	CREATE INDEX finding_contributions_finding ON finding_contributions(finding_id);
	CREATE TABLE streams (
		stream     TEXT PRIMARY KEY,
		inputs     TEXT NOT NULL DEFAULT '[]',
		updated_at INTEGER NOT NULL
	);
	CREATE TABLE source_positions (
		source     TEXT NOT NULL,
		object     TEXT NOT NULL,
		token      TEXT NOT NULL,
		name       TEXT NOT NULL DEFAULT '',
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (source, object)
	);
	CREATE TABLE respond_pending (
		key        TEXT PRIMARY KEY,
		finding_id TEXT NOT NULL DEFAULT '',
		alarm      TEXT NOT NULL DEFAULT '',
		updated    INTEGER NOT NULL DEFAULT 0,
		at         INTEGER NOT NULL
	);`,

	// 8: detection windows that concurrent Lambda invocations fill, and
	// the version of each stream's last commit (window.go).
	windowsSchema,

	// 9: the daemon's early findings, not yet confirmed by their window's
	// closing (early.go).
	earlySchema,

	// 10: the daemon's engine snapshot, saved with the positions of the
	// sources that acknowledge and forget (snapshot.go).
	snapshotSchema,
	// 11: per-minute traffic aggregates and top tables that the daemon
	// adds for every source, and the findings' explanations (traffic.go).
	trafficSchema,
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int { return len(migrations) }

// migrate brings the database to version target (at most len(migrations)),
// each step in its own transaction together with its schema_migrations row.
// It refuses a database newer than this build.
func migrate(ctx context.Context, db *sql.DB, target int) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("cannot create schema_migrations: %w", err)
	}
	for {
		done, err := migrateStep(ctx, db, target)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the next step, if any, in one immediate transaction
// (so that two processes opening a new database at once do not both apply
// it). It reports whether the database is at target.
func migrateStep(ctx context.Context, db *sql.DB, target int) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("cannot begin migration: %w", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return false, fmt.Errorf("cannot read the schema version: %w", err)
	}
	if v > len(migrations) {
		return false, fmt.Errorf("the database has schema version %d, newer than this flowguard knows (%d): upgrade flowguard", v, len(migrations))
	}
	if v >= target {
		return true, nil
	}
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		return false, fmt.Errorf("cannot migrate the schema to version %d: %w", v+1, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)`, v+1, time.Now().UnixNano()); err != nil {
		return false, fmt.Errorf("cannot record schema version %d: %w", v+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("cannot commit schema version %d: %w", v+1, err)
	}
	return v+1 >= target, nil
}
