package daemon

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/server"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/flowguard/flowguard/internal/store"
)

// DefaultTrafficRetention is how long the per-minute traffic aggregates
// are kept unless server.traffic_retention says otherwise.
const DefaultTrafficRetention = 7 * 24 * time.Hour

// pruneEvery is how often a commit also drops the aggregates older than
// the retention.
const pruneEvery = 10 * time.Minute

// sketchKeep bounds each minute's top tables in memory, per source,
// between two commits: past 4×sketchKeep keys the sketchKeep heaviest stay
// (topCounter).
const sketchKeep = 256

// dashHook is what the processor does for the dashboard: it keeps
// per-minute aggregates of the records it reads (records, bytes and
// rejects by action; top rejected sources, talkers and destination ports)
// and hands them to the commit that saves the positions of the records
// they count, with the explanations of the findings it writes; replayed
// records (committed before a restart) are not added again. After a
// commit and a response it publishes live events (server.Hub). It is
// owned by the processor's goroutine.
type dashHook struct {
	events    *server.Hub
	retention time.Duration
	lastPrune time.Time
	now       func() time.Time
	bySource  map[string]map[int64]*minuteAgg // source → minute (Unix s) → aggregate
	free      []*topCounter                   // counters a commit is done with, for reuse
}

// counter returns an empty top counter, a reused one when there is.
func (h *dashHook) counter(withPorts bool) *topCounter {
	if n := len(h.free); n > 0 {
		t := h.free[n-1]
		h.free = h.free[:n-1]
		t.ents = t.ents[:0]
		clear(t.idx)
		t.ports = nil
		if withPorts {
			t.ports = append(t.portBuf[:0], store.PortSet{})[:0] // not nil: nil means no ports
		}
		return t
	}
	return newTopCounter(sketchKeep, withPorts)
}

// release keeps a counter for reuse (at most 64).
func (h *dashHook) release(t *topCounter) {
	if t != nil && len(h.free) < 64 {
		if t.ports != nil {
			t.portBuf = t.ports
		}
		h.free = append(h.free, t)
	}
}

func newDashHook(cfg *config.Config, events *server.Hub) *dashHook {
	h := &dashHook{events: events, retention: DefaultTrafficRetention, now: time.Now, bySource: map[string]map[int64]*minuteAgg{}}
	if cfg.Server != nil && cfg.Server.TrafficRetention > 0 {
		h.retention = time.Duration(cfg.Server.TrafficRetention)
	}
	return h
}

// minuteAgg is one minute of one source's records.
type minuteAgg struct {
	records, bytes [3]int64    // by flowlog.Action: absent, ACCEPT, REJECT
	rejected       *topCounter // source address
	talkers        *topCounter // source and destination addresses
	ports          *topCounter // destination port
}

