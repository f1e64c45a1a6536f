package cloudtrail

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
)

// world reports whether a CIDR is the whole internet.
func world(cidr string) bool { return cidr == "0.0.0.0/0" || cidr == "::/0" }

// exposed returns the sensitive ports a rule with this protocol and port
// range opens; all for protocol -1 ("all") or a range over all ports.
func (d *Detector) exposed(proto string, from, to int) []uint16 {
	proto = strings.ToLower(proto)
	all := proto == "-1" || proto == "all"
	if !all && proto != "tcp" && proto != "udp" && proto != "6" && proto != "17" {
		return nil // ICMP and others open no port
	}
	var out []uint16
	for _, p := range d.o.SensitivePorts {
		if all || (int(p) >= from && int(p) <= to) {
			out = append(out, p)
		}
	}
	return out
}

// items is CloudTrail's rendering of an EC2 list: {"items": […]}.
type items[T any] struct {
	Items []T `json:"items"`
}

// securityGroup judges AuthorizeSecurityGroupIngress: a rule from
// 0.0.0.0/0 or ::/0 on a sensitive port.
func (d *Detector) securityGroup(e Event) {
	var p struct {
		GroupID       string `json:"groupId"`
		GroupName     string `json:"groupName"`
		IPPermissions items[struct {
			IPProtocol string `json:"ipProtocol"`
			FromPort   *int   `json:"fromPort"`
			ToPort     *int   `json:"toPort"`
			IPRanges   items[struct {
				CidrIP string `json:"cidrIp"`
			}] `json:"ipRanges"`
			IPv6Ranges items[struct {
				CidrIPv6 string `json:"cidrIpv6"`
			}] `json:"ipv6Ranges"`
		}] `json:"ipPermissions"`
	}
	if json.Unmarshal(e.RequestParameters, &p) != nil {
		return
	}
	group := p.GroupID
	if group == "" {
		group = p.GroupName
	}
	var ports []uint16
	var cidrs []string
	for _, perm := range p.IPPermissions.Items {
		from, to := 0, 65535
		if perm.FromPort != nil && *perm.FromPort >= 0 {
			from = *perm.FromPort
		}
		if perm.ToPort != nil && *perm.ToPort >= 0 {
			to = *perm.ToPort
		}
		var open []string
		for _, r := range perm.IPRanges.Items {
			if world(r.CidrIP) {
				open = append(open, r.CidrIP)
			}
		}
		for _, r := range perm.IPv6Ranges.Items {
			if world(r.CidrIPv6) {
				open = append(open, r.CidrIPv6)
			}
		}
		if len(open) == 0 {
			continue
		}
		if x := d.exposed(perm.IPProtocol, from, to); len(x) > 0 {
			ports = merge(ports, x)
			for _, c := range open {
				if !slices.Contains(cidrs, c) {
					cidrs = append(cidrs, c)
				}
			}
		}
	}
	if len(ports) == 0 {
		return
	}
	d.raiseOpen(e, TypeSecurityGroupOpen, group, ports,
		fmt.Sprintf("%s opened security group %s to %s on port(s) %s", e.User(), group, strings.Join(cidrs, " and "), portList(ports)),
		map[string]any{"group_id": group, "cidrs": cidrs})
}

// networkACL judges CreateNetworkAclEntry and ReplaceNetworkAclEntry: an
// inbound allow from the internet on a sensitive port.
func (d *Detector) networkACL(e Event) {
	var p struct {
		NetworkACLID string `json:"networkAclId"`
		RuleNumber   int    `json:"ruleNumber"`
		Egress       bool   `json:"egress"`
		RuleAction   string `json:"ruleAction"`
		ACLProtocol  string `json:"aclProtocol"`
		PortRange    struct {
			From *int `json:"from"`
			To   *int `json:"to"`
		} `json:"portRange"`
		CidrBlock     string `json:"cidrBlock"`
		IPv6CidrBlock string `json:"ipv6CidrBlock"`
	}
	if json.Unmarshal(e.RequestParameters, &p) != nil || p.Egress || !strings.EqualFold(p.RuleAction, "allow") {
		return
	}
	cidr := p.CidrBlock
	if cidr == "" {
		cidr = p.IPv6CidrBlock
	}
	if !world(cidr) {
		return
	}
	from, to := 0, 65535
	if p.PortRange.From != nil {
		from = *p.PortRange.From
	}
	if p.PortRange.To != nil {
		to = *p.PortRange.To
	}
	ports := d.exposed(p.ACLProtocol, from, to)
	if len(ports) == 0 {
		return
	}
	d.raiseOpen(e, TypeNetworkACLOpen, p.NetworkACLID, ports,
		fmt.Sprintf("%s allowed %s into network ACL %s (rule %d) on port(s) %s", e.User(), cidr, p.NetworkACLID, p.RuleNumber, portList(ports)),
		map[string]any{"network_acl_id": p.NetworkACLID, "rule_number": p.RuleNumber, "cidrs": []string{cidr}})
}

