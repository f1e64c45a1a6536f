package synth

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// Label describes one generated attack, computed from the records
// actually written.
type Label struct {
	// Type is the finding type a detector should raise (GuardDuty's name
	// where GuardDuty has one; see docs/DESIGN.md).
	Type string `json:"type"`
	// Actor is the attacker's address; for a flood from many sources of
	// one network, the sources' prefix; empty for a distributed flood from
	// unrelated addresses, which has no single actor.
	Actor string `json:"actor"`
	// Target is the attacked address: one of ours for inbound attacks, the
	// external address for exfiltration; empty when there are many (see
	// Targets).
	Target string `json:"target,omitempty"`
	// Ports are the distinct destination ports of the actor's traffic.
	Ports     []int     `json:"ports"`
	FirstSeen time.Time `json:"first_seen"` // earliest start of its records
	LastSeen  time.Time `json:"last_seen"`  // latest end of its records
	// Records is the number of flow log records the attack produced, on
	// every interface that logged it (responses and NAT gateway hops
	// included).
	Records int `json:"records"`
	// Direction is "inbound" (the actor is outside) or "outbound" (the
	// actor is one of our instances).
	Direction string `json:"direction"`
	// Scenario names the generator's scenario: vertical-portscan,
	// horizontal-sweep, ssh-brute-force, rdp-brute-force, inbound-flood,
	// exfiltration, outbound-scan, threat-list-caller; with Config.Hard
	// also distributed-flood and slow-prober.
	Scenario string `json:"scenario"`
	// InterfaceID is the interface of our instance involved (the target of
	// an inbound attack, the actor of an outbound one), when there is one.
	InterfaceID string `json:"interface_id,omitempty"`
	// Targets lists the distinct targets of multi-target attacks (sweeps,
	// outbound scans) when there are at most 256; DistinctTargets counts
	// them.
	Targets         []string `json:"targets,omitempty"`
	DistinctTargets int      `json:"distinct_targets,omitempty"`
	// Sources counts the distinct source addresses of a flood.
	Sources int `json:"sources,omitempty"`
	// Bytes is the total of the bytes fields of the actor's outbound
	// records on its own interface (exfiltration).
	Bytes uint64 `json:"bytes,omitempty"`
}

// WriteLabels writes labels as JSON lines, one object per attack.
func WriteLabels(w io.Writer, labels []Label) error {
	enc := json.NewEncoder(w)
	for i := range labels {
		if err := enc.Encode(&labels[i]); err != nil {
			return fmt.Errorf("cannot write labels: %w", err)
		}
	}
	return nil
}

type attackKind uint8

const (
	akPortscan attackKind = iota
	akSSH
	akSweep
	akThreat
	akRDP
	akExfil
	akOutScan
	akFlood
	akDistFlood // Config.Hard only
	akSlowProbe // Config.Hard only
	numAttackKinds
)

// attackSpec: finding type, scenario, direction, share of the attack budget
// and the least records an episode needs to make sense. The order is the
// priority when a small run has room for only some.
var attackSpecs = [numAttackKinds]struct {
	typ, scenario, dir string
	weight             float64
	minRecords         int
	hard               bool // planned by planHard, with Config.Hard
}{
	akPortscan:  {"Recon:EC2/Portscan", "vertical-portscan", "inbound", 0.15, 30, false},
	akSSH:       {"UnauthorizedAccess:EC2/SSHBruteForce", "ssh-brute-force", "inbound", 0.18, 30, false},
	akSweep:     {"Recon:EC2/Portscan", "horizontal-sweep", "inbound", 0.03, 8, false},
	akThreat:    {"UnauthorizedAccess:EC2/MaliciousIPCaller.Custom", "threat-list-caller", "inbound", 0.03, 6, false},
	akRDP:       {"UnauthorizedAccess:EC2/RDPBruteForce", "rdp-brute-force", "inbound", 0.12, 30, false},
	akExfil:     {"Exfiltration:EC2/UnusualOutboundVolume", "exfiltration", "outbound", 0.05, 30, false},
	akOutScan:   {"Recon:EC2/Portscan", "outbound-scan", "outbound", 0.14, 60, false},
	akFlood:     {"Impact:EC2/InboundFlood", "inbound-flood", "inbound", 0.30, 60, false},
	akDistFlood: {"Impact:EC2/InboundFlood", "distributed-flood", "inbound", 0, 0, true},
	akSlowProbe: {"Recon:EC2/RepeatedReject", "slow-prober", "inbound", 0, 0, true},
}

