package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/flowguard/flowguard/internal/store"
)

// Stream is the name under which the daemon's findings are counted in the
// store (store.StreamCommit): one cumulative contribution per finding,
// replaced at each commit, so that a replay after a crash writes the same
// values again instead of adding them.
const Stream = "serve"

// maxGroupBytes bounds the data processed between two commits.
const maxGroupBytes = 16 << 20

// item is a chunk from a named source.
type item struct {
	src string
	c   source.Chunk
}

// peekMark is what the daemon last stored of a finding of an open window:
// it is written again only when it changes.
type peekMark struct {
	count      int64
	first, end time.Time
	severity   float64
}

func markOf(r *detect.Result) peekMark {
	return peekMark{r.Count, r.FirstSeen, r.LastSeen, r.Severity}
}

// processor owns the detection and alarm state: one goroutine decodes the
// chunks, feeds the engines, and commits findings, alarm states and
// source positions in one store transaction.
type processor struct {
	log *slog.Logger
	st  *store.Store
	m   *Metrics
	in  chan item

	eng      *detect.Engine
	clock    *alarm.Clock
	alarmCfg *alarm.Config
	policy   *finding.Policy
	pipeline *respond.Pipeline
	trail    *trailState
	traffic  *dashHook       // aggregates, explanations, live events for the dashboard (dashboard.go)
	recent   *recentRing     // stream data kept for queries (recent.go)
	streamed map[string]bool // sources whose data is kept there: those not files

	sources   map[string]source.Live
	committed map[string]map[string]string // source → object → token at start
	changed   map[string]*detect.Result    // findings changed since the last commit
	peeked    map[string]peekMark          // open windows' findings as last stored (early firing)
	retract   []string                     // early findings the closed windows did not confirm
	inherited map[string]bool              // early findings stored before the start, not seen since
	rebuilt   bool                         // every source replays: the state before the start is rebuilt
	earlyDiff bool                         // the set of early findings changed since the last commit
	pos       map[[2]string]store.Position // positions to save
	alarmEv   []alarm.StateChange          // alarm changes to answer
	oldest    time.Time                    // arrival of the oldest data not yet committed
	fresh     bool                         // something beyond the committed positions was processed
	caughtUp  map[[2]string]bool           // objects whose replay reached their committed position

	snap snapshots // engine snapshots (snapshot.go)

	errMu   sync.Mutex
	errSeen map[string]int // bad lines logged per object

	started     atomic.Bool
	reloads     chan reload
	expireEvery time.Duration
}

// reload is a new configuration's parts that can change without losing
// detection state.
type reload struct {
	policy   *finding.Policy
	pipeline *respond.Pipeline
}

// replayed reports whether a chunk lies entirely within what was
// committed before the start: its state is already stored.
func (p *processor) replayed(it item) bool {
	tok, ok := p.committed[it.src][it.c.Position.Object]
	if !ok {
		return false
	}
	r, ok := p.sources[it.src].(source.Replayer)
	if !ok {
		return false
	}
	return r.Covered(it.c.Position, tok)
}

// run processes chunks until in is closed, then commits what is left.
func (p *processor) run(ctx context.Context) error {
	p.started.Store(true)
	expire := time.NewTicker(p.expireEvery)
	defer expire.Stop()
	var snapTick <-chan time.Time
	if p.snap.on {
		t := time.NewTicker(max(p.snap.every/4, 10*time.Millisecond))
		defer t.Stop()
		snapTick = t.C
	}
	for {
		select {
		case it, ok := <-p.in:
			if !ok {
				p.snap.final = true
				return p.commit(context.WithoutCancel(ctx))
			}
			group := []item{it}
			size := len(it.c.Data)
		more:
			for size < maxGroupBytes {
				select {
				case it, ok := <-p.in:
					if !ok {
						break more
					}
					group = append(group, it)
					size += len(it.c.Data)
				default:
					break more
				}
			}
			for _, it := range group {
				if err := p.process(ctx, it); err != nil {
					return err
				}
			}
			if p.fresh {
				if err := p.commit(ctx); err != nil {
					return err
				}
			}
		case r := <-p.reloads:
			p.policy, p.pipeline = r.policy, r.pipeline
			p.log.Info("configuration reloaded: suppression rules, trusted IPs, response routes and notifiers")
		case <-expire.C:
			p.expire(ctx)
		case <-snapTick:
			if p.snapshotDue() {
				if err := p.commit(ctx); err != nil {
					return err
				}
			}
		}
	}
}

