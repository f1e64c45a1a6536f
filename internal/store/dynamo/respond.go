package dynamo

// The response side of the store (store.Blocks, store.Outbox): the
// response pipeline's action log in the same table.
//
//	pk               sk                     item
//	B                <id, 20 digits>        a block row (rv: its version; lease_owner, lease_until; ttl once not live)
//	N#claims         #                      the claims' mutex (holder, holder_until)
//	N#notify         #                      the notification log's mutex
//	X                <at, 20 digits>#<id>   a recent ban, for the blocks-per-hour cap (ttl: two hours)
//	XP#<prefix>      #                      how many bans the prefix had (count)
//	XP#<prefix>      F#<finding>            the finding's last ban of the prefix (last_seen)
//	UB               <prefix>               a manual unban (at, until, by, reason; ttl a day after until)
//	N#block, N#outbox #                     id counters (seq)
//	L#<key>          #                      the notification log (last_sent, count, last_seen, severity)
//	O                <id, 20 digits>        an outbox item (lease_owner, lease_until; ttl once delivered)
//
// # Why a mutex item and not TransactWriteItems
//
// dynalite, the DynamoDB the tests run against, does not implement
// TransactWriteItems (architect/dynalite#151): checked on 2026-12-02 with
// dynalite 3.2.2 (what .ci/install-emulators.sh's 3.x installs), which
// answers UnknownOperationException to TransactWriteItems and
// ExecuteStatement, and 4.0.0 (npm's latest), which has no transaction
// action either. The project tests against a real endpoint. So the operations SQLite runs in one IMMEDIATE
// transaction (a claim: unban grace, the finding's last ban, live rows,
// the cap, room and rule numbers, then the writes; a renumbering; an
// unban; an enqueue) run here holding a mutex item taken by a conditional
// write, with a lease (MutexLease) so that a crashed holder frees it.
// Each single-row change (a lease, a release, a state change) is a
// conditional write on the row's version rv or its lease owner, without
// the mutex, unless it makes a row live again or changes its rule number.
// The writes under the mutex are ordered so that a crash halfway errs on
// the safe side (see record and Enqueue). A holder stalled for longer than
// MutexLease could overlap the next one: the cap could then be passed by
// one; it takes a Lambda frozen mid-claim for 30 seconds.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/flowguard/flowguard/internal/store"
)

var _ store.Responses = (*Store)(nil)

// Retention of the items nothing needs once their work is done.
const (
	// RowRetention is how long a block row that is no longer live stays
	// (for `flowguard blocks` and the API) before DynamoDB's TTL drops it.
	RowRetention = 90 * 24 * time.Hour
	// OutboxRetention is how long a delivered (or abandoned) notification
	// stays.
	OutboxRetention = 7 * 24 * time.Hour
	maxAttempts     = 50
)

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func f64(v float64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatFloat(v, 'g', -1, 64)}
}

func numf(item map[string]types.AttributeValue, name string) float64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		f, _ := strconv.ParseFloat(v.Value, 64)
		return f
	}
	return 0
}

func idKey(id int64) string { return fmt.Sprintf("%020d", id) }

// backoff waits a little before another attempt.
func backoff(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(rand.IntN(20)+1) * time.Millisecond):
		return nil
	}
}

// MutexLease is how long a process holds one of the store's mutex items
// (the claims', the notification log's) at most: one that dies holding it
// frees it when the lease runs out.
const MutexLease = 30 * time.Second

