package respond

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

// EC2API is the part of the EC2 client the network ACL blocker uses
// (ec2:DescribeNetworkAcls, DescribeNetworkInterfaces,
// CreateNetworkAclEntry, DeleteNetworkAclEntry).
type EC2API interface {
	DescribeNetworkAcls(context.Context, *ec2.DescribeNetworkAclsInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error)
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	CreateNetworkAclEntry(context.Context, *ec2.CreateNetworkAclEntryInput, ...func(*ec2.Options)) (*ec2.CreateNetworkAclEntryOutput, error)
	DeleteNetworkAclEntry(context.Context, *ec2.DeleteNetworkAclEntryInput, ...func(*ec2.Options)) (*ec2.DeleteNetworkAclEntryOutput, error)
}

// NACL blocks addresses with inbound DENY entries (all protocols) in
// network ACLs, in a rule-number range of its own below the user's allow
// rules. It never changes or deletes an entry it did not create: before a
// delete it checks the entry at the rule number is still the deny it
// wrote.
type NACL struct {
	api        EC2API
	acls       []string
	lo, hi     int32
	maxEntries int

	mu     sync.Mutex
	eniACL map[string]string // interface id → ACL id
	seen   map[string]bool   // ACL ids written to or listed
}

// NewNACL returns a network ACL blocker.
func NewNACL(api EC2API, cfg *NACLConfig) *NACL {
	if cfg == nil {
		cfg = &NACLConfig{}
	}
	n := &NACL{api: api, acls: slices.Clone(cfg.NetworkACLs), lo: DefaultRuleMin, hi: DefaultRuleMax,
		maxEntries: DefaultNACLEntries, eniACL: map[string]string{}, seen: map[string]bool{}}
	if len(cfg.RuleRange) == 2 {
		n.lo, n.hi = cfg.RuleRange[0], cfg.RuleRange[1]
	}
	if cfg.MaxEntries > 0 {
		n.maxEntries = cfg.MaxEntries
	}
	for _, a := range n.acls {
		n.seen[a] = true
	}
	return n
}

// Name returns "nacl".
func (n *NACL) Name() string { return NACLName }

const naclPrefix = "nacl:"

func aclOf(target string) (string, error) {
	id, ok := strings.CutPrefix(target, naclPrefix)
	if !ok || !strings.HasPrefix(id, "acl-") {
		return "", fmt.Errorf("%q is not a network ACL target", target)
	}
	return id, nil
}

// Targets returns the configured ACLs, or the ACL of the subnet of the
// finding's target interface.
func (n *NACL) Targets(ctx context.Context, f *finding.Finding, _ netip.Prefix) ([]string, error) {
	if len(n.acls) > 0 {
		out := make([]string, len(n.acls))
		for i, a := range n.acls {
			out[i] = naclPrefix + a
		}
		return out, nil
	}
	if f == nil || f.Target.InterfaceID == "" {
		return nil, nil
	}
	eni := f.Target.InterfaceID
	n.mu.Lock()
	acl, ok := n.eniACL[eni]
	n.mu.Unlock()
	if ok {
		return []string{naclPrefix + acl}, nil
	}
	ifs, err := n.api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
	if err != nil {
		return nil, fmt.Errorf("cannot find the subnet of %s: %w", eni, err)
	}
	if len(ifs.NetworkInterfaces) == 0 || aws.ToString(ifs.NetworkInterfaces[0].SubnetId) == "" {
		return nil, fmt.Errorf("cannot find the subnet of %s: no such interface", eni)
	}
	subnet := aws.ToString(ifs.NetworkInterfaces[0].SubnetId)
	acls, err := n.api.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{
		Filters: []types.Filter{{Name: aws.String("association.subnet-id"), Values: []string{subnet}}},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot find the network ACL of %s: %w", subnet, err)
	}
	if len(acls.NetworkAcls) == 0 {
		return nil, fmt.Errorf("cannot find the network ACL of %s: none associated", subnet)
	}
	acl = aws.ToString(acls.NetworkAcls[0].NetworkAclId)
	n.mu.Lock()
	n.eniACL[eni] = acl
	n.seen[acl] = true
	n.mu.Unlock()
	return []string{naclPrefix + acl}, nil
}

// describe returns the ACL's inbound entries.
func (n *NACL) describe(ctx context.Context, acl string) ([]types.NetworkAclEntry, error) {
	out, err := n.api.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{acl}})
	if err != nil {
		return nil, fmt.Errorf("cannot describe %s: %w", acl, err)
	}
	if len(out.NetworkAcls) == 0 {
		return nil, fmt.Errorf("cannot describe %s: not found", acl)
	}
	n.mu.Lock()
	n.seen[acl] = true
	n.mu.Unlock()
	var in []types.NetworkAclEntry
	for _, e := range out.NetworkAcls[0].Entries {
		if !aws.ToBool(e.Egress) {
			in = append(in, e)
		}
	}
	return in, nil
}

