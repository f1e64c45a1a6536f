// Package detect finds attacks in flow logs: batches in, findings out,
// with bounded state, over event-time windows. The same engine runs over
// files (flowguard detect) and, fed forever, in the daemon.
//
// Each record is first reduced to a flow whose direction is known: which
// side is ours (home networks, flow-direction), who started the
// conversation (tcp-flags, else service versus ephemeral ports), and
// whether it was a failed or payload-less attempt (a probe). Flows are
// counted into tumbling event-time windows per outside source, per host of
// ours and per (actor, target) pair; a window is judged once the watermark
// (the newest start time seen, less the allowed lateness) has passed it.
// Judging happens in window order and every count is order-independent,
// so the same records give the same findings however they are batched or
// shuffled within the lateness bound. docs/detection.md describes every
// rule.
package detect

import (
	"context"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/flowlog"
)

// ExpectedSource says who may reach which ports (Policy:EC2/UnexpectedSource).
type ExpectedSource struct {
	Ports   []uint16
	Sources []netip.Prefix
}

// Options configure an Engine.
type Options struct {
	Settings Settings
	// Home are our networks; empty means the private ranges
	// (DefaultHomeNetworks).
	Home []netip.Prefix
	// Allow are sources never named as actors.
	Allow []netip.Prefix
	// Threats are the addresses and ranges of the threat lists.
	Threats  []netip.Prefix
	Expected []ExpectedSource
	// OnFinding, if set, is called each time a window adds to a finding,
	// with the finding as it stands (for streaming consumers).
	OnFinding func(*Result)
}

// DefaultHomeNetworks are the private ranges: RFC 1918, shared address
// space (RFC 6598) and unique local IPv6 (RFC 4193).
func DefaultHomeNetworks() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("fc00::/7"),
	}
}

// Metrics count what the engine saw and did.
type Metrics struct {
	Records  int64 `json:"records"`  // records with traffic, applied
	NoData   int64 `json:"nodata"`   // NODATA records, skipped
	SkipData int64 `json:"skipdata"` // SKIPDATA records, skipped
	Unusable int64 `json:"unusable"` // records without addresses or times
	// TooLate counts records that arrived after their window was judged.
	TooLate int64 `json:"too_late"`
	// Guessed counts records with neither address in the home networks
	// and no flow-direction; the destination was taken as ours.
	Guessed int64 `json:"guessed_direction"`
	// Evicted counts tracked sources dropped to stay within
	// max_tracked_sources.
	Evicted            int64 `json:"evicted"`
	TrackedSources     int   `json:"tracked_sources"`
	PeakTrackedSources int   `json:"peak_tracked_sources"`
	Windows            int64 `json:"windows"` // windows judged
}

// Engine is the detection state. Observe, Flush and the accessors must be
// called from one goroutine at a time; Run parallelises decoding and
// extraction itself.
type Engine struct {
	opts     Options // as given to New, for snapshots (fingerprint)
	set      Settings
	cl       classifier
	expected []expectedRule
	onFind   func(*Result)

	sshPorts, rdpPorts, probePorts *[1024]uint64

	paneSec  int64
	lateness int64
	started  bool
	maxStart int64
	closed   int64 // panes below this index are judged
	panes    map[int64]*pane
	prev     *pane // the last judged pane, kept for look-back

	hosts   []*host
	hostIdx map[addrKey]uint32

	detectors []detector
	names     []string // the detectors', in judging order
	judge     judgement
	keys      []addrKey // judgementOf's buffer: a window's sources by slab index

	results  map[string]*Result
	learning bool
	metrics  Metrics
	scratch  chunk
}

type expectedRule struct {
	ports   [1024]uint64
	sources *prefixSet
	text    string
}

func portBits(ps []uint16) *[1024]uint64 {
	var b [1024]uint64
	for _, p := range ps {
		b[p>>6] |= 1 << (p & 63)
	}
	return &b
}

func hasPort(b *[1024]uint64, p uint16) bool { return b[p>>6]&(1<<(p&63)) != 0 }