// locked runs fn holding the mutex item N#<name>: a conditional write
// takes it when no live lease holds it, another gives it back. fn's
// writes are single-item writes, not a transaction: fn orders them so
// that a crash halfway errs on the safe side.
func (st *Store) locked(ctx context.Context, name string, fn func() error) error {
	owner := fmt.Sprintf("%016x", rand.Uint64())
	k := key("N#"+name, "#")
	for attempt := 0; ; attempt++ {
		now := st.now()
		_, err := st.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(st.table), Key: k,
			UpdateExpression:    aws.String("SET holder = :o, holder_until = :u"),
			ConditionExpression: aws.String("attribute_not_exists(holder) OR holder = :none OR holder_until < :now"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":o": s(owner), ":u": n(now.Add(MutexLease).UnixNano()),
				":none": s(""), ":now": n(now.UnixNano())}})
		if err == nil {
			break
		}
		if !isConditionFailed(err) {
			return st.wrap(err, "cannot take the %s mutex", name)
		}
		if attempt >= 10*maxAttempts {
			return fmt.Errorf("DynamoDB table %s: the %s mutex stayed taken", st.table, name)
		}
		if err := backoff(ctx); err != nil {
			return err
		}
	}
	ferr := fn()
	_, err := st.c.UpdateItem(context.WithoutCancel(ctx), &dynamodb.UpdateItemInput{TableName: aws.String(st.table), Key: k,
		UpdateExpression:          aws.String("SET holder = :none"),
		ConditionExpression:       aws.String("holder = :o"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":o": s(owner), ":none": s("")}})
	if ferr != nil {
		return ferr
	}
	if isConditionFailed(err) {
		return fmt.Errorf("DynamoDB table %s: the %s mutex's lease ran out under its holder (more than %v)", st.table, name, MutexLease)
	}
	if err != nil {
		return st.wrap(err, "cannot give the %s mutex back", name)
	}
	return nil
}

// blockItem is a block row as an item, at version rv.
func blockItem(r store.BlockRecord, rv int64, leaseOwner string, leaseUntil time.Time) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		"pk": s("B"), "sk": s(idKey(r.ID)), "id": n(r.ID), "target": s(r.Target), "prefix": s(r.Prefix.String()),
		"rule": n(int64(r.RuleNumber)), "finding": s(r.FindingID), "severity": f64(r.Severity), "reason": s(r.Reason),
		"state": s(string(r.State)), "created": n(nanos(r.Created)), "expires": n(nanos(r.Expires)),
		"removed": n(nanos(r.Removed)), "removed_by": s(r.RemovedBy), "attempts": n(int64(r.Attempts)),
		"last_error": s(r.LastError), "updated": n(nanos(r.Updated)), "rv": n(rv),
		"lease_owner": s(leaseOwner), "lease_until": n(nanos(leaseUntil)),
	}
	if !r.State.Live() {
		item["ttl"] = n(r.Updated.Add(RowRetention).Unix())
	}
	return item
}

// blockRow is an item as a block row, with its version and lease.
type blockRow struct {
	store.BlockRecord
	rv         int64
	leaseOwner string
	leaseUntil time.Time
}

func decodeBlock(item map[string]types.AttributeValue) (blockRow, error) {
	r := blockRow{rv: num(item, "rv"), leaseOwner: str(item, "lease_owner"), leaseUntil: fromNanos(num(item, "lease_until"))}
	b := &r.BlockRecord
	b.ID = num(item, "id")
	p, err := netip.ParsePrefix(str(item, "prefix"))
	if err != nil {
		return r, fmt.Errorf("block %d: bad prefix %q in the store: %w", b.ID, str(item, "prefix"), err)
	}
	b.Target, b.Prefix, b.RuleNumber = str(item, "target"), p, int32(num(item, "rule"))
	b.FindingID, b.Severity, b.Reason, b.State = str(item, "finding"), numf(item, "severity"), str(item, "reason"), store.BlockState(str(item, "state"))
	b.Created, b.Expires, b.Removed, b.Updated = fromNanos(num(item, "created")), fromNanos(num(item, "expires")), fromNanos(num(item, "removed")), fromNanos(num(item, "updated"))
	b.RemovedBy, b.Attempts, b.LastError = str(item, "removed_by"), int(num(item, "attempts")), str(item, "last_error")
	return r, nil
}

