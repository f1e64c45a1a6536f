package respond

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/flowguard/flowguard/internal/finding"
)

// Blocker names, as routes give them.
const (
	NACLName  = "nacl"
	WAFv2Name = "wafv2"
)

// Planner is a Blocker that knows where a finding's actor should be
// blocked and whether there is room. The pipeline uses it to record a
// block in the store (with its rule number) before calling AWS, so that a
// run that dies half-way is completed by the next one and never
// duplicated.
type Planner interface {
	Blocker
	// Targets returns where to block p because of f ("nacl:acl-…",
	// "wafv2:REGIONAL/name/id"). None means nowhere fits.
	Targets(ctx context.Context, f *finding.Finding, p netip.Prefix) ([]string, error)
	// Prepare readies b (Target and Prefix set) for Block: it picks the
	// network ACL rule number, and checks there is room. claimed are the
	// live blocks the store holds for the same target (some may not be
	// in AWS yet). It returns a *FullError when there is no room, and
	// ErrPresent when someone else already blocks the address there.
	Prepare(ctx context.Context, b *Block, claimed []Block) error
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
