package sgaudit

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Verdicts.
const (
	VerdictUsed    = "used"
	VerdictUnused  = "unused"
	VerdictBroader = "broader-than-used"
	// VerdictUnknown: the rule's interfaces have no flow logs, so the
	// traffic cannot say.
	VerdictUnknown = "unknown"
)

// RuleRef names a rule as sg-audit's output does. RuleVerdict and
// Revocation embed it: its keys lead their JSON.
type RuleRef struct {
	GroupID   string `json:"group_id"`
	RuleID    string `json:"rule_id,omitempty"`
	Direction string `json:"direction"`
	Protocol  string `json:"protocol"`
	FromPort  int32  `json:"from_port"`
	ToPort    int32  `json:"to_port"`
	Source    string `json:"source"`
}

// RuleVerdict is one rule judged; its JSON is the sg-audit contract.
type RuleVerdict struct {
	RuleRef
	Hits            int64      `json:"hits"`
	DistinctSources int64      `json:"distinct_sources"`
	FirstSeen       *time.Time `json:"first_seen"`
	LastSeen        *time.Time `json:"last_seen"`
	Verdict         string     `json:"verdict"`
	Suggestion      string     `json:"suggestion"`
	// Narrow are the prefixes proposed for a broader-than-used rule.
	Narrow []string `json:"narrow,omitempty"`

	Rule *Rule `json:"-"`
}

// WantedReject is rejected traffic that looks wanted: many distinct
// sources refused on a port where the interface accepts others, each
// retrying (at least 3 packets) as a client does and a one-off probe does
// not.
type WantedReject struct {
	InterfaceID     string   `json:"interface_id"`
	Groups          []string `json:"groups"`
	Protocol        string   `json:"protocol"`
	Port            uint16   `json:"port"`
	Rejected        int64    `json:"rejected"`
	DistinctSources int      `json:"distinct_sources"`
	Suggestion      string   `json:"suggestion"`
}

// Report is the audit's result.
type Report struct {
	Start, End time.Time
	// Period is how long the evidence covers; Short is set when it is
	// under Options.MinPeriod.
	Period    time.Duration
	MinPeriod time.Duration
	Short     bool
	Records   int64 // records on interfaces of the inventory and others
	Accepted  int64 // accepted flows started by their sender, on known interfaces
	Returns   int64 // reply traffic, not counted as uses
	Unmatched int64 // accepted flows no rule explains (stale inventory?)
	// UnmatchedExamples describe the first few unmatched flows.
	UnmatchedExamples []string
	Foreign           int64 // records on interfaces not in the inventory
	Sideless          int64 // records where neither address is the interface's
	NoInterface       int64 // records without interface-id
	NoGroups          int64 // records on interfaces without security groups (NAT gateways)
	// Silent are the interfaces of the inventory without any record: their
	// rules get no verdict from traffic.
	Silent []string
	Rules  []RuleVerdict
	Wanted []WantedReject
}

// Report computes the verdicts. Call it after the last Add.
func (a *Auditor) Report() *Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	rep := &Report{MinPeriod: a.opts.MinPeriod, Records: a.records, Accepted: a.accepted, Returns: a.returns,
		Unmatched: a.unmatched, UnmatchedExamples: slices.Clone(a.unmatchedX), Foreign: a.foreign,
		Sideless: a.sideless, NoInterface: a.noIface, NoGroups: a.ungoverned}
	if a.first != 0 {
		rep.Start, rep.End = unix(a.first), unix(a.last)
		rep.Period = rep.End.Sub(rep.Start)
	}
	rep.Short = rep.Period < a.opts.MinPeriod
	ids := make([]string, 0, len(a.ifaces))
	for id := range a.ifaces {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if !a.seen[id] {
			rep.Silent = append(rep.Silent, id)
		}
	}
	for i, r := range a.rules {
		rep.Rules = append(rep.Rules, a.verdict(r, &a.stats[i], rep))
	}
	slices.SortStableFunc(rep.Rules, func(x, y RuleVerdict) int {
		if c := strings.Compare(x.GroupID, y.GroupID); c != 0 {
			return c
		}
		if x.Direction != y.Direction {
			return strings.Compare(y.Direction, x.Direction) // ingress first
		}
		return 0
	})
	keys := make([]portKey, 0, len(a.rejects))
	for k := range a.rejects {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y portKey) int {
		if c := strings.Compare(x.iface, y.iface); c != 0 {
			return c
		}
		if x.proto != y.proto {
			return int(x.proto) - int(y.proto)
		}
		return int(x.port) - int(y.port)
	})
	for _, k := range keys {
		rs := a.rejects[k]
		clients := 0
		for _, n := range rs.sources {
			if n >= retries {
				clients++
			}
		}
		if clients < a.opts.WantedRejects || !a.served[k] {
			continue
		}
		ir := a.ifaces[k.iface]
		proto := (&Rule{proto: int(k.proto)}).ProtocolName()
		rep.Wanted = append(rep.Wanted, WantedReject{InterfaceID: k.iface, Groups: ir.ifc.Groups,
			Protocol: proto, Port: k.port, Rejected: rs.flows, DistinctSources: clients,
			Suggestion: fmt.Sprintf("%d sources kept retrying %s/%d, refused, where %s accepts others: if they are clients, a rule is missing or too narrow",
				clients, proto, k.port, k.iface)})
	}
	return rep
}

