package daemon

import (
	"bytes"
	"encoding/json"
	"net/netip"
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

// sketchCap bounds each minute's top tables in memory, per source, between
// two commits: beyond it the least counted key gives way (Space-Saving).
const sketchCap = 256

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
	records, bytes [3]int64 // by flowlog.Action: absent, ACCEPT, REJECT
	rejected       *spaceSaving[netip.Addr]
	talkers        *spaceSaving[[2]netip.Addr]
	ports          *spaceSaving[uint16]
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
		if dsts != nil && dsts[i].IsValid() {
			if m.talkers == nil {
				m.talkers = newSpaceSaving[[2]netip.Addr](sketchCap)
			}
			m.talkers.add([2]netip.Addr{srcs[i], dsts[i]}, 1, n, n)
		}
		port, havePort := uint16(0), ports != nil && hasPort[i]
		if havePort {
			port = uint16(ports[i])
			if m.ports == nil {
				m.ports = newSpaceSaving[uint16](sketchCap)
			}
			m.ports.add(port, 1, n, 1)
		}
		if a == flowlog.ActionReject {
			if m.rejected == nil {
				m.rejected = newSpaceSaving[netip.Addr](sketchCap)
			}
			e := m.rejected.add(srcs[i], 1, n, 1)
			if havePort {
				e.ports.Add(port)
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
			m.rejected.each(func(k netip.Addr, e *ssEntry[netip.Addr]) {
				d.Top = append(d.Top, store.TrafficTop{Minute: at, Kind: store.TopRejectedSources, Key: k.String(), Count: e.count, Bytes: e.bytes, Ports: e.ports})
			})
			m.talkers.each(func(k [2]netip.Addr, e *ssEntry[[2]netip.Addr]) {
				d.Top = append(d.Top, store.TrafficTop{Minute: at, Kind: store.TopTalkers, Key: k[0].String() + " " + k[1].String(), Count: e.count, Bytes: e.bytes})
			})
			m.ports.each(func(k uint16, e *ssEntry[uint16]) {
				d.Top = append(d.Top, store.TrafficTop{Minute: at, Kind: store.TopDstPorts, Key: strconv.Itoa(int(k)), Count: e.count, Bytes: e.bytes})
			})
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

func actionName(a flowlog.Action) string {
	switch a {
	case flowlog.ActionAccept:
		return "ACCEPT"
	case flowlog.ActionReject:
		return "REJECT"
	}
	return ""
}

// ssEntry is a key's counts in a Space-Saving sketch; weight is what it
// is ranked by (bytes for talkers, records otherwise).
type ssEntry[K comparable] struct {
	key                  K
	count, bytes, weight int64
	ports                store.PortSet
	at                   int // index in the heap
}

// spaceSaving keeps the heaviest keys within cap entries (Metwally et
// al.'s Space-Saving): a new key, once full, takes the place of the
// lightest and starts from its weight, so weights are overestimates by at
// most the lightest entry's; below cap keys every count is exact.
type spaceSaving[K comparable] struct {
	cap  int
	idx  map[K]*ssEntry[K]
	heap []*ssEntry[K] // min-heap by weight
}

func newSpaceSaving[K comparable](cap int) *spaceSaving[K] {
	return &spaceSaving[K]{cap: cap, idx: map[K]*ssEntry[K]{}}
}

// add counts one record of key; it returns the key's entry.
func (s *spaceSaving[K]) add(k K, count, bytes, weight int64) *ssEntry[K] {
	e := s.idx[k]
	switch {
	case e != nil:
	case len(s.heap) < s.cap:
		e = &ssEntry[K]{key: k, at: len(s.heap)}
		s.heap = append(s.heap, e)
		s.idx[k] = e
		s.up(e.at)
	default:
		e = s.heap[0]
		delete(s.idx, e.key)
		*e = ssEntry[K]{key: k, weight: e.weight, at: e.at}
		s.idx[k] = e
	}
	e.count += count
	e.bytes += bytes
	e.weight += weight
	s.down(e.at)
	return e
}

// each calls fn for every kept key; a nil sketch has none.
func (s *spaceSaving[K]) each(fn func(K, *ssEntry[K])) {
	if s == nil {
		return
	}
	for _, e := range s.heap {
		fn(e.key, e)
	}
}

func (s *spaceSaving[K]) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.heap[i].at, s.heap[j].at = i, j
}

func (s *spaceSaving[K]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if s.heap[p].weight <= s.heap[i].weight {
			return
		}
		s.swap(i, p)
		i = p
	}
}

func (s *spaceSaving[K]) down(i int) {
	n := len(s.heap)
	for {
		l, small := 2*i+1, i
		if l < n && s.heap[l].weight < s.heap[small].weight {
			small = l
		}
		if r := l + 1; r < n && s.heap[r].weight < s.heap[small].weight {
			small = r
		}
		if small == i {
			return
		}
		s.swap(i, small)
		i = small
	}
}
