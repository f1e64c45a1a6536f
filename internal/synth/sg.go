package synth

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/netip"
)

// The security groups of the generated VPC, consistent with what
// Interface.accepts lets in, with planted unused and broader-than-used
// rules, as the AWS CLI prints them (describe-security-groups,
// describe-network-interfaces, describe-managed-prefix-lists with
// Entries). Nothing here draws from the generator's random stream, so the
// flow logs stay the same.

// S3PrefixList is the id of the S3 managed prefix list of the region.
const S3PrefixList = "pl-63a5400a"

// SGExpectation is a verdict sg-audit must give on a rule of the
// generated account.
type SGExpectation struct {
	GroupID, Direction, Protocol string
	FromPort, ToPort             int32
	Source                       string
	Verdict                      string
}

type sgPerm struct {
	proto    string
	from, to int32
	cidrs    []string
	groups   []string // group names, resolved to ids
	pls      []string
}

type sgDef struct {
	name            string
	ingress, egress []sgPerm
	expect          map[int]string // ingress index → planted verdict
	expectEgress    map[int]string
}

func tcp(port int32, sources ...string) sgPerm {
	return sgPerm{proto: "tcp", from: port, to: port, cidrs: sources}
}

func fromGroups(proto string, from, to int32, groups ...string) sgPerm {
	return sgPerm{proto: proto, from: from, to: to, groups: groups}
}

var world = []string{"0.0.0.0/0", "::/0"}

// sgDefs are the groups: by role, a base group on every instance, and
// two that no flow can judge (one on an interface without flow logs, one
// on no interface).
func sgDefs() []sgDef {
	vpc4, vpc6, office := vpcV4.String(), vpcV6.String(), officeNet.String()
	return []sgDef{
		{name: "base", ingress: []sgPerm{
			{proto: "icmp", from: -1, to: -1, cidrs: []string{vpc4}},
			{proto: "icmpv6", from: -1, to: -1, cidrs: []string{vpc6}},
			fromGroups("tcp", 22, 22, "bastion"),
		}, egress: []sgPerm{{proto: "-1", from: -1, to: -1, cidrs: world}},
			expect: map[int]string{2: "used"}, expectEgress: map[int]string{0: "used"}},
		{name: "alb", ingress: []sgPerm{tcp(443, world...), tcp(80, world...)},
			egress: []sgPerm{fromGroups("tcp", 8080, 8080, "app")},
			expect: map[int]string{0: "used"}, expectEgress: map[int]string{0: "used"}},
		{name: "bastion", ingress: []sgPerm{tcp(22, office), {proto: "icmp", from: -1, to: -1, cidrs: []string{office}}},
			expect: map[int]string{0: "used"}},
		{name: "legacy-web", ingress: []sgPerm{tcp(80, world...), tcp(443, world...), tcp(22, world...)}},
		{name: "rdp-jump", ingress: []sgPerm{tcp(3389, world...)}},
		{name: "public-web", ingress: []sgPerm{tcp(80, world...), tcp(443, world...)}},
		{name: "app", ingress: []sgPerm{
			fromGroups("tcp", 8080, 8080, "alb", "app"),
			{proto: "tcp", from: 9000, to: 9100, cidrs: []string{vpc4}}, // planted: unused
		}, egress: []sgPerm{{proto: "tcp", from: 443, to: 443, pls: []string{S3PrefixList}}},
			expect: map[int]string{0: "used", 1: "unused"}},
		{name: "worker", ingress: []sgPerm{tcp(5000, vpc4)}, // planted: an old job API, unused
			expect: map[int]string{0: "unused"}},
		{name: "db", ingress: []sgPerm{
			fromGroups("tcp", 5432, 5432, "app"), fromGroups("tcp", 3306, 3306, "app"), fromGroups("tcp", 6379, 6379, "app"),
			fromGroups("tcp", 27017, 27017, "app"), // planted: unused
			tcp(5432, "10.0.0.0/8"),                // planted: broader than used
		}, expect: map[int]string{0: "used", 3: "unused", 4: "broader-than-used"}},
		{name: "batch", ingress: []sgPerm{tcp(8000, vpc4)}, expect: map[int]string{0: "unknown"}},
		{name: "ftp-old", ingress: []sgPerm{tcp(21, "0.0.0.0/0")}, expect: map[int]string{0: "unused"}},
	}
}

var roleGroup = map[Role]string{RoleALB: "alb", RoleBastion: "bastion", RoleLegacyWeb: "legacy-web", RoleRDP: "rdp-jump",
	RolePublicWeb: "public-web", RoleApp: "app", RoleWorker: "worker", RolePostgres: "db", RoleMySQL: "db", RoleRedis: "db"}

// sgID derives a group id from the VPC and the group's name.
func (g *Generator) sgID(name string) string {
	h := fnv.New64a()
	h.Write([]byte(g.topo.vpcID + "/" + name))
	return fmt.Sprintf("sg-0%016x", h.Sum64())
}

// SilentInterfaceID is an interface of the generated account that has no
// flow log records (a stopped instance's), carrying the "batch" group.
func (g *Generator) SilentInterfaceID() string {
	h := fnv.New64a()
	h.Write([]byte(g.topo.vpcID + "/silent"))
	return fmt.Sprintf("eni-0%016x", h.Sum64())
}

