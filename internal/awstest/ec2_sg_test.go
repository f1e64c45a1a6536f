package awstest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// TestEC2SecurityGroups drives the security-group actions through the
// SDK: pagination, the IpPermissions grouping of DescribeSecurityGroups,
// rule ids, revocation and AWS's error codes.
func TestEC2SecurityGroups(t *testing.T) {
	ctx := context.Background()
	s := NewEC2(t)
	for i := range 7 {
		s.AddSecurityGroup(SecurityGroup{ID: fmt.Sprintf("sg-%d", i), Name: fmt.Sprintf("g%d", i), VPC: "vpc-1", Rules: []SecurityGroupRule{
			{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDRv4: "0.0.0.0/0"},
			{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDRv6: "::/0"},
			{Protocol: "tcp", FromPort: 5432, ToPort: 5432, RefGrp: "sg-0"},
			{Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDRv4: "0.0.0.0/0"},
		}})
	}
	s.AddPrefixList(PrefixList{ID: "pl-1", Name: "office", Entries: []string{"203.0.113.0/24", "198.51.100.0/24"}})
	c := ec2.NewFromConfig(ClientConfig(s.URL))

	var groups []types.SecurityGroup
	p := ec2.NewDescribeSecurityGroupsPaginator(c, &ec2.DescribeSecurityGroupsInput{MaxResults: aws.Int32(5)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		groups = append(groups, out.SecurityGroups...)
	}
	if pages != 2 || len(groups) != 7 {
		t.Fatalf("%d pages, %d groups; want 2 and 7", pages, len(groups))
	}
	g := groups[1]
	if len(g.IpPermissions) != 2 || len(g.IpPermissions[0].IpRanges) != 1 || len(g.IpPermissions[0].Ipv6Ranges) != 1 ||
		aws.ToString(g.IpPermissions[1].UserIdGroupPairs[0].GroupId) != "sg-0" || len(g.IpPermissionsEgress) != 1 ||
		g.IpPermissionsEgress[0].FromPort != nil {
		t.Errorf("permissions of %s: %+v", aws.ToString(g.GroupId), g)
	}

	rules, err := c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
		Filters: []types.Filter{{Name: aws.String("group-id"), Values: []string{"sg-3"}}}})
	if err != nil || len(rules.SecurityGroupRules) != 4 {
		t.Fatalf("rules of sg-3: %v, %d", err, len(rules.SecurityGroupRules))
	}
	r := rules.SecurityGroupRules[2]
	if aws.ToString(r.ReferencedGroupInfo.GroupId) != "sg-0" || aws.ToBool(r.IsEgress) || aws.ToInt32(r.FromPort) != 5432 {
		t.Errorf("rule: %+v", r)
	}
	egressID := aws.ToString(rules.SecurityGroupRules[3].SecurityGroupRuleId)

	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String("sg-3"), SecurityGroupRuleIds: []string{egressID}})
	wantCode(t, err, "InvalidSecurityGroupRuleId.NotFound") // an egress rule through the ingress call
	out, err := c.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String("sg-3"), SecurityGroupRuleIds: []string{egressID}})
	if err != nil || !aws.ToBool(out.Return) || len(out.RevokedSecurityGroupRules) != 1 || len(s.SecurityGroupRules("sg-3")) != 3 {
		t.Fatalf("revoke: %v %+v; %d rules left", err, out, len(s.SecurityGroupRules("sg-3")))
	}
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String("sg-99"), SecurityGroupRuleIds: []string{"sgr-1"}})
	wantCode(t, err, "InvalidGroup.NotFound")
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-99"}})
	wantCode(t, err, "InvalidGroup.NotFound")
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{MaxResults: aws.Int32(2)})
	wantCode(t, err, "InvalidParameterValue")

	pls, err := c.DescribeManagedPrefixLists(ctx, &ec2.DescribeManagedPrefixListsInput{PrefixListIds: []string{"pl-1"}})
	if err != nil || len(pls.PrefixLists) != 1 || aws.ToString(pls.PrefixLists[0].PrefixListName) != "office" {
		t.Fatalf("prefix lists: %v %+v", err, pls)
	}
	entries, err := c.GetManagedPrefixListEntries(ctx, &ec2.GetManagedPrefixListEntriesInput{PrefixListId: aws.String("pl-1")})
	if err != nil || len(entries.Entries) != 2 || aws.ToString(entries.Entries[1].Cidr) != "198.51.100.0/24" {
		t.Fatalf("entries: %v %+v", err, entries)
	}
	_, err = c.GetManagedPrefixListEntries(ctx, &ec2.GetManagedPrefixListEntriesInput{PrefixListId: aws.String("pl-9")})
	wantCode(t, err, "InvalidPrefixListID.NotFound")

	s.AddNetworkInterface(NetworkInterface{ID: "eni-1", Subnet: "subnet-1", VPC: "vpc-1", PrivateIP: "10.0.0.5",
		IPv6Addrs: []string{"2600:1f18:abc::5"}, Groups: []string{"sg-0", "sg-1"}})
	enis, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	if err != nil || len(enis.NetworkInterfaces) != 1 || len(enis.NetworkInterfaces[0].Groups) != 2 ||
		aws.ToString(enis.NetworkInterfaces[0].Ipv6Addresses[0].Ipv6Address) != "2600:1f18:abc::5" {
		t.Fatalf("interfaces: %v %+v", err, enis)
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Errorf("error %v, want %s", err, code)
	}
}