// route judges CreateRoute and ReplaceRoute: a default route to an
// internet gateway makes the subnets of the table reachable from the
// internet.
func (d *Detector) route(e Event) {
	var p struct {
		RouteTableID string `json:"routeTableId"`
		Dest         string `json:"destinationCidrBlock"`
		Dest6        string `json:"destinationIpv6CidrBlock"`
		GatewayID    string `json:"gatewayId"`
	}
	if json.Unmarshal(e.RequestParameters, &p) != nil || !strings.HasPrefix(p.GatewayID, "igw-") {
		return
	}
	dest := p.Dest
	if dest == "" {
		dest = p.Dest6
	}
	if !world(dest) {
		return
	}
	d.raise(e, TypeRouteOpen, finding.Medium, p.RouteTableID,
		fmt.Sprintf("%s routed %s of route table %s to internet gateway %s", e.User(), dest, p.RouteTableID, p.GatewayID),
		map[string]any{"route_table_id": p.RouteTableID, "gateway_id": p.GatewayID, "destination": dest})
}

func (d *Detector) raiseOpen(e Event, typ, target string, ports []uint16, title string, ev map[string]any) {
	sev := finding.Medium
	if slices.Contains(ports, 22) || slices.Contains(ports, 3389) {
		sev = finding.High
	}
	f := d.raise(e, typ, sev, target, title, ev)
	f.Target.Ports = merge(f.Target.Ports, ports)
}

func merge(a, b []uint16) []uint16 {
	for _, p := range b {
		if !slices.Contains(a, p) {
			a = append(a, p)
		}
	}
	slices.Sort(a)
	return a
}

func portList(ps []uint16) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

// GuardDutyChange is an archive, unarchive or feedback given in GuardDuty,
// read from CloudTrail: who did what to which findings.
type GuardDutyChange struct {
	Action     string // "archive", "unarchive" or "feedback"
	DetectorID string
	FindingIDs []string
	Feedback   string // USEFUL or NOT_USEFUL, for "feedback"
	User       string
	At         time.Time
}

// guardDuty judges the GuardDuty API calls that hide findings or turn
// detection off, and records archive and feedback as changes.
func (d *Detector) guardDuty(e Event) {
	var p struct {
		DetectorID string   `json:"detectorId"`
		FindingIDs []string `json:"findingIds"`
		Feedback   string   `json:"feedback"`
		Name       string   `json:"name"`
		FilterName string   `json:"filterName"`
		Action     string   `json:"action"`
		Enable     *bool    `json:"enable"`
	}
	_ = json.Unmarshal(e.RequestParameters, &p)
	change := GuardDutyChange{DetectorID: p.DetectorID, FindingIDs: p.FindingIDs, User: e.User(), At: e.EventTime}
	ev := map[string]any{"detector_id": p.DetectorID}
	switch e.EventName {
	case "ArchiveFindings", "UnarchiveFindings":
		change.Action = strings.ToLower(strings.TrimSuffix(e.EventName, "Findings"))
		d.Changes = append(d.Changes, change)
		if e.EventName == "UnarchiveFindings" {
			return
		}
		ev["finding_ids"] = p.FindingIDs
		addIDs(d.raise(e, TypeGuardDutyArchived, finding.Low, p.DetectorID,
			fmt.Sprintf("%s archived %d GuardDuty finding(s) of detector %s", e.User(), len(p.FindingIDs), p.DetectorID), ev), p.FindingIDs)
	case "UpdateFindingsFeedback":
		change.Action, change.Feedback = "feedback", p.Feedback
		d.Changes = append(d.Changes, change)
		ev["finding_ids"], ev["feedback"] = p.FindingIDs, p.Feedback
		addIDs(d.raise(e, TypeGuardDutyFeedback, finding.Low, p.DetectorID,
			fmt.Sprintf("%s marked %d GuardDuty finding(s) %s", e.User(), len(p.FindingIDs), p.Feedback), ev), p.FindingIDs)
	case "DeleteDetector", "UpdateDetector", "DisassociateFromMasterAccount", "DisassociateFromAdministratorAccount",
		"StopMonitoringMembers", "DeleteMembers", "DisassociateMembers", "UpdateMalwareScanSettings":
		if e.EventName == "UpdateDetector" && (p.Enable == nil || *p.Enable) {
			return // a setting changed, detection still on
		}
		sev := finding.Medium
		if e.EventName == "DeleteDetector" || e.EventName == "UpdateDetector" {
			sev = finding.High
		}
		d.raise(e, TypeGuardDutyDetector, sev, p.DetectorID,
			fmt.Sprintf("%s called %s on GuardDuty detector %s", e.User(), e.EventName, p.DetectorID), ev)
	case "CreateFilter", "UpdateFilter", "DeleteFilter", "CreateIPSet", "UpdateIPSet":
		if (e.EventName == "CreateFilter" || e.EventName == "UpdateFilter") && !strings.EqualFold(p.Action, "ARCHIVE") {
			return // a saved view, not a suppression
		}
		name := p.Name
		if name == "" {
			name = p.FilterName
		}
		ev["filter"] = name
		d.raise(e, TypeGuardDutyFilter, finding.Medium, p.DetectorID,
			fmt.Sprintf("%s called %s (%s) on GuardDuty detector %s", e.User(), e.EventName, name, p.DetectorID), ev)
	}
}

// addIDs keeps every finding id archived or marked, across records.
func addIDs(f *finding.Finding, ids []string) {
	all, _ := f.Evidence["all_finding_ids"].([]string)
	for _, id := range ids {
		if !slices.Contains(all, id) {
			all = append(all, id)
		}
	}
	f.Evidence["all_finding_ids"] = all
}
