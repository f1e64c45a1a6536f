package store

import (
	"iter"
	"net/netip"
	"time"
)

// The rules both stores (SQLite here, DynamoDB in internal/store/dynamo)
// apply to block rows, as pure functions, so that the two cannot drift
// apart: which rule number a new entry takes and whether its target has
// room (PickSlot), and what an update does to a row (BlockUpdate.Apply).

// PickSlot chooses the rule number for prefix p at slot sl (0 for targets
// without numbers) given the block rows, and reports false when the
// target is full. Only the live rows of sl's target count, row self left
// out (0: none). A number is free when no live row holds it and the
// target's entries (sl.Taken) do not use it; sl.Adopt, when no live row
// holds it, is taken as it is (an entry already in the target). A
// pending row of p's address family not yet in the target takes room:
// when sl.Room such rows wait, the target is full.
func PickSlot(rows iter.Seq[BlockRecord], sl Slot, p netip.Prefix, self int64) (int32, bool) {
	taken := map[int32]bool{}
	for _, r := range sl.Taken {
		taken[r] = true
	}
	held := map[int32]bool{}
	waiting := 0
	for r := range rows {
		if r.Target != sl.Target || !r.State.Live() || r.ID == self {
			continue
		}
		if r.RuleNumber > 0 {
			held[r.RuleNumber] = true
		}
		if r.Prefix.Addr().Is4() == p.Addr().Is4() && r.State == BlockPending && (r.RuleNumber == 0 || !taken[r.RuleNumber]) {
			waiting++
		}
	}
	if sl.Adopt > 0 && !held[sl.Adopt] {
		return sl.Adopt, true
	}
	if waiting >= sl.Room {
		return 0, false
	}
	if sl.RuleMax == 0 {
		return 0, true
	}
	for r := sl.RuleMin; r <= sl.RuleMax; r++ {
		if !taken[r] && !held[r] {
			return r, true
		}
	}
	return 0, false
}

// Apply applies u to the row r at now (u.At when set): the state (moving
// to removed, gone or failed stamps the removal time), who removed it,
// its rule number, its attempts, its expiry, and the last error (cleared
// when u has none).
func (u BlockUpdate) Apply(r *BlockRecord, now time.Time) {
	if !u.At.IsZero() {
		now = u.At
	}
	r.Updated, r.LastError = now, u.LastError
	if u.State != "" {
		r.State = u.State
		if u.State == BlockRemoved || u.State == BlockGone || u.State == BlockFailed {
			r.Removed = now
		}
	}
	if u.RemovedBy != "" {
		r.RemovedBy = u.RemovedBy
	}
	if u.RuleNumber != 0 {
		r.RuleNumber = u.RuleNumber
	}
	if u.Attempt {
		r.Attempts++
	}
	if !u.Expires.IsZero() {
		r.Expires = u.Expires
	}
}