func unix(s uint32) time.Time { return time.Unix(int64(s), 0).UTC() }

func (a *Auditor) verdict(r *Rule, st *ruleStats, rep *Report) RuleVerdict {
	v := RuleVerdict{RuleRef: RuleRef{GroupID: r.GroupID, RuleID: r.RuleID, Direction: r.Direction(), Protocol: r.ProtocolName(),
		FromPort: r.FromPort, ToPort: r.ToPort, Source: r.Source()}, Hits: st.hits,
		DistinctSources: int64(len(st.sources)), Rule: r}
	if st.hits > 0 {
		f, l := unix(st.first), unix(st.last)
		v.FirstSeen, v.LastSeen = &f, &l
		v.Verdict = VerdictUsed
		if narrow := a.narrow(r, st); narrow != nil {
			v.Verdict = VerdictBroader
			v.Narrow = narrow
			one, many := "source", "sources"
			if r.Egress {
				one, many = "destination", "destinations"
			}
			v.Suggestion = fmt.Sprintf("%s seen, all within %s: replace %s with %s", plural(len(st.sources), one, many),
				plural(len(narrow), "narrow prefix", "narrow prefixes"), r.Source(), strings.Join(narrow, ", "))
		}
		if st.overflow {
			v.Suggestion = fmt.Sprintf("more than %d distinct sources (the count is a lower bound)", maxDistinct)
		}
		return v
	}
	ifcs := a.inGroup[r.GroupID]
	var silent []string
	for _, ifc := range ifcs {
		if !a.seen[ifc.ID] {
			silent = append(silent, ifc.ID)
		}
	}
	_, knownPL := a.plists[r.PrefixListID]
	switch {
	case r.PrefixListID != "" && !knownPL:
		v.Verdict = VerdictUnknown
		v.Suggestion = fmt.Sprintf("prefix list %s not given (--prefix-lists): no verdict", r.PrefixListID)
	case r.RefGroupID != "" && !a.groups[r.RefGroupID]:
		v.Verdict = VerdictUnknown
		v.Suggestion = fmt.Sprintf("group %s is not in the inventory (another VPC or account?): its members are unknown, no verdict", r.RefGroupID)
	case len(ifcs) == 0:
		v.Verdict = VerdictUnused
		v.Suggestion = "the group is attached to no interface"
	case len(silent) > 0:
		v.Verdict = VerdictUnknown
		v.Suggestion = fmt.Sprintf("no flow logs for %s: no verdict", strings.Join(silent, ", "))
	default:
		v.Verdict = VerdictUnused
		v.Suggestion = fmt.Sprintf("no accepted flow started through it in %s of logs: revoke", human(rep.Period))
		if rep.Short {
			v.Suggestion = fmt.Sprintf("no accepted flow in %s of logs, too short to call it unused (under %s; a weekly job would not show): gather more before revoking",
				human(rep.Period), human(a.opts.MinPeriod))
		}
	}
	return v
}

// narrow proposes at most MaxNarrow prefixes that hold every observed
// source of a wide CIDR rule, or nil when the rule is not wide or the
// sources do not fit.
func (a *Auditor) narrow(r *Rule, st *ruleStats) []string {
	if !r.CIDR.IsValid() || st.overflow || len(st.sources) == 0 {
		return nil
	}
	is4 := r.CIDR.Addr().Is4()
	wide, block := a.opts.WideBits6, 64
	if is4 {
		wide, block = a.opts.WideBits4, 24
	}
	if r.CIDR.Bits() > wide {
		return nil
	}
	groups := map[netip.Prefix][]netip.Addr{}
	for s := range st.sources {
		p, _ := s.Prefix(block)
		groups[p] = append(groups[p], s)
		if len(groups) > a.opts.MaxNarrow {
			return nil
		}
	}
	var out []netip.Prefix
	for p, addrs := range groups {
		out = append(out, cover(p, addrs))
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	strs := make([]string, len(out))
	for i, p := range out {
		strs[i] = p.String()
	}
	return strs
}

// cover returns the narrowest prefix inside p that holds every address.
func cover(p netip.Prefix, addrs []netip.Addr) netip.Prefix {
	for bits := addrs[0].BitLen(); bits > p.Bits(); bits-- {
		c, _ := addrs[0].Prefix(bits)
		ok := true
		for _, x := range addrs[1:] {
			if !c.Contains(x) {
				ok = false
				break
			}
		}
		if ok {
			return c
		}
	}
	return p
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// human prints a duration in days and hours.
func human(d time.Duration) string {
	d = d.Round(time.Minute)
	days := int(d / (24 * time.Hour))
	rest := d - time.Duration(days)*24*time.Hour
	switch {
	case days > 0 && rest >= time.Hour:
		return fmt.Sprintf("%dd%dh", days, int(rest/time.Hour))
	case days > 0:
		return fmt.Sprintf("%dd", days)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int((d%time.Hour)/time.Minute))
	}
	return fmt.Sprintf("%dm", int(d/time.Minute))
}
