package respond

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

// Blocker names, as routes give them.
const (
	NACLName  = "nacl"
	WAFv2Name = "wafv2"
)

// Planner is a Blocker that knows where a finding's actor should be
// blocked and what is there now. The pipeline uses it to claim a block in
// the store (with its rule number) before calling AWS, so that a run that
// dies half-way is completed by the next one and never duplicated.
type Planner interface {
	Blocker
	// Targets returns where to block p because of f ("nacl:acl-…",
	// "wafv2:REGIONAL/name/id"). None means nowhere fits.
	Targets(ctx context.Context, f *finding.Finding, p netip.Prefix) ([]string, error)
	// Observe reads what target holds right before a claim: the rule
	// numbers in use and flowguard's range, the room left for p's
	// family, and the number of an entry that already denies p in
	// flowguard's shape and range (taken over, never duplicated). It
	// returns ErrPresent when someone else already blocks the address
	// there in a way flowguard cannot tell from its own.
	Observe(ctx context.Context, target string, p netip.Prefix) (store.Slot, error)
	// ListTarget returns the entries at target that look like
	// flowguard's (deny entries in its rule range; the set's addresses),
	// whoever wrote them: the store says which are flowguard's.
	ListTarget(ctx context.Context, target string) ([]Block, error)
}

// ErrPresent says the address is already blocked at the target by an
// entry flowguard did not create; flowguard neither duplicates nor adopts
// it.
var ErrPresent = errors.New("already blocked there by an entry flowguard did not create")

// FullError says a target has no room for another entry.
type FullError struct {
	Target string
	Limit  int
	Why    string
}

func (e *FullError) Error() string {
	return fmt.Sprintf("%s is full (%d entries): %s", e.Target, e.Limit, e.Why)
}

// ForeignEntryError says the entry at a block's rule number is not
// flowguard's (someone else took the number): the block must be planned
// again with another number.
type ForeignEntryError struct {
	Target     string
	RuleNumber int32
}

func (e *ForeignEntryError) Error() string {
	return fmt.Sprintf("rule %d of %s holds an entry flowguard did not create", e.RuleNumber, e.Target)
}

// RangeOverlapError says flowguard's configured rule range holds entries
// of the network ACL that are not flowguard's deny entries: the range
// would interleave flowguard's denies with the user's own rules.
type RangeOverlapError struct {
	Target     string
	Lo, Hi     int32
	RuleNumber int32
	Entry      string // the entry, described
}

func (e *RangeOverlapError) Error() string {
	return fmt.Sprintf("response.nacl.rule_range [%d, %d] overlaps rule %d of %s (%s), which flowguard did not create: choose a range that holds none of the ACL's own entries (they must come after flowguard's denies)",
		e.Lo, e.Hi, e.RuleNumber, strings.TrimPrefix(e.Target, naclPrefix), e.Entry)
}
