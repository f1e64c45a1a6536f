// Package sgaudit judges security-group rules by the traffic flow logs saw
// them let in or out. Security groups have no hit counters and flow logs do
// not say which rule accepted a flow, so every accepted flow is matched to
// the rules of the groups attached to its interface, after discarding the
// return traffic of connections (security groups are stateful: a reply
// uses no rule). A rule no accepted flow matched over a long enough period
// is unused; a wide rule whose sources fit a few narrow prefixes is broader
// than used.
package sgaudit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Rule is one security-group rule: one protocol and port range with one
// source (a CIDR, a prefix list or a group), as the EC2 console and
// DescribeSecurityGroupRules show rules. An IpPermission of
// DescribeSecurityGroups with several sources is several rules.
type Rule struct {
	GroupID string
	RuleID  string // sgr-…; "" when the input did not carry it
	Egress  bool
	// Protocol as AWS writes it: "-1", "tcp", "udp", "icmp", "icmpv6" or
	// a number.
	Protocol string
	proto    int // IANA number; -1 for all
	// FromPort and ToPort: the port range (tcp, udp), or the ICMP type and
	// code (-1: any); both -1 for all protocols.
	FromPort, ToPort int32
	// One of CIDR (IPv4 or IPv6), PrefixListID, RefGroupID.
	CIDR         netip.Prefix
	PrefixListID string
	RefGroupID   string
	Description  string
}

// Source is the rule's source or destination as AWS writes it.
func (r *Rule) Source() string {
	switch {
	case r.PrefixListID != "":
		return r.PrefixListID
	case r.RefGroupID != "":
		return r.RefGroupID
	}
	return r.CIDR.String()
}

// Direction is "ingress" or "egress".
func (r *Rule) Direction() string {
	if r.Egress {
		return "egress"
	}
	return "ingress"
}

// Group is a security group.
type Group struct {
	ID, Name, VPCID string
	Rules           []*Rule
}

// Interface is a network interface with the groups attached to it.
type Interface struct {
	ID     string
	Addrs  []netip.Addr // private IPv4, IPv6 and public (association) addresses
	Groups []string
}

// Inventory is what the audit judges: groups, interfaces and prefix lists.
type Inventory struct {
	Groups      []*Group
	Interfaces  []*Interface
	PrefixLists map[string][]netip.Prefix
}