func (p sgPerm) json(g *Generator) map[string]any {
	m := map[string]any{"IpProtocol": p.proto, "IpRanges": []any{}, "Ipv6Ranges": []any{}, "PrefixListIds": []any{}, "UserIdGroupPairs": []any{}}
	if p.proto != "-1" {
		m["FromPort"], m["ToPort"] = p.from, p.to
	}
	var v4, v6, pls, pairs []any
	for _, c := range p.cidrs {
		if netip.MustParsePrefix(c).Addr().Is4() {
			v4 = append(v4, map[string]string{"CidrIp": c})
		} else {
			v6 = append(v6, map[string]string{"CidrIpv6": c})
		}
	}
	for _, pl := range p.pls {
		pls = append(pls, map[string]string{"PrefixListId": pl})
	}
	for _, n := range p.groups {
		pairs = append(pairs, map[string]string{"GroupId": g.sgID(n), "UserId": g.cfg.AccountID})
	}
	for k, v := range map[string][]any{"IpRanges": v4, "Ipv6Ranges": v6, "PrefixListIds": pls, "UserIdGroupPairs": pairs} {
		if v != nil {
			m[k] = v
		}
	}
	return m
}

// SecurityGroupsJSON returns the account's groups as
// `aws ec2 describe-security-groups` prints them.
func (g *Generator) SecurityGroupsJSON() ([]byte, error) {
	var groups []any
	for _, d := range sgDefs() {
		in, out := []any{}, []any{}
		for _, p := range d.ingress {
			in = append(in, p.json(g))
		}
		for _, p := range d.egress {
			out = append(out, p.json(g))
		}
		groups = append(groups, map[string]any{"GroupId": g.sgID(d.name), "GroupName": d.name, "Description": d.name,
			"OwnerId": g.cfg.AccountID, "VpcId": g.topo.vpcID, "IpPermissions": in, "IpPermissionsEgress": out})
	}
	return json.MarshalIndent(map[string]any{"SecurityGroups": groups}, "", "    ")
}

// InterfacesJSON returns the account's interfaces as
// `aws ec2 describe-network-interfaces` prints them: every instance has
// the base group and its role's, the load balancer nodes their own, the
// NAT gateway none, and one more interface has no flow log records.
func (g *Generator) InterfacesJSON() ([]byte, error) {
	var out []any
	add := func(id, subnet, desc string, addr, addr6 netip.Addr, groups ...string) {
		var gs, v6 []any
		for _, n := range groups {
			gs = append(gs, map[string]string{"GroupId": g.sgID(n), "GroupName": n})
		}
		if addr6.IsValid() {
			v6 = append(v6, map[string]string{"Ipv6Address": addr6.String()})
		}
		out = append(out, map[string]any{"NetworkInterfaceId": id, "SubnetId": subnet, "VpcId": g.topo.vpcID,
			"Description": desc, "Groups": append([]any{}, gs...), "Ipv6Addresses": append([]any{}, v6...),
			"PrivateIpAddress": addr.String(), "Status": "in-use", "InterfaceType": "interface",
			"PrivateIpAddresses": []any{map[string]any{"Primary": true, "PrivateIpAddress": addr.String()}}})
	}
	for _, ifc := range g.topo.ifaces {
		switch ifc.Role {
		case RoleNAT:
			add(ifc.ID, ifc.SubnetID, "Interface for NAT Gateway", ifc.Addr, ifc.Addr6)
		case RoleALB:
			add(ifc.ID, ifc.SubnetID, "ELB app/web", ifc.Addr, ifc.Addr6, "alb")
		default:
			add(ifc.ID, ifc.SubnetID, ifc.Role.String(), ifc.Addr, ifc.Addr6, "base", roleGroup[ifc.Role])
		}
	}
	last := g.topo.ifaces[len(g.topo.ifaces)-1]
	add(g.SilentInterfaceID(), last.SubnetID, "stopped batch host", netip.MustParseAddr("10.0.11.254"), netip.Addr{}, "base", "batch")
	return json.MarshalIndent(map[string]any{"NetworkInterfaces": out}, "", "    ")
}

// PrefixListsJSON returns the S3 prefix list with its entries.
func (g *Generator) PrefixListsJSON() ([]byte, error) {
	return json.MarshalIndent(map[string]any{"PrefixLists": []any{map[string]any{
		"PrefixListId": S3PrefixList, "PrefixListName": "com.amazonaws." + g.cfg.Region + ".s3", "AddressFamily": "IPv4",
		"State": "create-complete", "OwnerId": "AWS", "Entries": []any{map[string]string{"Cidr": s3Net.String()}},
	}}}, "", "    ")
}

// SGExpectations returns the verdicts the generated traffic supports for
// the rules it is sure of: the planted unused and broader-than-used
// rules, rules the traffic always uses, and rules no flow can judge.
func (g *Generator) SGExpectations() []SGExpectation {
	var out []SGExpectation
	for _, d := range sgDefs() {
		for _, dir := range []struct {
			name   string
			perms  []sgPerm
			expect map[int]string
		}{{"ingress", d.ingress, d.expect}, {"egress", d.egress, d.expectEgress}} {
			for i, p := range dir.perms {
				v, ok := dir.expect[i]
				if !ok {
					continue
				}
				sources := append(append([]string{}, p.cidrs...), p.pls...)
				for _, n := range p.groups {
					sources = append(sources, g.sgID(n))
				}
				// a planted verdict is about the first source; the rest of
				// a "used" permission (::/0 …) may see nothing
				out = append(out, SGExpectation{GroupID: g.sgID(d.name), Direction: dir.name, Protocol: p.proto,
					FromPort: p.from, ToPort: p.to, Source: sources[0], Verdict: v})
			}
		}
	}
	return out
}