// rows reads every block row, oldest first.
func (st *Store) rows(ctx context.Context) ([]blockRow, error) {
	items, err := st.query(ctx, "B", "")
	if err != nil {
		return nil, st.wrap(err, "cannot read blocks")
	}
	out := make([]blockRow, 0, len(items))
	for _, it := range items {
		r, err := decodeBlock(it)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (st *Store) row(ctx context.Context, id int64) (blockRow, error) {
	item, err := st.get(ctx, "B", idKey(id))
	if err != nil {
		return blockRow{}, st.wrap(err, "cannot read block %d", id)
	}
	if item == nil {
		return blockRow{}, &store.NotFoundError{Kind: "block", ID: fmt.Sprint(id)}
	}
	return decodeBlock(item)
}

// nextIDs takes k ids from a counter.
func (st *Store) nextIDs(ctx context.Context, counter string, k int) (int64, error) {
	out, err := st.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: key(counter, "#"),
		UpdateExpression:          aws.String("ADD seq :k"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": n(int64(k))},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, st.wrap(err, "cannot number new items")
	}
	return num(out.Attributes, "seq") - int64(k) + 1, nil
}

// coveringUnban returns the unban in force at now that overlaps p.
func (st *Store) coveringUnban(ctx context.Context, p netip.Prefix, now time.Time) (store.Unban, bool, error) {
	items, err := st.query(ctx, "UB", "")
	if err != nil {
		return store.Unban{}, false, st.wrap(err, "cannot read the unbans")
	}
	var best store.Unban
	found := false
	for _, it := range items {
		u := store.Unban{At: fromNanos(num(it, "at")), Until: fromNanos(num(it, "until")), By: str(it, "by"), Reason: str(it, "reason")}
		up, err := netip.ParsePrefix(str(it, "sk"))
		if err != nil || !u.Until.After(now) || !up.Overlaps(p) {
			continue
		}
		u.Prefix = up
		if !found || u.Until.After(best.Until) {
			best, found = u, true
		}
	}
	return best, found, nil
}

// UnbanCovering returns the manual unban in force at now that covers p (or
// an address inside it), if any.
func (st *Store) UnbanCovering(ctx context.Context, p netip.Prefix, now time.Time) (store.Unban, bool, error) {
	return st.coveringUnban(ctx, p, now)
}

// PutUnban implements store.Blocks, holding the claims' mutex: a claim
// decided before it is written does not go through after it.
func (st *Store) PutUnban(ctx context.Context, u store.Unban) error {
	if !u.Prefix.IsValid() {
		return errors.New("unban without a prefix")
	}
	return st.locked(ctx, "claims", func() error {
		if err := st.put(ctx, map[string]types.AttributeValue{"pk": s("UB"), "sk": s(u.Prefix.String()), "at": n(nanos(u.At)),
			"until": n(nanos(u.Until)), "by": s(u.By), "reason": s(u.Reason), "ttl": n(u.Until.Add(24 * time.Hour).Unix())}); err != nil {
			return st.wrap(err, "cannot record the unban of %s", u.Prefix)
		}
		return nil
	})
}

// pickSlot applies the slot rule (store.PickSlot, the SQLite store's too)
// to the rows.
func pickSlot(rows []blockRow, sl store.Slot, p netip.Prefix, self int64) (int32, bool) {
	return store.PickSlot(func(yield func(store.BlockRecord) bool) {
		for i := range rows {
			if !yield(rows[i].BlockRecord) {
				return
			}
		}
	}, sl, p, self)
}

// ClaimBlock implements store.Blocks: it decides and writes holding the
// claims' mutex (a dry run only decides); see the comment at the top of
// this file.
func (st *Store) ClaimBlock(ctx context.Context, c store.BlockClaim) (store.ClaimResult, error) {
	if !c.Prefix.IsValid() || c.Owner == "" {
		return store.ClaimResult{}, errors.New("claim without a prefix or an owner")
	}
	var res store.ClaimResult
	if c.DryRun {
		var err error
		res, _, err = st.decide(ctx, c)
		return res, err
	}
	err := st.locked(ctx, "claims", func() error {
		var rules []int32
		var slots []store.Slot
		var err error
		res, slots, err = st.decide(ctx, c)
		if err != nil || res.Verdict != store.ClaimMade {
			return err
		}
		for _, r := range res.Rows {
			rules = append(rules, r.RuleNumber)
		}
		res, err = st.record(ctx, c, slots, rules)
		return err
	})
	return res, err
}

// decide runs a claim's checks; when it says ClaimMade it returns the
// slots to fill, and in res.Rows their rule numbers only.
func (st *Store) decide(ctx context.Context, c store.BlockClaim) (res store.ClaimResult, slots []store.Slot, err error) {
	ps := c.Prefix.String()
	if u, ok, err := st.coveringUnban(ctx, c.Prefix, c.Now); err != nil || ok {
		res.Verdict, res.Unban = store.ClaimUnbanned, u
		return res, nil, err
	}
	last, err := st.get(ctx, "XP#"+ps, "F#"+c.FindingID)
	if err != nil {
		return res, nil, st.wrap(err, "cannot read bans of %s", ps)
	}
	if last != nil && !c.LastSeen.After(fromNanos(num(last, "last_seen"))) {
		res.Verdict = store.ClaimDone
		return res, nil, nil
	}
	rows, err := st.rows(ctx)
	if err != nil {
		return res, nil, err
	}
	live := map[string]bool{}
	for _, r := range rows {
		if r.Prefix == c.Prefix && r.State.Live() {
			live[r.Target] = true
		}
	}
	for _, sl := range c.Slots {
		if !live[sl.Target] {
			slots = append(slots, sl)
		}
	}
	if len(slots) == 0 {
		res.Verdict = store.ClaimLive
		return res, nil, nil
	}
	recent, err := st.query(ctx, "X", "")
	if err != nil {
		return res, nil, st.wrap(err, "cannot count bans")
	}
	since := nanos(c.Now.Add(-time.Hour))
	for _, it := range recent {
		if num(it, "at") >= since {
			res.Recent++
		}
	}
	if c.MaxPerHour > 0 && res.Recent >= c.MaxPerHour {
		res.Verdict = store.ClaimCapped
		return res, nil, nil
	}
	for _, sl := range slots {
		r, ok := pickSlot(rows, sl, c.Prefix, 0)
		if !ok {
			res.Full = append(res.Full, sl.Target)
		}
		res.Rows = append(res.Rows, store.BlockRecord{Target: sl.Target, RuleNumber: r})
	}
	if len(res.Full) > 0 {
		res.Verdict, res.Rows = store.ClaimFull, nil
		return res, nil, nil
	}
	res.Verdict = store.ClaimMade
	if c.DryRun {
		res.Rows = nil
	}
	return res, slots, nil
}

// record writes a claim's ban and rows, holding the claims' mutex. The
// rows go first: a crash after them leaves pending rows leased to the
// claimer, which the next run takes over when the lease runs out, and a
// ban not counted (the cap errs by one); the ban items follow.
func (st *Store) record(ctx context.Context, c store.BlockClaim, slots []store.Slot, rules []int32) (store.ClaimResult, error) {
	res := store.ClaimResult{Verdict: store.ClaimMade}
	ps := c.Prefix.String()
	count, err := st.get(ctx, "XP#"+ps, "#")
	if err != nil {
		return res, st.wrap(err, "cannot count bans of %s", ps)
	}
	number := int(num(count, "count")) + 1
	var dur time.Duration
	if c.BanTime != nil {
		dur = c.BanTime(number)
	}
	res.Ban = store.Ban{Prefix: c.Prefix, FindingID: c.FindingID, Severity: c.Severity, At: c.Now, Expires: c.Now.Add(dur), LastSeen: c.LastSeen, Number: number}
	first, err := st.nextIDs(ctx, "N#block", len(slots))
	if err != nil {
		return res, err
	}
	for i, sl := range slots {
		row := store.BlockRecord{ID: first + int64(i), Target: sl.Target, Prefix: c.Prefix, RuleNumber: rules[i], FindingID: c.FindingID,
			Severity: c.Severity, Reason: c.Reason, State: store.BlockPending, Created: c.Now, Expires: res.Ban.Expires, Updated: c.Now}
		if err := st.put(ctx, blockItem(row, 1, c.Owner, c.Now.Add(c.Lease))); err != nil {
			return res, st.wrap(err, "cannot record block of %s at %s", ps, sl.Target)
		}
		res.Rows = append(res.Rows, row)
	}
	for _, item := range []map[string]types.AttributeValue{
		{"pk": s("X"), "sk": s(fmt.Sprintf("%020d#%020d", nanos(c.Now), first)), "prefix": s(ps), "finding": s(c.FindingID),
			"at": n(nanos(c.Now)), "ttl": n(c.Now.Add(2 * time.Hour).Unix())},
		{"pk": s("XP#" + ps), "sk": s("F#" + c.FindingID), "last_seen": n(nanos(c.LastSeen)), "severity": f64(c.Severity),
			"at": n(nanos(c.Now)), "number": n(int64(number))},
		{"pk": s("XP#" + ps), "sk": s("#"), "count": n(int64(number)), "at": n(nanos(c.Now)), "expires": n(nanos(res.Ban.Expires))},
	} {
		if err := st.put(ctx, item); err != nil {
			return res, st.wrap(err, "cannot record the ban of %s", ps)
		}
	}
	return res, nil
}

// errNeedsLedger says a row's change needs the claims' mutex.
var errNeedsLedger = errors.New("the change needs the claims' mutex")

// change applies fn to a row and writes it on the condition that the row
// did not change since it was read (its version rv), else reads it again;
// owner, when set, must hold its lease. A change that makes a row live
// again or gives it another rule number is checked against the other live
// rows holding the claims' mutex.
func (st *Store) change(ctx context.Context, id int64, owner string, fn func(r *blockRow, rows []blockRow) error) (store.BlockRecord, error) {
	rec, err := st.tryChange(ctx, id, owner, fn, false)
	if errors.Is(err, errNeedsLedger) {
		err = st.locked(ctx, "claims", func() error {
			var err error
			rec, err = st.tryChange(ctx, id, owner, fn, true)
			return err
		})
	}
	return rec, err
}

func (st *Store) tryChange(ctx context.Context, id int64, owner string, fn func(r *blockRow, rows []blockRow) error, held bool) (store.BlockRecord, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		old, err := st.row(ctx, id)
		if err != nil {
			return store.BlockRecord{}, err
		}
		if owner != "" && old.leaseOwner != owner {
			return store.BlockRecord{}, fmt.Errorf("block %d: %w", id, store.ErrLeaseLost)
		}
		var rows []blockRow
		if held {
			if rows, err = st.rows(ctx); err != nil {
				return store.BlockRecord{}, err
			}
		}
		nw := old
		if err := fn(&nw, rows); err != nil {
			return store.BlockRecord{}, err
		}
		if nw.State.Live() && (!old.State.Live() || nw.RuleNumber != old.RuleNumber) {
			if !held {
				return store.BlockRecord{}, errNeedsLedger
			}
			for _, r := range rows {
				if r.ID != id && r.State.Live() && r.Target == nw.Target && (r.Prefix == nw.Prefix || (nw.RuleNumber > 0 && r.RuleNumber == nw.RuleNumber)) {
					return store.BlockRecord{}, fmt.Errorf("cannot update block %d: %w", id, store.ErrBlockExists)
				}
			}
		}
		_, err = st.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table),
			Item:                      blockItem(nw.BlockRecord, old.rv+1, nw.leaseOwner, nw.leaseUntil),
			ConditionExpression:       aws.String("rv = :rv"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":rv": n(old.rv)}})
		if err == nil {
			return nw.BlockRecord, nil
		}
		if !isConditionFailed(err) {
			return store.BlockRecord{}, st.wrap(err, "cannot update block %d", id)
		}
		if err := backoff(ctx); err != nil {
			return store.BlockRecord{}, err
		}
	}
	return store.BlockRecord{}, fmt.Errorf("DynamoDB table %s: block %d kept changing under %d attempts to update it", st.table, id, maxAttempts)
}

