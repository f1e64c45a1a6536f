package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// leasesSchema is migration step 6: who works on a block or outbox row
// now, and until when. A row whose lease ran out (its process died) is
// free for another process to take over.
const leasesSchema = `ALTER TABLE blocks ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
	ALTER TABLE blocks ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE outbox ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
	ALTER TABLE outbox ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;`

// Blocks is the contract of the response pipeline's action log: the
// operations that must each be atomic for several processes (cron runs,
// daemons) to respond to the same attacks without a second entry for an
// address, a broken blocks-per-hour cap or a ban recorded twice.
//
// The SQLite Store implements each operation as one IMMEDIATE transaction
// (processes queue on the write lock). A PostgreSQL store implements them
// as transactions that lock the rows they read (SELECT … FOR UPDATE, and
// an advisory lock per target for the rule-number ledger); a DynamoDB
// store as TransactWriteItems with conditions on the items read (the ban
// counter's version, one item per target and rule number, one per target
// and prefix, the lease's owner and expiry).
type Blocks interface {
	// ClaimBlock decides and reserves a ban in one step: it checks the
	// unban grace (covering prefixes too), the finding's last ban, the
	// live blocks, the blocks-per-hour cap and the room at each target,
	// then records the ban and one pending row per target, each with its
	// rule number, leased to the claim's owner.
	ClaimBlock(ctx context.Context, c BlockClaim) (ClaimResult, error)
	// RenumberBlock gives a leased row another free rule number (the one
	// it had turned out to be taken in AWS by an entry flowguard did not
	// create).
	RenumberBlock(ctx context.Context, id int64, owner string, slot Slot) (int32, error)
	// LeaseBlocks takes the lease on the live rows a filter selects that
	// no live lease holds, optionally marking them for removal, and
	// returns them.
	LeaseBlocks(ctx context.Context, l BlockLease) ([]BlockRecord, error)
	// ReleaseBlock applies an update to a row leased by owner and ends
	// the lease (confirm: state active; release: pending to try later,
	// failed to give up; removed). A row marked for removal while it was
	// leased stays so, and the state returned says it.
	ReleaseBlock(ctx context.Context, id int64, owner string, u BlockUpdate) (BlockState, error)
	// ListBlocks returns rows as they are now.
	ListBlocks(ctx context.Context, fl BlockFilter) ([]BlockRecord, error)
	// UpdateBlock changes a row whoever leases it (reconcile, manual
	// unblock).
	UpdateBlock(ctx context.Context, id int64, u BlockUpdate) error
	// PutUnban records a manual unban.
	PutUnban(ctx context.Context, u Unban) error
}

// Outbox is the contract of the notification outbox: a notification is
// decided once (Enqueue checks the notification log it read has not
// changed since) and delivered by one process at a time (ClaimOutbox
// leases rows; a crashed claimer's rows are retried when the lease runs
// out).
type Outbox interface {
	GetNotifyRecord(ctx context.Context, key string) (NotifyRecord, bool, error)
	Enqueue(ctx context.Context, items []OutboxItem, recs []NotifyRecord) ([]int64, error)
	ClaimOutbox(ctx context.Context, owner string, now time.Time, lease time.Duration) ([]OutboxItem, error)
	ReleaseOutbox(ctx context.Context, id int64, owner, state, lastErr string) error
}

// Auditor keeps the audit trail.
type Auditor interface {
	AppendAudit(ctx context.Context, e AuditEntry) (int64, error)
	ListAudit(ctx context.Context, fl AuditFilter) ([]AuditEntry, error)
}

// Responses is what the response pipeline needs of a store.
type Responses interface {
	Blocks
	Outbox
	Auditor
}

var _ Responses = (*Store)(nil)

// ErrLeaseLost says a row's lease is no longer the caller's (it ran out
// and another process took the row over).
var ErrLeaseLost = errors.New("the lease on this row is held by another process")

// ErrStale says the notification log changed since it was read: another
// process decided the same notification.
var ErrStale = errors.New("the notification log changed since it was read")

