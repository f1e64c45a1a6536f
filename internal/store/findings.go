package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/finding"
)

// historyKeep is how many history entries a finding keeps; older ones are
// dropped as new activity arrives.
const historyKeep = 200

// History kinds.
const (
	HistoryCreated    = "created"
	HistoryUpdated    = "updated"
	HistorySuppressed = "suppressed"
	HistoryArchived   = "archived"
	HistoryUnarchived = "unarchived"
	HistoryFeedback   = "feedback"
)

// HistoryEntry is one thing that happened to a finding: created, updated by
// new activity (with that activity's count, severity, last seen and
// evidence), suppressed by a rule, archived, unarchived, feedback.
type HistoryEntry struct {
	Time     time.Time       `json:"time"`
	Kind     string          `json:"kind"`
	Count    int64           `json:"count,omitempty"`
	Severity float64         `json:"severity,omitempty"`
	LastSeen time.Time       `json:"last_seen,omitzero"`
	Detail   json.RawMessage `json:"detail,omitempty"`
}

// UpsertFindings records findings in one transaction: a finding whose id is
// new is inserted, one whose id is stored is merged into it with
// finding.Merge. A new finding that a stored suppression rule matches (or
// that arrives already archived, by the caller's policy) is archived; so is
// an update that a rule matches. Every finding needs an id. Either all
// findings are recorded or, on error, none.
func (s *Store) UpsertFindings(ctx context.Context, fs []finding.Finding) (created, updated int, err error) {
	for i := range fs {
		if fs[i].ID == "" {
			return 0, 0, fmt.Errorf("finding %d (%s, actor %s) has no id", i+1, fs[i].Type, fs[i].Actor.IP)
		}
		if fs[i].Type == "" {
			return 0, 0, fmt.Errorf("finding %s has no type", fs[i].ID)
		}
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		rules, st, err := prepareFindingWrites(ctx, tx)
		if err != nil {
			return err
		}
		defer st.close()
		now := s.now()
		for i := range fs {
			c, err := st.upsertOne(ctx, rules, &fs[i], now)
			if err != nil {
				return err
			}
			if c {
				created++
			} else {
				updated++
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return created, updated, nil
}

// upsertStmts are the statements of an upsert, prepared once per
// transaction.
type upsertStmts struct {
	get, insert, update, history, trim *sql.Stmt
	// contributions (contrib.go)
	putContrib, getContribs *sql.Stmt
}

// prepareFindingWrites loads the suppression rules and prepares the
// upsert statements, for a transaction that records findings.
func prepareFindingWrites(ctx context.Context, tx *sql.Tx) (*finding.Policy, *upsertStmts, error) {
	rules, err := loadRules(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	st, err := prepareUpsert(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	return rules, st, nil
}

func prepareUpsert(ctx context.Context, tx *sql.Tx) (*upsertStmts, error) {
	st := &upsertStmts{}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.get, `SELECT body, archived, feedback FROM findings WHERE id = ?`},
		{&st.insert, `INSERT INTO findings(id, type, severity, actor_ip, target_ip, count, first_seen, last_seen,
			archived, feedback, created_at, updated_at, body) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`},
		{&st.update, `UPDATE findings SET severity=?, target_ip=?, count=?, first_seen=?, last_seen=?,
			archived=?, updated_at=?, body=? WHERE id=?`},
		{&st.history, `INSERT INTO finding_history(finding_id, at, kind, count, severity, last_seen, detail)
			VALUES (?,?,?,?,?,?,?)`},
		{&st.trim, `DELETE FROM finding_history WHERE finding_id = ? AND seq <=
			(SELECT seq FROM finding_history WHERE finding_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)`},
		{&st.putContrib, `INSERT INTO finding_contributions(stream, finding_id, count, body, updated_at) VALUES (?,?,?,?,?)
			ON CONFLICT(stream, finding_id) DO UPDATE SET count=excluded.count, body=excluded.body, updated_at=excluded.updated_at`},
		{&st.getContribs, `SELECT stream, body FROM finding_contributions WHERE finding_id = ? ORDER BY stream`},
	} {
		var err error
		if *p.dst, err = tx.PrepareContext(ctx, p.sql); err != nil {
			st.close()
			return nil, fmt.Errorf("cannot prepare to record findings: %w", err)
		}
	}
	return st, nil
}

func (st *upsertStmts) close() {
	for _, s := range []*sql.Stmt{st.get, st.insert, st.update, st.history, st.trim, st.putContrib, st.getContribs} {
		if s != nil {
			s.Close()
		}
	}
}

func (st *upsertStmts) addHistory(ctx context.Context, id string, at time.Time, kind string, count int64, sev float64, last time.Time, detail []byte) error {
	if _, err := st.history.ExecContext(ctx, id, nanos(at), kind, count, sev, nanos(last), string(detail)); err != nil {
		return fmt.Errorf("cannot record the history of finding %s: %w", id, err)
	}
	return nil
}

func (st *upsertStmts) upsertOne(ctx context.Context, rules *finding.Policy, in *finding.Finding, now time.Time) (created bool, err error) {
	old, found, err := getFindingWith(st.get.QueryRowContext(ctx, in.ID), in.ID)
	if err != nil {
		return false, err
	}
	f := *in
	if found {
		f = finding.Merge(old, *in)
		if in.Archived {
			f.Archived = true
		}
	}
	return st.put(ctx, rules, f, found, in, now)
}

// put writes f, the finding as it now stands, over the stored one (found
// says whether there is one), archives it when a suppression rule matches,
// and records in in the history (the activity that changed it).
func (st *upsertStmts) put(ctx context.Context, rules *finding.Policy, f finding.Finding, found bool, in *finding.Finding, now time.Time) (created bool, err error) {
	rule, suppressed := rules.Suppressing(&f)
	newlyArchived := suppressed && !f.Archived
	if suppressed {
		f.Archived = true
	}
	body, err := marshalBody(&f)
	if err != nil {
		return false, err
	}
	if found {
		_, err = st.update.ExecContext(ctx,
			f.Severity, addrText(f.Target.IP), f.Count, nanos(f.FirstSeen), nanos(f.LastSeen),
			f.Archived, nanos(now), body, f.ID)
	} else {
		_, err = st.insert.ExecContext(ctx,
			f.ID, f.Type, f.Severity, addrText(f.Actor.IP), addrText(f.Target.IP), f.Count, nanos(f.FirstSeen), nanos(f.LastSeen),
			f.Archived, f.Feedback, nanos(now), nanos(now), body)
	}
	if err != nil {
		return false, fmt.Errorf("cannot record finding %s: %w", f.ID, err)
	}
	kind := HistoryUpdated
	if !found {
		kind = HistoryCreated
	}
	ev, err := json.Marshal(map[string]any{"evidence": in.Evidence, "ports": in.Target.Ports})
	if err != nil {
		return false, fmt.Errorf("finding %s: cannot encode its evidence: %w", f.ID, err)
	}
	if err := st.addHistory(ctx, f.ID, now, kind, in.Count, in.Severity, in.LastSeen, ev); err != nil {
		return false, err
	}
	if newlyArchived {
		d, _ := json.Marshal(map[string]string{"rule": rule})
		if err := st.addHistory(ctx, f.ID, now, HistorySuppressed, 0, 0, time.Time{}, d); err != nil {
			return false, err
		}
	}
	if found {
		if _, err := st.trim.ExecContext(ctx, f.ID, f.ID, historyKeep); err != nil {
			return false, fmt.Errorf("cannot trim the history of finding %s: %w", f.ID, err)
		}
	}
	return !found, nil
}

func addHistory(ctx context.Context, tx *sql.Tx, id string, at time.Time, kind string, count int64, sev float64, last time.Time, detail []byte) error {
	if detail == nil {
		detail = []byte("{}")
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO finding_history(finding_id, at, kind, count, severity, last_seen, detail)
		VALUES (?,?,?,?,?,?,?)`, id, nanos(at), kind, count, sev, nanos(last), string(detail)); err != nil {
		return fmt.Errorf("cannot record the history of finding %s: %w", id, err)
	}
	return nil
}

// marshalBody encodes a finding for the body column, without the mutable
// state that has columns of its own.
func marshalBody(f *finding.Finding) (string, error) {
	c := *f
	c.Archived = false
	c.Feedback = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("cannot encode finding %s: %w", f.ID, err)
	}
	return string(b), nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func getFinding(ctx context.Context, q queryer, id string) (finding.Finding, bool, error) {
	return getFindingWith(q.QueryRowContext(ctx, `SELECT body, archived, feedback FROM findings WHERE id = ?`, id), id)
}

func getFindingWith(row *sql.Row, id string) (finding.Finding, bool, error) {
	var body, feedback string
	var archived bool
	err := row.Scan(&body, &archived, &feedback)
	if errors.Is(err, sql.ErrNoRows) {
		return finding.Finding{}, false, nil
	}
	if err != nil {
		return finding.Finding{}, false, fmt.Errorf("cannot read finding %s: %w", id, err)
	}
	f, err := decodeFinding(id, body, archived, feedback)
	return f, err == nil, err
}

func decodeFinding(id, body string, archived bool, feedback string) (finding.Finding, error) {
	var f finding.Finding
	if err := json.Unmarshal([]byte(body), &f); err != nil {
		return finding.Finding{}, fmt.Errorf("finding %s is damaged in the store: %w", id, err)
	}
	f.Archived = archived
	f.Feedback = feedback
	return f, nil
}

// GetFinding returns the finding with the id; a *NotFoundError when there
// is none.
func (s *Store) GetFinding(ctx context.Context, id string) (finding.Finding, error) {
	f, ok, err := getFinding(ctx, s.r, id)
	if err != nil {
		return finding.Finding{}, err
	}
	if !ok {
		return finding.Finding{}, &NotFoundError{Kind: "finding", ID: id}
	}
	return f, nil
}

// ResolveID returns the full id of the one finding whose id is or starts
// with prefix (at least 6 characters), so that users can type the short ids
// that tables print.
func (s *Store) ResolveID(ctx context.Context, prefix string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(prefix))
	if p == "" || strings.ContainsAny(p, "%_\\") {
		return "", &NotFoundError{Kind: "finding", ID: prefix}
	}
	var id string
	err := s.r.QueryRowContext(ctx, `SELECT id FROM findings WHERE id = ?`, p).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("cannot look up finding %s: %w", prefix, err)
	}
	if len(p) < 6 {
		return "", &NotFoundError{Kind: "finding", ID: prefix}
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM findings WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 2`, len(p), p)
	if err != nil {
		return "", fmt.Errorf("cannot look up finding %s: %w", prefix, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		if err := rows.Scan(&id); err != nil {
			return "", fmt.Errorf("cannot look up finding %s: %w", prefix, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("cannot look up finding %s: %w", prefix, err)
	}
	switch len(ids) {
	case 0:
		return "", &NotFoundError{Kind: "finding", ID: prefix}
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("finding id %q is ambiguous: give more characters", prefix)
}

// ListFindings returns the findings that pass the filter, most recently
// seen first (then by severity, highest first, then by id).
func (s *Store) ListFindings(ctx context.Context, fl finding.Filter) ([]finding.Finding, error) {
	if err := fl.Validate(); err != nil {
		return nil, err
	}
	// SQL narrows by the indexed columns; fl.Match decides (types with
	// prefixes and actor CIDR blocks are checked there).
	var where []string
	var args []any
	switch fl.Archived {
	case finding.CurrentOnly:
		where = append(where, "archived = 0")
	case finding.ArchivedOnly:
		where = append(where, "archived = 1")
	}
	if fl.MinSeverity > 0 {
		where = append(where, "severity >= ?")
		args = append(args, fl.MinSeverity)
	}
	if !fl.Since.IsZero() {
		where = append(where, "last_seen >= ?")
		args = append(args, nanos(fl.Since))
	}
	if len(fl.Types) == 1 && !strings.Contains(fl.Types[0], "*") {
		where = append(where, "type = ?")
		args = append(args, fl.Types[0])
	}
	q := `SELECT id, body, archived, feedback FROM findings`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY last_seen DESC, severity DESC, id"
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot list findings: %w", err)
	}
	defer rows.Close()
	var out []finding.Finding
	for rows.Next() {
		var id, body, feedback string
		var archived bool
		if err := rows.Scan(&id, &body, &archived, &feedback); err != nil {
			return nil, fmt.Errorf("cannot list findings: %w", err)
		}
		f, err := decodeFinding(id, body, archived, feedback)
		if err != nil {
			return nil, err
		}
		if !fl.Match(&f) {
			continue
		}
		out = append(out, f)
		if fl.Limit > 0 && len(out) >= fl.Limit {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list findings: %w", err)
	}
	return out, nil
}

// FindingHistory returns what happened to a finding, oldest first.
func (s *Store) FindingHistory(ctx context.Context, id string) ([]HistoryEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT at, kind, count, severity, last_seen, detail FROM finding_history
		WHERE finding_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("cannot read the history of finding %s: %w", id, err)
	}
	defer rows.Close()
	var out []HistoryEntry
	for rows.Next() {
		var e HistoryEntry
		var at, last int64
		var detail string
		if err := rows.Scan(&at, &e.Kind, &e.Count, &e.Severity, &last, &detail); err != nil {
			return nil, fmt.Errorf("cannot read the history of finding %s: %w", id, err)
		}
		e.Time, e.LastSeen = fromNanos(at), fromNanos(last)
		if detail != "" && detail != "{}" {
			e.Detail = json.RawMessage(detail)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the history of finding %s: %w", id, err)
	}
	return out, nil
}

// Archive archives the findings; Unarchive brings them back. Both are all
// or nothing: an unknown id is a *NotFoundError naming it and changes
// nothing. Findings already in the wanted state are left as they are. They
// return how many findings changed.
func (s *Store) Archive(ctx context.Context, ids ...string) (int, error) {
	return s.setArchived(ctx, true, ids)
}

// Unarchive brings archived findings back; see Archive.
func (s *Store) Unarchive(ctx context.Context, ids ...string) (int, error) {
	return s.setArchived(ctx, false, ids)
}

func (s *Store) setArchived(ctx context.Context, archived bool, ids []string) (int, error) {
	kind := HistoryUnarchived
	if archived {
		kind = HistoryArchived
	}
	changed := 0
	err := s.write(ctx, func(tx *sql.Tx) error {
		now := s.now()
		for _, id := range ids {
			var cur bool
			err := tx.QueryRowContext(ctx, `SELECT archived FROM findings WHERE id = ?`, id).Scan(&cur)
			if errors.Is(err, sql.ErrNoRows) {
				return &NotFoundError{Kind: "finding", ID: id}
			}
			if err != nil {
				return fmt.Errorf("cannot read finding %s: %w", id, err)
			}
			if cur == archived {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE findings SET archived = ?, updated_at = ? WHERE id = ?`, archived, nanos(now), id); err != nil {
				return fmt.Errorf("cannot %s finding %s: %w", strings.TrimSuffix(kind, "d"), id, err)
			}
			if err := addHistory(ctx, tx, id, now, kind, 0, 0, time.Time{}, nil); err != nil {
				return err
			}
			changed++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return changed, nil
}

// SetFeedback records feedback on a finding: finding.Useful or
// finding.NotUseful.
func (s *Store) SetFeedback(ctx context.Context, id, value string) error {
	if value != finding.Useful && value != finding.NotUseful {
		return fmt.Errorf("feedback %q: want %s or %s", value, finding.Useful, finding.NotUseful)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		now := s.now()
		res, err := tx.ExecContext(ctx, `UPDATE findings SET feedback = ?, updated_at = ? WHERE id = ?`, value, nanos(now), id)
		if err != nil {
			return fmt.Errorf("cannot record feedback on finding %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("cannot record feedback on finding %s: %w", id, err)
		} else if n == 0 {
			return &NotFoundError{Kind: "finding", ID: id}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO feedback(finding_id, value, at) VALUES (?,?,?)`, id, value, nanos(now)); err != nil {
			return fmt.Errorf("cannot record feedback on finding %s: %w", id, err)
		}
		d, _ := json.Marshal(map[string]string{"feedback": value})
		return addHistory(ctx, tx, id, now, HistoryFeedback, 0, 0, time.Time{}, d)
	})
}

// StreamInput is one input a stream counted: its identity (for a file,
// device, inode and a hash of its first bytes) and how many bytes of it.
type StreamInput struct {
	Identity string `json:"identity"`
	Size     int64  `json:"size"`
	Name     string `json:"name,omitempty"`
}

// StreamCommit is what one stream of work writes in one transaction.
//
// A stream is one run of detection over a known set of inputs: a
// flowguard detect over some files, or the daemon. Findings are the
// stream's cumulative findings as they now stand, not increments: each
// replaces the stream's earlier contribution to the same finding, so that
// writing the same state twice (a replay after a crash, detect run twice
// over the same files) changes nothing. A finding's row is the merge
// (finding.Merge) of the contributions of every stream.
type StreamCommit struct {
	Stream   string
	Findings []finding.Finding
	// Inputs, when set, are recorded as what the stream counted, and
	// every other stream whose inputs they all cover (same identity, no
	// more bytes) is superseded: its contributions are dropped, since
	// this stream counted the same records again.
	Inputs []StreamInput
	// Positions and Alarms are saved in the same transaction.
	Positions []Position
	Alarms    []AlarmState
	// Respond queues the changed findings and AlarmChanges for the
	// response pipeline in the same transaction (PendingResponses), so
	// that a crash between the commit and the response loses none.
	Respond      bool
	AlarmChanges []alarm.StateChange
	// Version, when above 0, is the version of the stream's state the
	// findings are (a Window's): the commit is skipped, with
	// CommitResult.Stale set, when one at the same or a higher version
	// was applied, so that a slower process's older state never replaces
	// a newer one.
	Version int64
	// Retract are findings the stream no longer raises (an open window's
	// early finding that its closing did not confirm): the stream's
	// contributions to them are dropped, and a finding no other stream
	// contributes to is deleted (CommitResult.Removed).
	Retract []string
	// Early, when not nil, replaces the set of the stream's findings
	// whose contribution is early (an open window's, not yet confirmed by
	// its closing): LoadEarly reads it back after a restart.
	Early []string
	// Snapshot, when not nil, replaces the stream's engine snapshot
	// (LoadSnapshot), in the same transaction.
	Snapshot *EngineSnapshot
	// Traffic is added to the per-minute traffic aggregates, and
	// Explanations (finding id → JSON) replace the findings'
	// explanations, in the same transaction (traffic.go).
	Traffic      *TrafficDelta
	Explanations map[string][]byte
}

// CommitResult says what a StreamCommit changed.
type CommitResult struct {
	Created, Updated, Unchanged, Superseded int
	// Changed are the findings created or updated (count, times or
	// severity), as stored; New are the ids of those created.
	Changed []finding.Finding
	New     []string
	// Removed counts the findings a versioned commit deleted: an older
	// version of the stream had found them, this one does not, and no
	// other stream contributes to them.
	Removed int
	// Stale says the commit was skipped: a newer version of the stream
	// was committed (StreamCommit.Version).
	Stale bool
}

// legacyStream holds the counts a finding had before contributions were
// recorded (databases older than schema version 6).
const legacyStream = "legacy"

// CommitStream writes c in one transaction; see StreamCommit.
func (s *Store) CommitStream(ctx context.Context, c StreamCommit) (CommitResult, error) {
	var res CommitResult
	if c.Stream == "" || c.Stream == legacyStream {
		return res, fmt.Errorf("bad stream name %q", c.Stream)
	}
	for i := range c.Findings {
		if c.Findings[i].ID == "" || c.Findings[i].Type == "" {
			return res, fmt.Errorf("finding %d (%s, actor %s) has no id or type", i+1, c.Findings[i].Type, c.Findings[i].Actor.IP)
		}
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		res = CommitResult{}
		if c.Version > 0 {
			stale, err := staleStream(ctx, tx, c.Stream, c.Version)
			if err != nil || stale {
				res.Stale = stale
				return err
			}
		}
		now := s.now()
		affected := map[string]bool{}
		if c.Version > 0 {
			n, err := dropVanished(ctx, tx, c.Stream, c.Findings, affected)
			if err != nil {
				return err
			}
			res.Removed = n
		}
		if len(c.Retract) > 0 {
			n, err := retract(ctx, tx, c.Stream, c.Retract, affected)
			if err != nil {
				return err
			}
			res.Removed += n
		}
		rules, st, err := prepareFindingWrites(ctx, tx)
		if err != nil {
			return err
		}
		defer st.close()
		created := map[string]bool{}
		for i := range c.Findings {
			f := &c.Findings[i]
			isNew, err := st.ensureRow(ctx, rules, f, now)
			if err != nil {
				return err
			}
			created[f.ID] = isNew
		}
		// Legacy rows are turned into contributions above, before the
		// superseded streams' contributions go.
		if c.Inputs != nil {
			n, err := supersede(ctx, tx, c.Stream, c.Inputs, affected, now)
			if err != nil {
				return err
			}
			res.Superseded = n
		}
		for i := range c.Findings {
			f := &c.Findings[i]
			body, err := marshalBody(f)
			if err != nil {
				return err
			}
			if _, err := st.putContrib.ExecContext(ctx, c.Stream, f.ID, f.Count, body, nanos(now)); err != nil {
				return fmt.Errorf("cannot record finding %s: %w", f.ID, err)
			}
			affected[f.ID] = true
		}
		ids := make([]string, 0, len(affected))
		for id := range affected {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		byID := map[string]*finding.Finding{}
		for i := range c.Findings {
			byID[c.Findings[i].ID] = &c.Findings[i]
		}
		for _, id := range ids {
			f, state, err := st.refold(ctx, rules, id, byID[id], now)
			if err != nil {
				return err
			}
			switch {
			case created[id]:
				res.Created++
				res.Changed = append(res.Changed, f)
				res.New = append(res.New, id)
			case state == foldCreated:
				res.Created++
				res.Changed = append(res.Changed, f)
				res.New = append(res.New, id)
			case state == foldUpdated:
				res.Updated++
				res.Changed = append(res.Changed, f)
			default:
				res.Unchanged++
			}
		}
		if c.Respond {
			for _, f := range res.Changed {
				if _, err := tx.ExecContext(ctx, `INSERT INTO respond_pending(key, finding_id, updated, at) VALUES (?,?,?,?)
					ON CONFLICT(key) DO UPDATE SET at=excluded.at`, "finding:"+f.ID, f.ID, !created[f.ID], nanos(now)); err != nil {
					return fmt.Errorf("cannot queue finding %s for the response: %w", f.ID, err)
				}
			}
			for _, ch := range c.AlarmChanges {
				js, err := json.Marshal(ch)
				if err != nil {
					return fmt.Errorf("cannot queue the change of alarm %s: %w", ch.Alarm, err)
				}
				key := fmt.Sprintf("alarm:%s:%d:%s", ch.Alarm, ch.Time.UnixNano(), ch.To)
				if _, err := tx.ExecContext(ctx, `INSERT INTO respond_pending(key, alarm, at) VALUES (?,?,?)
					ON CONFLICT(key) DO NOTHING`, key, string(js), nanos(now)); err != nil {
					return fmt.Errorf("cannot queue the change of alarm %s: %w", ch.Alarm, err)
				}
			}
		}
		if err := savePositions(ctx, tx, c.Positions, now); err != nil {
			return err
		}
		if c.Early != nil {
			if err := saveEarly(ctx, tx, c.Stream, c.Early); err != nil {
				return err
			}
		}
		if c.Snapshot != nil {
			if err := saveSnapshot(ctx, tx, c.Stream, c.Snapshot, now); err != nil {
				return err
			}
		}
		if err := addTraffic(ctx, tx, c.Traffic); err != nil {
			return err
		}
		if err := saveExplanations(ctx, tx, c.Explanations, now); err != nil {
			return err
		}
		return saveAlarmStates(ctx, tx, c.Alarms, now)
	})
	return res, err
}

// ensureRow makes sure the finding has a row (contributions reference it),
// inserting f when there is none (created is then true), and turns the
// counts of a row recorded before contributions existed into the legacy
// contribution.
func (st *upsertStmts) ensureRow(ctx context.Context, rules *finding.Policy, f *finding.Finding, now time.Time) (created bool, err error) {
	old, found, err := getFindingWith(st.get.QueryRowContext(ctx, f.ID), f.ID)
	if err != nil {
		return false, err
	}
	if !found {
		return st.put(ctx, rules, *f, false, f, now)
	}
	rows, err := st.getContribs.QueryContext(ctx, f.ID)
	if err != nil {
		return false, fmt.Errorf("cannot read finding %s: %w", f.ID, err)
	}
	has := rows.Next()
	rows.Close()
	if has {
		return false, nil
	}
	body, err := marshalBody(&old)
	if err != nil {
		return false, err
	}
	if _, err := st.putContrib.ExecContext(ctx, legacyStream, f.ID, old.Count, body, nanos(now)); err != nil {
		return false, fmt.Errorf("cannot record finding %s: %w", f.ID, err)
	}
	return false, nil
}

type foldState int

const (
	foldUnchanged foldState = iota
	foldCreated
	foldUpdated
)

// refold recomputes a finding's row from its contributions. in is the
// activity that changed it, for the history, or nil. A finding left with
// no contribution keeps its row as it is.
func (st *upsertStmts) refold(ctx context.Context, rules *finding.Policy, id string, in *finding.Finding, now time.Time) (finding.Finding, foldState, error) {
	rows, err := st.getContribs.QueryContext(ctx, id)
	if err != nil {
		return finding.Finding{}, 0, fmt.Errorf("cannot read finding %s: %w", id, err)
	}
	var f finding.Finding
	n := 0
	for rows.Next() {
		var stream, body string
		if err := rows.Scan(&stream, &body); err != nil {
			rows.Close()
			return finding.Finding{}, 0, fmt.Errorf("cannot read finding %s: %w", id, err)
		}
		c, err := decodeFinding(id, body, false, "")
		if err != nil {
			rows.Close()
			return finding.Finding{}, 0, err
		}
		if n == 0 {
			f = c
		} else {
			f = finding.Merge(f, c)
		}
		n++
	}
	if err := rows.Close(); err != nil {
		return finding.Finding{}, 0, fmt.Errorf("cannot read finding %s: %w", id, err)
	}
	old, found, err := getFindingWith(st.get.QueryRowContext(ctx, id), id)
	if err != nil || n == 0 {
		return old, foldUnchanged, err
	}
	if found {
		f.Archived, f.Feedback = old.Archived || in != nil && in.Archived, old.Feedback
		if f.Count == old.Count && f.FirstSeen.Equal(old.FirstSeen) && f.LastSeen.Equal(old.LastSeen) && f.Severity == old.Severity {
			return old, foldUnchanged, nil
		}
	} else if in != nil && in.Archived {
		f.Archived = true
	}
	if in == nil {
		in = &f
	}
	created, err := st.put(ctx, rules, f, found, in, now)
	if err != nil {
		return f, 0, err
	}
	stored, _, err := getFindingWith(st.get.QueryRowContext(ctx, id), id)
	if created {
		return stored, foldCreated, err
	}
	return stored, foldUpdated, err
}

// supersede records stream's inputs and drops the contributions of the
// streams whose inputs they all cover, adding the findings concerned to
// affected. It returns how many streams were superseded.
func supersede(ctx context.Context, tx *sql.Tx, stream string, inputs []StreamInput, affected map[string]bool, now time.Time) (int, error) {
	have := make(map[string]int64, len(inputs))
	for _, in := range inputs {
		have[in.Identity] = max(have[in.Identity], in.Size)
	}
	rows, err := tx.QueryContext(ctx, `SELECT stream, inputs FROM streams WHERE stream != ?`, stream)
	if err != nil {
		return 0, fmt.Errorf("cannot read the recorded inputs: %w", err)
	}
	var covered []string
	for rows.Next() {
		var name, js string
		if err := rows.Scan(&name, &js); err != nil {
			rows.Close()
			return 0, fmt.Errorf("cannot read the recorded inputs: %w", err)
		}
		var ins []StreamInput
		if err := json.Unmarshal([]byte(js), &ins); err != nil || len(ins) == 0 {
			continue
		}
		all := true
		for _, in := range ins {
			if size, ok := have[in.Identity]; !ok || size < in.Size {
				all = false
				break
			}
		}
		if all {
			covered = append(covered, name)
		}
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("cannot read the recorded inputs: %w", err)
	}
	for _, name := range covered {
		ids, err := tx.QueryContext(ctx, `SELECT finding_id FROM finding_contributions WHERE stream = ?`, name)
		if err != nil {
			return 0, fmt.Errorf("cannot read stream %s: %w", name, err)
		}
		for ids.Next() {
			var id string
			if err := ids.Scan(&id); err != nil {
				ids.Close()
				return 0, fmt.Errorf("cannot read stream %s: %w", name, err)
			}
			affected[id] = true
		}
		ids.Close()
		if _, err := tx.ExecContext(ctx, `DELETE FROM finding_contributions WHERE stream = ?`, name); err != nil {
			return 0, fmt.Errorf("cannot supersede stream %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM streams WHERE stream = ?`, name); err != nil {
			return 0, fmt.Errorf("cannot supersede stream %s: %w", name, err)
		}
	}
	js, err := json.Marshal(inputs)
	if err != nil {
		return 0, fmt.Errorf("cannot encode the inputs: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO streams(stream, inputs, updated_at) VALUES (?,?,?)
		ON CONFLICT(stream) DO UPDATE SET inputs=excluded.inputs, updated_at=excluded.updated_at`, stream, string(js), nanos(now)); err != nil {
		return 0, fmt.Errorf("cannot record the inputs of %s: %w", stream, err)
	}
	return len(covered), nil
}

// PendingResponse is a finding, or an alarm state change, queued for the
// response pipeline.
type PendingResponse struct {
	Finding *finding.Finding
	Updated bool // the finding existed before the change
	Alarm   *alarm.StateChange
	key     string
	at      int64
}

// PendingResponses returns what CommitStream queued (Respond) and was not
// yet answered, oldest first.
func (s *Store) PendingResponses(ctx context.Context) ([]PendingResponse, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT p.key, p.finding_id, p.alarm, p.updated, p.at,
		COALESCE(f.body, ''), COALESCE(f.archived, 0), COALESCE(f.feedback, '')
		FROM respond_pending p LEFT JOIN findings f ON f.id = p.finding_id AND p.finding_id != ''
		ORDER BY p.at, p.key`)
	if err != nil {
		return nil, fmt.Errorf("cannot read the pending responses: %w", err)
	}
	defer rows.Close()
	var out []PendingResponse
	for rows.Next() {
		var p PendingResponse
		var id, alarmJS, body, feedback string
		var archived bool
		if err := rows.Scan(&p.key, &id, &alarmJS, &p.Updated, &p.at, &body, &archived, &feedback); err != nil {
			return nil, fmt.Errorf("cannot read the pending responses: %w", err)
		}
		switch {
		case alarmJS != "":
			var ch alarm.StateChange
			if err := json.Unmarshal([]byte(alarmJS), &ch); err != nil {
				return nil, fmt.Errorf("a queued alarm change is damaged in the store: %w", err)
			}
			p.Alarm = &ch
		case body != "":
			f, err := decodeFinding(id, body, archived, feedback)
			if err != nil {
				return nil, err
			}
			p.Finding = &f
		default:
			continue // the finding is gone
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the pending responses: %w", err)
	}
	return out, nil
}

// DonePending removes answered entries from the queue, unless they were
// queued again since they were read.
func (s *Store) DonePending(ctx context.Context, ps []PendingResponse) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, p := range ps {
			if _, err := tx.ExecContext(ctx, `DELETE FROM respond_pending WHERE key = ? AND at = ?`, p.key, p.at); err != nil {
				return fmt.Errorf("cannot clear the pending response %s: %w", p.key, err)
			}
		}
		return nil
	})
}