// protoNumber returns the IANA number of an AWS protocol string, -1 for
// all.
func protoNumber(p string) (int, error) {
	switch strings.ToLower(p) {
	case "-1", "all":
		return -1, nil
	case "tcp":
		return 6, nil
	case "udp":
		return 17, nil
	case "icmp":
		return 1, nil
	case "icmpv6":
		return 58, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 255 {
		return 0, fmt.Errorf("protocol %q: use -1, tcp, udp, icmp, icmpv6 or a number 0-255", p)
	}
	return n, nil
}

// ProtocolName returns the protocol as the audit prints it: tcp, udp,
// icmp, icmpv6, -1 (all) or the number.
func (r *Rule) ProtocolName() string {
	switch r.proto {
	case -1:
		return "-1"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1:
		return "icmp"
	case 58:
		return "icmpv6"
	}
	return strconv.Itoa(r.proto)
}

// The JSON of the AWS CLI (describe-security-groups,
// describe-network-interfaces, describe-managed-prefix-lists).

type jsonPermission struct {
	IPProtocol string `json:"IpProtocol"`
	FromPort   *int32 `json:"FromPort"`
	ToPort     *int32 `json:"ToPort"`
	IPRanges   []struct {
		CidrIP      string `json:"CidrIp"`
		Description string `json:"Description"`
	} `json:"IpRanges"`
	IPv6Ranges []struct {
		CidrIPv6    string `json:"CidrIpv6"`
		Description string `json:"Description"`
	} `json:"Ipv6Ranges"`
	PrefixListIDs []struct {
		PrefixListID string `json:"PrefixListId"`
		Description  string `json:"Description"`
	} `json:"PrefixListIds"`
	UserIDGroupPairs []struct {
		GroupID     string `json:"GroupId"`
		Description string `json:"Description"`
	} `json:"UserIdGroupPairs"`
}

type jsonGroup struct {
	GroupID             string           `json:"GroupId"`
	GroupName           string           `json:"GroupName"`
	VpcID               string           `json:"VpcId"`
	IPPermissions       []jsonPermission `json:"IpPermissions"`
	IPPermissionsEgress []jsonPermission `json:"IpPermissionsEgress"`
}

type jsonInterface struct {
	NetworkInterfaceID string `json:"NetworkInterfaceId"`
	Groups             []struct {
		GroupID string `json:"GroupId"`
	} `json:"Groups"`
	PrivateIPAddress   string `json:"PrivateIpAddress"`
	PrivateIPAddresses []struct {
		PrivateIPAddress string `json:"PrivateIpAddress"`
		Association      *struct {
			PublicIP string `json:"PublicIp"`
		} `json:"Association"`
	} `json:"PrivateIpAddresses"`
	IPv6Addresses []struct {
		IPv6Address string `json:"Ipv6Address"`
	} `json:"Ipv6Addresses"`
	Association *struct {
		PublicIP string `json:"PublicIp"`
	} `json:"Association"`
}

type jsonPrefixList struct {
	PrefixListID string `json:"PrefixListId"`
	Entries      []struct {
		Cidr string `json:"Cidr"`
	} `json:"Entries"`
}

// ReadGroups reads the JSON `aws ec2 describe-security-groups` prints.
func ReadGroups(path string) ([]*Group, error) {
	var doc struct {
		SecurityGroups []jsonGroup `json:"SecurityGroups"`
	}
	if err := readJSON(path, &doc); err != nil {
		return nil, err
	}
	var out []*Group
	for i, jg := range doc.SecurityGroups {
		if jg.GroupID == "" {
			return nil, fmt.Errorf("%s: SecurityGroups[%d]: no GroupId", path, i)
		}
		g := &Group{ID: jg.GroupID, Name: jg.GroupName, VPCID: jg.VpcID}
		for _, dir := range []struct {
			perms  []jsonPermission
			egress bool
			key    string
		}{{jg.IPPermissions, false, "IpPermissions"}, {jg.IPPermissionsEgress, true, "IpPermissionsEgress"}} {
			for j, p := range dir.perms {
				rules, err := p.rules(g.ID, dir.egress)
				if err != nil {
					return nil, fmt.Errorf("%s: %s %s[%d]: %w", path, g.ID, dir.key, j, err)
				}
				g.Rules = append(g.Rules, rules...)
			}
		}
		out = append(out, g)
	}
	return out, nil
}

func (p *jsonPermission) rules(group string, egress bool) ([]*Rule, error) {
	proto, err := protoNumber(p.IPProtocol)
	if err != nil {
		return nil, err
	}
	base := Rule{GroupID: group, Egress: egress, Protocol: p.IPProtocol, proto: proto, FromPort: -1, ToPort: -1}
	if p.FromPort != nil {
		base.FromPort = *p.FromPort
	}
	if p.ToPort != nil {
		base.ToPort = *p.ToPort
	}
	if (proto == 6 || proto == 17) && (base.FromPort < 0 || base.ToPort < base.FromPort || base.ToPort > 65535) {
		if base.FromPort != -1 || base.ToPort != -1 {
			return nil, fmt.Errorf("port range %d-%d is invalid", base.FromPort, base.ToPort)
		}
		base.FromPort, base.ToPort = 0, 65535
	}
	var out []*Rule
	add := func(r Rule) { out = append(out, &r) }
	for _, x := range p.IPRanges {
		pf, err := netip.ParsePrefix(x.CidrIP)
		if err != nil || !pf.Addr().Is4() {
			return nil, fmt.Errorf("CidrIp %q is not an IPv4 CIDR", x.CidrIP)
		}
		r := base
		r.CIDR, r.Description = pf.Masked(), x.Description
		add(r)
	}
	for _, x := range p.IPv6Ranges {
		pf, err := netip.ParsePrefix(x.CidrIPv6)
		if err != nil || !pf.Addr().Is6() {
			return nil, fmt.Errorf("CidrIpv6 %q is not an IPv6 CIDR", x.CidrIPv6)
		}
		r := base
		r.CIDR, r.Description = pf.Masked(), x.Description
		add(r)
	}
	for _, x := range p.PrefixListIDs {
		r := base
		r.PrefixListID, r.Description = x.PrefixListID, x.Description
		add(r)
	}
	for _, x := range p.UserIDGroupPairs {
		r := base
		r.RefGroupID, r.Description = x.GroupID, x.Description
		add(r)
	}
	return out, nil
}

// ReadInterfaces reads the JSON `aws ec2 describe-network-interfaces`
// prints.
func ReadInterfaces(path string) ([]*Interface, error) {
	var doc struct {
		NetworkInterfaces []jsonInterface `json:"NetworkInterfaces"`
	}
	if err := readJSON(path, &doc); err != nil {
		return nil, err
	}
	var out []*Interface
	for i, ji := range doc.NetworkInterfaces {
		if ji.NetworkInterfaceID == "" {
			return nil, fmt.Errorf("%s: NetworkInterfaces[%d]: no NetworkInterfaceId", path, i)
		}
		ifc := &Interface{ID: ji.NetworkInterfaceID}
		for _, g := range ji.Groups {
			ifc.Groups = append(ifc.Groups, g.GroupID)
		}
		addrs := []string{ji.PrivateIPAddress}
		if ji.Association != nil {
			addrs = append(addrs, ji.Association.PublicIP)
		}
		for _, a := range ji.PrivateIPAddresses {
			addrs = append(addrs, a.PrivateIPAddress)
			if a.Association != nil {
				addrs = append(addrs, a.Association.PublicIP)
			}
		}
		for _, a := range ji.IPv6Addresses {
			addrs = append(addrs, a.IPv6Address)
		}
		for _, s := range addrs {
			if s == "" {
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: address %q: %w", path, ifc.ID, s, err)
			}
			ifc.addAddr(a)
		}
		out = append(out, ifc)
	}
	return out, nil
}

func (ifc *Interface) addAddr(a netip.Addr) {
	a = a.Unmap()
	for _, x := range ifc.Addrs {
		if x == a {
			return
		}
	}
	ifc.Addrs = append(ifc.Addrs, a)
}

// ReadPrefixLists reads the JSON of `aws ec2 describe-managed-prefix-lists`
// where each list carries an Entries array as
// `get-managed-prefix-list-entries` prints it.
func ReadPrefixLists(path string) (map[string][]netip.Prefix, error) {
	var doc struct {
		PrefixLists []jsonPrefixList `json:"PrefixLists"`
	}
	if err := readJSON(path, &doc); err != nil {
		return nil, err
	}
	out := map[string][]netip.Prefix{}
	for _, pl := range doc.PrefixLists {
		if pl.PrefixListID == "" {
			return nil, fmt.Errorf("%s: a prefix list without PrefixListId", path)
		}
		out[pl.PrefixListID] = []netip.Prefix{}
		for _, e := range pl.Entries {
			pf, err := netip.ParsePrefix(e.Cidr)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: entry %q is not a CIDR", path, pl.PrefixListID, e.Cidr)
			}
			out[pl.PrefixListID] = append(out[pl.PrefixListID], pf.Masked())
		}
	}
	return out, nil
}

// readJSON decodes a file, saying where a syntax error is (line and
// column).
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		off := int64(-1)
		switch {
		case errors.As(err, &se):
			off = se.Offset
		case errors.As(err, &te):
			off = te.Offset
		}
		if off >= 0 {
			line, col := position(data, off)
			return fmt.Errorf("%s:%d:%d: %w", path, line, col, err)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func position(data []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