// entryPrefix returns an entry's CIDR block (IPv4 or IPv6).
func entryPrefix(e types.NetworkAclEntry) (netip.Prefix, bool) {
	s := aws.ToString(e.CidrBlock)
	if s == "" {
		s = aws.ToString(e.Ipv6CidrBlock)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

// isOurShape reports whether an entry is a deny of all traffic for p.
func isOurShape(e types.NetworkAclEntry, p netip.Prefix) bool {
	ep, ok := entryPrefix(e)
	return ok && ep == p.Masked() && e.RuleAction == types.RuleActionDeny && aws.ToString(e.Protocol) == "-1"
}

// inRange reports whether a rule number is in flowguard's range.
func (n *NACL) inRange(r int32) bool { return r >= n.lo && r <= n.hi }

// checkRange refuses an ACL whose entries inside flowguard's rule range
// include allow entries: those are the user's own rules, and flowguard's
// denies would be ordered around them. Deny entries in the range that
// flowguard did not write are tolerated (left alone, their numbers not
// reused).
func (n *NACL) checkRange(target string, entries []types.NetworkAclEntry) error {
	for _, e := range entries {
		r := aws.ToInt32(e.RuleNumber)
		if !n.inRange(r) || e.RuleAction == types.RuleActionDeny {
			continue
		}
		cidr := aws.ToString(e.CidrBlock)
		if cidr == "" {
			cidr = aws.ToString(e.Ipv6CidrBlock)
		}
		proto := aws.ToString(e.Protocol)
		if proto == "-1" {
			proto = "all"
		}
		return &RangeOverlapError{Target: target, Lo: n.lo, Hi: n.hi, RuleNumber: r,
			Entry: fmt.Sprintf("%s %s protocol %s", e.RuleAction, cidr, proto)}
	}
	return nil
}

// ours returns the rule numbers, lowest first, of the entries that deny p
// in flowguard's shape inside its range.
func (n *NACL) ours(entries []types.NetworkAclEntry, p netip.Prefix) []int32 {
	var out []int32
	for _, e := range entries {
		if r := aws.ToInt32(e.RuleNumber); n.inRange(r) && isOurShape(e, p) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// Observe reads the ACL: the rule numbers in use (whoever wrote them),
// flowguard's range, the room left for another entry of the address's
// family (the default entries count), and an entry that already denies
// the address in flowguard's shape and range (another flowguard process,
// maybe on another database, wrote it): the claim takes it over.
func (n *NACL) Observe(ctx context.Context, target string, p netip.Prefix) (store.Slot, error) {
	acl, err := aclOf(target)
	if err != nil {
		return store.Slot{}, err
	}
	entries, err := n.describe(ctx, acl)
	if err != nil {
		return store.Slot{}, err
	}
	if err := n.checkRange(target, entries); err != nil {
		return store.Slot{}, err
	}
	v4 := p.Addr().Is4()
	sl := store.Slot{Target: target, RuleMin: n.lo, RuleMax: n.hi, Limit: n.maxEntries}
	used := 0
	for _, e := range entries {
		sl.Taken = append(sl.Taken, aws.ToInt32(e.RuleNumber))
		if ep, ok := entryPrefix(e); ok && ep.Addr().Is4() == v4 {
			used++
		}
	}
	if o := n.ours(entries, p); len(o) > 0 {
		sl.Adopt = o[0]
	}
	sl.Room = n.maxEntries - used
	return sl, nil
}

// Block makes sure the ACL denies b.Prefix in flowguard's range. It reads
// the ACL right before writing: an entry already denying the address in
// flowguard's shape and range is taken as this block's (b.RuleNumber is
// set to it) instead of writing a second one; a number held by anything
// else gives a *ForeignEntryError. After writing, it reads again, and if
// another writer (a flowguard on another database) raced it to the same
// address, keeps the lowest-numbered entry and deletes the others, so
// that every writer converges on one entry.
func (n *NACL) Block(ctx context.Context, b *Block) (bool, error) {
	acl, err := aclOf(b.Target)
	if err != nil {
		return false, err
	}
	if !n.inRange(b.RuleNumber) {
		return false, fmt.Errorf("rule number %d is outside flowguard's range %d-%d", b.RuleNumber, n.lo, n.hi)
	}
	p := b.Prefix.Masked()
	entries, err := n.describe(ctx, acl)
	if err != nil {
		return IsRetryable(err), err
	}
	if o := n.ours(entries, p); len(o) > 0 {
		return n.settle(ctx, acl, b, o)
	}
	if slices.ContainsFunc(entries, func(e types.NetworkAclEntry) bool { return aws.ToInt32(e.RuleNumber) == b.RuleNumber }) {
		return false, &ForeignEntryError{Target: b.Target, RuleNumber: b.RuleNumber}
	}
	in := &ec2.CreateNetworkAclEntryInput{
		NetworkAclId: aws.String(acl),
		RuleNumber:   aws.Int32(b.RuleNumber),
		Protocol:     aws.String("-1"),
		RuleAction:   types.RuleActionDeny,
		Egress:       aws.Bool(false),
	}
	if p.Addr().Is4() {
		in.CidrBlock = aws.String(p.String())
	} else {
		in.Ipv6CidrBlock = aws.String(p.String())
	}
	_, err = n.api.CreateNetworkAclEntry(ctx, in)
	switch code := errorCode(err); {
	case err == nil, code == "NetworkAclEntryAlreadyExists":
		// Created, or the number was taken between the read and the
		// write (by our own earlier attempt, or by someone else): read
		// again and settle.
		entries, derr := n.describe(ctx, acl)
		if derr != nil {
			return IsRetryable(derr), derr
		}
		if o := n.ours(entries, p); len(o) > 0 {
			return n.settle(ctx, acl, b, o)
		}
		if err == nil {
			return true, fmt.Errorf("rule %d of %s: created, then gone", b.RuleNumber, acl)
		}
		if slices.ContainsFunc(entries, func(e types.NetworkAclEntry) bool { return aws.ToInt32(e.RuleNumber) == b.RuleNumber }) {
			return false, &ForeignEntryError{Target: b.Target, RuleNumber: b.RuleNumber}
		}
		// Gone again between the two calls: try once more later.
		return true, fmt.Errorf("rule %d of %s: exists, then did not", b.RuleNumber, acl)
	case code == "NetworkAclEntryLimitExceeded":
		return false, &FullError{Target: b.Target, Limit: n.maxEntries, Why: "AWS says the entry limit is reached"}
	default:
		return IsRetryable(err), fmt.Errorf("cannot add deny %s as rule %d of %s: %w", p, b.RuleNumber, acl, err)
	}
}

// settle keeps the lowest of the entries denying b.Prefix (rules, sorted)
// as b's and deletes the others.
func (n *NACL) settle(ctx context.Context, acl string, b *Block, rules []int32) (bool, error) {
	b.RuleNumber = rules[0]
	for _, r := range rules[1:] {
		if retry, err := n.deleteEntry(ctx, acl, r); err != nil {
			return retry, err
		}
	}
	return false, nil
}

// deleteEntry deletes an inbound entry; one already gone counts as
// deleted.
func (n *NACL) deleteEntry(ctx context.Context, acl string, rule int32) (bool, error) {
	_, err := n.api.DeleteNetworkAclEntry(ctx, &ec2.DeleteNetworkAclEntryInput{
		NetworkAclId: aws.String(acl), RuleNumber: aws.Int32(rule), Egress: aws.Bool(false),
	})
	switch errorCode(err) {
	case "":
		if err != nil {
			return IsRetryable(err), fmt.Errorf("cannot delete rule %d of %s: %w", rule, acl, err)
		}
		return false, nil
	case "InvalidNetworkAclEntry.NotFound", "InvalidNetworkAclID.NotFound":
		return false, nil
	}
	return IsRetryable(err), fmt.Errorf("cannot delete rule %d of %s: %w", rule, acl, err)
}

// Unblock deletes every entry that denies b.Prefix in flowguard's shape
// inside its range (whichever flowguard process wrote it); entries of
// another shape, outside the range, or for other addresses are left
// alone, and an address with no entry counts as removed.
func (n *NACL) Unblock(ctx context.Context, b Block) (bool, error) {
	acl, err := aclOf(b.Target)
	if err != nil {
		return false, err
	}
	entries, err := n.describe(ctx, acl)
	if err != nil {
		if errorCode(err) == "InvalidNetworkAclID.NotFound" {
			return false, nil
		}
		return IsRetryable(err), err
	}
	for _, r := range n.ours(entries, b.Prefix) {
		if retry, err := n.deleteEntry(ctx, acl, r); err != nil {
			return retry, err
		}
	}
	return false, nil
}

// ListTarget returns the inbound deny entries of one ACL in flowguard's
// rule range. An allow entry inside the range is refused with a
// *RangeOverlapError.
func (n *NACL) ListTarget(ctx context.Context, target string) ([]Block, error) {
	acl, err := aclOf(target)
	if err != nil {
		return nil, err
	}
	entries, err := n.describe(ctx, acl)
	if err != nil {
		return nil, err
	}
	if err := n.checkRange(target, entries); err != nil {
		return nil, err
	}
	var out []Block
	for _, e := range entries {
		r := aws.ToInt32(e.RuleNumber)
		if !n.inRange(r) || e.RuleAction != types.RuleActionDeny {
			continue
		}
		p, ok := entryPrefix(e)
		if !ok {
			continue
		}
		out = append(out, Block{Prefix: p, Target: target, RuleNumber: r})
	}
	return out, nil
}

// List returns the entries in flowguard's range of every ACL configured
// or seen by this blocker.
func (n *NACL) List(ctx context.Context) ([]Block, error) {
	n.mu.Lock()
	acls := make([]string, 0, len(n.seen))
	for a := range n.seen {
		acls = append(acls, a)
	}
	n.mu.Unlock()
	slices.Sort(acls)
	var out []Block
	for _, a := range acls {
		bs, err := n.ListTarget(ctx, naclPrefix+a)
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	return out, nil
}