// New returns an engine for o.
func New(o Options) (*Engine, error) {
	if err := o.Settings.Validate("detectors"); err != nil {
		return nil, err
	}
	home := o.Home
	if len(home) == 0 {
		home = DefaultHomeNetworks()
	}
	e := &Engine{
		opts:       o,
		set:        o.Settings,
		cl:         classifier{home: newPrefixSet(home), allow: newPrefixSet(o.Allow), threat: newPrefixSet(o.Threats)},
		onFind:     o.OnFinding,
		sshPorts:   portBits(o.Settings.BruteForce.SSHPorts),
		rdpPorts:   portBits(o.Settings.BruteForce.RDPPorts),
		probePorts: portBits(o.Settings.PortProbe.Ports),
		paneSec:    int64(time.Duration(o.Settings.Window) / time.Second),
		lateness:   int64(time.Duration(o.Settings.AllowedLateness) / time.Second),
		panes:      map[int64]*pane{},
		hostIdx:    map[addrKey]uint32{},
		results:    map[string]*Result{},
	}
	for _, x := range o.Expected {
		r := expectedRule{ports: *portBits(x.Ports), sources: newPrefixSet(x.Sources)}
		for i, s := range x.Sources {
			if i > 0 {
				r.text += ", "
			}
			r.text += s.String()
		}
		e.expected = append(e.expected, r)
	}
	e.detectors, e.names = buildDetectors(e)
	return e, nil
}

// SetLearning switches baseline-only mode on or off: while on, judged
// windows train the per-instance baselines and raise no findings (for a
// --baseline input read before the logs to judge). Switching it off judges
// the open windows and restarts the event-time clock, so that the logs to
// judge may be older than the baseline; hosts seen while learning count
// as learned.
func (e *Engine) SetLearning(on bool) {
	if e.learning && !on {
		e.Flush()
		e.started, e.prev = false, nil
		for _, h := range e.hosts {
			if h.seen {
				h.trained = true
			}
		}
	}
	e.learning = on
}

// Metrics returns the counters so far.
func (e *Engine) Metrics() Metrics {
	m := e.metrics
	m.TrackedSources = e.tracked()
	return m
}

// Observe adds one batch. It is for callers that deliver batches one at a
// time (tests, the daemon's single consumer); see Run for files.
func (e *Engine) Observe(b *flowlog.Batch) {
	e.cl.extract(b, &e.scratch)
	e.apply(&e.scratch)
}

