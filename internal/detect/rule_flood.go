package detect

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"

	"github.com/flowguard/flowguard/internal/finding"
)

// inboundFlood raises Impact:EC2/InboundFlood (high) when a host of ours
// receives at least min_packets packets in a window and either at least
// min_heavy_sources sources sent heavy_source_packets each (and, once
// learned, baseline_factor times its usual number of heavy sources), or,
// once learned, baseline_factor times its usual packets.
//
// A distributed flood has no single actor. Sources whose volume to the
// host is steady — in line with their own history before the flood — are
// not part of it: they are left out of the flood's packets and never
// named. Of the rest, the actor is the network (at most a /24, or /48 for
// IPv6) that carries most of the flood's packets when there is one (a
// single address when the network holds one source); otherwise the actor
// is left empty, and the evidence lists the heaviest sources with their
// share of the flood's packets.
type inboundFlood struct{ set InboundFloodSettings }

func init() {
	register("inbound_flood", orderHost, func(e *Engine) detector {
		if !e.set.InboundFlood.Enabled {
			return nil
		}
		return &inboundFlood{e.set.InboundFlood}
	})
}

// Steady sources: seen among the host's top talkers in at least
// steadyWindows earlier windows, and now sending at most steadyFactor
// times their usual packets.
const (
	steadyWindows = 3
	steadyFactor  = 3
	maxTopSources = 5
)

func (d *inboundFlood) judge(j *judgement) {
	fl := d.set
	for i := range j.hosts {
		r := &j.hosts[i]
		hp, h := r.hp, r.h
		if hp.inPackets < uint64(fl.MinPackets) {
			continue
		}
		many := hp.heavyN >= fl.MinHeavySources && (!r.ready || float64(hp.heavyN) >= fl.BaselineFactor*h.heavy)
		above := r.ready && float64(hp.inPackets) >= fl.BaselineFactor*h.inPackets
		if !many && !above {
			continue
		}
		c := d.compose(j, r)
		if c.packets < uint64(fl.MinPackets) || (!above && c.heavy < fl.MinHeavySources) {
			continue // steady sources make the volume: no flood
		}
		r.alert |= alertPackets
		sp := spec{typ: TypeInboundFlood, sev: finding.High, dir: finding.Inbound, target: h.addr,
			idTarget: h.addr.addr().String(), count: int64(hp.inFlows), first: hp.first, last: hp.last,
			ev: evidence{finding.EvPackets: int64(hp.inPackets), finding.EvFloodPackets: int64(c.packets),
				finding.EvHeavySources: int64(c.heavy), finding.EvSteadySources: int64(c.steady),
				finding.EvDistinctSources: int64(hp.sources.count()), finding.EvBaselinePackets: int64(h.inPackets)},
			actor: c.actor, prefix: c.prefix, top: c.top,
			rule: fmt.Sprintf("inbound packets in a %s window at least min_packets, from at least min_heavy_sources sources sending heavy_source_packets each, or baseline_factor times the host's baseline; sources steady against their own history are not part of it", j.set.Window),
			thr: map[string]any{"min_packets": fl.MinPackets, "min_heavy_sources": fl.MinHeavySources,
				"heavy_source_packets": fl.HeavySourcePackets, "baseline_factor": fl.BaselineFactor}}
		j.emit(sp)
	}
}

// floodComposition is who sent a flood.
type floodComposition struct {
	packets uint64 // the host's inbound packets less the steady sources'
	heavy   int    // heavy sources that are not steady
	steady  int
	actor   addrKey
	prefix  netip.Prefix
	top     []TopSource
}

