package detect

import (
	"fmt"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
)

// slowReject is the long horizon of repeatedReject: it raises
// Recon:EC2/RepeatedReject (low) when one outside source's attempts on one
// port of one host of ours are rejected at least min_rejects times within
// horizon, in at least two windows — the slow prober that knocks on a
// telnet port every twenty minutes, which the fast rule never sees twice
// within ten minutes. Sources a scan, brute force or the fast rule already
// explains are left out.
//
// State stays bounded under millions of one-off internet probes: a source's
// first window of rejects on a (host, port) only sets two bits in a
// first-seen filter (two generations of a bitmap, each covering half the
// horizon, or less under a flood of probes); per-source state is allocated only when the same source comes
// back to the same (host, port), and at most max_sources of them are kept.
type slowReject struct {
	set     SlowRejectSettings
	horizon int64               // seconds
	sources int                 // max_tracked_sources, which sizes the filter
	seen    *seenFilter         // allocated at the first window judged
	srcs    map[uint64]*slowSrc // by slowKey
	evicted *int64
}

// slowKey is the 64-bit hash of a (source, host<<16|port).
func slowKey(src addrKey, pair uint64) uint64 { return src.hash() ^ mix64(pair+0x9e3779b97f4a7c15) }

// slowSrc is one returning source on one (host, port).
type slowSrc struct {
	first, last uint32 // event time of its first and latest counted reject
	rejects     uint32 // counted within the horizon (the first window as one)
	reported    uint32 // rejects already in a finding
	windows     uint16
	lastPane    int64
	samples     []Sample
}

func init() {
	register("slow_reject", orderSlowRejects, func(e *Engine) detector {
		set := e.set.SlowReject
		if !set.Enabled {
			return nil
		}
		return &slowReject{set: set, horizon: int64(time.Duration(set.Horizon) / time.Second),
			sources: e.set.MaxTrackedSources, srcs: map[uint64]*slowSrc{}, evicted: &e.metrics.Evicted}
	})
}

func (d *slowReject) judge(j *judgement) {
	if j.open {
		return // long-horizon state changes only when windows close
	}
	if d.seen == nil {
		d.seen = newSeenFilter(d.sources)
	}
	now := j.p.idx * j.e.paneSec
	if d.seen.rotate(now, d.horizon/2) {
		d.expire(now)
	}
	for i := range j.sources {
		r := &j.sources[i]
		s := r.s
		if s.rejects == 0 {
			continue
		}
		pair, ok := singlePair(s, r.big)
		if !ok {
			continue // several targets in one window: scans are other rules'
		}
		k := slowKey(r.key, pair)
		if j.reported(r, repScan|repBrute|repReject) {
			delete(d.srcs, k) // explained, and counted, by a faster rule
			continue
		}
		st := d.srcs[k]
		if st != nil && int64(st.first)+d.horizon < int64(s.first) {
			delete(d.srcs, k)
			st = nil
		}
		if st == nil {
			if !d.seen.testAndSet(k) {
				continue // a first sighting: two bits, no state
			}
			if len(d.srcs) >= d.set.MaxSources {
				d.expire(now)
				if len(d.srcs) >= d.set.MaxSources {
					*d.evicted++
					continue
				}
			}
			// Seen before within the horizon: that earlier window counts
			// as one reject (the filter keeps no count).
			st = &slowSrc{first: s.first, rejects: 1, windows: 1}
			d.srcs[k] = st
		}
		if st.lastPane != j.p.idx {
			st.windows++
			st.lastPane = j.p.idx
		}
		st.rejects += s.rejects
		st.last = max(st.last, s.last)
		if len(st.samples) < maxSamples && r.big != nil {
			for _, sm := range r.big.samples {
				if len(st.samples) < maxSamples {
					st.samples = append(st.samples, sm)
				}
			}
		}
		if int(st.rejects) < d.set.MinRejects {
			continue
		}
		count := st.rejects - st.reported
		st.reported = st.rejects
		host := j.e.hosts[pair>>16].addr
		port := uint16(pair)
		j.emit(spec{typ: TypeRepeatedReject, sev: finding.Low, actor: r.key, dir: finding.Inbound,
			target: host, idTarget: fmt.Sprintf("slow:%s:%d", host.addr(), port), ports: []uint16{port},
			count: int64(count), first: st.first, last: st.last, samples: st.samples,
			ev: evidence{finding.EvRejected: int64(count), finding.EvDistinctWindows: int64(st.windows),
				finding.EvHorizonSeconds: d.horizon},
			rule: fmt.Sprintf("an outside source's attempts on one port of one host rejected at least min_rejects times within horizon, in at least two %s windows", j.set.Window),
			thr:  map[string]any{"min_rejects": d.set.MinRejects, "horizon": d.set.Horizon.String()}})
	}
}