// Slot is what a blocker saw at one target right before a claim.
type Slot struct {
	Target string
	// RuleMin and RuleMax bound the rule numbers flowguard may use at the
	// target; both 0 when the target has none (a WAFv2 IP set).
	RuleMin, RuleMax int32
	// Taken are the rule numbers in use at the target, whoever wrote them.
	Taken []int32
	// Adopt is the rule number of an entry that already denies the prefix
	// in flowguard's shape and range: the claim takes it over.
	Adopt int32
	// Room is how many more entries of the prefix's family the target
	// takes, by what it holds now. Pending rows not yet there count
	// against it.
	Room int
	// Limit is how many entries the target holds at most (for messages).
	Limit int
}

// BlockClaim asks to ban a prefix at some targets.
type BlockClaim struct {
	Prefix    netip.Prefix
	FindingID string
	Severity  float64
	Reason    string // the finding type
	// LastSeen is the finding's last activity: the same finding with no
	// newer activity is not banned again.
	LastSeen time.Time
	Now      time.Time
	Owner    string
	Lease    time.Duration
	// MaxPerHour caps the bans decided in the hour before Now (0: none).
	MaxPerHour int
	// BanTime returns the ban's duration from its number (1 for the
	// prefix's first ban).
	BanTime func(n int) time.Duration
	Slots   []Slot
	// DryRun runs every check and writes nothing: ClaimMade then says a
	// ban would be made.
	DryRun bool
}

// ClaimVerdict says what a claim did.
type ClaimVerdict int

// Claim verdicts.
const (
	ClaimMade     ClaimVerdict = iota // Rows are reserved, Ban recorded
	ClaimUnbanned                     // Unban covers the prefix
	ClaimDone                         // this finding banned it, no newer activity
	ClaimLive                         // every target holds a live block of it
	ClaimCapped                       // Recent bans reach the cap
	ClaimFull                         // Full targets have no room; nothing reserved
)

// ClaimResult is the answer to a claim.
type ClaimResult struct {
	Verdict ClaimVerdict
	Rows    []BlockRecord
	Ban     Ban
	Unban   Unban
	Recent  int
	Full    []string
}

var liveStates = `('pending','active','removing')`

