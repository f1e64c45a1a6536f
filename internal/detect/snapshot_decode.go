package detect

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"net/netip"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
)

// snapshotDecoder reads a body back. Every count is checked against the
// bytes left (each element takes at least one byte) and its own bound,
// every index against what it points into; the first problem stops the
// reading and is returned with its offset.
type snapshotDecoder struct {
	b     []byte
	total int
	err   error
	nh    int // hosts decoded: the bound of host ids
}

// snapshotTrailer is the CRC-32 after the body.
const snapshotTrailer = 4

// restore reads blob into e, a new engine.
func (e *Engine) restore(blob []byte) error {
	if len(blob) < len(snapshotMagic) || !bytes.Equal(blob[:len(snapshotMagic)], snapshotMagic[:]) {
		return fmt.Errorf("cannot restore the engine: not an engine snapshot (%d bytes)", len(blob))
	}
	if len(blob) < len(snapshotMagic)+1+32+snapshotTrailer {
		return fmt.Errorf("cannot restore the engine: the snapshot is truncated (%d bytes)", len(blob))
	}
	body := blob[:len(blob)-snapshotTrailer]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(blob[len(body):]) {
		return fmt.Errorf("cannot restore the engine: the snapshot is corrupt or truncated (checksum mismatch, %d bytes)", len(blob))
	}
	d := &snapshotDecoder{b: body[len(snapshotMagic):], total: len(body)}
	if v := d.uv(); d.err == nil && v != snapshotVersion {
		return fmt.Errorf("cannot restore the engine: format version %d, this flowguard reads %d: %w", v, snapshotVersion, ErrSnapshotVersion)
	}
	fp := d.raw(32)
	if d.err == nil {
		if want := fingerprint(e.opts); !bytes.Equal(fp, want[:]) {
			return fmt.Errorf("cannot restore the engine: %w", ErrSnapshotOptions)
		}
	}
	d.engine(e)
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d bytes left over after the state", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("cannot restore the engine: %w", d.err)
	}
	return nil
}

func (d *snapshotDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("corrupt snapshot at byte %d: %s", d.total-len(d.b), fmt.Sprintf(format, args...))
	}
}

func (d *snapshotDecoder) raw(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.fail("truncated: %d bytes wanted, %d left", n, len(d.b))
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *snapshotDecoder) uv() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated or overlong number")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *snapshotDecoder) iv() int64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("truncated or overlong number")
		return 0
	}
	d.b = d.b[n:]
	return x
}

// upTo reads a number that must not exceed max.
func (d *snapshotDecoder) upTo(what string, max uint64) uint64 {
	x := d.uv()
	if x > max {
		d.fail("%s %d is out of range (at most %d)", what, x, max)
		return 0
	}
	return x
}

func (d *snapshotDecoder) u32(what string) uint32 { return uint32(d.upTo(what, math.MaxUint32)) }
func (d *snapshotDecoder) u16(what string) uint16 { return uint16(d.upTo(what, math.MaxUint16)) }
func (d *snapshotDecoder) u8(what string) uint8   { return uint8(d.upTo(what, math.MaxUint8)) }
func (d *snapshotDecoder) flag() bool             { return d.upTo("flag", 1) == 1 }

// count reads the length of a list whose elements take at least size
// bytes each, and at most max of them.
func (d *snapshotDecoder) count(what string, size, max int) int {
	n := d.uv()
	if d.err != nil {
		return 0
	}
	if n > uint64(max) || n*uint64(size) > uint64(len(d.b)) {
		d.fail("%s: %d is more than the %d the format allows or the %d bytes left hold", what, n, max, len(d.b))
		return 0
	}
	return int(n)
}