// Run reads inputs with s: the scanner's workers decode batches and
// extract flows in parallel, and the flows are applied to the state in the
// order of the inputs and of the records within each, so that the
// watermark sees the input as it is written.
func (e *Engine) Run(ctx context.Context, s *flowlog.Scanner, inputs []flowlog.Input) error {
	pool := make(chan *chunk, 64)
	err := flowlog.ScanOrdered(ctx, s, inputs, func(_ int, b *flowlog.Batch) *chunk {
		var c *chunk
		select {
		case c = <-pool:
		default:
			c = &chunk{}
		}
		e.cl.extract(b, c)
		return c
	}, func(c *chunk) error {
		e.apply(c)
		select {
		case pool <- c:
		default:
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("detection stopped: %w", err)
	}
	return nil
}

// Flush judges every open window, as at the end of the input.
func (e *Engine) Flush() {
	idx := make([]int64, 0, len(e.panes))
	for k := range e.panes {
		idx = append(idx, k)
	}
	slices.Sort(idx)
	for _, k := range idx {
		e.closePane(e.panes[k])
	}
	if e.prev != nil {
		e.prev = nil
	}
	if len(idx) > 0 {
		e.closed = idx[len(idx)-1] + 1
	}
}

// host is one address of ours, with its learned baseline.
type host struct {
	addr  addrKey
	iface string // from flows with outside hosts: its own interface
	// ifaceLateral: the lowest interface id of lateral flows, a fallback
	ifaceLateral string
	firstPane    int64
	seen         bool
	// running means over the judged windows in which the host was active
	n                          float64
	inPackets, heavy, maxBytes float64
	ports                      portSet // outbound service ports used while learning
	// middlebox: seen forwarding others' connections (the interface
	// address of a record whose pkt-dstaddr differs): a NAT gateway. It is
	// never named as the actor of outbound findings.
	middlebox bool
	trained   bool // learned from a --baseline input
	// talkers are its usual top talkers (inbound), for telling a flood
	// from a busy regular client.
	talkers map[addrKey]*talker
}

func (e *Engine) hostID(k addrKey) uint32 {
	if id, ok := e.hostIdx[k]; ok {
		return id
	}
	id := uint32(len(e.hosts))
	e.hosts = append(e.hosts, &host{addr: k})
	e.hostIdx[k] = id
	return id
}

// pane is one window of state.
type pane struct {
	idx   int64
	ext   map[addrKey]int32
	exts  []extState
	free  []int32
	bigs  []*extBig
	hosts map[uint32]*hostPane
	pend  map[pendKey]*pendAgg
}

func (e *Engine) pane(idx int64) *pane {
	if p, ok := e.panes[idx]; ok {
		return p
	}
	p := &pane{idx: idx, ext: map[addrKey]int32{}, hosts: map[uint32]*hostPane{}, pend: map[pendKey]*pendAgg{}}
	e.panes[idx] = p
	return p
}

// extState is what is kept per outside source and window: small enough
// for a million of them (see BenchmarkMemoryPerSource).
type extState struct {
	first, last uint32
	records     uint32
	rejects     uint32
	packets     uint32 // saturating
	host        uint32 // id+1 of the first host of ours it reached
	pairs       [3]uint64
	bfPair      uint64 // host<<16|port of its first SSH/RDP attempt
	bfSports    [2]uint16
	npairs      uint8
	nbf         uint8
	reported    uint8 // rules that already counted this window
	big         int32 // index+1 in pane.bigs
}

// reported bits
const (
	repReject = 1 << iota
	repScan
	repBrute
)

// extBig is the detail kept for sources that did more than a few things.
type extBig struct {
	pairs    []uint64 // distinct (host<<16|port) probes, exact up to maxPairs
	byHost   map[uint32]*portSet
	byPort   map[uint16]*idSet
	overflow bool
	bf       map[uint64]*portSet // (host<<16|port) → client ports
	samples  []Sample
	accepted uint32
	probes   uint32
}

const maxPairs = 64

// idSet is a set of host ids.
type idSet struct{ bits []uint64 }

func (s *idSet) add(id uint32) {
	w := int(id >> 6)
	if w >= len(s.bits) {
		s.bits = append(s.bits, make([]uint64, w+1-len(s.bits))...)
	}
	s.bits[w] |= 1 << (id & 63)
}

func (s *idSet) len() int {
	if s == nil {
		return 0
	}
	n := 0
	for _, x := range s.bits {
		n += bits.OnesCount64(x)
	}
	return n
}

// hostPane is what is kept per host of ours and window.
type hostPane struct {
	id uint32
	// as a target
	inPackets  uint64
	inFlows    uint64
	sources    distinct
	heavyN     int // sources that sent heavy_source_packets (set when judged)
	heavyPkts  uint64
	top        [8]heavySrc // top talkers by packets (set when judged)
	ntop       uint8
	probeSrcs  map[uint16]*distinct
	retRejects uint64
	retRemotes distinct
	retPorts   portSet
	// as an actor
	out     map[uint32]*outPort // port | 1<<16 for lateral
	remotes map[addrKey]*remote
	bf      map[bfKey]*portSet
	// bfReported: brute-force pairs already counted into a finding
	bfReported map[bfKey]bool
	latIn      map[uint16]*fwd
	used       map[uint16]addrKey   // service ports it connected to (accepted, not probes): first remote
	probed     map[addrKey]*portSet // ports it probed, per target (vertical scans by ours)
	samples    []Sample
	first      uint32
	last       uint32
}

type heavySrc struct {
	key     addrKey
	packets uint32
}

// fwd counts connections other hosts of ours made to a host on a port.
type fwd struct{ flows, bytes uint64 }

type outPort struct {
	flows, probes uint64
	hosts         distinct
	first, last   uint32
	samples       []Sample
}

type remote struct {
	pktsOut, bytesOut, pktsIn uint64
	first, last               uint32
	port                      uint16
	proto                     uint8
	samples                   []Sample
}

type bfKey struct {
	target addrKey
	port   uint16
}

const maxRemotes = 4096

func (p *pane) host(e *Engine, id uint32) *hostPane {
	if h, ok := p.hosts[id]; ok {
		return h
	}
	h := &hostPane{id: id}
	p.hosts[id] = h
	return h
}

func (e *Engine) tracked() int {
	n := 0
	for _, p := range e.panes {
		n += len(p.ext)
	}
	return n
}

const maxSamples = 5

func (c *chunk) sample(f *flow) Sample {
	s := Sample{Source: c.source, Line: int(f.line)}
	if f.rawLen > 0 {
		s.Text = string(c.line(f))
	} else {
		s.Text = describeFlow(f)
	}
	return s
}

func addSample(dst *[]Sample, c *chunk, f *flow) {
	if len(*dst) < maxSamples {
		*dst = append(*dst, c.sample(f))
	}
}

func describeFlow(f *flow) string {
	return fmt.Sprintf("%s:%d -> %s:%d proto %d %s packets %d bytes %d start %d end %d",
		f.src.addr(), f.sport, f.dst.addr(), f.dport, f.proto, f.action, f.packets, f.bytes, f.start, f.end)
}

func span(first, last *uint32, f *flow) {
	if *first == 0 || f.start < *first {
		*first = f.start
	}
	if f.end > *last {
		*last = f.end
	}
}

// apply adds one chunk of flows to the state and judges the windows the
// watermark has passed.
func (e *Engine) apply(c *chunk) {
	e.metrics.NoData += c.noData
	e.metrics.SkipData += c.skipData
	e.metrics.Unusable += c.unusable
	for i := range c.flows {
		f := &c.flows[i]
		st := int64(f.start)
		if !e.started {
			e.started = true
			e.maxStart = st
			e.closed = floorDiv(st-e.lateness, e.paneSec)
		}
		if st > e.maxStart {
			e.maxStart = st
		}
		idx := floorDiv(st, e.paneSec)
		if idx < e.closed || idx < floorDiv(e.maxStart-e.lateness, e.paneSec) {
			e.metrics.TooLate++
			continue
		}
		e.metrics.Records++
		if f.bits&bitGuessed != 0 {
			e.metrics.Guessed++
		}
		e.add(e.pane(idx), c, f)
	}
	e.advance()
	n := e.tracked()
	e.metrics.PeakTrackedSources = max(e.metrics.PeakTrackedSources, n)
	if n > e.set.MaxTrackedSources {
		e.evict(n)
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// advance judges every window that ends before the watermark.
func (e *Engine) advance() {
	wm := floorDiv(e.maxStart-e.lateness, e.paneSec)
	if wm <= e.closed {
		return
	}
	var idx []int64
	for k := range e.panes {
		if k < wm {
			idx = append(idx, k)
		}
	}
	slices.Sort(idx)
	for _, k := range idx {
		e.closePane(e.panes[k])
	}
	e.closed = wm
}

// add counts one flow into window p's state: the counts every detector
// reads (detector.go), by what the flow is.
func (e *Engine) add(p *pane, c *chunk, f *flow) {
	switch f.kind {
	case kindInbound:
		e.addInbound(p, c, f)
	case kindInboundResp:
		e.addInboundResp(p, c, f)
	case kindOutbound, kindLateral:
		e.addOutbound(p, c, f)
	case kindOutboundResp:
		e.addOutboundResp(p, c, f)
	case kindLateralResp:
		e.addLateralResp(p, c, f)
	}
}

// addInbound counts a flow an outside host started towards one of ours.
func (e *Engine) addInbound(p *pane, c *chunk, f *flow) {
	relayed := f.bits&bitRelayed != 0
	tcp := f.proto == 6
	if f.bits&bitSrcAllow != 0 {
		return
	}
	hid := e.hostID(f.dst)
	e.noteIface(hid, c, f)
	hp := p.host(e, hid)
	span(&hp.first, &hp.last, f)
	if !relayed {
		hp.inPackets += f.packets
		hp.inFlows++
	}
	hp.sources.add(f.src.hash())
	if f.bits&bitSrcThreat != 0 && e.set.ThreatList.Enabled {
		e.pend(p, c, f, typThreat, f.src, f.dst, 0, finding.Inbound)
	}
	if f.action == flowlog.ActionAccept && e.set.UnexpectedSource.Enabled {
		for ri := range e.expected {
			r := &e.expected[ri]
			if hasPort(&r.ports, f.dport) && !r.sources.contains(f.src.addr(), f.src) {
				e.pend(p, c, f, typUnexpected, f.src, f.dst, f.dport, finding.Inbound)
				break
			}
		}
	}
	probe := f.bits&bitProbe != 0
	if probe && f.action == flowlog.ActionAccept && hasPort(e.probePorts, f.dport) {
		if hp.probeSrcs == nil {
			hp.probeSrcs = map[uint16]*distinct{}
		}
		d := hp.probeSrcs[f.dport]
		if d == nil {
			d = &distinct{}
			hp.probeSrcs[f.dport] = d
		}
		d.add(f.src.hash())
	}
	e.addExt(p, c, f, hid, probe, tcp, relayed)
}

// addInboundResp counts an outside host's answer to a connection one of ours started.
func (e *Engine) addInboundResp(p *pane, c *chunk, f *flow) {
	relayed := f.bits&bitRelayed != 0
	hid := e.hostID(f.dst)
	e.noteIface(hid, c, f)
	hp := p.host(e, hid)
	if f.action == flowlog.ActionReject && e.set.ReturnTraffic.Enabled && f.bits&bitSrcAllow == 0 {
		hp.retRejects++
		hp.retRemotes.add(f.src.hash())
		hp.retPorts.add(f.sport)
		addSample(&hp.samples, c, f)
		span(&hp.first, &hp.last, f)
	}
	if f.bits&bitSrcThreat != 0 && f.bits&bitSrcAllow == 0 && e.set.ThreatList.Enabled {
		e.pend(p, c, f, typThreat, f.src, f.dst, 0, finding.Outbound)
	}
	if !relayed && hp.remotes != nil {
		if r := hp.remotes[f.src]; r != nil {
			r.pktsIn += f.packets
		}
	}
}

// addOutbound counts a flow one of ours started, towards an outside host or (lateral) another of ours.
func (e *Engine) addOutbound(p *pane, c *chunk, f *flow) {
	relayed := f.bits&bitRelayed != 0
	tcp := f.proto == 6
	lateral := f.kind == kindLateral
	if f.bits&bitDstAllow != 0 {
		return
	}
	hid := e.hostID(f.src)
	e.noteIface(hid, c, f)
	hp := p.host(e, hid)
	span(&hp.first, &hp.last, f)
	if !lateral && f.bits&bitDstThreat != 0 && e.set.ThreatList.Enabled {
		e.pend(p, c, f, typThreat, f.dst, f.src, 0, finding.Outbound)
	}
	key := uint32(f.dport)
	if lateral {
		key |= 1 << 16
	}
	if hp.out == nil {
		hp.out = map[uint32]*outPort{}
	}
	op := hp.out[key]
	if op == nil {
		op = &outPort{}
		hp.out[key] = op
	}
	if !relayed {
		op.flows++
	}
	if f.bits&bitProbe != 0 {
		if !relayed {
			op.probes++
		}
		op.hosts.add(f.dst.hash())
		span(&op.first, &op.last, f)
		addSample(&op.samples, c, f)
		if hp.probed == nil {
			hp.probed = map[addrKey]*portSet{}
		}
		ps := hp.probed[f.dst]
		if ps == nil && len(hp.probed) < maxRemotes {
			ps = &portSet{}
			hp.probed[f.dst] = ps
		}
		if ps != nil {
			ps.add(f.dport)
		}
	} else if !lateral && f.action == flowlog.ActionAccept && serverPort(f) {
		if hp.used == nil {
			hp.used = map[uint16]addrKey{}
		}
		if _, ok := hp.used[f.dport]; !ok {
			hp.used[f.dport] = f.dst
		}
	}
	if tcp && (f.bits&bitProbe == 0 || f.action == flowlog.ActionReject) && (hasPort(e.sshPorts, f.dport) || hasPort(e.rdpPorts, f.dport)) {
		if hp.bf == nil {
			hp.bf = map[bfKey]*portSet{}
		}
		k := bfKey{f.dst, f.dport}
		s := hp.bf[k]
		if s == nil {
			s = &portSet{}
			hp.bf[k] = s
		}
		s.add(f.sport)
		span(&hp.first, &hp.last, f)
		addSample(&hp.samples, c, f)
	}
	if lateral && !relayed {
		p.host(e, e.hostID(f.dst)).forwarded(f.dport, f.bytes)
	}
	if relayed && f.bits&bitHopDst != 0 && f.hop.valid() {
		// inst → NAT gateway with pkt-dstaddr: the gateway forwards.
		mid := e.hostID(f.hop)
		e.hosts[mid].middlebox = true
		p.host(e, mid).forwarded(f.dport, f.bytes)
	}
	if !lateral && !relayed {
		if hp.remotes == nil {
			hp.remotes = map[addrKey]*remote{}
		}
		r := hp.remotes[f.dst]
		if r == nil && len(hp.remotes) < maxRemotes {
			r = &remote{port: f.dport, proto: f.proto}
			hp.remotes[f.dst] = r
		}
		if r != nil {
			r.pktsOut += f.packets
			r.bytesOut += f.bytes
			span(&r.first, &r.last, f)
			if len(r.samples) < 3 {
				r.samples = append(r.samples, c.sample(f))
			}
		}
	}
}

// addOutboundResp counts one of ours answering an outside host.
func (e *Engine) addOutboundResp(p *pane, c *chunk, f *flow) {
	if f.bits&bitDstThreat != 0 && f.bits&bitDstAllow == 0 && e.set.ThreatList.Enabled {
		e.pend(p, c, f, typThreat, f.dst, f.src, 0, finding.Inbound)
	}
}

// addLateralResp counts one of ours answering another of ours.
func (e *Engine) addLateralResp(p *pane, c *chunk, f *flow) {
	if f.action == flowlog.ActionReject && e.set.ReturnTraffic.Enabled {
		hid := e.hostID(f.dst)
		hp := p.host(e, hid)
		hp.retRejects++
		hp.retRemotes.add(f.src.hash())
		hp.retPorts.add(f.sport)
		addSample(&hp.samples, c, f)
		span(&hp.first, &hp.last, f)
	}
}

// serverPort reports whether f's destination port is the server's: the
// sender's SYN says so, or the port is a service port, or a registered
// port below the sender's (clients take ephemeral ports from 32768 up).
func serverPort(f *flow) bool {
	return f.bits&bitSYN != 0 || isService(f.dport) || f.dport < 32768 && f.dport < f.sport
}

func (hp *hostPane) forwarded(port uint16, bytes uint64) {
	if hp.latIn == nil {
		hp.latIn = map[uint16]*fwd{}
	}
	x := hp.latIn[port]
	if x == nil {
		x = &fwd{}
		hp.latIn[port] = x
	}
	x.flows++
	x.bytes += bytes
}

// noteIface records host hid's interface from a flow. A flow between one of
// ours and an outside host is logged on our host's own interface; a lateral
// one may be logged on either side (with v2, the NAT gateway's interface
// logs its clients' flows), so it only gives a candidate, the lowest id
// seen, used when no other flow named the interface — either way the
// choice does not depend on the order of the records.
func (e *Engine) noteIface(hid uint32, c *chunk, f *flow) {
	if f.iface == 0 || f.bits&bitRelayed != 0 {
		return
	}
	h := e.hosts[hid]
	if h.iface != "" {
		return
	}
	id := c.strs[f.iface-1]
	if f.kind != kindLateral {
		h.iface = id
		return
	}
	if h.ifaceLateral == "" || id < h.ifaceLateral {
		h.ifaceLateral = id
	}
}

// ifaceID returns the host's interface id, as well as flows say it.
func (h *host) ifaceID() string {
	if h.iface != "" {
		return h.iface
	}
	return h.ifaceLateral
}

// addExt counts an inbound flow for its outside source.
func (e *Engine) addExt(p *pane, c *chunk, f *flow, hid uint32, probe, tcp, relayed bool) {
	i, ok := p.ext[f.src]
	if !ok {
		if n := len(p.free); n > 0 {
			i = p.free[n-1]
			p.free = p.free[:n-1]
			p.exts[i] = extState{}
		} else {
			i = int32(len(p.exts))
			p.exts = append(p.exts, extState{})
		}
		p.ext[f.src] = i
	}
	s := &p.exts[i]
	span(&s.first, &s.last, f)
	s.records++
	if s.host == 0 {
		s.host = hid + 1
	}
	if !relayed {
		s.packets = uint32(min(uint64(s.packets)+f.packets, 1<<32-1))
	}
	var big *extBig
	if s.big != 0 {
		big = p.bigs[s.big-1]
	}
	promote := func() *extBig {
		if big == nil {
			big = &extBig{}
			p.bigs = append(p.bigs, big)
			s.big = int32(len(p.bigs))
			for _, pr := range s.pairs[:s.npairs] {
				big.addPair(pr)
			}
			if s.nbf > 0 {
				ps := &portSet{}
				for _, sp := range s.bfSports[:s.nbf] {
					ps.add(sp)
				}
				big.bf = map[uint64]*portSet{s.bfPair: ps}
			}
		}
		return big
	}
	if f.action == flowlog.ActionReject {
		s.rejects++
		if s.rejects == 2 {
			promote()
		}
	}
	if probe {
		pr := uint64(hid)<<16 | uint64(f.dport)
		if big != nil {
			big.addPair(pr)
		} else if !slices.Contains(s.pairs[:s.npairs], pr) {
			if int(s.npairs) < len(s.pairs) {
				s.pairs[s.npairs] = pr
				s.npairs++
			} else {
				promote().addPair(pr)
			}
		}
	}
	if tcp && (!probe || f.action == flowlog.ActionReject) && (hasPort(e.sshPorts, f.dport) || hasPort(e.rdpPorts, f.dport)) {
		pr := uint64(hid)<<16 | uint64(f.dport)
		switch {
		case big != nil:
			big.addBF(pr, f.sport)
		case s.nbf == 0:
			s.bfPair, s.bfSports[0], s.nbf = pr, f.sport, 1
		case s.bfPair == pr && s.bfSports[0] == f.sport:
		case s.bfPair == pr && s.nbf == 1:
			s.bfSports[1], s.nbf = f.sport, 2
		case s.bfPair == pr && s.bfSports[1] == f.sport:
		default:
			promote().addBF(pr, f.sport)
		}
	}
	if big != nil {
		if f.action == flowlog.ActionAccept {
			big.accepted++
		}
		if probe {
			big.probes++
		}
		addSample(&big.samples, c, f)
	}
}

func (b *extBig) addPair(pr uint64) {
	if !b.overflow {
		if slices.Contains(b.pairs, pr) {
			return
		}
		if len(b.pairs) < maxPairs {
			b.pairs = append(b.pairs, pr)
			return
		}
		b.overflow = true
		b.byHost = map[uint32]*portSet{}
		b.byPort = map[uint16]*idSet{}
		for _, q := range b.pairs {
			b.indexPair(q)
		}
		b.pairs = nil
	}
	b.indexPair(pr)
}

func (b *extBig) indexPair(pr uint64) {
	h, port := uint32(pr>>16), uint16(pr)
	ps := b.byHost[h]
	if ps == nil {
		ps = &portSet{}
		b.byHost[h] = ps
	}
	ps.add(port)
	is := b.byPort[port]
	if is == nil {
		is = &idSet{}
		b.byPort[port] = is
	}
	is.add(h)
}

func (b *extBig) addBF(pr uint64, sport uint16) {
	if b.bf == nil {
		b.bf = map[uint64]*portSet{}
	}
	s := b.bf[pr]
	if s == nil {
		s = &portSet{}
		b.bf[pr] = s
	}
	s.add(sport)
}

// evict drops sources that did one thing (a single probe) from the open
// windows, then those that did two, until the table is back to 90 % of
// its bound. Sources with detail kept (two rejects, several probes, or
// brute-force attempts) are never dropped.
func (e *Engine) evict(n int) {
	target := e.set.MaxTrackedSources * 9 / 10
	for limit := uint32(1); limit <= 2 && n > target; limit++ {
		for _, p := range e.panes {
			for k, i := range p.ext {
				s := &p.exts[i]
				if s.big == 0 && s.records <= limit && s.nbf < 2 {
					delete(p.ext, k)
					p.free = append(p.free, i)
					e.metrics.Evicted++
					n--
				}
			}
		}
	}
}