// coveredLines returns how many lines at the start of a chunk of a
// followed text file lie before the offset committed before the start: a
// replayed chunk may straddle it (the chunks are cut anew), and its
// records before it were counted by the earlier run. A files source's
// token is the offset where its chunk ends.
func coveredLines(src source.Live, c source.Chunk, committed string, ok bool) int {
	if _, files := src.(*source.FilesLive); !files || !ok || c.Open != nil {
		return 0
	}
	end, err1 := strconv.ParseInt(c.Position.Token, 10, 64)
	upTo, err2 := strconv.ParseInt(committed, 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	start := end - int64(len(c.Data))
	if upTo <= start {
		return 0
	}
	return bytes.Count(c.Data[:min(upTo-start, int64(len(c.Data)))], []byte{'\n'})
}

// observe adds a batch's records to the source's minutes, skipping those
// on the first skip lines of their chunk (coveredLines). A record without
// a start time counts in the minute it arrived.
func (h *dashHook) observe(src string, b *flowlog.Batch, arrived time.Time, skip int) {
	f := b.Format
	ipos := [...]int{f.Index(flowlog.FieldStart), f.Index(flowlog.FieldAction), f.Index(flowlog.FieldBytes),
		f.Index(flowlog.FieldSrcAddr), f.Index(flowlog.FieldDstAddr), f.Index(flowlog.FieldDstPort)}
	var starts, byts, ports []uint64
	var hasStart, hasBytes, hasPort []bool
	var actions []flowlog.Action
	var srcs, dsts []netip.Addr
	if ipos[0] >= 0 {
		starts, hasStart = b.Uints(ipos[0], nil)
	}
	if ipos[1] >= 0 {
		actions = b.Actions(ipos[1], nil)
	}
	if ipos[2] >= 0 {
		byts, hasBytes = b.Uints(ipos[2], nil)
	}
	if ipos[3] >= 0 {
		srcs = b.Addrs(ipos[3], nil)
	}
	if ipos[4] >= 0 {
		dsts = b.Addrs(ipos[4], nil)
	}
	if ipos[5] >= 0 {
		ports, hasPort = b.Uints(ipos[5], nil)
	}
	if arrived.IsZero() {
		arrived = h.now()
	}
	minutes := h.bySource[src]
	if minutes == nil {
		minutes = map[int64]*minuteAgg{}
		h.bySource[src] = minutes
	}
	lastMin, m := int64(-1), (*minuteAgg)(nil)
	for i := 0; i < b.N; i++ {
		if b.Bad(i) || skip > 0 && b.Line(i) <= skip {
			continue
		}
		t := arrived.Unix()
		if starts != nil && hasStart[i] {
			t = int64(starts[i])
		}
		if mn := t - t%60; mn != lastMin {
			lastMin = mn
			if m = minutes[mn]; m == nil {
				m = &minuteAgg{}
				minutes[mn] = m
			}
		}
		var a flowlog.Action
		if actions != nil {
			a = actions[i]
		}
		var n int64
		if byts != nil && hasBytes[i] {
			n = int64(byts[i])
		}
		m.records[a]++
		m.bytes[a] += n
		if srcs == nil || !srcs[i].IsValid() {
			continue
		}
		src := srcs[i]
		if dsts != nil && dsts[i].IsValid() {
			if m.talkers == nil {
				m.talkers = h.counter(false)
			}
			m.talkers.add(pairKey(src, dsts[i]), src.As16(), dsts[i].As16(), 1, n, n)
		}
		port, havePort := uint16(0), ports != nil && hasPort[i]
		if havePort {
			port = uint16(ports[i])
			if m.ports == nil {
				m.ports = h.counter(false)
			}
			m.ports.add(uint64(port), [16]byte{}, [16]byte{}, 1, n, 1)
		}
		if a == flowlog.ActionReject {
			if m.rejected == nil {
				m.rejected = h.counter(true)
			}
			e := m.rejected.add(addrKey(src), src.As16(), [16]byte{}, 1, n, 1)
			if havePort {
				m.rejected.ports[e].Add(port)
			}
		}
	}
}

// fill adds to a commit the aggregates of the sources whose positions it
// saves (so that the records are counted exactly when their positions
// are saved: a crash loses both or neither), the pruning of old minutes
// now and then, and the explanations of the findings it writes.
func (h *dashHook) fill(c *store.StreamCommit, changed map[string]*detect.Result) error {
	saved := map[string]bool{}
	for _, p := range c.Positions {
		saved[p.Source] = true
	}
	var d store.TrafficDelta
	for src, minutes := range h.bySource {
		if !saved[src] {
			continue
		}
		for mn, m := range minutes {
			at := time.Unix(mn, 0).UTC()
			for a := range m.records {
				if m.records[a] > 0 {
					d.Counts = append(d.Counts, store.TrafficCount{Minute: at, Source: src, Action: actionName(flowlog.Action(a)),
						Records: m.records[a], Bytes: m.bytes[a]})
				}
			}
			m.rejected.each(func(e *topEntry, ps *store.PortSet) {
				d.Top = append(d.Top, store.TrafficTop{Minute: at, Kind: store.TopRejectedSources, Key: addr16(e.a).String(), Count: e.count, Bytes: e.bytes, Ports: *ps})
			})
			m.talkers.each(func(e *topEntry, _ *store.PortSet) {
				d.Top = append(d.Top, store.TrafficTop{Minute: at, Kind: store.TopTalkers, Key: addr16(e.a).String() + " " + addr16(e.b).String(), Count: e.count, Bytes: e.bytes})
			})
			m.ports.each(func(e *topEntry, _ *store.PortSet) {
				d.Top = append(d.Top, store.TrafficTop{Minute: at, Kind: store.TopDstPorts, Key: strconv.Itoa(int(e.key)), Count: e.count, Bytes: e.bytes})
			})
			h.release(m.rejected)
			h.release(m.talkers)
			h.release(m.ports)
		}
		delete(h.bySource, src)
	}
	if now := h.now(); now.Sub(h.lastPrune) >= pruneEvery {
		h.lastPrune = now
		d.PruneBefore = now.Add(-h.retention)
	}
	if len(d.Counts) > 0 || len(d.Top) > 0 || !d.PruneBefore.IsZero() {
		c.Traffic = &d
	}
	if len(c.Findings) > 0 {
		c.Explanations = make(map[string][]byte, len(c.Findings))
		for _, f := range c.Findings {
			r := changed[f.ID]
			if r == nil {
				continue
			}
			js, err := json.Marshal(server.ExplanationOf(r))
			if err != nil {
				return err
			}
			c.Explanations[f.ID] = js
		}
	}
	return nil
}

// committed publishes what a commit changed: the findings, and that
// traffic was added.
func (h *dashHook) committed(c *store.StreamCommit, res store.CommitResult) {
	isNew := map[string]bool{}
	for _, id := range res.New {
		isNew[id] = true
	}
	for _, f := range res.Changed {
		h.events.Publish(server.EventFinding, server.EventFindingData{ID: f.ID, Type: f.Type, Severity: f.Severity, Title: f.Title,
			Count: f.Count, LastSeen: f.LastSeen, New: isNew[f.ID]})
	}
	if c.Traffic != nil {
		var n int64
		for _, t := range c.Traffic.Counts {
			n += t.Records
		}
		if n > 0 {
			h.events.Publish(server.EventTraffic, map[string]int64{"records": n})
		}
	}
}

// responded publishes the response pipeline's blocks, dry-run blocks and
// unblocks.
func (h *dashHook) responded(os []respond.Outcome) {
	for _, o := range os {
		switch o.Kind {
		case respond.OutcomeBlocked, respond.OutcomeWould, respond.OutcomeUnblocked:
			h.events.Publish(server.EventBlock, o)
		}
	}
}

// addr16 is the address an As16 array holds (IPv4 as IPv4: the records'
// mapped addresses were unmapped when parsed).
func addr16(k [16]byte) netip.Addr { return netip.AddrFrom16(k).Unmap() }

// addrKey is an address as a topCounter key: an IPv4 address itself, an
// IPv6 address a 64-bit hash of it (a collision, about one in 2⁶⁴ per
// pair of addresses, would add one address's counts to another's).
func addrKey(a netip.Addr) uint64 {
	if a.Is4() {
		v := a.As4()
		return uint64(binary.BigEndian.Uint32(v[:]))
	}
	v := a.As16()
	return mix(binary.BigEndian.Uint64(v[:8])^mix(binary.BigEndian.Uint64(v[8:]))) | 1<<63
}

// pairKey is a source and destination as a topCounter key: two IPv4
// addresses side by side, else a hash of both.
func pairKey(src, dst netip.Addr) uint64 {
	if src.Is4() && dst.Is4() {
		return addrKey(src)<<32 | addrKey(dst)
	}
	return mix(addrKey(src) ^ mix(addrKey(dst)+0x9E3779B97F4A7C15))
}

// mix is murmur3's 64-bit finaliser.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	return h ^ h>>33
}