// compose splits the host's sources in the window into steady ones and the
// flood, and names the flood's actor when one network carries most of it.
func (d *inboundFlood) compose(j *judgement, r *hostRef) floodComposition {
	heavy := j.set.heavyLimit()
	type group struct {
		packets uint64
		n       int
		one     addrKey
	}
	groups := map[addrKey]*group{}
	var c floodComposition
	var steadyPkts uint64
	var top []heavySrc
	j.eachSource(func(key addrKey, s *extState) {
		if s.host != r.id+1 || s.packets == 0 {
			return
		}
		if r.h.steady(key, s.packets) {
			c.steady++
			steadyPkts += uint64(s.packets)
			return
		}
		if s.packets >= heavy {
			c.heavy++
		}
		bits := 48
		if key.is4() {
			bits = 96 + 24
		}
		gk := maskKey(key, bits)
		g := groups[gk]
		if g == nil {
			g = &group{one: key}
			groups[gk] = g
		}
		g.packets += uint64(s.packets)
		g.n++
		top = append(top, heavySrc{key, s.packets})
	})
	c.packets = r.hp.inPackets - min(steadyPkts, r.hp.inPackets)
	var best addrKey
	var bg *group
	for k, g := range groups {
		if bg == nil || g.packets > bg.packets || g.packets == bg.packets && cmpKey(k, best) < 0 {
			best, bg = k, g
		}
	}
	if bg != nil && 2*bg.packets > c.packets {
		if bg.n == 1 {
			c.actor = bg.one
		} else {
			bits := 48
			if best.is4() {
				bits = 24
			}
			c.prefix = netip.PrefixFrom(best.addr(), bits)
			c.actor = best
		}
	}
	slices.SortFunc(top, func(a, b heavySrc) int {
		if c := cmp.Compare(b.packets, a.packets); c != 0 {
			return c
		}
		return cmpKey(a.key, b.key)
	})
	for _, t := range top[:min(len(top), maxTopSources)] {
		share := 0.0
		if c.packets > 0 {
			share = math.Round(float64(t.packets)/float64(c.packets)*1000) / 1000
		}
		c.top = append(c.top, TopSource{IP: t.key.addr(), Packets: int64(t.packets), Share: share})
	}
	return c
}

// TopSource is one of a flood's heaviest sources (evidence.top_sources).
type TopSource struct {
	IP      netip.Addr `json:"ip"`
	Packets int64      `json:"packets"`
	// Share is the source's part of the flood's packets, 0 to 1.
	Share float64 `json:"share"`
}

// talker is one of a host's usual top talkers: its running mean of packets
// per window, over the windows in which it was among the top.
type talker struct {
	mean    float64
	windows int
	last    int64 // window index
}

// maxTalkers bounds the talkers remembered per host.
const maxTalkers = 32

// steady reports whether a source's packets to the host in a window are in
// line with its own history.
func (h *host) steady(k addrKey, packets uint32) bool {
	t := h.talkers[k]
	return t != nil && t.windows >= steadyWindows && float64(packets) <= steadyFactor*t.mean
}

// learnTalkers adds the window's top talkers to the host's history
// (windows that raised a flood do not train it).
func (h *host) learnTalkers(hp *hostPane, idx int64) {
	for _, ts := range hp.top[:hp.ntop] {
		if h.talkers == nil {
			h.talkers = map[addrKey]*talker{}
		}
		t := h.talkers[ts.key]
		if t == nil {
			if len(h.talkers) >= maxTalkers {
				var oldest addrKey
				var ot *talker
				for k, x := range h.talkers {
					if ot == nil || x.last < ot.last || x.last == ot.last && cmpKey(k, oldest) < 0 {
						oldest, ot = k, x
					}
				}
				delete(h.talkers, oldest)
			}
			t = &talker{}
			h.talkers[ts.key] = t
		}
		t.windows++
		t.mean += (float64(ts.packets) - t.mean) / float64(min(t.windows, 50))
		t.last = idx
	}
}

// addTop keeps the window's top talkers of a host by packets (ties by
// address, so that the result does not depend on the order of the sources).
func (hp *hostPane) addTop(k addrKey, packets uint32) {
	x := heavySrc{k, packets}
	before := func(a, b heavySrc) bool {
		return a.packets > b.packets || a.packets == b.packets && cmpKey(a.key, b.key) < 0
	}
	n := int(hp.ntop)
	if n == len(hp.top) && !before(x, hp.top[n-1]) {
		return
	}
	i := n
	if n == len(hp.top) {
		i = n - 1
	} else {
		hp.ntop++
	}
	for i > 0 && before(x, hp.top[i-1]) {
		hp.top[i] = hp.top[i-1]
		i--
	}
	hp.top[i] = x
}