// UpdateBlock implements store.Blocks.
func (st *Store) UpdateBlock(ctx context.Context, id int64, u store.BlockUpdate) error {
	_, err := st.change(ctx, id, "", func(r *blockRow, _ []blockRow) error {
		u.Apply(&r.BlockRecord, st.now())
		return nil
	})
	return err
}

// ReleaseBlock implements store.Blocks.
func (st *Store) ReleaseBlock(ctx context.Context, id int64, owner string, u store.BlockUpdate) (store.BlockState, error) {
	r, err := st.change(ctx, id, owner, func(r *blockRow, _ []blockRow) error {
		u := u
		// A manual unblock marked the row while its entry was being
		// written: it stays marked, for the removal that follows.
		if r.State == store.BlockRemoving && (u.State == store.BlockActive || u.State == store.BlockPending || u.State == store.BlockFailed) {
			u.State = ""
		}
		u.Apply(&r.BlockRecord, st.now())
		r.leaseOwner, r.leaseUntil = "", time.Time{}
		return nil
	})
	return r.State, err
}

// RenumberBlock implements store.Blocks.
func (st *Store) RenumberBlock(ctx context.Context, id int64, owner string, sl store.Slot) (int32, error) {
	sl.Room = max(sl.Room, 1) // the row itself is already counted
	var r store.BlockRecord
	err := st.locked(ctx, "claims", func() error {
		var err error
		r, err = st.tryChange(ctx, id, owner, func(r *blockRow, rows []blockRow) error {
			rule, ok := pickSlot(rows, sl, r.Prefix, id)
			if !ok || rule == 0 {
				return fmt.Errorf("block %d: no free rule number at %s", id, sl.Target)
			}
			r.RuleNumber, r.Updated = rule, st.now()
			return nil
		}, true)
		return err
	})
	return r.RuleNumber, err
}