// episode is one attack: its plan, its per-window step and what was
// observed of it in the output.
type episode struct {
	kind           attackKind
	r              *rand.Rand
	first, last    int // windows
	plannedRecords int
	step           func(g *Generator, ep *episode, w int, ws int64)

	actor    netip.Addr   // single actor
	actorNet netip.Prefix // flood sources
	sources  []netip.Addr
	target   *Interface // our interface (target of inbound, actor of outbound)
	external netip.Addr // external target (exfiltration)
	targets  []*Interface
	ports    []uint16
	pos      int // progress through the plan
	perWin   int
	total    int
	sport    uint16
	natPort  uint16
	callWins []int // threat caller: the windows of its connections
	proto    uint8
	srcSet   map[netip.Addr]bool // distributed flood: its sources

	// observed
	records    int
	firstSeen  int64
	lastSeen   int64
	bytes      uint64
	portSet    map[uint16]struct{}
	targetSet  map[netip.Addr]struct{}
	sourcesSet map[netip.Addr]struct{}
}

func (ep *episode) isActor(a netip.Addr) bool {
	if ep.srcSet != nil {
		return ep.srcSet[a]
	}
	if ep.actorNet.IsValid() {
		return ep.actorNet.Contains(a)
	}
	return a == ep.actor
}

// observe accounts for a record of the episode as it is written.
func (ep *episode) observe(r *Record) {
	ep.records++
	if ep.records == 1 || r.Start < ep.firstSeen {
		ep.firstSeen = r.Start
	}
	if r.End > ep.lastSeen {
		ep.lastSeen = r.End
	}
	if attackSpecs[ep.kind].dir == "outbound" {
		if r.PktSrc == ep.actor {
			ep.portSet[r.DstPort] = struct{}{}
			ep.targetSet[r.PktDst] = struct{}{}
			if r.Iface == ep.target && r.Direction == Egress {
				ep.bytes += r.Bytes
			}
		}
		return
	}
	if ep.isActor(r.SrcAddr) {
		ep.portSet[r.DstPort] = struct{}{}
		ep.targetSet[r.DstAddr] = struct{}{}
		ep.sourcesSet[r.SrcAddr] = struct{}{}
	}
}

func (ep *episode) label() (Label, bool) {
	if ep.records == 0 {
		return Label{}, false
	}
	spec := attackSpecs[ep.kind]
	l := Label{
		Type: spec.typ, Scenario: spec.scenario, Direction: spec.dir,
		FirstSeen: time.Unix(ep.firstSeen, 0).UTC(), LastSeen: time.Unix(ep.lastSeen, 0).UTC(),
		Records: ep.records, Bytes: ep.bytes,
	}
	switch {
	case ep.srcSet != nil:
		l.Sources = len(ep.sourcesSet) // no actor: a distributed flood has none
	case ep.actorNet.IsValid():
		l.Actor = ep.actorNet.String()
		l.Sources = len(ep.sourcesSet)
	default:
		l.Actor = ep.actor.String()
	}
	if ep.target != nil {
		l.InterfaceID = ep.target.ID
	}
	for p := range ep.portSet {
		l.Ports = append(l.Ports, int(p))
	}
	slices.Sort(l.Ports)
	targets := make([]netip.Addr, 0, len(ep.targetSet))
	for a := range ep.targetSet {
		targets = append(targets, a)
	}
	slices.SortFunc(targets, netip.Addr.Compare)
	switch ep.kind {
	case akSweep, akOutScan:
		l.DistinctTargets = len(targets)
		if len(targets) <= 256 {
			for _, a := range targets {
				l.Targets = append(l.Targets, a.String())
			}
		}
	case akExfil:
		l.Target = ep.external.String()
	default:
		if len(targets) > 0 {
			l.Target = targets[0].String()
		}
	}
	return l, true
}

