package detect

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"maps"
	"math"
	"net/netip"
	"slices"
	"time"
)

// An engine snapshot is the whole detection state — open windows, the
// last judged window, hosts and their baselines, the long-horizon rules'
// tables and the findings so far — as a versioned binary blob, so that a
// daemon following sources that acknowledge and forget (SQS, Kafka,
// Kinesis, Firehose) can restart where it stopped (docs/daemon.md,
// "Engine snapshots").
//
// Layout:
//
//	magic "FGSNAP\x00\x01" | version uvarint | options fingerprint (32 bytes)
//	| body | CRC-32 (Castagnoli, little endian) of everything before it
//
// The body is written by hand with varints, field by field, in a fixed
// order (snapshotEncoder below; snapshot_decode.go reads it back). Maps
// are written in key order and the source slabs in slot order, so the
// same state always gives the same bytes. The decoder checks every
// length against what is left of the blob and every index against what
// it points into: a corrupt or truncated blob is an error, never a panic
// (FuzzRestore).

// snapshotVersion is the body's format. Bump it whenever the engine's
// state, or the meaning of a field, changes: an older blob is then
// refused (ErrSnapshotVersion) and the daemon starts from empty windows.
const snapshotVersion = 1

var snapshotMagic = [8]byte{'F', 'G', 'S', 'N', 'A', 'P', 0, 1}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrSnapshotOptions is returned by Restore for a snapshot taken under
// other detection options (settings, networks, allow list, threat lists,
// expected sources): its state cannot be judged by these rules.
var ErrSnapshotOptions = errors.New("the snapshot was taken under other detection settings")

// ErrSnapshotVersion is returned by Restore for a snapshot of another
// format version.
var ErrSnapshotVersion = errors.New("the snapshot was written by another version of flowguard")

// Snapshot writes the engine's state to w (see Restore). It must be called
// from the goroutine that feeds the engine, between batches; it changes
// nothing.
func (e *Engine) Snapshot(w io.Writer) error {
	enc := &snapshotEncoder{w: w, crc: crc32.New(crcTable), buf: make([]byte, 0, 2*snapshotFlushAt)}
	enc.raw(snapshotMagic[:])
	enc.uv(snapshotVersion)
	fp := fingerprint(e.opts)
	enc.raw(fp[:])
	enc.engine(e)
	enc.flush()
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], enc.crc.Sum32())
	if enc.err == nil {
		_, enc.err = w.Write(sum[:])
	}
	if enc.err != nil {
		return fmt.Errorf("cannot write the engine snapshot: %w", enc.err)
	}
	return nil
}

// Restore returns an engine for o holding the state a Snapshot of an
// engine built with the same options wrote to r. A blob taken under other
// options gives ErrSnapshotOptions, one of another format version
// ErrSnapshotVersion; a corrupt or truncated one an error saying where.
func Restore(r io.Reader, o Options) (*Engine, error) {
	blob, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("cannot read the engine snapshot: %w", err)
	}
	e, err := New(o)
	if err != nil {
		return nil, err
	}
	if err := e.restore(blob); err != nil {
		return nil, err
	}
	return e, nil
}