// LeaseBlocks implements store.Blocks: each row is leased by a write on
// the condition that it did not change since it was read; a row another
// process changed meanwhile is left to it.
func (st *Store) LeaseBlocks(ctx context.Context, l store.BlockLease) ([]store.BlockRecord, error) {
	if l.Owner == "" {
		return nil, errors.New("lease without an owner")
	}
	if len(l.IDs) == 0 && !l.Due {
		return nil, errors.New("lease of no rows")
	}
	rows, err := st.rows(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.BlockRecord
	for _, r := range rows {
		if !r.State.Live() || (r.leaseOwner != "" && r.leaseUntil.After(l.Now) && r.leaseOwner != l.Owner) {
			continue
		}
		if len(l.IDs) > 0 {
			if !slices.Contains(l.IDs, r.ID) {
				continue
			}
		} else if r.State != store.BlockPending && r.State != store.BlockRemoving && r.Expires.After(l.Now) {
			continue
		}
		nw := r
		if l.Remove != "" && r.State != store.BlockRemoving {
			nw.State, nw.RemovedBy, nw.Updated = store.BlockRemoving, l.Remove, l.Now
		}
		_, err := st.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table),
			Item:                      blockItem(nw.BlockRecord, r.rv+1, l.Owner, l.Now.Add(l.Lease)),
			ConditionExpression:       aws.String("rv = :rv"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":rv": n(r.rv)}})
		if isConditionFailed(err) {
			continue
		}
		if err != nil {
			return out, st.wrap(err, "cannot lease block %d", r.ID)
		}
		out = append(out, nw.BlockRecord)
	}
	return out, nil
}