// planAttacks decides the attack episodes of a run.
func (g *Generator) planAttacks() {
	g.eps = g.eps[:0]
	n := g.cfg.Records
	if g.cfg.AttackShare < 0 || n < 200 {
		return
	}
	r := rand.New(rand.NewPCG(g.cfg.Seed, 0x61747461636b73))
	budget := float64(n) * g.cfg.AttackShare
	perKind := min(1+n/2500000, 20)
	// Small runs: keep the most important kinds whose minimum sizes fit
	// in a fifth of the records.
	var kinds []attackKind
	sumMin := 0
	for k := range numAttackKinds {
		if attackSpecs[k].hard {
			continue
		}
		m := attackSpecs[k].minRecords * perKind
		if sumMin+m > n/5 {
			continue
		}
		sumMin += m
		kinds = append(kinds, k)
	}
	// Attacker addresses: distinct hosts of 198.51.100.0/24, the first
	// scanner being 198.51.100.23.
	hosts := r.Perm(253)
	for i, h := range hosts {
		hosts[i] = h + 2
		if hosts[i] == 23 {
			hosts[i], hosts[0] = hosts[0], 23
		}
	}
	nextHost := 0
	attacker := func() netip.Addr {
		h := hosts[nextHost%len(hosts)]
		nextHost++
		return hostIn(attackerNet, uint32(h))
	}
	t := g.topo
	// Compromised instances for outbound attacks: distinct private ones.
	insiders := slices.Clone(append(append([]*Interface{}, t.workers...), t.apps...))
	r.Shuffle(len(insiders), func(i, j int) { insiders[i], insiders[j] = insiders[j], insiders[i] })
	nextInsider := 0
	insider := func() *Interface {
		x := insiders[nextInsider%len(insiders)]
		nextInsider++
		return x
	}
	W := g.windows
	lo, hi := W/20, max(W*9/10, W/20+1)
	place := func(ep *episode, length int) {
		length = max(1, min(length, hi-lo))
		ep.first = lo + r.IntN(max(1, hi-lo-length+1))
		ep.last = ep.first + length - 1
	}
	floods := 0
	for _, k := range kinds {
		size := max(int(budget*attackSpecs[k].weight/float64(perKind)), attackSpecs[k].minRecords)
		for e := range perKind {
			ep := &episode{kind: k, r: rand.New(rand.NewPCG(r.Uint64(), r.Uint64())), proto: protoTCP,
				portSet: map[uint16]struct{}{}, targetSet: map[netip.Addr]struct{}{}, sourcesSet: map[netip.Addr]struct{}{}}
			er := ep.r
			switch k {
			case akPortscan:
				ep.actor = attacker()
				ep.target = t.legacy
				if e > 0 {
					ep.target = t.public[er.IntN(len(t.public))]
				}
				ep.ports = scanPorts(er, min(max(size, 25), 1000))
				ep.perWin = 60 + er.IntN(240)
				ep.sport = ephemeralLinux(er)
				ep.plannedRecords = len(ep.ports) + 4
				place(ep, (len(ep.ports)+ep.perWin-1)/ep.perWin)
				ep.step = stepPortscan
			case akSweep:
				ep.actor = attacker()
				ep.targets = append(append([]*Interface{}, t.alb[:]...), t.public...)
				er.Shuffle(len(ep.targets), func(i, j int) { ep.targets[i], ep.targets[j] = ep.targets[j], ep.targets[i] })
				ep.ports = []uint16{[]uint16{23, 445, 5900, 2375, 9200, 11211}[er.IntN(6)]}
				ep.total = min(max(size/len(ep.targets), 1), 5) // rounds
				ep.sport = ephemeralLinux(er)
				ep.plannedRecords = ep.total * len(ep.targets)
				place(ep, ep.total)
				ep.step = stepSweep
			case akSSH, akRDP:
				ep.actor = attacker()
				ep.target, ep.sport = t.legacy, 22
				ep.perWin = 15 + er.IntN(45)
				if k == akRDP {
					ep.target, ep.sport = t.rdp, 3389
					ep.perWin = 10 + er.IntN(20)
				}
				ep.total = min(max(size/2, 15), 3000)
				ep.plannedRecords = 2 * ep.total
				place(ep, (ep.total+ep.perWin-1)/ep.perWin)
				ep.step = stepBruteForce
			case akFlood:
				floods++
				ep.actorNet = netip.PrefixFrom(hostIn(floodNet, uint32(floods%512)<<8), 24)
				ep.target = t.legacy
				ep.sport = 80
				if e%2 == 1 && len(t.public) > 3 {
					ep.target, ep.sport = t.public[3+er.IntN(len(t.public)-3)], 443
				}
				length := 5 + er.IntN(11)
				nsrc := min(max(size/(2*length), 10), 254)
				if nsrc == 254 {
					length = min(max(size/(2*nsrc), 5), 60)
				}
				for _, h := range er.Perm(254)[:nsrc] {
					ep.sources = append(ep.sources, hostIn(ep.actorNet, uint32(h+1)))
					ep.ports = append(ep.ports, ephemeral(er)) // each source's fixed source port
				}
				ep.plannedRecords = 2 * nsrc * length
				place(ep, length)
				ep.step = stepFlood
			case akExfil:
				ep.target = insider()
				ep.actor = ep.target.Addr
				ep.external = attacker()
				ep.natPort = uint16(1024 + er.IntN(64511))
				ep.sport = ephemeralLinux(er)
				length := min(max(size/6, 5), 60)
				ep.plannedRecords = 6 * length
				place(ep, length)
				ep.step = stepExfil
			case akOutScan:
				ep.target = insider()
				ep.actor = ep.target.Addr
				ep.ports = []uint16{[]uint16{22, 23, 445, 3389, 6379}[er.IntN(5)]}
				ep.total = min(max(size/3, 20), 20000)
				ep.perWin = 50 + er.IntN(150)
				ep.plannedRecords = 3 * ep.total
				place(ep, (ep.total+ep.perWin-1)/ep.perWin)
				ep.step = stepOutScan
			case akThreat:
				ep.actor = t.threats[e%len(t.threats)]
				ep.target = t.alb[e%2]
				ep.total = min(max(size/2, 3), 200)
				length := min(max(ep.total*4, 10), W)
				place(ep, length)
				for range ep.total {
					ep.callWins = append(ep.callWins, ep.first+er.IntN(ep.last-ep.first+1))
				}
				slices.Sort(ep.callWins)
				ep.plannedRecords = 2 * ep.total
				ep.step = stepThreat
			}
			g.eps = append(g.eps, ep)
		}
	}
	if g.cfg.Hard {
		g.planHard(r.Uint64())
	}
	slices.SortStableFunc(g.eps, func(a, b *episode) int { return cmp.Compare(a.first, b.first) })
}