// expire drops the sources whose horizon has passed.
func (d *slowReject) expire(now int64) {
	for k, st := range d.srcs {
		if int64(st.first)+d.horizon < now {
			delete(d.srcs, k)
		}
	}
}

// singlePair returns the one (host, port) a source probed in a window.
func singlePair(s *extState, big *extBig) (uint64, bool) {
	switch {
	case big == nil && s.npairs == 1:
		return s.pairs[0], true
	case big != nil && !big.overflow && len(big.pairs) == 1:
		return big.pairs[0], true
	}
	return 0, false
}

// seenFilter remembers which keys were seen within the last two
// generations: two blocked Bloom filters (each key sets two bits of one
// 64-bit word, so a look-up reads one cache line per generation). A false
// "seen" (about 6 % at one key per 8 bits) only allocates state that
// raises nothing; a key set in the current or the previous generation is
// never reported unseen.
//
// Each generation is sized from the load of the one before (8 bits per
// key, at least 2^16 bits, at most maxBits), so that a quiet network keeps
// a filter of a few KiB that stays in cache. A generation that fills up
// before its time ends early, and the next one is twice as large: under a
// sudden flood of one-off probes the filter remembers a shorter stretch
// rather than grow without bound.
type seenFilter struct {
	cur, old []uint64
	n        uint64 // keys added to the current generation
	maxBits  uint64
	genStart int64
	now      int64 // the latest time given to rotate
}

const minSeenBits = 1 << 16

// newSeenFilter returns a filter of at most 8 bits per tracked source a
// generation (at most 2^27 bits).
func newSeenFilter(sources int) *seenFilter {
	maxBits := uint64(minSeenBits)
	for maxBits < uint64(sources)*8 && maxBits < 1<<27 {
		maxBits <<= 1
	}
	return &seenFilter{cur: make([]uint64, minSeenBits/64), old: make([]uint64, 1), maxBits: maxBits, genStart: -1}
}

// rotate starts a new generation when gen seconds have passed since the
// current one started, and reports whether it did.
func (f *seenFilter) rotate(now, gen int64) bool {
	f.now = now
	if f.genStart < 0 {
		f.genStart = now
		return false
	}
	if now-f.genStart < max(gen, 1) {
		return false
	}
	f.next(f.n * 8)
	return true
}

// next makes the current generation the old one and starts a new one of at
// least bits bits.
func (f *seenFilter) next(bits uint64) {
	size := uint64(minSeenBits)
	for size < bits && size < f.maxBits {
		size <<= 1
	}
	f.old = f.cur
	f.cur = make([]uint64, size/64)
	f.n = 0
	f.genStart = f.now
}

// testAndSet reports whether h was seen, and records it.
func (f *seenFilter) testAndSet(h uint64) bool {
	bits := uint64(1)<<(h>>52&63) | uint64(1)<<(h>>58)
	cur := &f.cur[h&uint64(len(f.cur)-1)]
	if *cur&bits == bits {
		return true
	}
	seen := f.old[h&uint64(len(f.old)-1)]&bits == bits
	*cur |= bits
	f.n++
	if size := uint64(len(f.cur)) * 64; f.n*8 > size && size < f.maxBits {
		f.next(2 * size) // full before its time: start a larger one
	}
	return seen
}

// bytes returns the memory the filter holds.
func (f *seenFilter) bytes() int { return 8 * (len(f.cur) + len(f.old)) }