// ListBlocks implements store.Blocks.
func (st *Store) ListBlocks(ctx context.Context, fl store.BlockFilter) ([]store.BlockRecord, error) {
	rows, err := st.rows(ctx)
	if err != nil {
		return nil, err
	}
	states := fl.States
	if fl.LiveOnly {
		states = append(slices.Clone(states), store.BlockPending, store.BlockActive, store.BlockRemoving)
	}
	var out []store.BlockRecord
	for _, r := range rows {
		if (fl.Target != "" && r.Target != fl.Target) || (fl.Prefix.IsValid() && r.Prefix != fl.Prefix) ||
			(len(states) > 0 && !slices.Contains(states, r.State)) || (!fl.Since.IsZero() && r.Created.Before(fl.Since)) ||
			(!fl.DueBy.IsZero() && r.Expires.After(fl.DueBy)) {
			continue
		}
		out = append(out, r.BlockRecord)
	}
	if fl.Limit > 0 && len(out) > fl.Limit {
		out = out[len(out)-fl.Limit:]
	}
	return out, nil
}

// GetNotifyRecord implements store.Outbox.
func (st *Store) GetNotifyRecord(ctx context.Context, k string) (store.NotifyRecord, bool, error) {
	item, err := st.get(ctx, "L#"+k, "#")
	if err != nil {
		return store.NotifyRecord{}, false, st.wrap(err, "cannot read notification log %s", k)
	}
	if item == nil {
		return store.NotifyRecord{}, false, nil
	}
	return store.NotifyRecord{Key: k, LastSent: fromNanos(num(item, "last_sent")), Count: num(item, "count"),
		LastSeen: fromNanos(num(item, "last_seen")), Severity: numf(item, "severity")}, true, nil
}