func (d *snapshotDecoder) u64() uint64 {
	b := d.raw(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func (d *snapshotDecoder) f64() float64 { return math.Float64frombits(d.u64()) }

func (d *snapshotDecoder) str() string {
	n := d.count("text", 1, math.MaxInt32)
	return string(d.raw(n))
}

func (d *snapshotDecoder) key() addrKey { return addrKey{d.uv(), d.uv()} }

func (d *snapshotDecoder) addr() netip.Addr {
	var a netip.Addr
	if b := d.raw(d.count("address", 1, 64)); d.err == nil {
		if err := a.UnmarshalBinary(b); err != nil {
			d.fail("bad address: %v", err)
		}
	}
	return a
}

// hostID reads a host id, which must name a decoded host.
func (d *snapshotDecoder) hostID(what string) uint32 {
	x := d.uv()
	if d.err == nil && x >= uint64(d.nh) {
		d.fail("%s names host %d of %d", what, x, d.nh)
		return 0
	}
	return uint32(x)
}

// pair reads a host<<16|port, whose host must be decoded.
func (d *snapshotDecoder) pair(what string) uint64 {
	pr := d.uv()
	if d.err == nil && pr>>16 >= uint64(d.nh) {
		d.fail("%s names host %d of %d", what, pr>>16, d.nh)
		return 0
	}
	return pr
}

func (d *snapshotDecoder) engine(e *Engine) {
	e.started = d.flag()
	e.maxStart = d.iv()
	e.closed = d.iv()
	e.learning = d.flag()
	m := &e.metrics
	for _, p := range []*int64{&m.Records, &m.NoData, &m.SkipData, &m.Unusable, &m.TooLate, &m.Guessed, &m.Evicted} {
		*p = d.iv()
	}
	m.PeakTrackedSources = int(d.iv())
	m.Windows = d.iv()
	nh := d.count("hosts", 1, math.MaxUint32)
	for range nh {
		if d.err != nil {
			return
		}
		h := d.host()
		if _, dup := e.hostIdx[h.addr]; dup {
			d.fail("host %s appears twice", h.addr.addr())
			return
		}
		e.hostIdx[h.addr] = uint32(len(e.hosts))
		e.hosts = append(e.hosts, h)
	}
	d.nh = len(e.hosts)
	np := d.count("windows", 1, math.MaxInt32)
	for range np {
		p := d.pane()
		if d.err != nil {
			return
		}
		if _, dup := e.panes[p.idx]; dup {
			d.fail("window %d appears twice", p.idx)
			return
		}
		e.panes[p.idx] = p
	}
	if d.flag() {
		e.prev = d.pane()
	}
	nr := d.count("findings", 1, math.MaxInt32)
	for range nr {
		r := d.result()
		if d.err != nil {
			return
		}
		if _, dup := e.results[r.ID]; dup || r.ID == "" {
			d.fail("finding %q is empty or appears twice", r.ID)
			return
		}
		e.results[r.ID] = r
	}
	slow := e.slowRule()
	if has := d.flag(); d.err == nil && has != (slow != nil) {
		d.fail("the slow-reject rule's state does not match the settings")
		return
	}
	if slow != nil {
		d.slow(slow)
	}
}

func (d *snapshotDecoder) host() *host {
	h := &host{addr: d.key(), iface: d.str(), ifaceLateral: d.str(), firstPane: d.iv(), seen: d.flag(),
		n: d.f64(), inPackets: d.f64(), heavy: d.f64(), maxBytes: d.f64()}
	d.portSet(&h.ports)
	h.middlebox = d.flag()
	h.trained = d.flag()
	n := d.count("talkers", 1, maxTalkers)
	for range n {
		k := d.key()
		t := &talker{mean: d.f64(), windows: int(d.iv()), last: d.iv()}
		if h.talkers == nil {
			h.talkers = map[addrKey]*talker{}
		}
		h.talkers[k] = t
	}
	return h
}

func (d *snapshotDecoder) pane() *pane {
	p := &pane{idx: d.iv(), hosts: map[uint32]*hostPane{}, pend: map[pendKey]*pendAgg{}}
	nb := d.count("detailed sources", 1, math.MaxInt32)
	p.bigs = make([]*extBig, 0, nb)
	for range nb {
		if d.err != nil {
			return p
		}
		p.bigs = append(p.bigs, d.big())
	}
	ne := d.count("sources", 1, math.MaxInt32)
	p.ext = make(map[addrKey]int32, ne)
	p.exts = make([]extState, ne)
	live := make([]bool, ne)
	for i := range ne {
		if d.err != nil {
			return p
		}
		if d.flag() {
			k := d.key()
			n := len(p.ext)
			p.ext[k] = int32(i)
			if len(p.ext) == n {
				d.fail("source %s appears twice in window %d", k.addr(), p.idx)
				return p
			}
			live[i] = true
		}
		d.ext(&p.exts[i], len(p.bigs))
	}
	nf := d.count("free slots", 1, ne)
	p.free = make([]int32, 0, nf)
	for range nf {
		i := d.upTo("free slot", uint64(max(ne-1, 0)))
		if d.err != nil {
			return p
		}
		if live[i] || ne == 0 {
			d.fail("slot %d is both free and used", i)
			return p
		}
		live[i] = true // a slot is free once
		p.free = append(p.free, int32(i))
	}
	nhp := d.count("hosts of the window", 1, d.nh)
	for range nhp {
		hp := d.hostPane()
		if d.err != nil {
			return p
		}
		if _, dup := p.hosts[hp.id]; dup {
			d.fail("host %d appears twice in window %d", hp.id, p.idx)
			return p
		}
		p.hosts[hp.id] = hp
	}
	checked := uint32(0)
	for i := range p.exts {
		if h := p.exts[i].host; live[i] && h != 0 && h != checked {
			if p.hosts[h-1] == nil {
				d.fail("a source of window %d names host %d, which the window does not hold", p.idx, h-1)
				return p
			}
			checked = h
		}
	}
	npd := d.count("pending findings", 1, math.MaxInt32)
	for range npd {
		k := pendKey{t: typ(d.upTo("pending type", uint64(typUnexpected))), actor: d.key(), target: d.key(), port: d.u16("port")}
		if d.err == nil && k.t == 0 {
			d.fail("pending finding of no type")
		}
		a := &pendAgg{count: d.uv(), accepted: d.uv(), rejected: d.uv(), bytes: d.uv(),
			first: d.u32("time"), last: d.u32("time"), inbound: d.flag(), samples: d.samples()}
		if d.err != nil {
			return p
		}
		p.pend[k] = a
	}
	return p
}

func (d *snapshotDecoder) ext(s *extState, nbigs int) {
	s.first, s.last, s.records = d.u32("time"), d.u32("time"), d.u32("records")
	s.rejects, s.packets = d.u32("rejects"), d.u32("packets")
	s.host = uint32(d.upTo("source's host", uint64(d.nh)))
	for i := range s.pairs {
		s.pairs[i] = d.uv()
	}
	s.bfPair = d.uv()
	s.bfSports[0], s.bfSports[1] = d.u16("port"), d.u16("port")
	s.npairs = uint8(d.upTo("source's probes", uint64(len(s.pairs))))
	s.nbf = uint8(d.upTo("source's brute-force ports", uint64(len(s.bfSports))))
	s.reported = d.u8("reported rules")
	s.big = int32(d.upTo("source's detail", uint64(nbigs)))
	for _, pr := range s.pairs[:s.npairs] {
		if d.err == nil && pr>>16 >= uint64(d.nh) {
			d.fail("a probe names host %d of %d", pr>>16, d.nh)
		}
	}
	if d.err == nil && s.nbf > 0 && s.bfPair>>16 >= uint64(d.nh) {
		d.fail("a brute-force attempt names host %d of %d", s.bfPair>>16, d.nh)
	}
}

func (d *snapshotDecoder) big() *extBig {
	b := &extBig{overflow: d.flag()}
	n := d.count("probes", 1, maxPairs)
	for range n {
		b.pairs = append(b.pairs, d.pair("a probe"))
	}
	if b.overflow {
		b.byHost, b.byPort = map[uint32]*portSet{}, map[uint16]*idSet{}
	}
	nh := d.count("probed hosts", 1, d.nh)
	for range nh {
		h := d.hostID("a probed host")
		ps := &portSet{}
		d.portSet(ps)
		if d.err == nil && !b.overflow {
			d.fail("probes by host without overflow")
		}
		if d.err != nil {
			return b
		}
		b.byHost[h] = ps
	}
	np := d.count("probed ports", 1, math.MaxUint16+1)
	for range np {
		port := d.u16("port")
		words := d.count("host set", 8, (d.nh+63)/64)
		is := &idSet{bits: make([]uint64, words)}
		for i := range is.bits {
			is.bits[i] = d.u64()
		}
		if words > 0 && d.err == nil {
			if top := (words-1)*64 + 63 - bits.LeadingZeros64(is.bits[words-1]); is.bits[words-1] != 0 && top >= d.nh {
				d.fail("a host set names host %d of %d", top, d.nh)
			}
		}
		if d.err == nil && !b.overflow {
			d.fail("probes by port without overflow")
		}
		if d.err != nil {
			return b
		}
		b.byPort[port] = is
	}
	if d.err == nil && b.overflow && len(b.pairs) > 0 {
		d.fail("probes both listed and indexed")
	}
	if d.flag() {
		b.bf = map[uint64]*portSet{}
	}
	nbf := d.count("brute-force targets", 1, math.MaxInt32)
	for range nbf {
		pr := d.pair("a brute-force attempt")
		ps := &portSet{}
		d.portSet(ps)
		if d.err == nil && b.bf == nil {
			d.fail("brute-force attempts without their table")
		}
		if d.err != nil {
			return b
		}
		b.bf[pr] = ps
	}
	b.samples = d.samples()
	b.accepted, b.probes = d.u32("accepted"), d.u32("probes")
	return b
}

func (d *snapshotDecoder) hostPane() *hostPane {
	hp := &hostPane{id: d.hostID("a window's host"), inPackets: d.uv(), inFlows: d.uv()}
	d.distinct(&hp.sources)
	hp.heavyN = int(d.iv())
	hp.heavyPkts = d.uv()
	hp.ntop = uint8(d.upTo("top talkers", uint64(len(hp.top))))
	for i := range hp.top {
		hp.top[i] = heavySrc{key: d.key(), packets: d.u32("packets")}
	}
	n := d.count("probed ports", 1, math.MaxUint16+1)
	for range n {
		port := d.u16("port")
		ds := &distinct{}
		d.distinct(ds)
		if d.err != nil {
			return hp
		}
		if hp.probeSrcs == nil {
			hp.probeSrcs = map[uint16]*distinct{}
		}
		hp.probeSrcs[port] = ds
	}
	hp.retRejects = d.uv()
	d.distinct(&hp.retRemotes)
	d.portSet(&hp.retPorts)
	n = d.count("outbound ports", 1, 1<<17)
	for range n {
		k := uint32(d.upTo("outbound port", 1<<17-1))
		op := &outPort{flows: d.uv(), probes: d.uv()}
		d.distinct(&op.hosts)
		op.first, op.last, op.samples = d.u32("time"), d.u32("time"), d.samples()
		if d.err != nil {
			return hp
		}
		if hp.out == nil {
			hp.out = map[uint32]*outPort{}
		}
		hp.out[k] = op
	}
	n = d.count("remotes", 1, maxRemotes)
	for range n {
		k := d.key()
		r := &remote{pktsOut: d.uv(), bytesOut: d.uv(), pktsIn: d.uv(), first: d.u32("time"), last: d.u32("time"),
			port: d.u16("port"), proto: d.u8("protocol"), samples: d.samples()}
		if d.err != nil {
			return hp
		}
		if hp.remotes == nil {
			hp.remotes = map[addrKey]*remote{}
		}
		hp.remotes[k] = r
	}
	n = d.count("brute-force targets", 1, math.MaxInt32)
	for range n {
		k := bfKey{d.key(), d.u16("port")}
		ps := &portSet{}
		d.portSet(ps)
		if d.err != nil {
			return hp
		}
		if hp.bf == nil {
			hp.bf = map[bfKey]*portSet{}
		}
		hp.bf[k] = ps
	}
	n = d.count("reported brute-force targets", 1, math.MaxInt32)
	for range n {
		k := bfKey{d.key(), d.u16("port")}
		v := d.flag()
		if d.err != nil {
			return hp
		}
		if hp.bfReported == nil {
			hp.bfReported = map[bfKey]bool{}
		}
		hp.bfReported[k] = v
	}
	n = d.count("forwarded ports", 1, math.MaxUint16+1)
	for range n {
		port := d.u16("port")
		f := &fwd{flows: d.uv(), bytes: d.uv()}
		if d.err != nil {
			return hp
		}
		if hp.latIn == nil {
			hp.latIn = map[uint16]*fwd{}
		}
		hp.latIn[port] = f
	}
	n = d.count("used ports", 1, math.MaxUint16+1)
	for range n {
		port := d.u16("port")
		k := d.key()
		if d.err != nil {
			return hp
		}
		if hp.used == nil {
			hp.used = map[uint16]addrKey{}
		}
		hp.used[port] = k
	}
	n = d.count("probed targets", 1, maxRemotes)
	for range n {
		k := d.key()
		ps := &portSet{}
		d.portSet(ps)
		if d.err != nil {
			return hp
		}
		if hp.probed == nil {
			hp.probed = map[addrKey]*portSet{}
		}
		hp.probed[k] = ps
	}
	hp.samples = d.samples()
	hp.first, hp.last = d.u32("time"), d.u32("time")
	return hp
}

// portSet reads a port set as the encoder wrote it: a short sorted list up
// to 64 ports, the bitmap beyond, as portSet.add builds it.
func (d *snapshotDecoder) portSet(s *portSet) {
	n := d.count("port set", 1, math.MaxUint16+1)
	if n > 64 {
		s.bm = new([1024]uint64)
	} else if n > 0 {
		s.small = make([]uint16, 0, n)
	}
	p := -1
	for range n {
		p += int(d.upTo("port gap", math.MaxUint16)) + 1
		if d.err != nil {
			return
		}
		if p > math.MaxUint16 {
			d.fail("port %d is out of range", p)
			return
		}
		if s.bm != nil {
			s.bm[p>>6] |= 1 << (p & 63)
		} else {
			s.small = append(s.small, uint16(p))
		}
	}
	s.n = n
}

func (d *snapshotDecoder) distinct(x *distinct) {
	if d.flag() {
		regs := d.raw(1 << hllP)
		if d.err != nil {
			return
		}
		x.regs = new([1 << hllP]uint8)
		copy(x.regs[:], regs)
		for _, v := range x.regs {
			if v > 64-hllP+1 {
				d.fail("sketch register %d is out of range", v)
				return
			}
		}
		return
	}
	n := d.count("distinct values", 8, 64)
	if n > 0 {
		x.small = make([]uint64, n)
		for i := range x.small {
			x.small[i] = d.u64()
		}
	}
}

func (d *snapshotDecoder) samples() []Sample {
	n := d.count("samples", 1, maxSamples)
	if n == 0 {
		return nil
	}
	out := make([]Sample, 0, n)
	for range n {
		out = append(out, Sample{Source: d.str(), Line: int(d.iv()), Text: d.str()})
	}
	return out
}

func (d *snapshotDecoder) result() *Result {
	r := &Result{ev: evidence{}}
	r.ID, r.Type, r.Severity = d.str(), d.str(), d.f64()
	r.Actor.IP, r.Actor.Direction = d.addr(), finding.Direction(d.str())
	r.Target.IP = d.addr()
	n := d.count("ports", 1, 32)
	for range n {
		r.Target.Ports = append(r.Target.Ports, d.u16("port"))
	}
	r.Count = d.iv()
	r.FirstSeen = time.Unix(d.iv(), 0).UTC()
	r.LastSeen = time.Unix(d.iv(), 0).UTC()
	r.Rule = d.str()
	n = d.count("thresholds", 1, 64)
	for range n {
		k := d.str()
		var v any
		switch tag := d.uv(); tag {
		case thrInt:
			v = int(d.iv())
		case thrInt64:
			v = d.iv()
		case thrFloat:
			v = d.f64()
		case thrString:
			v = d.str()
		case thrPorts:
			ps := make([]uint16, d.count("threshold ports", 1, math.MaxUint16+1))
			for i := range ps {
				ps[i] = d.u16("port")
			}
			v = ps
		case thrBool:
			v = d.flag()
		default:
			d.fail("threshold %q has unknown type %d", k, tag)
		}
		if d.err != nil {
			return r
		}
		if r.Thresholds == nil {
			r.Thresholds = map[string]any{}
		}
		r.Thresholds[k] = v
	}
	r.Samples = d.samples()
	n = d.count("evidence", 1, 256)
	for range n {
		k := finding.EvidenceKey(d.str())
		r.ev[k] = d.iv()
	}
	if b := d.raw(d.count("prefix", 1, 64)); d.err == nil {
		if err := r.prefix.UnmarshalBinary(b); err != nil {
			d.fail("bad prefix: %v", err)
		}
	}
	hasTop := d.flag()
	n = d.count("top sources", 1, maxTopSources)
	if hasTop {
		r.top = make([]TopSource, 0, n)
	}
	for range n {
		t := TopSource{IP: d.addr(), Packets: d.iv(), Share: d.f64()}
		if d.err == nil && !hasTop {
			d.fail("top sources without their list")
		}
		r.top = append(r.top, t)
	}
	return r
}

func (d *snapshotDecoder) slow(s *slowReject) {
	if d.flag() {
		want := newSeenFilter(s.sources).maxBits
		f := &seenFilter{maxBits: d.uv(), n: d.uv(), genStart: d.iv(), now: d.iv()}
		if d.err == nil && f.maxBits != want {
			d.fail("the slow-reject filter holds %d bits, the settings give %d", f.maxBits, want)
			return
		}
		for _, g := range []*[]uint64{&f.cur, &f.old} {
			n := d.count("filter words", 8, int(f.maxBits/64))
			if d.err == nil && (n == 0 || n&(n-1) != 0) {
				d.fail("a filter of %d words (not a power of two)", n)
			}
			if d.err != nil {
				return
			}
			*g = make([]uint64, n)
			for i := range *g {
				(*g)[i] = d.u64()
			}
		}
		s.seen = f
	}
	n := d.count("slow-reject sources", 8, s.set.MaxSources)
	for range n {
		k := d.u64()
		st := &slowSrc{first: d.u32("time"), last: d.u32("time"), rejects: d.u32("rejects"), reported: d.u32("rejects"),
			windows: d.u16("windows"), lastPane: d.iv(), samples: d.samples()}
		if d.err != nil {
			return
		}
		s.srcs[k] = st
	}
}