func actionName(a flowlog.Action) string {
	switch a {
	case flowlog.ActionAccept:
		return "ACCEPT"
	case flowlog.ActionReject:
		return "REJECT"
	}
	return ""
}

// topEntry is a key's counts in a topCounter; weight is what it is
// ranked by (bytes for talkers, records otherwise). Keys are 64-bit
// (addrKey, pairKey, a port), which makes the map several times cheaper
// than one keyed by addresses.
type topEntry struct {
	key                  uint64
	a, b                 [16]byte // what key stands for (As16): an address, a pair
	count, bytes, weight int64
}

// topCounter counts keys exactly until it holds 4×keep of them, then
// keeps the keep heaviest and forgets the others' counts, which are then
// lower bounds, like the store's per-minute top tables (which keep
// store.TrafficTopKeep). Adding to a known key is one map lookup. With
// withPorts, each key also has a set of destination ports.
type topCounter struct {
	keep    int
	idx     map[uint64]int32
	ents    []topEntry
	ports   []store.PortSet // by entry, when kept
	portBuf []store.PortSet // ports' storage, kept for reuse
	ws      []int64         // trim's scratch
}

func newTopCounter(keep int, withPorts bool) *topCounter {
	t := &topCounter{keep: keep, idx: make(map[uint64]int32, keep)}
	if withPorts {
		t.ports = []store.PortSet{}
	}
	return t
}