// expire removes the blocks whose time is up.
func (p *processor) expire(ctx context.Context) {
	if p.pipeline == nil {
		return
	}
	rep, err := p.pipeline.Expire(ctx)
	if err != nil {
		p.log.Warn("cannot expire blocks", "err", err)
	}
	p.countReport(rep)
	p.traffic.responded(rep.Outcomes)
}

// errSink reports the bad lines of one chunk with their place in the
// object, counts them, and logs the first few of each object.
type errSink struct {
	p    *processor
	src  string
	obj  string
	line int // line number of the chunk's first line, less one
}

// Skip implements flowlog.ErrorSink.
func (s *errSink) Skip(e *flowlog.LineError) {
	if e.Line > 0 {
		e.Line += s.line
	}
	s.p.m.ParseErrors.WithLabelValues(s.src).Inc()
	s.p.errMu.Lock()
	n := s.p.errSeen[s.obj]
	s.p.errSeen[s.obj] = n + 1
	s.p.errMu.Unlock()
	if n < 10 {
		s.p.log.Warn("skipped bad input", "source", s.src, "at", e.Error())
	} else if n == 10 {
		s.p.log.Warn("more bad input skipped; counted in flowguard_parse_errors_total", "source", s.src, "object", e.Source)
	}
}

// process decodes one chunk and feeds the engines.
func (p *processor) process(ctx context.Context, it item) error {
	c := it.c
	replay := p.replayed(it)
	sc := &flowlog.Scanner{Workers: 1, Errors: &errSink{p: p, src: it.src, obj: c.Position.Object, line: max(c.Line-1, 0)}}
	in := flowlog.Input{Name: c.Name, Size: c.Size, Open: c.Open}
	if c.Open == nil {
		data := c.Data
		if len(c.Header) > 0 {
			if f, err := flowlog.ParseFormat(strings.TrimSpace(string(c.Header))); err == nil {
				sc.Format = f
			}
		}
		in.Size = int64(len(data))
		in.Open = func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	}
	records, isTrail, err := p.trail.process(ctx, c, in, sc.Errors) // CloudTrail, GuardDuty
	if !isTrail {
		tok, ok := p.committed[it.src][c.Position.Object]
		skip := coveredLines(p.sources[it.src], c, tok, ok)
		err = sc.Scan(ctx, []flowlog.Input{in}, func(_ int, b *flowlog.Batch) error {
			p.eng.Observe(b)
			if !replay {
				p.traffic.observe(it.src, b, c.Arrived, skip)
			}
			if p.clock != nil {
				p.observeAlarms(b, replay)
			}
			records += int64(b.N - b.NumBad()) // rows found bad while converting are not records
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("cannot process %s: %w", c.Name, err)
	}
	if !replay && !isTrail && p.streamed[it.src] {
		p.recent.add(it.src, c)
	}
	p.m.Records.WithLabelValues(it.src).Add(float64(records))
	size := len(c.Data)
	if c.Open != nil {
		size = int(max(c.Size, 0))
	}
	p.m.BytesRead.WithLabelValues(it.src).Add(float64(size))
	if !c.Arrived.IsZero() {
		p.m.SourceLag.WithLabelValues(it.src).Set(time.Since(c.Arrived).Seconds())
	}
	held := p.notePosition(it)
	if replay {
		p.replayedTo(it)
		return nil
	}
	p.fresh = true
	if !held {
		p.pos[[2]string{it.src, c.Position.Object}] = store.Position{Source: it.src, Object: c.Position.Object, Token: c.Position.Token, Name: c.Position.Name}
	}
	if !c.Arrived.IsZero() && (p.oldest.IsZero() || c.Arrived.Before(p.oldest)) {
		p.oldest = c.Arrived
	}
	return nil
}

// replayedTo notes a replayed chunk that ends exactly at its object's
// committed position. Once every committed object is replayed to its
// position, the rebuilt state is committed even if nothing new follows:
// after a reload under new rules, the replay may be all there is (the
// records were committed under the old rules), and its findings must not
// wait for the next record to be written. The state is then the one the
// committed records give, so writing it replaces nothing with less.
func (p *processor) replayedTo(it item) {
	if p.committed[it.src][it.c.Position.Object] != it.c.Position.Token {
		return
	}
	if p.caughtUp == nil {
		p.caughtUp = map[[2]string]bool{}
	}
	p.caughtUp[[2]string{it.src, it.c.Position.Object}] = true
	p.pos[[2]string{it.src, it.c.Position.Object}] = store.Position{Source: it.src, Object: it.c.Position.Object, Token: it.c.Position.Token, Name: it.c.Position.Name}
	total := 0
	for _, objs := range p.committed {
		total += len(objs)
	}
	if len(p.caughtUp) == total {
		p.fresh = true
	}
}

// observeAlarms feeds a batch's records to the metric filters, each as a
// log event at its start time, as CloudWatch would see it.
func (p *processor) observeAlarms(b *flowlog.Batch, replay bool) {
	pos := b.Format.Index(flowlog.FieldStart)
	if pos < 0 {
		return
	}
	starts, present := b.Uints(pos, nil)
	var line []byte
	for i := 0; i < b.N; i++ {
		if b.Bad(i) || !present[i] {
			continue
		}
		line = b.Message(i, line[:0])
		changes := p.clock.Observe(time.Unix(int64(starts[i]), 0).UTC(), line)
		if !replay {
			p.alarmEv = append(p.alarmEv, changes...)
		}
	}
}

// commit saves the changed findings, the alarm states and the positions
// in one transaction, then answers what changed.
func (p *processor) commit(ctx context.Context) error {
	snapshot := p.snapshotDue()
	if !p.fresh && !snapshot {
		return nil
	}
	p.fireEarly()
	var early []string
	if p.earlyDiff {
		early = slices.Sorted(maps.Keys(p.peeked))
		if early == nil {
			early = []string{}
		}
	}
	fs := make([]finding.Finding, 0, len(p.changed))
	for _, r := range p.changed {
		f := r.Finding
		f.Target.Ports = slices.Clone(f.Target.Ports)
		f.Evidence = maps.Clone(f.Evidence)
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b finding.Finding) int { return strings.Compare(a.ID, b.ID) })
	fs = p.aboveFloor(fs)
	if p.policy != nil {
		fs = p.policy.Apply(fs)
	}
	c := store.StreamCommit{Stream: Stream, Findings: fs, Respond: p.pipeline != nil, AlarmChanges: p.alarmEv, Retract: p.retract, Early: early}
	for _, k := range slices.SortedFunc(maps.Keys(p.pos), func(a, b [2]string) int {
		return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1])
	}) {
		c.Positions = append(c.Positions, p.pos[k])
	}
	if snapshot {
		if err := p.addSnapshot(&c); err != nil {
			return fmt.Errorf("cannot save the detection state: %w", err)
		}
	}
	if p.clock != nil {
		for _, a := range p.clock.Engine.Alarms {
			s, since := a.State()
			c.Alarms = append(c.Alarms, store.AlarmState{Name: a.Alarm().Name, State: s, Since: since})
		}
	}
	if err := p.traffic.fill(&c, p.changed); err != nil {
		return fmt.Errorf("cannot save the traffic aggregates: %w", err)
	}
	res, err := p.st.CommitStream(ctx, c)
	if err != nil {
		return fmt.Errorf("cannot save the detection state: %w", err)
	}
	p.m.Commits.Inc()
	if snapshot {
		p.snapshotSaved()
	}
	p.traffic.committed(&c, res)
	now := time.Now()
	if !p.oldest.IsZero() {
		for range len(res.Changed) + len(p.alarmEv) {
			p.m.Latency.Observe(now.Sub(p.oldest).Seconds())
		}
	}
	isNew := map[string]bool{}
	for _, id := range res.New {
		isNew[id] = true
	}
	for _, f := range res.Changed {
		if isNew[f.ID] {
			p.m.Findings.WithLabelValues(f.Type).Inc()
		}
	}
	if len(res.Changed) > 0 || len(p.alarmEv) > 0 {
		p.log.Info("committed", "created", res.Created, "updated", res.Updated, "alarm_changes", len(p.alarmEv), "positions", len(c.Positions))
	}
	byName := map[string][]source.Position{}
	for _, ps := range c.Positions {
		byName[ps.Source] = append(byName[ps.Source], source.Position{Object: ps.Object, Token: ps.Token, Name: ps.Name})
	}
	for name, ps := range byName {
		if err := p.sources[name].Commit(ctx, ps); err != nil {
			p.log.Warn("source could not acknowledge", "source", name, "err", err)
		}
	}
	p.trail.committed(res.Changed) // the sign-in join's index of attackers
	clear(p.changed)
	clear(p.pos)
	p.alarmEv, p.oldest, p.fresh, p.retract, p.earlyDiff = nil, time.Time{}, false, nil, false
	p.respond(ctx)
	return nil
}

