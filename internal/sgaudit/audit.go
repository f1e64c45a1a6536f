package sgaudit

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/flowlog"
)

// Options tune the verdicts.
type Options struct {
	// MinPeriod is the shortest evidence that may call a rule unused; a
	// shorter period still gives the verdict, with a warning, and Apply
	// refuses to revoke on it. Default 7 days (a weekly job is invisible
	// in a day of logs).
	MinPeriod time.Duration
	// WideBits4 and WideBits6: a CIDR this wide or wider (prefix length
	// at most this) is wide, and may be broader than used. Defaults 16
	// and 48.
	WideBits4, WideBits6 int
	// MaxNarrow is how many narrow prefixes may replace a wide rule.
	// Default 4.
	MaxNarrow int
	// WantedRejects is how many distinct sources rejected on a port an
	// interface serves (accepted flows reached it) make it look wanted.
	// Default 10.
	WantedRejects int
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{MinPeriod: 7 * 24 * time.Hour, WideBits4: 16, WideBits6: 48, MaxNarrow: 4, WantedRejects: 10}
}

// maxDistinct bounds the distinct addresses kept per rule; past it the
// count is a lower bound and the rule cannot be narrowed.
const maxDistinct = 1 << 16

type ruleStats struct {
	hits        int64
	first, last uint32
	sources     map[netip.Addr]struct{}
	overflow    bool
}

type portKey struct {
	iface string
	proto uint8
	port  uint16
}

type rejectStats struct {
	flows int64
	// packets rejected per source: a client that wants the service
	// retries (its SYN is resent after 1, 3, 7 s), a scanner probes once
	sources map[netip.Addr]uint64
}

// retries is how many rejected packets make a source look like a client
// that wanted the service rather than a probe.
const retries = 3

// Auditor matches flow log records to the rules of an inventory. Add may
// be called from several goroutines at once.
type Auditor struct {
	opts   Options
	rules  []*Rule
	ifaces map[string]*ifaceRules
	// owners maps an address to the groups of the interfaces that hold it,
	// to resolve rules that reference a group.
	owners  map[netip.Addr][]string
	plists  map[string][]netip.Prefix
	inGroup map[string][]*Interface
	groups  map[string]bool // the inventory's group ids

	mu         sync.Mutex
	stats      []ruleStats
	seen       map[string]bool
	first      uint32
	last       uint32
	records    int64
	accepted   int64
	returns    int64
	unmatched  int64
	foreign    int64 // records on interfaces the inventory does not have
	sideless   int64 // neither address is the interface's
	noIface    int64 // records without interface-id
	ungoverned int64 // records on interfaces without security groups
	unmatchedX []string
	rejects    map[portKey]*rejectStats
	served     map[portKey]bool
}

type ifaceRules struct {
	ifc             *Interface
	ingress, egress []int // indexes in Auditor.rules
}

// New prepares an audit of inv.
func New(inv *Inventory, opts Options) *Auditor {
	d := DefaultOptions()
	if opts.MinPeriod == 0 {
		opts.MinPeriod = d.MinPeriod
	}
	if opts.WideBits4 == 0 {
		opts.WideBits4 = d.WideBits4
	}
	if opts.WideBits6 == 0 {
		opts.WideBits6 = d.WideBits6
	}
	if opts.MaxNarrow == 0 {
		opts.MaxNarrow = d.MaxNarrow
	}
	if opts.WantedRejects == 0 {
		opts.WantedRejects = d.WantedRejects
	}
	a := &Auditor{opts: opts, groups: map[string]bool{}, ifaces: map[string]*ifaceRules{}, owners: map[netip.Addr][]string{},
		plists: inv.PrefixLists, inGroup: map[string][]*Interface{}, seen: map[string]bool{},
		rejects: map[portKey]*rejectStats{}, served: map[portKey]bool{}}
	byGroup := map[string][]int{}
	for _, g := range inv.Groups {
		a.groups[g.ID] = true
		for _, r := range g.Rules {
			byGroup[g.ID] = append(byGroup[g.ID], len(a.rules))
			a.rules = append(a.rules, r)
		}
	}
	a.stats = make([]ruleStats, len(a.rules))
	for _, ifc := range inv.Interfaces {
		ir := &ifaceRules{ifc: ifc}
		for _, g := range ifc.Groups {
			a.inGroup[g] = append(a.inGroup[g], ifc)
			for _, i := range byGroup[g] {
				if a.rules[i].Egress {
					ir.egress = append(ir.egress, i)
				} else {
					ir.ingress = append(ir.ingress, i)
				}
			}
		}
		a.ifaces[ifc.ID] = ir
		for _, ad := range ifc.Addrs {
			a.owners[ad] = append(a.owners[ad], ifc.Groups...)
		}
	}
	return a
}

// use is one accepted flow started by its sender, on a known interface;
// the rules it matched are idx[lo:hi] of its batch.
type use struct {
	lo, hi int
	remote netip.Addr
	start  uint32
	end    uint32
	what   string // for unmatched flows: a description
}

