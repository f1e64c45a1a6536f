package synth

import (
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// The hard scenarios (Config.Hard) tell a careful detector from a naive
// one:
//
//   - a distributed SYN flood: hundreds of unrelated addresses, each
//     sending a few hundred packets a minute, on a public web server that
//     a busy, legitimate API client talks to all day, with more packets per
//     window than any single flood source. The flood has no actor (its
//     label's Actor is empty); naming the heaviest source names the client.
//   - a slow prober: six rejected attempts on one host's telnet port, about
//     twenty minutes apart (or spread over the run when it is shorter),
//     among the background's one-off probes. The classic query
//     (REJECT, count by srcaddr, count >= 2) catches it; a five-in-ten-
//     minutes rule does not.
type hardState struct {
	r         *rand.Rand
	api       netip.Addr // the busy legitimate client
	apiTarget *Interface
	apiPort   uint16
}

// APIClient returns the busy legitimate client of the hard scenarios (no
// finding should name it), or the zero address without Config.Hard.
func (g *Generator) APIClient() netip.Addr {
	if !g.cfg.Hard {
		return netip.Addr{}
	}
	return randomPublic4(rand.New(rand.NewPCG(g.cfg.Seed, 0x617069)))
}

// planHard adds the hard scenarios' episodes, and the API client.
func (g *Generator) planHard(seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x68617264))
	t := g.topo
	W := g.windows
	// The flood's target: a public web server that no other flood hits.
	webs := t.public[3:]
	target := webs[len(webs)-1]
	for i := len(webs) - 1; i >= 0; i-- {
		if !slices.ContainsFunc(g.eps, func(ep *episode) bool { return ep.kind == akFlood && ep.target == webs[i] }) {
			target = webs[i]
			break
		}
	}
	g.hard = &hardState{r: rand.New(rand.NewPCG(r.Uint64(), r.Uint64())), api: g.APIClient(), apiTarget: target,
		apiPort: ephemeralLinux(r)}

	newEp := func(k attackKind) *episode {
		return &episode{kind: k, r: rand.New(rand.NewPCG(r.Uint64(), r.Uint64())), proto: protoTCP,
			portSet: map[uint16]struct{}{}, targetSet: map[netip.Addr]struct{}{}, sourcesSet: map[netip.Addr]struct{}{}}
	}
	// The flood, in the second half of the run (the client's history
	// comes first): 40 to 800 sources for 5 to 8 windows.
	fl := newEp(akDistFlood)
	fl.target, fl.sport = target, 443
	nsrc := min(max(g.cfg.Records/250, 40), 800)
	length := 5 + r.IntN(4)
	fl.srcSet = map[netip.Addr]bool{}
	for len(fl.sources) < nsrc {
		a := randomPublic4(r)
		if a == g.hard.api || fl.srcSet[a] {
			continue
		}
		fl.srcSet[a] = true
		fl.sources = append(fl.sources, a)
		fl.ports = append(fl.ports, ephemeral(r))
	}
	fl.first = max(W/2, min(W-length, W/2+r.IntN(max(1, W/4))))
	fl.last = min(W-1, fl.first+length-1)
	fl.plannedRecords = 2 * nsrc * length * 9 / 10
	fl.step = stepDistFlood
	// The slow prober: six rejects on the legacy web server's telnet port.
	sp := newEp(akSlowProbe)
	sp.actor = hostIn(attackerNet, 1) // attacker() picks hosts 2 to 254
	sp.target = t.legacy
	sp.ports = []uint16{23}
	gap := min(20, max(1, W*8/10/6)) // windows between attempts
	sp.first = min(W/20, max(0, W-1-5*gap))
	sp.last = sp.first + 5*gap
	sp.perWin = gap
	sp.plannedRecords = 6
	sp.step = stepSlowProbe
	g.eps = append(g.eps, fl, sp)
}

func stepDistFlood(g *Generator, ep *episode, w int, ws int64) {
	ifc := ep.target
	for i, src := range ep.sources {
		if ep.r.IntN(10) == 0 {
			continue // not every source is seen in every window
		}
		s := ws + int64(ep.r.IntN(3))
		p := 200 + ep.r.IntN(250)
		g.add(ifc, Ingress, src, ifc.Addr, ep.ports[i], ep.sport, protoTCP, vol{uint64(p), uint64(p * 60)}, s, ws+windowSec-1, flowlog.ActionAccept, 2, 0)
		q := p / (3 + ep.r.IntN(5))
		g.add(ifc, Egress, ifc.Addr, src, ep.sport, ep.ports[i], protoTCP, vol{uint64(q), uint64(q * 60)}, s, ws+windowSec-1, flowlog.ActionAccept, 18, pathIGW)
	}
}

func stepSlowProbe(g *Generator, ep *episode, w int, ws int64) {
	if (w-ep.first)%ep.perWin != 0 {
		return
	}
	ifc := ep.target
	s := ws + int64(ep.r.IntN(int(windowSec)-1))
	g.add(ifc, Ingress, ep.actor, ifc.Addr, ephemeralLinux(ep.r), ep.ports[0], protoTCP, vol{1, 44}, s, s, flowlog.ActionReject, 2, 0)
}

// apiTraffic adds the API client's window: one long-lived HTTPS connection
// carrying 500 to 560 packets a minute each way, every window of the run.
func (g *Generator) apiTraffic(ws int64) {
	h := g.hard
	p := 500 + h.r.IntN(61)
	c := conn{client: h.api, server: h.apiTarget.Addr, cport: h.apiPort, sport: 443, proto: protoTCP,
		c2s: vol{uint64(p), uint64(p * (300 + h.r.IntN(100)))}, s2c: vol{uint64(p), uint64(p * (900 + h.r.IntN(400)))},
		start: ws, end: ws + windowSec - 1, ph: phaseMid}
	g.serverSide(h.apiTarget, &c, pathIGW)
}