// fireEarly adds to the findings to commit those the open windows raise
// so far (Engine.Peek), each as it stands now, closed windows' counts
// included: a threshold crossed is a finding at this commit, not when the
// window closes. The store keeps one cumulative contribution per finding
// for the stream, so the closing window's finding (same id) replaces the
// peeked one. A peeked finding is written again only when it changed.
func (p *processor) fireEarly() {
	open := p.eng.Peek()
	seen := make(map[string]peekMark, len(open))
	for _, r := range open {
		m := markOf(r)
		seen[r.ID] = m
		if old, ok := p.peeked[r.ID]; ok && old == m {
			// Stored already; a closed window's smaller count must not
			// replace it.
			delete(p.changed, r.ID)
			continue
		}
		p.changed[r.ID] = r
	}
	for id := range p.peeked {
		if _, ok := seen[id]; ok {
			delete(p.inherited, id)
			continue
		}
		p.earlyDiff = true
		// Its window closed: the closed windows' finding replaces the
		// peeked one, or, when the closing did not confirm it (a stronger
		// rule took the activity), the early finding is withdrawn. An
		// early finding stored before the start is withdrawn only when the
		// state was rebuilt by replay; a source that cannot replay lost
		// the window, and the finding stays as stored.
		switch r := p.eng.Closed(id); {
		case r != nil:
			p.changed[id] = r
		case !p.inherited[id] || p.rebuilt:
			p.retract = append(p.retract, id)
		case p.snap.restored != nil && !p.earlySettled(id):
			// Restored from a snapshot: the records behind it may not be
			// delivered again yet. Ask again at the next commit.
			seen[id] = p.peeked[id]
			continue
		case p.snap.restored != nil:
			p.retract = append(p.retract, id)
		}
		delete(p.inherited, id)
	}
	for id := range seen {
		if _, ok := p.peeked[id]; !ok {
			p.earlyDiff = true
		}
	}
	p.peeked = seen
}

