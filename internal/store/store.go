// Package store is flowguard's embedded database: an SQLite file (through
// the pure-Go driver modernc.org/sqlite, so builds need no C toolchain) in
// WAL mode, holding findings and their history, feedback, suppression
// rules, alarm state, source checkpoints and the audit trail.
//
// Any number of goroutines (and processes) may read while one writes: the
// Store sends every write through a single connection, and SQLite's busy
// timeout makes writers in other processes wait their turn.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// EnvDB names the environment variable that overrides the default database
// path.
const EnvDB = "FLOWGUARD_DB"

// busyTimeout is how long a statement waits for another process's write
// lock before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// ErrNotFound is wrapped by the errors for ids and names that are not in
// the store.
var ErrNotFound = errors.New("not found")

// NotFoundError names what was not found.
type NotFoundError struct {
	Kind string // "finding", "suppression rule"
	ID   string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("no %s %q", e.Kind, e.ID) }

// Unwrap makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// DefaultPath returns where the database lives when no path is given:
// $FLOWGUARD_DB if set, else $XDG_DATA_HOME/flowguard/flowguard.db, else
// ~/.local/share/flowguard/flowguard.db (the XDG Base Directory default).
func DefaultPath() (string, error) {
	if p := os.Getenv(EnvDB); p != "" {
		return p, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "flowguard", "flowguard.db"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find a place for the database (set %s or use --db): %w", EnvDB, err)
	}
	return filepath.Join(home, ".local", "share", "flowguard", "flowguard.db"), nil
}

// Store is an open database. Its methods are safe for concurrent use.
type Store struct {
	path string
	w    *sql.DB // one connection: every write goes through it
	r    *sql.DB // a pool of read-only connections
	now  func() time.Time
}

// Open opens the database at path, creating it (and its directory, mode
// 0700; the file is mode 0600) when missing, and migrates its schema to the
// current version. An empty path means DefaultPath.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		p, err := DefaultPath()
		if err != nil {
			return nil, err
		}
		path = p
	}
	return open(ctx, path, len(migrations))
}

// open opens the database and migrates it to schema version target.
func open(ctx context.Context, path string, target int) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open database %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the database directory: %w", err)
	}
	// Create the file ourselves so that it is private to the user: it
	// holds the network's security findings.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open database %s: %w", path, err)
	}
	f.Close()

	base := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", busyTimeout.Milliseconds())
	w, err := sql.Open("sqlite", base+"?"+common+"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("cannot open database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := pingWAL(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("cannot open database %s: %w", path, err)
	}
	if err := migrate(ctx, w, target); err != nil {
		w.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", base+"?"+common+"&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("cannot open database %s: %w", path, err)
	}
	r.SetMaxIdleConns(4)
	return &Store{path: abs, w: w, r: r, now: time.Now}, nil
}

// pingWAL opens the write connection, which switches the file to WAL mode.
// SQLite answers that switch with SQLITE_BUSY at once, without waiting
// for the busy timeout, while another process holds the file (two
// processes creating the same new database is the common case), so the
// open is retried for up to the busy timeout.
func pingWAL(ctx context.Context, w *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	pause := 5 * time.Millisecond
	for {
		err := w.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

// Path returns the database file's absolute path.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// write runs fn in one write transaction, committed when fn returns nil and
// rolled back otherwise. Write transactions begin IMMEDIATE, so they take
// the write lock at once (waiting up to the busy timeout for other
// processes) instead of failing halfway through.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot begin a write to %s: %w", s.path, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot commit to %s: %w", s.path, err)
	}
	return nil
}

// nanos turns a time into the integer the tables store (Unix nanoseconds;
// 0 for the zero time).
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
