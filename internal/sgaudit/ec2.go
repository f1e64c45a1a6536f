package sgaudit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// LoadEC2 reads the inventory through the EC2 API, read only:
// DescribeSecurityGroups, DescribeNetworkInterfaces, and for the prefix
// lists the rules reference, DescribeManagedPrefixLists and
// GetManagedPrefixListEntries. vpcID, when not "", limits it to one VPC.
func LoadEC2(ctx context.Context, c *ec2.Client, vpcID string) (*Inventory, error) {
	inv := &Inventory{PrefixLists: map[string][]netip.Prefix{}}
	var filters []types.Filter
	if vpcID != "" {
		filters = []types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpcID}}}
	}
	sgp := ec2.NewDescribeSecurityGroupsPaginator(c, &ec2.DescribeSecurityGroupsInput{Filters: filters})
	for sgp.HasMorePages() {
		page, err := sgp.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("cannot describe security groups: %w", err)
		}
		for _, sg := range page.SecurityGroups {
			g := &Group{ID: aws.ToString(sg.GroupId), Name: aws.ToString(sg.GroupName), VPCID: aws.ToString(sg.VpcId)}
			for _, dir := range []struct {
				perms  []types.IpPermission
				egress bool
			}{{sg.IpPermissions, false}, {sg.IpPermissionsEgress, true}} {
				for _, p := range dir.perms {
					rules, err := fromSDK(p).rules(g.ID, dir.egress)
					if err != nil {
						return nil, fmt.Errorf("security group %s: %w", g.ID, err)
					}
					g.Rules = append(g.Rules, rules...)
				}
			}
			inv.Groups = append(inv.Groups, g)
		}
	}
	nip := ec2.NewDescribeNetworkInterfacesPaginator(c, &ec2.DescribeNetworkInterfacesInput{Filters: filters})
	for nip.HasMorePages() {
		page, err := nip.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("cannot describe network interfaces: %w", err)
		}
		for _, ni := range page.NetworkInterfaces {
			ifc := &Interface{ID: aws.ToString(ni.NetworkInterfaceId)}
			for _, g := range ni.Groups {
				ifc.Groups = append(ifc.Groups, aws.ToString(g.GroupId))
			}
			addrs := []*string{ni.PrivateIpAddress}
			if ni.Association != nil {
				addrs = append(addrs, ni.Association.PublicIp)
			}
			for _, a := range ni.PrivateIpAddresses {
				addrs = append(addrs, a.PrivateIpAddress)
				if a.Association != nil {
					addrs = append(addrs, a.Association.PublicIp)
				}
			}
			for _, a := range ni.Ipv6Addresses {
				addrs = append(addrs, a.Ipv6Address)
			}
			for _, s := range addrs {
				if a, err := netip.ParseAddr(aws.ToString(s)); err == nil {
					ifc.addAddr(a)
				}
			}
			inv.Interfaces = append(inv.Interfaces, ifc)
		}
	}
	var pls []string
	for _, g := range inv.Groups {
		for _, r := range g.Rules {
			if r.PrefixListID != "" && !slices.Contains(pls, r.PrefixListID) {
				pls = append(pls, r.PrefixListID)
			}
		}
	}
	if len(pls) == 0 {
		return inv, nil
	}
	plp := ec2.NewDescribeManagedPrefixListsPaginator(c, &ec2.DescribeManagedPrefixListsInput{PrefixListIds: pls})
	for plp.HasMorePages() {
		page, err := plp.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("cannot describe prefix lists: %w", err)
		}
		for _, pl := range page.PrefixLists {
			id := aws.ToString(pl.PrefixListId)
			entries := []netip.Prefix{}
			ep := ec2.NewGetManagedPrefixListEntriesPaginator(c, &ec2.GetManagedPrefixListEntriesInput{PrefixListId: pl.PrefixListId})
			for ep.HasMorePages() {
				epage, err := ep.NextPage(ctx)
				if err != nil {
					return nil, fmt.Errorf("cannot read prefix list %s: %w", id, err)
				}
				for _, e := range epage.Entries {
					p, err := netip.ParsePrefix(aws.ToString(e.Cidr))
					if err != nil {
						return nil, fmt.Errorf("prefix list %s: entry %q is not a CIDR", id, aws.ToString(e.Cidr))
					}
					entries = append(entries, p.Masked())
				}
			}
			inv.PrefixLists[id] = entries
		}
	}
	return inv, nil
}

// fromSDK turns an SDK permission into the CLI's JSON shape, so that one
// piece of code splits permissions into rules.
func fromSDK(p types.IpPermission) *jsonPermission {
	var j jsonPermission
	b, _ := json.Marshal(p) // the SDK's field names are the CLI's
	json.Unmarshal(b, &j)
	return &j
}