// Enqueue implements store.Outbox holding the notification log's mutex:
// it checks that each record still says what the caller read (Prev),
// then writes the items, then the records. A crash between the two
// leaves notifications queued whose decision is not logged: they may be
// decided and sent once more, never lost.
func (st *Store) Enqueue(ctx context.Context, items []store.OutboxItem, recs []store.NotifyRecord) ([]int64, error) {
	if len(items)+len(recs) == 0 {
		return nil, nil
	}
	var ids []int64
	err := st.locked(ctx, "notify", func() error {
		for _, r := range recs {
			cur, _, err := st.GetNotifyRecord(ctx, r.Key)
			if err != nil {
				return err
			}
			if nanos(cur.LastSent) != nanos(r.Prev) {
				return fmt.Errorf("notification %s: %w", r.Key, store.ErrStale)
			}
		}
		if len(items) > 0 {
			first, err := st.nextIDs(ctx, "N#outbox", len(items))
			if err != nil {
				return err
			}
			now := nanos(st.now())
			for i, it := range items {
				id := first + int64(i)
				if err := st.put(ctx, map[string]types.AttributeValue{"pk": s("O"), "sk": s(idKey(id)), "id": n(id), "notifier": s(it.Notifier),
					"key": s(it.Key), "payload": s(it.Payload), "state": s("pending"), "attempts": n(0), "last_error": s(""),
					"created": n(now), "updated": n(now), "lease_owner": s(""), "lease_until": n(0)}); err != nil {
					return st.wrap(err, "cannot queue a notification for %s", it.Notifier)
				}
				ids = append(ids, id)
			}
		}
		for _, r := range recs {
			if err := st.put(ctx, map[string]types.AttributeValue{"pk": s("L#" + r.Key), "sk": s("#"), "last_sent": n(nanos(r.LastSent)),
				"count": n(r.Count), "last_seen": n(nanos(r.LastSeen)), "severity": f64(r.Severity)}); err != nil {
				return st.wrap(err, "cannot record notification %s", r.Key)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// ClaimOutbox implements store.Outbox: each pending item no live lease
// holds is leased by a conditional update.
func (st *Store) ClaimOutbox(ctx context.Context, owner string, now time.Time, lease time.Duration) ([]store.OutboxItem, error) {
	if owner == "" {
		return nil, errors.New("outbox claim without an owner")
	}
	items, err := st.query(ctx, "O", "")
	if err != nil {
		return nil, st.wrap(err, "cannot read the outbox")
	}
	var out []store.OutboxItem
	for _, it := range items {
		lo, lu := str(it, "lease_owner"), num(it, "lease_until")
		if str(it, "state") != "pending" || (lo != "" && lu > nanos(now) && lo != owner) {
			continue
		}
		id := num(it, "id")
		_, err := st.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(st.table), Key: key("O", idKey(id)),
			UpdateExpression:          aws.String("SET lease_owner = :o, lease_until = :u"),
			ConditionExpression:       aws.String("#st = :pending AND (lease_owner = :none OR lease_until <= :now OR lease_owner = :o)"),
			ExpressionAttributeNames:  map[string]string{"#st": "state"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":o": s(owner), ":u": n(nanos(now.Add(lease))), ":pending": s("pending"), ":none": s(""), ":now": n(nanos(now))}})
		if isConditionFailed(err) {
			continue
		}
		if err != nil {
			return out, st.wrap(err, "cannot lease outbox item %d", id)
		}
		out = append(out, store.OutboxItem{ID: id, Notifier: str(it, "notifier"), Key: str(it, "key"), Payload: str(it, "payload"),
			State: "pending", Attempts: int(num(it, "attempts")), LastError: str(it, "last_error"), Created: fromNanos(num(it, "created"))})
	}
	return out, nil
}

// ReleaseOutbox implements store.Outbox.
func (st *Store) ReleaseOutbox(ctx context.Context, id int64, owner, state, lastErr string) error {
	now := st.now()
	in := &dynamodb.UpdateItemInput{TableName: aws.String(st.table), Key: key("O", idKey(id)),
		UpdateExpression:         aws.String("SET #st = :st, last_error = :e, updated = :now, lease_owner = :none, lease_until = :zero ADD attempts :one"),
		ConditionExpression:      aws.String("lease_owner = :o"),
		ExpressionAttributeNames: map[string]string{"#st": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":st": s(state), ":e": s(lastErr), ":now": n(now.UnixNano()), ":none": s(""),
			":zero": n(0), ":one": n(1), ":o": s(owner)}}
	if state != "pending" {
		in.UpdateExpression = aws.String("SET #st = :st, last_error = :e, updated = :now, lease_owner = :none, lease_until = :zero, #ttl = :ttl ADD attempts :one")
		in.ExpressionAttributeNames["#ttl"] = "ttl"
		in.ExpressionAttributeValues[":ttl"] = n(now.Add(OutboxRetention).Unix())
	}
	_, err := st.c.UpdateItem(ctx, in)
	if isConditionFailed(err) {
		return fmt.Errorf("outbox item %d: %w", id, store.ErrLeaseLost)
	}
	if err != nil {
		return st.wrap(err, "cannot update outbox item %d", id)
	}
	return nil
}
