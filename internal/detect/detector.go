package detect

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// A detector is one rule. It reads the window being judged — the window's
// outside sources and hosts of ours, each with its state in the previous
// window for look-back — and emits findings with judgement.emit. Every
// detector lives in its own file (rule_*.go), registers itself there, and
// reads only what the engine counts for every window (engine.go's add), in
// the manner of the query engine's aggregate functions and CrowdSec's
// bucket processors. docs/detection.md lists them.
type detector interface {
	judge(j *judgement)
}

// detectorSpec registers a detector: order decides the judging order
// (detectors that explain rejects — scans, brute force — come before the
// repeated-reject rules, which stay quiet for sources already explained),
// and build returns the detector for an engine's settings, or nil when it
// is disabled.
type detectorSpec struct {
	name  string
	order int
	build func(e *Engine) detector
}

// detectorSpecs is filled by the rule files' init functions and read-only
// afterwards.
var detectorSpecs []detectorSpec

func register(name string, order int, build func(e *Engine) detector) {
	detectorSpecs = append(detectorSpecs, detectorSpec{name, order, build})
}

// Judging orders.
const (
	orderScan = 10 * (iota + 1)
	orderBruteForce
	orderRejects
	orderSlowRejects
	orderHost
)

// buildDetectors returns e's enabled detectors in judging order.
func buildDetectors(e *Engine) ([]detector, []string) {
	specs := slices.Clone(detectorSpecs)
	slices.SortStableFunc(specs, func(a, b detectorSpec) int {
		if c := cmp.Compare(a.order, b.order); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	var ds []detector
	var names []string
	for _, s := range specs {
		if d := s.build(e); d != nil {
			ds = append(ds, d)
			names = append(names, s.name)
		}
	}
	return ds, names
}

// judgement is what the detectors read: one window and the one before it.
type judgement struct {
	e       *Engine
	set     *Settings
	p, prev *pane
	// sources are the window's outside sources that did anything a
	// per-source rule counts (a reject, a probe, an SSH or RDP attempt), in
	// no particular order; eachSource visits all of them.
	sources []sourceRef
	// hosts are the window's hosts of ours, by id.
	hosts []hostRef
	// open: the window is still open (Engine.Peek). Detectors then emit
	// what they would raise so far but change no state that outlives the
	// judgement (reported marks, long-horizon state).
	open  bool
	out   map[string]*Result  // Peek's findings
	marks map[*extState]uint8 // Peek's reported marks
}

// sourceRef is one outside source of the window.
type sourceRef struct {
	key       addrKey
	s, ps     *extState // this window; the previous one (nil: absent)
	big, pbig *extBig
}

// span returns the earliest start and latest end over both windows.
func (r *sourceRef) span() (uint32, uint32) {
	first, last := r.s.first, r.s.last
	if r.ps != nil {
		first = min(first, r.ps.first)
		last = max(last, r.ps.last)
	}
	return first, last
}

func (r *sourceRef) samples() []Sample {
	if r.big != nil {
		return r.big.samples
	}
	return nil
}

// reported reports whether a rule of bits counted the source in this
// window or the previous one.
func (j *judgement) reported(r *sourceRef, bits uint8) bool {
	return j.reportedIn(r.s, bits) || (r.ps != nil && j.reportedIn(r.ps, bits))
}

func (j *judgement) reportedIn(s *extState, bits uint8) bool {
	return (s.reported|j.marks[s])&bits != 0
}

// eachSource calls fn for every outside source of the window.
func (j *judgement) eachSource(fn func(key addrKey, s *extState)) {
	for key, i := range j.p.ext {
		fn(key, &j.p.exts[i])
	}
}

// mark records that a rule of bit counted the source in both windows, so
// that the next window does not count the previous one's activity again
// (and weaker rules stay quiet). Peek's marks last for its judgement only.
func (j *judgement) mark(r *sourceRef, bit uint8) {
	for _, s := range []*extState{r.s, r.ps} {
		switch {
		case s == nil:
		case j.open:
			if j.marks == nil {
				j.marks = map[*extState]uint8{}
			}
			j.marks[s] |= bit
		default:
			s.reported |= bit
		}
	}
}

// hostRef is one host of ours in the window.
type hostRef struct {
	id     uint32
	h      *host
	hp, ph *hostPane // this window; the previous one (nil: absent)
	// ready: the host's baseline is learned.
	ready bool
	// alert: baseline values a detector alerted on; the window does not
	// train them.
	alert uint8
}

// alert bits
const (
	alertPackets = 1 << iota // inbound packets and heavy sources
	alertBytes               // largest outbound volume
)

// emit adds one window's contribution to a finding.
func (j *judgement) emit(s spec) {
	if j.open {
		j.e.upsertInto(j.out, s, false)
		return
	}
	j.e.upsertInto(j.e.results, s, true)
}

func (j *judgement) windowRule(what string) string {
	return fmt.Sprintf("%s within two consecutive %s windows", what, j.set.Window)
}

// heavyLimit is the packets that make a source heavy.
func (s *Settings) heavyLimit() uint32 {
	return uint32(min(s.InboundFlood.HeavySourcePackets, 1<<32-1))
}

// topTalkerPackets is the least packets in a window for a source to be
// among a host's top talkers (single probes never are).
const topTalkerPackets = 64

// judgementOf collects window p's sources and hosts.
func (e *Engine) judgementOf(p, prev *pane, open bool) *judgement {
	j := &e.judge
	*j = judgement{e: e, set: &e.set, p: p, prev: prev, open: open, sources: j.sources[:0], hosts: j.hosts[:0]}
	heavy := e.set.heavyLimit()
	for _, hp := range p.hosts {
		hp.heavyN, hp.heavyPkts, hp.ntop = 0, 0, 0
	}
	// Visit the sources in slab order, so that the detectors' passes over
	// j.sources read the slab front to back.
	keys := slices.Grow(e.keys[:0], len(p.exts))[:len(p.exts)]
	clear(keys)
	for key, i := range p.ext {
		keys[i] = key
	}
	e.keys = keys
	for i, key := range keys {
		if !key.valid() {
			continue // a free slot
		}
		s := &p.exts[i]
		if s.rejects > 0 || s.npairs > 0 || s.nbf > 0 || s.big != 0 {
			r := sourceRef{key: key, s: s, big: p.big(s)}
			if prev != nil {
				if k, ok := prev.ext[key]; ok {
					r.ps = &prev.exts[k]
					r.pbig = prev.big(r.ps)
				}
			}
			j.sources = append(j.sources, r)
		}
		if s.host != 0 && s.packets >= topTalkerPackets {
			hp := p.hosts[s.host-1]
			if s.packets >= heavy {
				hp.heavyN++
				hp.heavyPkts += uint64(s.packets)
			}
			hp.addTop(key, s.packets)
		}
	}
	for id, hp := range p.hosts {
		h := e.hosts[id]
		if !h.seen && !open {
			h.seen = true
			h.firstPane = p.idx
		}
		r := hostRef{id: id, h: h, hp: hp}
		if prev != nil {
			r.ph = prev.hosts[id]
		}
		r.ready = h.trained || h.n > 0 && h.seen && (p.idx-h.firstPane)*e.paneSec >= int64(time.Duration(e.set.LearningPeriod)/time.Second)
		j.hosts = append(j.hosts, r)
	}
	slices.SortFunc(j.hosts, func(a, b hostRef) int { return cmp.Compare(a.id, b.id) })
	return j
}

// closePane judges window p with every detector (and, for rules counted
// per actor, the previous window), then trains the baselines.
func (e *Engine) closePane(p *pane) {
	delete(e.panes, p.idx)
	e.metrics.Windows++
	prev := e.prev
	if prev != nil && prev.idx != p.idx-1 {
		prev = nil
	}
	j := e.judgementOf(p, prev, false)
	if !e.learning {
		for _, d := range e.detectors {
			d.judge(j)
		}
	}
	e.train(j)
	e.prev = p
}

// train updates each host's baseline with the window, except the values a
// detector alerted on.
func (e *Engine) train(j *judgement) {
	for i := range j.hosts {
		r := &j.hosts[i]
		h, hp := r.h, r.hp
		h.n++
		a := 1 / min(h.n, 50)
		if r.alert&alertPackets == 0 {
			h.inPackets += (float64(hp.inPackets) - h.inPackets) * a
			h.heavy += (float64(hp.heavyN) - h.heavy) * a
			h.learnTalkers(hp, j.p.idx)
		}
		if r.alert&alertBytes == 0 {
			var maxBytes uint64
			for _, rm := range hp.remotes {
				maxBytes = max(maxBytes, rm.bytesOut)
			}
			h.maxBytes += (float64(maxBytes) - h.maxBytes) * a
		}
		if !r.ready || e.learning {
			for port := range hp.used {
				h.ports.add(port)
			}
		}
	}
}

// Peek returns the findings the open windows would raise if they were
// judged now, without judging them: for a daemon that fires early, as soon
// as a threshold is crossed, and updates the finding when the window
// closes (the ids are the same). A peeked finding already holds what
// the closed windows counted for it: it is the finding as it stands now,
// which the closing window's replaces. Long-horizon rules, which keep state
// across windows, report only when windows close. Peek changes no state.
func (e *Engine) Peek() []*Result {
	idx := make([]int64, 0, len(e.panes))
	for k := range e.panes {
		idx = append(idx, k)
	}
	slices.Sort(idx)
	out := map[string]*Result{}
	prev := e.prev
	for _, k := range idx {
		p := e.panes[k]
		if prev != nil && prev.idx != p.idx-1 {
			prev = nil
		}
		j := e.judgementOf(p, prev, true)
		j.out = out
		if !e.learning {
			for _, d := range e.detectors {
				d.judge(j)
			}
		}
		prev = p
	}
	return e.sorted(out)
}

// relay reports whether a host forwards others' connections on port (a NAT
// gateway or proxy seen without pkt-srcaddr): hosts of ours connected to it
// on that port about as often (flows), or with about as many bytes, as it
// connected out.
func (e *Engine) relay(hp *hostPane, port uint16, flows, bytes uint64) bool {
	if e.hosts[hp.id].middlebox {
		return true
	}
	in := hp.latIn[port]
	if in == nil {
		return false
	}
	if flows > 0 {
		return in.flows*2 >= flows
	}
	return in.bytes*2 >= bytes
}

// forwards reports whether host id of ours is a middlebox or passed
// connections on port out of our networks in window p.
func (e *Engine) forwards(p *pane, id uint32, port uint16) bool {
	if e.hosts[id].middlebox {
		return true
	}
	tp := p.hosts[id]
	if tp == nil || tp.latIn[port] == nil {
		return false
	}
	op := tp.out[uint32(port)]
	return op != nil && op.flows*2 >= tp.latIn[port].flows
}

func (p *pane) big(s *extState) *extBig {
	if s == nil || s.big == 0 {
		return nil
	}
	return p.bigs[s.big-1]
}