// add counts one record of key and returns its index (valid until the
// next add).
func (t *topCounter) add(k uint64, a, b [16]byte, count, bytes, weight int64) int32 {
	i, ok := t.idx[k]
	if !ok {
		if len(t.ents) >= 4*t.keep {
			t.trim()
		}
		i = int32(len(t.ents))
		t.ents = append(t.ents, topEntry{key: k, a: a, b: b})
		if t.ports != nil {
			t.ports = append(t.ports, store.PortSet{})
		}
		t.idx[k] = i
	}
	e := &t.ents[i]
	e.count += count
	e.bytes += bytes
	e.weight += weight
	return i
}

// trim keeps the keep heaviest keys, in place.
func (t *topCounter) trim() { t.trimTo(t.keep) }

// trimTo keeps the keep heaviest keys, in place.
func (t *topCounter) trimTo(keep int) {
	if len(t.ents) <= keep {
		return
	}
	t.ws = t.ws[:0]
	for i := range t.ents {
		t.ws = append(t.ws, t.ents[i].weight)
	}
	slices.Sort(t.ws)
	cut := t.ws[len(t.ws)-keep]
	ties := 0 // how many of weight cut may stay
	for _, w := range t.ws[len(t.ws)-keep:] {
		if w == cut {
			ties++
		}
	}
	clear(t.idx)
	j := 0
	for i := range t.ents {
		w := t.ents[i].weight
		if w < cut || w == cut && ties == 0 {
			continue
		}
		if w == cut {
			ties--
		}
		t.ents[j] = t.ents[i]
		if t.ports != nil {
			t.ports[j] = t.ports[i]
		}
		t.idx[t.ents[j].key] = int32(j)
		j++
	}
	t.ents = t.ents[:j]
	if t.ports != nil {
		t.ports = t.ports[:j]
	}
}

// each calls fn for the store.TrafficTopKeep heaviest keys (the store
// keeps no more a minute), with their ports (nil without); a nil counter
// has none.
func (t *topCounter) each(fn func(*topEntry, *store.PortSet)) {
	if t == nil {
		return
	}
	t.trimTo(store.TrafficTopKeep)
	for i := range t.ents {
		var ps *store.PortSet
		if t.ports != nil {
			ps = &t.ports[i]
		}
		fn(&t.ents[i], ps)
	}
}