// ClaimBlock implements Blocks.
func (s *Store) ClaimBlock(ctx context.Context, c BlockClaim) (ClaimResult, error) {
	var res ClaimResult
	if !c.Prefix.IsValid() || c.Owner == "" {
		return res, errors.New("claim without a prefix or an owner")
	}
	ps := c.Prefix.String()
	err := s.write(ctx, func(tx *sql.Tx) error {
		res = ClaimResult{}
		u, ok, err := coveringUnban(ctx, tx, c.Prefix, c.Now)
		if err != nil {
			return err
		}
		if ok {
			res.Verdict, res.Unban = ClaimUnbanned, u
			return nil
		}
		var seen int64
		err = tx.QueryRowContext(ctx, `SELECT last_seen FROM bans WHERE prefix = ? AND finding_id = ? ORDER BY seq DESC LIMIT 1`, ps, c.FindingID).Scan(&seen)
		switch {
		case err == nil:
			if !c.LastSeen.After(fromNanos(seen)) {
				res.Verdict = ClaimDone
				return nil
			}
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("cannot read bans of %s: %w", ps, err)
		}
		live := map[string]bool{}
		if err := eachRow(ctx, tx, `SELECT target FROM blocks WHERE prefix = ? AND state IN `+liveStates, []any{ps}, func(r *sql.Rows) error {
			var t string
			if err := r.Scan(&t); err != nil {
				return err
			}
			live[t] = true
			return nil
		}); err != nil {
			return fmt.Errorf("cannot read blocks of %s: %w", ps, err)
		}
		var slots []Slot
		for _, sl := range c.Slots {
			if !live[sl.Target] {
				slots = append(slots, sl)
			}
		}
		if len(slots) == 0 {
			res.Verdict = ClaimLive
			return nil
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM bans WHERE at >= ?`, nanos(c.Now.Add(-time.Hour))).Scan(&res.Recent); err != nil {
			return fmt.Errorf("cannot count bans: %w", err)
		}
		if c.MaxPerHour > 0 && res.Recent >= c.MaxPerHour {
			res.Verdict = ClaimCapped
			return nil
		}
		rules := make([]int32, len(slots))
		for i, sl := range slots {
			r, ok, err := pickSlot(ctx, tx, sl, c.Prefix, 0)
			if err != nil {
				return err
			}
			if !ok {
				res.Full = append(res.Full, sl.Target)
			}
			rules[i] = r
		}
		if len(res.Full) > 0 {
			res.Verdict = ClaimFull
			return nil
		}
		if c.DryRun {
			res.Verdict = ClaimMade
			return nil
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM bans WHERE prefix = ?`, ps).Scan(&n); err != nil {
			return fmt.Errorf("cannot count bans of %s: %w", ps, err)
		}
		n++
		var dur time.Duration
		if c.BanTime != nil {
			dur = c.BanTime(n)
		}
		res.Ban = Ban{Prefix: c.Prefix, FindingID: c.FindingID, Severity: c.Severity, At: c.Now, Expires: c.Now.Add(dur), LastSeen: c.LastSeen, Number: n}
		if _, err := tx.ExecContext(ctx, `INSERT INTO bans(prefix, finding_id, severity, at, expires_at, last_seen, number) VALUES (?,?,?,?,?,?,?)`,
			ps, c.FindingID, c.Severity, nanos(c.Now), nanos(res.Ban.Expires), nanos(c.LastSeen), n); err != nil {
			return fmt.Errorf("cannot record ban of %s: %w", ps, err)
		}
		for i, sl := range slots {
			row := BlockRecord{Target: sl.Target, Prefix: c.Prefix, RuleNumber: rules[i], FindingID: c.FindingID, Severity: c.Severity,
				Reason: c.Reason, State: BlockPending, Created: c.Now, Expires: res.Ban.Expires, Updated: c.Now}
			r, err := tx.ExecContext(ctx, `INSERT INTO blocks(target, prefix, rule_number, finding_id, severity, reason, state, created_at, expires_at, updated_at, lease_owner, lease_until)
				VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
				row.Target, ps, row.RuleNumber, row.FindingID, row.Severity, row.Reason, string(BlockPending),
				nanos(c.Now), nanos(row.Expires), nanos(c.Now), c.Owner, nanos(c.Now.Add(c.Lease)))
			if err != nil {
				return fmt.Errorf("cannot record block of %s at %s: %w", ps, sl.Target, err)
			}
			if row.ID, err = r.LastInsertId(); err != nil {
				return fmt.Errorf("cannot record block of %s at %s: %w", ps, sl.Target, err)
			}
			res.Rows = append(res.Rows, row)
		}
		res.Verdict = ClaimMade
		return nil
	})
	return res, err
}

// pickSlot reads the live rows of sl's target in tx and applies the
// slot rule (PickSlot) to them.
func pickSlot(ctx context.Context, tx *sql.Tx, sl Slot, p netip.Prefix, self int64) (int32, bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+blockCols+` FROM blocks WHERE target = ? AND state IN `+liveStates, sl.Target)
	if err != nil {
		return 0, false, fmt.Errorf("cannot read the blocks of %s: %w", sl.Target, err)
	}
	live, err := scanBlocks(rows)
	if err != nil {
		return 0, false, fmt.Errorf("cannot read the blocks of %s: %w", sl.Target, err)
	}
	r, ok := PickSlot(slices.Values(live), sl, p, self)
	return r, ok, nil
}

// eachRow runs a query in tx and calls fn for each row.
func eachRow(ctx context.Context, tx *sql.Tx, q string, args []any, fn func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// coveringUnban returns the unban in force at now that overlaps p: the
// same prefix, a prefix around it, or an address inside it.
func coveringUnban(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, p netip.Prefix, now time.Time) (Unban, bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT prefix, at, until, by, reason FROM unbans WHERE until > ? ORDER BY until DESC`, nanos(now))
	if err != nil {
		return Unban{}, false, fmt.Errorf("cannot read the unbans: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u Unban
		var ps string
		var at, until int64
		if err := rows.Scan(&ps, &at, &until, &u.By, &u.Reason); err != nil {
			return Unban{}, false, fmt.Errorf("cannot read the unbans: %w", err)
		}
		up, err := netip.ParsePrefix(ps)
		if err != nil || !up.Overlaps(p) {
			continue
		}
		u.Prefix, u.At, u.Until = up, fromNanos(at), fromNanos(until)
		return u, true, nil
	}
	return Unban{}, false, rows.Err()
}

// UnbanCovering returns the manual unban in force at now that covers p (or
// an address inside it), if any: unblocking 198.51.100.0/24 keeps
// 198.51.100.77 from being blocked during the grace period.
func (s *Store) UnbanCovering(ctx context.Context, p netip.Prefix, now time.Time) (Unban, bool, error) {
	return coveringUnban(ctx, s.r, p, now)
}

// RenumberBlock implements Blocks.
func (s *Store) RenumberBlock(ctx context.Context, id int64, owner string, sl Slot) (int32, error) {
	var rule int32
	err := s.write(ctx, func(tx *sql.Tx) error {
		var ps, lo string
		if err := tx.QueryRowContext(ctx, `SELECT prefix, lease_owner FROM blocks WHERE id = ?`, id).Scan(&ps, &lo); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return &NotFoundError{Kind: "block", ID: fmt.Sprint(id)}
			}
			return fmt.Errorf("cannot read block %d: %w", id, err)
		}
		if lo != owner {
			return fmt.Errorf("block %d: %w", id, ErrLeaseLost)
		}
		p, err := netip.ParsePrefix(ps)
		if err != nil {
			return fmt.Errorf("block %d: bad prefix %q in the store: %w", id, ps, err)
		}
		sl.Room = max(sl.Room, 1) // the row itself is already counted
		r, ok, err := pickSlot(ctx, tx, sl, p, id)
		if err != nil {
			return err
		}
		if !ok || r == 0 {
			return fmt.Errorf("block %d: no free rule number at %s", id, sl.Target)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE blocks SET rule_number = ?, updated_at = ? WHERE id = ?`, r, nanos(s.now()), id); err != nil {
			return fmt.Errorf("cannot renumber block %d: %w", id, err)
		}
		rule = r
		return nil
	})
	return rule, err
}

// BlockLease selects rows to lease.
type BlockLease struct {
	Owner string
	Now   time.Time
	Lease time.Duration
	// IDs selects these rows; when empty, Due selects the rows with work
	// to do: pending, being removed, or expiring at or before Now.
	IDs []int64
	Due bool
	// Remove marks the leased rows for removal by this cause (expiry,
	// unblock, evict) unless they already are.
	Remove string
}

// LeaseBlocks implements Blocks.
func (s *Store) LeaseBlocks(ctx context.Context, l BlockLease) ([]BlockRecord, error) {
	if l.Owner == "" {
		return nil, errors.New("lease without an owner")
	}
	var out []BlockRecord
	err := s.write(ctx, func(tx *sql.Tx) error {
		out = nil
		where := []string{"state IN " + liveStates, "(lease_owner = '' OR lease_until <= ? OR lease_owner = ?)"}
		args := []any{nanos(l.Now), l.Owner}
		switch {
		case len(l.IDs) > 0:
			where = append(where, "id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(l.IDs)), ",")+")")
			for _, id := range l.IDs {
				args = append(args, id)
			}
		case l.Due:
			where = append(where, "(state IN ('pending','removing') OR expires_at <= ?)")
			args = append(args, nanos(l.Now))
		default:
			return errors.New("lease of no rows")
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+blockCols+` FROM blocks WHERE `+strings.Join(where, " AND ")+` ORDER BY id`, args...)
		if err != nil {
			return fmt.Errorf("cannot read blocks: %w", err)
		}
		out, err = scanBlocks(rows)
		if err != nil {
			return err
		}
		for i := range out {
			r := &out[i]
			set, sargs := "lease_owner = ?, lease_until = ?", []any{l.Owner, nanos(l.Now.Add(l.Lease))}
			if l.Remove != "" && r.State != BlockRemoving {
				set += ", state = 'removing', removed_by = ?, updated_at = ?"
				sargs = append(sargs, l.Remove, nanos(l.Now))
				r.State, r.RemovedBy = BlockRemoving, l.Remove
			}
			if _, err := tx.ExecContext(ctx, `UPDATE blocks SET `+set+` WHERE id = ?`, append(sargs, r.ID)...); err != nil {
				return fmt.Errorf("cannot lease block %d: %w", r.ID, err)
			}
		}
		return nil
	})
	return out, err
}

// ReleaseBlock implements Blocks.
func (s *Store) ReleaseBlock(ctx context.Context, id int64, owner string, u BlockUpdate) (BlockState, error) {
	var state BlockState
	err := s.write(ctx, func(tx *sql.Tx) error {
		var st, lo string
		if err := tx.QueryRowContext(ctx, `SELECT state, lease_owner FROM blocks WHERE id = ?`, id).Scan(&st, &lo); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return &NotFoundError{Kind: "block", ID: fmt.Sprint(id)}
			}
			return fmt.Errorf("cannot read block %d: %w", id, err)
		}
		if lo != owner {
			return fmt.Errorf("block %d: %w", id, ErrLeaseLost)
		}
		state = BlockState(st)
		// A manual unblock marked the row while its entry was being
		// written: it stays marked, for the removal that follows.
		if state == BlockRemoving && (u.State == BlockActive || u.State == BlockPending || u.State == BlockFailed) {
			u.State = ""
		}
		if u.State != "" {
			state = u.State
		}
		if err := updateBlockTx(ctx, tx, id, u, s.now()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE blocks SET lease_owner = '', lease_until = 0 WHERE id = ?`, id); err != nil {
			return fmt.Errorf("cannot release block %d: %w", id, err)
		}
		return nil
	})
	return state, err
}

// ClaimOutbox implements Outbox: it leases the pending notifications no
// live lease holds, oldest first, and returns them.
func (s *Store) ClaimOutbox(ctx context.Context, owner string, now time.Time, lease time.Duration) ([]OutboxItem, error) {
	if owner == "" {
		return nil, errors.New("outbox claim without an owner")
	}
	var out []OutboxItem
	err := s.write(ctx, func(tx *sql.Tx) error {
		out = nil
		if err := eachRow(ctx, tx, `SELECT id, notifier, key, payload, state, attempts, last_error, created_at FROM outbox
			WHERE state = 'pending' AND (lease_owner = '' OR lease_until <= ? OR lease_owner = ?) ORDER BY id`, []any{nanos(now), owner}, func(r *sql.Rows) error {
			var it OutboxItem
			var created int64
			if err := r.Scan(&it.ID, &it.Notifier, &it.Key, &it.Payload, &it.State, &it.Attempts, &it.LastError, &created); err != nil {
				return err
			}
			it.Created = fromNanos(created)
			out = append(out, it)
			return nil
		}); err != nil {
			return fmt.Errorf("cannot read the outbox: %w", err)
		}
		for _, it := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id = ?`, owner, nanos(now.Add(lease)), it.ID); err != nil {
				return fmt.Errorf("cannot lease outbox item %d: %w", it.ID, err)
			}
		}
		return nil
	})
	return out, err
}

// ReleaseOutbox implements Outbox: it sets a leased item's state ("sent",
// "pending" to try again, "failed" to give up), counts the attempt and
// ends the lease. An item whose lease another process took over is left
// alone (ErrLeaseLost).
func (s *Store) ReleaseOutbox(ctx context.Context, id int64, owner, state, lastErr string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET state = ?, last_error = ?, attempts = attempts + 1, updated_at = ?, lease_owner = '', lease_until = 0
			WHERE id = ? AND lease_owner = ?`, state, lastErr, nanos(s.now()), id, owner)
		if err != nil {
			return fmt.Errorf("cannot update outbox item %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("outbox item %d: %w", id, ErrLeaseLost)
		}
		return nil
	})
}