type reject struct {
	key     portKey
	remote  netip.Addr
	packets uint64
}

// Add matches the records of one batch.
func (a *Auditor) Add(b *flowlog.Batch) {
	if b.N == 0 {
		return
	}
	f := b.Format
	col := func(fl flowlog.Field) int { return f.Index(fl) }
	cIface, cSrc, cDst := col(flowlog.FieldInterfaceID), col(flowlog.FieldSrcAddr), col(flowlog.FieldDstAddr)
	cStart, cEnd := col(flowlog.FieldStart), col(flowlog.FieldEnd)
	var statuses []flowlog.LogStatus
	if p := col(flowlog.FieldLogStatus); p >= 0 {
		statuses = b.LogStatuses(p, nil)
	}
	var actions []flowlog.Action
	if p := col(flowlog.FieldAction); p >= 0 {
		actions = b.Actions(p, nil)
	}
	addrs := func(p int) []netip.Addr {
		if p < 0 {
			return nil
		}
		return b.Addrs(p, nil)
	}
	uints := func(p int) ([]uint64, []bool) {
		if p < 0 {
			return nil, nil
		}
		return b.Uints(p, nil)
	}
	src, dst := addrs(cSrc), addrs(cDst)
	pktSrc, pktDst := addrs(col(flowlog.FieldPktSrcAddr)), addrs(col(flowlog.FieldPktDstAddr))
	sport, sportOK := uints(col(flowlog.FieldSrcPort))
	dport, dportOK := uints(col(flowlog.FieldDstPort))
	proto, protoOK := uints(col(flowlog.FieldProtocol))
	flags, flagsOK := uints(col(flowlog.FieldTCPFlags))
	packets, packetsOK := uints(col(flowlog.FieldPackets))
	start, startOK := uints(cStart)
	end, endOK := uints(cEnd)
	cDir := col(flowlog.FieldFlowDirection)

	var uses []use
	var idx []int
	var rejs []reject
	var seen []string
	var first, last uint32
	var records, accepted, returns, foreign, sideless, noIface, ungoverned int64
	lastIface := ""
	for i := 0; i < b.N; i++ {
		if b.Bad(i) {
			continue
		}
		records++
		var t0, t1 uint32
		switch {
		case startOK != nil && startOK[i]:
			t0, t1 = uint32(start[i]), uint32(start[i])
			if endOK != nil && endOK[i] && end[i] >= start[i] {
				t1 = uint32(end[i])
			}
		case endOK != nil && endOK[i]:
			t0, t1 = uint32(end[i]), uint32(end[i])
		}
		if t0 != 0 {
			if first == 0 || t0 < first {
				first = t0
			}
			if t1 > last {
				last = t1
			}
		}
		if cIface < 0 {
			noIface++
			continue
		}
		id, ok := b.String(i, cIface)
		if !ok {
			noIface++
			continue
		}
		ir := a.ifaces[string(id)]
		if ir == nil {
			foreign++
			continue
		}
		if ir.ifc.ID != lastIface {
			seen = append(seen, ir.ifc.ID)
			lastIface = ir.ifc.ID
		}
		if len(ir.ifc.Groups) == 0 {
			// A NAT gateway, a Transit Gateway attachment …: no
			// security group governs this interface.
			ungoverned++
			continue
		}
		// NODATA and SKIPDATA records prove the interface is logged but
		// carry no traffic.
		if statuses != nil && statuses[i] != flowlog.LogStatusOK {
			continue
		}
		if src == nil || dst == nil || !src[i].IsValid() || !dst[i].IsValid() || t0 == 0 {
			continue
		}
		s, d := src[i], dst[i]
		if pktSrc != nil && pktSrc[i].IsValid() {
			s = pktSrc[i]
		}
		if pktDst != nil && pktDst[i].IsValid() {
			d = pktDst[i]
		}
		var ingress, egress bool
		if cDir >= 0 {
			if v, ok := b.String(i, cDir); ok {
				ingress, egress = string(v) == "ingress", string(v) == "egress"
			}
		}
		if !ingress && !egress {
			ingress = ir.ifc.has(dst[i]) || ir.ifc.has(d)
			egress = !ingress && (ir.ifc.has(src[i]) || ir.ifc.has(s))
		}
		if !ingress && !egress {
			sideless++
			continue
		}
		var p uint8
		var sp, dp uint16
		if protoOK != nil && protoOK[i] {
			p = uint8(proto[i])
		}
		if sportOK != nil && sportOK[i] {
			sp = uint16(sport[i])
		}
		if dportOK != nil && dportOK[i] {
			dp = uint16(dport[i])
		}
		var tf uint8
		hasFlags := flagsOK != nil && flagsOK[i]
		if hasFlags {
			tf = uint8(flags[i])
		}
		if resp, _ := detect.IsResponse(p, tf, hasFlags, sp, dp); resp {
			// The reply of a connection the receiver started: security
			// groups are stateful, it used no rule.
			returns++
			continue
		}
		remote := s
		if egress {
			remote = d
		}
		if actions != nil && actions[i] == flowlog.ActionReject {
			if ingress && p != 1 && p != 58 {
				var n uint64 = 1
				if packetsOK != nil && packetsOK[i] {
					n = packets[i]
				}
				rejs = append(rejs, reject{portKey{ir.ifc.ID, p, dp}, remote, n})
			}
			continue
		}
		if actions != nil && actions[i] != flowlog.ActionAccept {
			continue
		}
		accepted++
		u := use{remote: remote, start: t0, end: t1, lo: len(idx)}
		cands := ir.ingress
		if egress {
			cands = ir.egress
		}
		for _, ri := range cands {
			if a.matches(a.rules[ri], p, dp, remote) {
				idx = append(idx, ri)
			}
		}
		u.hi = len(idx)
		if u.hi == u.lo {
			dir := "ingress"
			if egress {
				dir = "egress"
			}
			u.what = fmt.Sprintf("%s %s proto %d port %d remote %s (%s line %d)", ir.ifc.ID, dir, p, dp, remote, b.Source, b.Line(i))
		}
		if ingress {
			rejs = append(rejs, reject{key: portKey{ir.ifc.ID, p, dp}})
		}
		uses = append(uses, u)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	a.records += records
	a.accepted += accepted
	a.returns += returns
	a.foreign += foreign
	a.sideless += sideless
	a.noIface += noIface
	a.ungoverned += ungoverned
	if first != 0 && (a.first == 0 || first < a.first) {
		a.first = first
	}
	a.last = max(a.last, last)
	for _, id := range seen {
		a.seen[id] = true
	}
	for _, u := range uses {
		if u.hi == u.lo {
			a.unmatched++
			if len(a.unmatchedX) < 5 {
				a.unmatchedX = append(a.unmatchedX, u.what)
			}
			continue
		}
		for _, ri := range idx[u.lo:u.hi] {
			st := &a.stats[ri]
			st.hits++
			if st.first == 0 || u.start < st.first {
				st.first = u.start
			}
			st.last = max(st.last, u.end)
			if st.sources == nil {
				st.sources = map[netip.Addr]struct{}{}
			}
			if len(st.sources) < maxDistinct {
				st.sources[u.remote] = struct{}{}
			} else if _, ok := st.sources[u.remote]; !ok {
				st.overflow = true
			}
		}
	}
	for _, r := range rejs {
		if !r.remote.IsValid() {
			a.served[r.key] = true // an accepted flow: the port is served
			continue
		}
		rs := a.rejects[r.key]
		if rs == nil {
			rs = &rejectStats{sources: map[netip.Addr]uint64{}}
			a.rejects[r.key] = rs
		}
		rs.flows++
		if _, ok := rs.sources[r.remote]; ok || len(rs.sources) < maxDistinct {
			rs.sources[r.remote] += r.packets
		}
	}
}

func (ifc *Interface) has(a netip.Addr) bool {
	return slices.Contains(ifc.Addrs, a.Unmap())
}

// matches reports whether rule r allows a flow of protocol p to port dp
// (tcp, udp) with the remote address remote.
func (a *Auditor) matches(r *Rule, p uint8, dp uint16, remote netip.Addr) bool {
	switch {
	case r.proto == -1:
	case r.proto != int(p):
		return false
	case p == 6 || p == 17:
		if int32(dp) < r.FromPort || int32(dp) > r.ToPort {
			return false
		}
	}
	// ICMP type and code are not in flow logs: an ICMP rule of any type
	// and code may have allowed an ICMP flow.
	switch {
	case r.PrefixListID != "":
		for _, pf := range a.plists[r.PrefixListID] {
			if pf.Contains(remote) {
				return true
			}
		}
		return false
	case r.RefGroupID != "":
		return slices.Contains(a.owners[remote.Unmap()], r.RefGroupID)
	}
	return r.CIDR.Contains(remote.Unmap())
}

// Scan reads inputs with s and matches every record.
func (a *Auditor) Scan(ctx context.Context, s *flowlog.Scanner, inputs []flowlog.Input) error {
	return s.Scan(ctx, inputs, func(_ int, b *flowlog.Batch) error {
		a.Add(b)
		return nil
	})
}

// LoadFiles reads an inventory from the JSON the AWS CLI prints;
// prefixLists may be "".
func LoadFiles(groups, interfaces, prefixLists string) (*Inventory, error) {
	inv := &Inventory{PrefixLists: map[string][]netip.Prefix{}}
	var err error
	if inv.Groups, err = ReadGroups(groups); err != nil {
		return nil, err
	}
	if inv.Interfaces, err = ReadInterfaces(interfaces); err != nil {
		return nil, err
	}
	if prefixLists != "" {
		if inv.PrefixLists, err = ReadPrefixLists(prefixLists); err != nil {
			return nil, err
		}
	}
	return inv, nil
}