// fingerprint hashes what the state depends on besides the records: the
// options' settings, networks and lists.
func fingerprint(o Options) [32]byte {
	h := sha256.New()
	set, _ := json.Marshal(o.Settings)
	h.Write(set)
	home := o.Home
	if len(home) == 0 {
		home = DefaultHomeNetworks()
	}
	prefixes := func(tag string, ps []netip.Prefix) {
		fmt.Fprintf(h, "\x00%s %d", tag, len(ps))
		for _, p := range ps {
			b, _ := p.MarshalBinary()
			writeLen(h, b)
		}
	}
	prefixes("home", home)
	prefixes("allow", o.Allow)
	prefixes("threats", o.Threats)
	fmt.Fprintf(h, "\x00expected %d", len(o.Expected))
	for _, x := range o.Expected {
		fmt.Fprintf(h, "\x00%v", x.Ports)
		prefixes("sources", x.Sources)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func writeLen(h hash.Hash, b []byte) {
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
	h.Write(b)
}

// snapshotEncoder writes the body: it appends to buf and hands it to w
// (and the checksum) in pieces of snapshotFlushAt bytes. Errors are
// sticky: the first one stops the writing and is returned by Snapshot.
type snapshotEncoder struct {
	w   io.Writer
	crc hash.Hash32
	buf []byte
	err error
}

const snapshotFlushAt = 64 << 10

func (w *snapshotEncoder) flush() {
	if w.err == nil && len(w.buf) > 0 {
		w.crc.Write(w.buf)
		_, w.err = w.w.Write(w.buf)
	}
	w.buf = w.buf[:0]
}

func (w *snapshotEncoder) raw(b []byte) {
	w.buf = append(w.buf, b...)
	if len(w.buf) >= snapshotFlushAt {
		w.flush()
	}
}

func (w *snapshotEncoder) uv(x uint64) {
	w.buf = binary.AppendUvarint(w.buf, x)
	if len(w.buf) >= snapshotFlushAt {
		w.flush()
	}
}

func (w *snapshotEncoder) iv(x int64) {
	w.buf = binary.AppendVarint(w.buf, x)
	if len(w.buf) >= snapshotFlushAt {
		w.flush()
	}
}

func (w *snapshotEncoder) n(x int) { w.uv(uint64(x)) }

func (w *snapshotEncoder) b(x bool) {
	if x {
		w.uv(1)
	} else {
		w.uv(0)
	}
}

func (w *snapshotEncoder) u64(x uint64) {
	w.buf = binary.LittleEndian.AppendUint64(w.buf, x)
	if len(w.buf) >= snapshotFlushAt {
		w.flush()
	}
}

func (w *snapshotEncoder) f64(x float64) { w.u64(math.Float64bits(x)) }

func (w *snapshotEncoder) str(s string) {
	w.n(len(s))
	w.buf = append(w.buf, s...)
	if len(w.buf) >= snapshotFlushAt {
		w.flush()
	}
}

func (w *snapshotEncoder) key(k addrKey) { w.uv(k.hi); w.uv(k.lo) }

func (w *snapshotEncoder) addr(a netip.Addr) {
	b, _ := a.MarshalBinary()
	w.str(string(b))
}

func (w *snapshotEncoder) engine(e *Engine) {
	w.b(e.started)
	w.iv(e.maxStart)
	w.iv(e.closed)
	w.b(e.learning)
	m := e.metrics
	for _, x := range []int64{m.Records, m.NoData, m.SkipData, m.Unusable, m.TooLate, m.Guessed, m.Evicted, int64(m.PeakTrackedSources), m.Windows} {
		w.iv(x)
	}
	w.n(len(e.hosts))
	for _, h := range e.hosts {
		w.host(h)
	}
	idx := slices.Sorted(maps.Keys(e.panes))
	w.n(len(idx))
	for _, k := range idx {
		w.pane(e.panes[k])
	}
	w.b(e.prev != nil)
	if e.prev != nil {
		w.pane(e.prev)
	}
	ids := slices.Sorted(maps.Keys(e.results))
	w.n(len(ids))
	for _, id := range ids {
		w.result(e.results[id])
	}
	slow := e.slowRule()
	w.b(slow != nil)
	if slow != nil {
		w.slow(slow)
	}
}

// slowRule returns the engine's slow-reject detector, nil when disabled.
func (e *Engine) slowRule() *slowReject {
	for _, d := range e.detectors {
		if s, ok := d.(*slowReject); ok {
			return s
		}
	}
	return nil
}

func (w *snapshotEncoder) host(h *host) {
	w.key(h.addr)
	w.str(h.iface)
	w.str(h.ifaceLateral)
	w.iv(h.firstPane)
	w.b(h.seen)
	w.f64(h.n)
	w.f64(h.inPackets)
	w.f64(h.heavy)
	w.f64(h.maxBytes)
	w.portSet(&h.ports)
	w.b(h.middlebox)
	w.b(h.trained)
	ks := sortedAddrKeys(h.talkers)
	w.n(len(ks))
	for _, k := range ks {
		t := h.talkers[k]
		w.key(k)
		w.f64(t.mean)
		w.iv(int64(t.windows))
		w.iv(t.last)
	}
}

func (w *snapshotEncoder) pane(p *pane) {
	w.iv(p.idx)
	w.n(len(p.bigs))
	for _, b := range p.bigs {
		w.big(b)
	}
	// The slab in slot order, each slot with its key when it is live, so
	// that the sources are visited in the same order after a restore.
	keys := make([]addrKey, len(p.exts))
	live := make([]bool, len(p.exts))
	for k, i := range p.ext {
		keys[i], live[i] = k, true
	}
	w.n(len(p.exts))
	for i := range p.exts {
		w.b(live[i])
		if live[i] {
			w.key(keys[i])
		}
		w.ext(&p.exts[i])
	}
	w.n(len(p.free))
	for _, i := range p.free {
		w.n(int(i))
	}
	ids := slices.Sorted(maps.Keys(p.hosts))
	w.n(len(ids))
	for _, id := range ids {
		w.hostPane(p.hosts[id])
	}
	pks := slices.SortedFunc(maps.Keys(p.pend), cmpPendKey)
	w.n(len(pks))
	for _, k := range pks {
		a := p.pend[k]
		w.uv(uint64(k.t))
		w.key(k.actor)
		w.key(k.target)
		w.uv(uint64(k.port))
		w.uv(a.count)
		w.uv(a.accepted)
		w.uv(a.rejected)
		w.uv(a.bytes)
		w.uv(uint64(a.first))
		w.uv(uint64(a.last))
		w.b(a.inbound)
		w.samples(a.samples)
	}
}

func (w *snapshotEncoder) ext(s *extState) {
	for _, x := range []uint32{s.first, s.last, s.records, s.rejects, s.packets, s.host} {
		w.uv(uint64(x))
	}
	for _, pr := range s.pairs {
		w.uv(pr)
	}
	w.uv(s.bfPair)
	w.uv(uint64(s.bfSports[0]))
	w.uv(uint64(s.bfSports[1]))
	w.uv(uint64(s.npairs))
	w.uv(uint64(s.nbf))
	w.uv(uint64(s.reported))
	w.uv(uint64(s.big))
}

func (w *snapshotEncoder) big(b *extBig) {
	w.b(b.overflow)
	w.n(len(b.pairs))
	for _, pr := range b.pairs {
		w.uv(pr)
	}
	hs := slices.Sorted(maps.Keys(b.byHost))
	w.n(len(hs))
	for _, h := range hs {
		w.uv(uint64(h))
		w.portSet(b.byHost[h])
	}
	ps := slices.Sorted(maps.Keys(b.byPort))
	w.n(len(ps))
	for _, p := range ps {
		w.uv(uint64(p))
		bits := b.byPort[p].bits
		w.n(len(bits))
		for _, x := range bits {
			w.u64(x)
		}
	}
	w.b(b.bf != nil)
	prs := slices.Sorted(maps.Keys(b.bf))
	w.n(len(prs))
	for _, pr := range prs {
		w.uv(pr)
		w.portSet(b.bf[pr])
	}
	w.samples(b.samples)
	w.uv(uint64(b.accepted))
	w.uv(uint64(b.probes))
}

func (w *snapshotEncoder) hostPane(hp *hostPane) {
	w.uv(uint64(hp.id))
	w.uv(hp.inPackets)
	w.uv(hp.inFlows)
	w.distinct(&hp.sources)
	w.iv(int64(hp.heavyN))
	w.uv(hp.heavyPkts)
	w.uv(uint64(hp.ntop))
	for _, t := range hp.top {
		w.key(t.key)
		w.uv(uint64(t.packets))
	}
	ports := slices.Sorted(maps.Keys(hp.probeSrcs))
	w.n(len(ports))
	for _, p := range ports {
		w.uv(uint64(p))
		w.distinct(hp.probeSrcs[p])
	}
	w.uv(hp.retRejects)
	w.distinct(&hp.retRemotes)
	w.portSet(&hp.retPorts)
	outs := slices.Sorted(maps.Keys(hp.out))
	w.n(len(outs))
	for _, k := range outs {
		op := hp.out[k]
		w.uv(uint64(k))
		w.uv(op.flows)
		w.uv(op.probes)
		w.distinct(&op.hosts)
		w.uv(uint64(op.first))
		w.uv(uint64(op.last))
		w.samples(op.samples)
	}
	rks := sortedAddrKeys(hp.remotes)
	w.n(len(rks))
	for _, k := range rks {
		r := hp.remotes[k]
		w.key(k)
		w.uv(r.pktsOut)
		w.uv(r.bytesOut)
		w.uv(r.pktsIn)
		w.uv(uint64(r.first))
		w.uv(uint64(r.last))
		w.uv(uint64(r.port))
		w.uv(uint64(r.proto))
		w.samples(r.samples)
	}
	bks := slices.SortedFunc(maps.Keys(hp.bf), cmpBFKey)
	w.n(len(bks))
	for _, k := range bks {
		w.key(k.target)
		w.uv(uint64(k.port))
		w.portSet(hp.bf[k])
	}
	rep := slices.SortedFunc(maps.Keys(hp.bfReported), cmpBFKey)
	w.n(len(rep))
	for _, k := range rep {
		w.key(k.target)
		w.uv(uint64(k.port))
		w.b(hp.bfReported[k])
	}
	lps := slices.Sorted(maps.Keys(hp.latIn))
	w.n(len(lps))
	for _, p := range lps {
		w.uv(uint64(p))
		w.uv(hp.latIn[p].flows)
		w.uv(hp.latIn[p].bytes)
	}
	ups := slices.Sorted(maps.Keys(hp.used))
	w.n(len(ups))
	for _, p := range ups {
		w.uv(uint64(p))
		w.key(hp.used[p])
	}
	pks := sortedAddrKeys(hp.probed)
	w.n(len(pks))
	for _, k := range pks {
		w.key(k)
		w.portSet(hp.probed[k])
	}
	w.samples(hp.samples)
	w.uv(uint64(hp.first))
	w.uv(uint64(hp.last))
}

// portSet: the count, then the ports ascending, each as its distance from
// the one before less one.
func (w *snapshotEncoder) portSet(s *portSet) {
	w.n(s.len())
	prev := -1
	s.each(func(p uint16) bool {
		w.uv(uint64(int(p) - prev - 1))
		prev = int(p)
		return true
	})
}

// distinct: 0 and the exact hashes, or 1 and the sketch's registers.
func (w *snapshotEncoder) distinct(d *distinct) {
	if d.regs != nil {
		w.uv(1)
		w.raw(d.regs[:])
		return
	}
	w.uv(0)
	w.n(len(d.small))
	for _, h := range d.small {
		w.u64(h)
	}
}

func (w *snapshotEncoder) samples(ss []Sample) {
	w.n(len(ss))
	for _, s := range ss {
		w.str(s.Source)
		w.iv(int64(s.Line))
		w.str(s.Text)
	}
}

// Threshold values, tagged by type.
const (
	thrInt = iota + 1
	thrInt64
	thrFloat
	thrString
	thrPorts
	thrBool
)

func (w *snapshotEncoder) result(r *Result) {
	w.str(r.ID)
	w.str(r.Type)
	w.f64(r.Severity)
	w.addr(r.Actor.IP)
	w.str(string(r.Actor.Direction))
	w.addr(r.Target.IP)
	w.n(len(r.Target.Ports))
	for _, p := range r.Target.Ports {
		w.uv(uint64(p))
	}
	w.iv(r.Count)
	w.iv(r.FirstSeen.Unix())
	w.iv(r.LastSeen.Unix())
	w.str(r.Rule)
	ks := slices.Sorted(maps.Keys(r.Thresholds))
	w.n(len(ks))
	for _, k := range ks {
		w.str(k)
		switch v := r.Thresholds[k].(type) {
		case int:
			w.uv(thrInt)
			w.iv(int64(v))
		case int64:
			w.uv(thrInt64)
			w.iv(v)
		case float64:
			w.uv(thrFloat)
			w.f64(v)
		case string:
			w.uv(thrString)
			w.str(v)
		case []uint16:
			w.uv(thrPorts)
			w.n(len(v))
			for _, p := range v {
				w.uv(uint64(p))
			}
		case bool:
			w.uv(thrBool)
			w.b(v)
		default:
			if w.err == nil {
				w.err = fmt.Errorf("finding %s: threshold %s of type %T cannot be saved", r.ID, k, v)
			}
		}
	}
	w.samples(r.Samples)
	evk := slices.Sorted(maps.Keys(r.ev))
	w.n(len(evk))
	for _, k := range evk {
		w.str(string(k))
		w.iv(r.ev[k])
	}
	b, _ := r.prefix.MarshalBinary()
	w.str(string(b))
	w.b(r.top != nil)
	w.n(len(r.top))
	for _, t := range r.top {
		w.addr(t.IP)
		w.iv(t.Packets)
		w.f64(t.Share)
	}
}

func (w *snapshotEncoder) slow(d *slowReject) {
	w.b(d.seen != nil)
	if f := d.seen; f != nil {
		w.uv(f.maxBits)
		w.uv(f.n)
		w.iv(f.genStart)
		w.iv(f.now)
		for _, g := range [][]uint64{f.cur, f.old} {
			w.n(len(g))
			for _, x := range g {
				w.u64(x)
			}
		}
	}
	ks := slices.Sorted(maps.Keys(d.srcs))
	w.n(len(ks))
	for _, k := range ks {
		s := d.srcs[k]
		w.u64(k)
		w.uv(uint64(s.first))
		w.uv(uint64(s.last))
		w.uv(uint64(s.rejects))
		w.uv(uint64(s.reported))
		w.uv(uint64(s.windows))
		w.iv(s.lastPane)
		w.samples(s.samples)
	}
}

func sortedAddrKeys[V any](m map[addrKey]V) []addrKey {
	return slices.SortedFunc(maps.Keys(m), cmpKey)
}

func cmpBFKey(a, b bfKey) int {
	if c := cmpKey(a.target, b.target); c != 0 {
		return c
	}
	return cmp.Compare(a.port, b.port)
}

func cmpPendKey(a, b pendKey) int {
	if c := cmp.Compare(a.t, b.t); c != 0 {
		return c
	}
	if c := cmpKey(a.actor, b.actor); c != 0 {
		return c
	}
	if c := cmpKey(a.target, b.target); c != 0 {
		return c
	}
	return cmp.Compare(a.port, b.port)
}

// JudgedBefore returns the event time before which every window is
// judged (zero before the first record): a finding whose records all
// start before it will not change until a late record the lateness allows
// no longer arrives.
func (e *Engine) JudgedBefore() time.Time {
	if !e.started {
		return time.Time{}
	}
	return time.Unix(e.closed*e.paneSec, 0).UTC()
}