// respond answers what the commits queued: changed findings and alarm
// state changes.
func (p *processor) respond(ctx context.Context) {
	if p.pipeline == nil {
		return
	}
	pend, err := p.st.PendingResponses(ctx)
	if err != nil {
		p.log.Warn("cannot read the pending responses", "err", err)
		return
	}
	if len(pend) == 0 {
		return
	}
	events := make([]respond.Event, 0, len(pend))
	for _, q := range pend {
		switch {
		case q.Alarm != nil:
			events = append(events, respond.Event{Alarm: q.Alarm})
		case !q.Finding.Archived:
			events = append(events, respond.Event{Finding: q.Finding, Updated: q.Updated})
		}
	}
	rep, err := p.pipeline.Handle(ctx, events)
	p.countReport(rep)
	p.traffic.responded(rep.Outcomes)
	for _, o := range rep.Outcomes {
		p.log.Info("response", "kind", o.Kind, "finding", o.FindingID, "prefix", o.Prefix, "target", o.Target, "guard", o.Guard, "reason", o.Reason)
	}
	if err != nil {
		p.log.Warn("the response pipeline failed; it will be tried again", "err", err)
		return
	}
	if err := p.st.DonePending(ctx, pend); err != nil {
		p.log.Warn("cannot clear the pending responses", "err", err)
	}
}

// countReport adds a pipeline run's notifications to
// flowguard_notifications_total, by notifier and result.
func (p *processor) countReport(rep respond.Report) {
	for k, n := range rep.Notifications {
		p.m.Notifications.WithLabelValues(k.Notifier, k.Result).Add(float64(n))
	}
}