// Revocation is what Apply did, or would do, about one unused rule.
type Revocation struct {
	RuleRef
	// Outcome: "revoked", "dry-run", "gone" (no such rule any more),
	// "failed".
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

// ApplyOptions say how to apply.
type ApplyOptions struct {
	// DryRun finds the rules and records what it would revoke, changing
	// nothing.
	DryRun bool
	// Audit records each revocation (action sg-revoke, sg-revoke-dry-run,
	// sg-revoke-failed, sg-revoke-gone) in the audit trail.
	Audit func(ctx context.Context, action, subject string, detail []byte) error
}

// ErrShortPeriod is returned by Apply when the evidence is too short to
// call a rule unused.
var ErrShortPeriod = errors.New("the flow logs cover too short a period to call a rule unused")

// Apply revokes the rules the report calls unused, by security group rule
// id (DescribeSecurityGroupRules finds the ids the report does not carry),
// one group and direction per call. It refuses when the evidence is short.
// Rules no longer there are reported as gone; a failed call does not stop
// the other groups.
func Apply(ctx context.Context, c *ec2.Client, rep *Report, opts ApplyOptions) ([]Revocation, error) {
	if rep.Short {
		return nil, fmt.Errorf("%w: %s of logs, under %s", ErrShortPeriod, human(rep.Period), human(rep.MinPeriod))
	}
	type key struct {
		group  string
		egress bool
	}
	var order []key
	todo := map[key][]*RuleVerdict{}
	for i := range rep.Rules {
		v := &rep.Rules[i]
		if v.Verdict != VerdictUnused {
			continue
		}
		k := key{v.GroupID, v.Rule.Egress}
		if todo[k] == nil {
			order = append(order, k)
		}
		todo[k] = append(todo[k], v)
	}
	var out []Revocation
	var firstErr error
	cache := map[string][]types.SecurityGroupRule{}
	for _, k := range order {
		live, ok := cache[k.group]
		if !ok {
			var err error
			live, err = describeRules(ctx, c, k.group)
			if err != nil {
				for _, v := range todo[k] {
					out = append(out, revocation(v, "", "failed", err))
				}
				firstErr = cmpOr(firstErr, err)
				continue
			}
			cache[k.group] = live
		}
		var ids []string
		var batch []Revocation
		for _, v := range todo[k] {
			id := v.Rule.RuleID
			if id == "" {
				id = findRule(live, v.Rule)
			}
			if id == "" {
				out = append(out, revocation(v, "", "gone", nil))
				continue
			}
			ids = append(ids, id)
			batch = append(batch, revocation(v, id, "dry-run", nil))
		}
		if len(ids) > 0 && !opts.DryRun {
			var err error
			if k.egress {
				_, err = c.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(k.group), SecurityGroupRuleIds: ids})
			} else {
				_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(k.group), SecurityGroupRuleIds: ids})
			}
			for i := range batch {
				batch[i].Outcome = "revoked"
				if err != nil {
					batch[i].Outcome, batch[i].Error = "failed", err.Error()
				}
			}
			if err != nil {
				firstErr = cmpOr(firstErr, fmt.Errorf("cannot revoke rules of %s: %w", k.group, err))
			}
		}
		out = append(out, batch...)
	}
	if opts.Audit != nil {
		for _, r := range out {
			action := "sg-revoke"
			if r.Outcome != "revoked" {
				action = "sg-revoke-" + r.Outcome
			}
			detail, _ := json.Marshal(struct {
				Revocation
				Period string `json:"evidence"`
			}{r, fmt.Sprintf("%s to %s", rep.Start.Format(time.RFC3339), rep.End.Format(time.RFC3339))})
			if err := opts.Audit(ctx, action, r.GroupID, detail); err != nil {
				return out, fmt.Errorf("cannot record the revocation in the audit trail: %w", err)
			}
		}
	}
	return out, firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func revocation(v *RuleVerdict, id, outcome string, err error) Revocation {
	r := Revocation{RuleRef: v.RuleRef, Outcome: outcome}
	r.RuleID = id
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

func describeRules(ctx context.Context, c *ec2.Client, group string) ([]types.SecurityGroupRule, error) {
	var out []types.SecurityGroupRule
	p := ec2.NewDescribeSecurityGroupRulesPaginator(c, &ec2.DescribeSecurityGroupRulesInput{
		Filters: []types.Filter{{Name: aws.String("group-id"), Values: []string{group}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("cannot describe the rules of %s: %w", group, err)
		}
		out = append(out, page.SecurityGroupRules...)
	}
	return out, nil
}

// findRule returns the id of the live rule that is r, or "".
func findRule(live []types.SecurityGroupRule, r *Rule) string {
	for _, x := range live {
		p, err := protoNumber(aws.ToString(x.IpProtocol))
		if err != nil || p != r.proto || aws.ToBool(x.IsEgress) != r.Egress {
			continue
		}
		if p != -1 && (aws.ToInt32(x.FromPort) != r.FromPort || aws.ToInt32(x.ToPort) != r.ToPort) {
			continue
		}
		var src string
		switch {
		case x.CidrIpv4 != nil:
			src = aws.ToString(x.CidrIpv4)
		case x.CidrIpv6 != nil:
			src = aws.ToString(x.CidrIpv6)
		case x.PrefixListId != nil:
			src = aws.ToString(x.PrefixListId)
		case x.ReferencedGroupInfo != nil:
			src = aws.ToString(x.ReferencedGroupInfo.GroupId)
		}
		if pf, err := netip.ParsePrefix(src); err == nil {
			src = pf.Masked().String()
		}
		if src == r.Source() {
			return aws.ToString(x.SecurityGroupRuleId)
		}
	}
	return ""
}