// scanPorts returns n distinct ports in the order a scanner tries them:
// well-known services first, then random ones.
func scanPorts(r *rand.Rand, n int) []uint16 {
	var seen [65536]bool
	ports := make([]uint16, 0, n)
	common := slices.Clone(commonPorts)
	r.Shuffle(len(common), func(i, j int) { common[i], common[j] = common[j], common[i] })
	for _, p := range common {
		if len(ports) == n {
			return ports
		}
		seen[p] = true
		ports = append(ports, p)
	}
	for len(ports) < n {
		p := uint16(1 + r.IntN(65535))
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}

// at returns a time inside the window for item i of n, in order.
func at(ws int64, i, n int) int64 {
	return ws + int64(i)*(windowSec-2)/int64(max(n, 1))
}

func stepPortscan(g *Generator, ep *episode, w int, ws int64) {
	end := min(ep.pos+ep.perWin, len(ep.ports))
	if w == ep.last {
		end = len(ep.ports)
	}
	n := end - ep.pos
	ifc := ep.target
	for i, p := range ep.ports[ep.pos:end] {
		s := at(ws, i, n)
		if ifc.accepts(ep.actor, p, protoTCP) {
			g.add(ifc, Ingress, ep.actor, ifc.Addr, ep.sport, p, protoTCP, vol{2, 84}, s, s+1, flowlog.ActionAccept, 2|4, 0)
			g.add(ifc, Egress, ifc.Addr, ep.actor, p, ep.sport, protoTCP, vol{1, 44}, s, s+1, flowlog.ActionAccept, 18, pathIGW)
			continue
		}
		pk := uint64(1 + ep.r.IntN(2))
		g.add(ifc, Ingress, ep.actor, ifc.Addr, ep.sport, p, protoTCP, vol{pk, 44 * pk}, s, s+int64(pk-1), flowlog.ActionReject, 2, 0)
	}
	ep.pos = end
}

func stepSweep(g *Generator, ep *episode, w int, ws int64) {
	if ep.pos >= ep.total {
		return
	}
	ep.pos++
	p := ep.ports[0]
	for i, ifc := range ep.targets {
		s := ws + int64(i)*3/2 // a sweep is quick: a target every 1.5 s
		s = min(s, ws+windowSec-1)
		act := flowlog.ActionReject
		if ifc.accepts(ep.actor, p, protoTCP) {
			act = flowlog.ActionAccept
		}
		g.add(ifc, Ingress, ep.actor, ifc.Addr, ep.sport, p, protoTCP, vol{1, 40}, s, s, act, 2, 0)
	}
}

func stepBruteForce(g *Generator, ep *episode, w int, ws int64) {
	n := min(ep.perWin-ep.perWin/4+ep.r.IntN(ep.perWin/2+1), ep.total-ep.pos)
	if w == ep.last {
		n = ep.total - ep.pos
	}
	ifc := ep.target
	rdp := ep.sport == 3389
	cport := ephemeralLinux(ep.r)
	for i := range n {
		s := at(ws, i, n)
		e := min(s+2+int64(ep.r.IntN(6)), ws+windowSec)
		var in, out vol
		if rdp {
			p := 15 + ep.r.IntN(25)
			in, out = vol{uint64(p), uint64(p * (250 + ep.r.IntN(200)))}, vol{uint64(p - 3), uint64((p - 3) * (400 + ep.r.IntN(300)))}
		} else {
			p := 12 + ep.r.IntN(14)
			in, out = vol{uint64(p), uint64(p * (120 + ep.r.IntN(60)))}, vol{uint64(p - 2), uint64((p - 2) * (150 + ep.r.IntN(80)))}
		}
		c := conn{client: ep.actor, server: ifc.Addr, cport: cport, sport: ep.sport, proto: protoTCP, c2s: in, s2c: out, start: s, end: e}
		g.serverSide(ifc, &c, pathIGW)
		cport++
		if cport < 32768 {
			cport = 32768
		}
	}
	ep.pos += n
}

func stepFlood(g *Generator, ep *episode, w int, ws int64) {
	// A SYN flood from sources that keep their source port (hping3 -k):
	// one record per source and window, with huge packet counts, and the
	// target's SYN-ACKs back.
	ifc := ep.target
	for i, src := range ep.sources {
		s := ws + int64(ep.r.IntN(3))
		p := 500 + ep.r.IntN(20000)
		g.add(ifc, Ingress, src, ifc.Addr, ep.ports[i], ep.sport, protoTCP, vol{uint64(p), uint64(p * 60)}, s, ws+windowSec-1, flowlog.ActionAccept, 2, 0)
		q := p / (3 + ep.r.IntN(5))
		g.add(ifc, Egress, ifc.Addr, src, ep.sport, ep.ports[i], protoTCP, vol{uint64(q), uint64(q * 60)}, s, ws+windowSec-1, flowlog.ActionAccept, 18, pathIGW)
	}
}

func stepExfil(g *Generator, ep *episode, w int, ws int64) {
	mb := 150 + ep.r.IntN(900)
	bytes := mb << 20
	pk := bytes / 1448
	c := conn{client: ep.actor, server: ep.external, cport: ep.sport, sport: 443, proto: protoTCP,
		c2s: vol{uint64(pk), uint64(bytes + pk*52)}, s2c: vol{uint64(pk / 2), uint64(pk / 2 * 52)},
		start: ws + int64(ep.r.IntN(2)), end: ws + windowSec - int64(ep.r.IntN(2)), ph: phaseMid}
	switch w {
	case ep.first:
		c.ph = phaseOpen
	case ep.last:
		c.ph = phaseClose
	}
	g.viaNAT(ep.target, &c, ep.natPort)
}

func stepOutScan(g *Generator, ep *episode, w int, ws int64) {
	n := min(ep.perWin, ep.total-ep.pos)
	if w == ep.last {
		n = ep.total - ep.pos
	}
	for i := range n {
		s := at(ws, i, n)
		c := conn{client: ep.actor, server: randomPublic4(ep.r), cport: ephemeralLinux(ep.r), sport: ep.ports[0],
			proto: protoTCP, c2s: vol{1, 60}, start: s, end: s, ph: phaseOpen}
		if ep.r.IntN(10) == 0 {
			c.s2c = vol{1, 60}
		}
		g.viaNAT(ep.target, &c, uint16(1024+ep.r.IntN(64511)))
	}
	ep.pos += n
}

func stepThreat(g *Generator, ep *episode, w int, ws int64) {
	for ep.pos < len(ep.callWins) && ep.callWins[ep.pos] == w {
		ep.pos++
		srv := ep.target
		c := conn{client: ep.actor, server: srv.Addr, cport: ephemeral(ep.r), sport: 443, proto: protoTCP,
			c2s: vol{uint64(8 + ep.r.IntN(20)), 0}, s2c: vol{uint64(6 + ep.r.IntN(40)), 0}}
		c.c2s.bytes = c.c2s.pkts * uint64(150+ep.r.IntN(200))
		c.s2c.bytes = c.s2c.pkts * uint64(700+ep.r.IntN(700))
		c.start = ws + int64(ep.r.IntN(50))
		c.end = c.start + int64(ep.r.IntN(8))
		g.serverSide(srv, &c, pathIGW)
	}
}
