package respond

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/flowguard/flowguard/internal/store"
)

// Resume completes what earlier runs left: blocks recorded but not
// confirmed in AWS are placed, blocks due to expire (even long ago, while
// no process ran) and blocks whose removal was requested are removed, and
// queued notifications are delivered.
func (p *Pipeline) Resume(ctx context.Context, rep *Report) error {
	if err := p.resumeBlocks(ctx, rep); err != nil {
		return err
	}
	return p.flush(ctx, rep)
}

// Expire removes the blocks whose ban time is over; it is Resume without
// the notifications.
func (p *Pipeline) Expire(ctx context.Context) (Report, error) {
	var rep Report
	err := p.resumeBlocks(ctx, &rep)
	return rep, err
}

func (p *Pipeline) resumeBlocks(ctx context.Context, rep *Report) error {
	if err := p.reapLeases(ctx); err != nil {
		return err
	}
	now := p.clock.Now()
	// Lease the rows with work to do that no other process is working
	// on: theirs are theirs until their lease runs out.
	rows, err := p.st.LeaseBlocks(ctx, store.BlockLease{Owner: p.owner, Now: now, Lease: BlockLease, Due: true})
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range rows {
		var err error
		switch {
		case r.State == store.BlockRemoving:
			by := r.RemovedBy
			if by == "" {
				by = "unblock"
			}
			_, err = p.remove(ctx, r, by, rep)
		case !r.Expires.After(now):
			// Due, even if it fell due while nothing ran. A pending
			// row may have reached AWS half-way: remove checks.
			_, err = p.remove(ctx, r, "expiry", rep)
		case r.State == store.BlockPending && p.guards.KillSwitch() == nil:
			_, err = p.place(ctx, r, rep)
		default:
			// No new entries while the kill switch is on: let go.
			_, err = p.st.ReleaseBlock(ctx, r.ID, p.owner, store.BlockUpdate{LastError: r.LastError, At: now})
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Reconcile compares the store with what AWS has. An active block whose
// entry is gone (removed by someone else) is marked gone; an entry is
// recognised as a block's by its CIDR inside flowguard's rule range
// (whatever its rule number: another flowguard on another database may
// have written it). Entries in flowguard's network ACL rule range that
// match no block are reported and left alone, never adopted. A blocker
// that cannot be read is reported as failed (audited, notified) and left
// out of this run; the others go on.
func (p *Pipeline) Reconcile(ctx context.Context, rep *Report) error {
	rows, err := p.st.ListBlocks(ctx, store.BlockFilter{States: []store.BlockState{store.BlockActive}})
	if err != nil {
		return err
	}
	byTarget := map[string][]store.BlockRecord{}
	var targets []string
	for _, r := range rows {
		if _, ok := byTarget[r.Target]; !ok {
			targets = append(targets, r.Target)
		}
		byTarget[r.Target] = append(byTarget[r.Target], r)
	}
	// Targets with no active block are listed too, for foreign entries
	// in flowguard's range.
	names := slices.Sorted(maps.Keys(p.blockers))
	for _, name := range names {
		b := p.blockers[name]
		if name != NACLName || p.isDown(name) != nil {
			continue
		}
		var all []Block
		_, _, err := p.retry.do(ctx, func(ctx context.Context) (bool, error) {
			var err error
			all, err = b.List(ctx)
			return false, err
		})
		if err != nil {
			p.outage(ctx, name, fmt.Errorf("cannot reconcile %s: %w", name, err), rep)
			continue
		}
		for _, e := range all {
			if _, ok := byTarget[e.Target]; !ok {
				byTarget[e.Target] = nil
				targets = append(targets, e.Target)
			}
		}
	}
	for _, t := range targets {
		bl := p.blockerFor(t)
		if bl == nil || p.isDown(bl.Name()) != nil {
			continue
		}
		var entries []Block
		_, _, err := p.retry.do(ctx, func(ctx context.Context) (bool, error) {
			var err error
			entries, err = bl.ListTarget(ctx, t)
			return false, err
		})
		if err != nil {
			if c := errorCode(err); c != "InvalidNetworkAclID.NotFound" && c != "WAFNonexistentItemException" {
				p.outage(ctx, bl.Name(), fmt.Errorf("cannot reconcile %s: %w", t, err), rep)
				continue
			}
			entries = nil // the ACL or set itself is gone
		}
		for _, r := range byTarget[t] {
			if e, ok := present(entries, r); ok {
				if e.RuleNumber != 0 && e.RuleNumber != r.RuleNumber {
					// Same CIDR at another number in our range: the
					// entry is this block's; the ledger follows it.
					if err := p.st.UpdateBlock(ctx, r.ID, store.BlockUpdate{RuleNumber: e.RuleNumber, At: p.clock.Now()}); err != nil && !errors.Is(err, store.ErrBlockExists) {
						return err
					}
				}
				continue
			}
			rep.Reconciled++
			if err := p.st.UpdateBlock(ctx, r.ID, store.BlockUpdate{State: store.BlockGone, RemovedBy: "reconcile", At: p.clock.Now()}); err != nil {
				return err
			}
			if err := p.audit(ctx, AuditGone, r.Prefix.String(), r.FindingID, map[string]any{
				"target": r.Target, "rule_number": r.RuleNumber, "reason": "the entry is no longer in AWS: removed by someone else"}); err != nil {
				return err
			}
		}
		if bl.Name() != NACLName {
			continue // IP sets are shared: other addresses are simply not ours
		}
		live, err := p.st.ListBlocks(ctx, store.BlockFilter{Target: t, LiveOnly: true})
		if err != nil {
			return err
		}
		for _, e := range entries {
			if slices.ContainsFunc(live, func(r store.BlockRecord) bool { return r.Prefix == e.Prefix }) {
				continue
			}
			rep.Foreign++
			if err := p.audit(ctx, AuditForeign, e.Prefix.String(), "", map[string]any{
				"target": t, "rule_number": e.RuleNumber, "reason": "a deny entry in flowguard's rule range that flowguard did not create: left alone, its number not reused"}); err != nil {
				return err
			}
		}
	}
	return nil
}

// present returns the entry of a store row among a target's entries: the
// same CIDR (for network ACLs, inside flowguard's range, which ListTarget
// keeps to), preferring the row's own rule number.
func present(entries []Block, r store.BlockRecord) (Block, bool) {
	var found Block
	ok := false
	for _, e := range entries {
		if e.Prefix != r.Prefix {
			continue
		}
		if !ok || e.RuleNumber == r.RuleNumber {
			found, ok = e, true
		}
	}
	return found, ok
}

// RequestUnblock records a manual unblock of prefix: its live blocks are
// marked for removal (the next run, or Unblock, removes them from AWS)
// and the address, and every address inside the prefix, is not blocked
// again for the grace period, so that the same activity does not bring
// the block straight back. It returns the rows marked.
func RequestUnblock(ctx context.Context, st store.Responses, prefix netip.Prefix, by, reason string, now time.Time, grace time.Duration) ([]store.BlockRecord, error) {
	if grace <= 0 {
		grace = DefaultUnbanGrace
	}
	// The grace first, so that no process blocks the address again
	// between the two steps.
	until := now.Add(grace)
	if err := st.PutUnban(ctx, store.Unban{Prefix: prefix, At: now, Until: until, By: by, Reason: reason}); err != nil {
		return nil, err
	}
	rows, err := st.ListBlocks(ctx, store.BlockFilter{Prefix: prefix, LiveOnly: true})
	if err != nil {
		return nil, err
	}
	for i, r := range rows {
		if r.State == store.BlockRemoving {
			continue
		}
		if err := st.UpdateBlock(ctx, r.ID, store.BlockUpdate{State: store.BlockRemoving, RemovedBy: "unblock", At: now}); err != nil {
			return nil, err
		}
		rows[i].State, rows[i].RemovedBy = store.BlockRemoving, "unblock"
	}
	detail := fmt.Sprintf(`{"by":%q,"reason":%q,"until":%q,"blocks":%d}`, by, reason, until.Format(time.RFC3339), len(rows))
	if _, err := st.AppendAudit(ctx, store.AuditEntry{Time: now, Action: AuditUnbanRequest, Subject: prefix.String(), Detail: []byte(detail)}); err != nil {
		return nil, err
	}
	return rows, nil
}

// Unblock removes prefix's blocks now, by hand, and keeps it from being
// blocked again for the configured grace period. A block another process
// is writing right now is removed by that process when it is done.
func (p *Pipeline) Unblock(ctx context.Context, prefix netip.Prefix, by, reason string) (Report, error) {
	var rep Report
	rows, err := RequestUnblock(ctx, p.st, prefix, by, reason, p.clock.Now(), p.cfg.unbanGrace())
	if err != nil || len(rows) == 0 {
		return rep, err
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	err = p.removeRows(ctx, store.BlockLease{IDs: ids}, "unblock", &rep)
	return rep, err
}
