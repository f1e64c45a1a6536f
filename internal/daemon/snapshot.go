package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/flowguard/flowguard/internal/store"
)

// Engine snapshots (docs/daemon.md, "Engine snapshots"): when a source
// cannot read its data again after a restart (SQS notifications, Kinesis,
// Kafka, Firehose, CloudWatch Logs), the processor saves the detection
// engine's state every snapshot_interval in the commit transaction, with
// the position of every source at that moment. Such a source's positions
// are saved, and its Commit called (the SQS delete, the Kafka offset
// commit, the Firehose answer), only in those snapshot commits: what it
// handed over since the last snapshot is not acknowledged, so after a
// crash it is delivered again and fed to the restored state. Sources that
// replay (files) keep committing their positions at every group; at a
// restart they resume from the snapshot's positions, and what they read
// up to their committed positions rebuilds the state without being
// written again (processor.replayed).

// DefaultSnapshotInterval is server.snapshot_interval's default.
const DefaultSnapshotInterval = 30 * time.Second

// DefaultSnapshotIntervalFirehose is the default when a firehose source is
// configured: each delivery waits for its answer until the next snapshot
// commit, and a delivery stream that waits long sends less.
const DefaultSnapshotIntervalFirehose = 5 * time.Second

// maxSnapshotIntervalFirehose bounds server.snapshot_interval when a
// firehose source is configured: Firehose waits 3 minutes for an answer,
// and a delivery is answered at the first snapshot commit after it.
const maxSnapshotIntervalFirehose = 2 * time.Minute

// snapshots is the processor's snapshot schedule and what it holds back.
type snapshots struct {
	// on: some source cannot replay; snapshots are taken.
	on    bool
	every time.Duration
	last  time.Time // last snapshot commit
	// held are the positions of sources that cannot replay, processed
	// since the last snapshot: saved and acknowledged with the next one.
	held map[[2]string]store.Position
	// at is every source's position in the state the engine holds.
	at map[[2]string]store.Position
	// dirty: something was processed since the last snapshot.
	dirty bool
	// final: the processor is stopping; the next commit takes one.
	final bool
	// restored is the snapshot the state started from, nil if none.
	restored *store.EngineSnapshot
	// floor holds, after a restore, the findings as the stream stored
	// them before the restart, until the restored state reaches them.
	floor map[string]finding.Finding
}

// snapshotInterval reads server.snapshot_interval and checks it against
// the sources configured.
func snapshotInterval(cfg *config.Config) (time.Duration, error) {
	every := DefaultSnapshotInterval
	for _, sc := range cfg.Sources {
		if sc.Type == "firehose" {
			every = DefaultSnapshotIntervalFirehose
		}
	}
	if cfg.Server != nil && cfg.Server.SnapshotInterval != 0 {
		every = time.Duration(cfg.Server.SnapshotInterval)
	}
	if every < 100*time.Millisecond || every > time.Hour {
		return 0, fmt.Errorf("%s: server.snapshot_interval: %s is out of range (100ms to 1h)", cfg.Path, every)
	}
	for _, sc := range cfg.Sources {
		if sc.Type == "firehose" && every > maxSnapshotIntervalFirehose {
			return 0, fmt.Errorf("%s: server.snapshot_interval: %s is too long for firehose source %q: a delivery is answered at the next snapshot, and Firehose waits 3 minutes (at most %s)",
				cfg.Path, every, sc.Name, maxSnapshotIntervalFirehose)
		}
	}
	return every, nil
}

// replayable reports whether source name reads its data again after a
// restart (source.Replayer).
func (p *processor) replayable(name string) bool {
	r, ok := p.sources[name].(source.Replayer)
	return ok && r.Replayable()
}

// notePosition records a processed chunk's position: in the state the
// engine holds and, for a source that cannot replay, held back for the
// next snapshot. It reports whether the position is held.
func (p *processor) notePosition(it item) bool {
	if !p.snap.on {
		return false
	}
	k := [2]string{it.src, it.c.Position.Object}
	ps := store.Position{Source: it.src, Object: it.c.Position.Object, Token: it.c.Position.Token, Name: it.c.Position.Name}
	p.snap.at[k] = ps
	p.snap.dirty = true
	if p.replayable(it.src) {
		return false
	}
	p.snap.held[k] = ps
	return true
}

// snapshotDue reports whether the next commit takes a snapshot.
func (p *processor) snapshotDue() bool {
	s := &p.snap
	return s.on && (s.dirty || len(s.held) > 0) && (s.final || time.Since(s.last) >= s.every)
}

// addSnapshot makes commit c a snapshot commit: the engine's state, every
// source's position in it, and the held positions, which c saves and the
// sources then acknowledge.
func (p *processor) addSnapshot(c *store.StreamCommit) error {
	var buf bytes.Buffer
	buf.Grow(1 << 20)
	start := time.Now()
	if err := p.eng.Snapshot(&buf); err != nil {
		return err
	}
	keys := func(m map[[2]string]store.Position) [][2]string {
		return slices.SortedFunc(maps.Keys(m), func(a, b [2]string) int {
			return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1])
		})
	}
	snap := &store.EngineSnapshot{State: buf.Bytes(), Positions: []store.Position{}}
	if p.clock != nil {
		a, err := p.clock.SaveState()
		if err != nil {
			return err
		}
		snap.Alarms = a
	}
	for _, k := range keys(p.snap.at) {
		snap.Positions = append(snap.Positions, p.snap.at[k])
	}
	for _, k := range keys(p.snap.held) {
		c.Positions = append(c.Positions, p.snap.held[k])
	}
	c.Snapshot = snap
	p.m.SnapshotBytes.Set(float64(buf.Len()))
	p.m.SnapshotSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// snapshotSaved notes that a snapshot commit went through.
func (p *processor) snapshotSaved() {
	clear(p.snap.held)
	p.snap.dirty = false
	p.snap.last = time.Now()
}

// restoreSnapshot builds the engine for opts from the stream's snapshot,
// when there is one taken under the same detection options. It returns
// the engine (nil: start empty) and the snapshot.
func (p *processor) restoreSnapshot(ctx context.Context, opts detect.Options) (*detect.Engine, *store.EngineSnapshot) {
	snap, err := p.st.LoadSnapshot(ctx, Stream)
	if err != nil {
		p.log.Warn("cannot read the engine snapshot; starting from empty windows", "err", err)
		return nil, nil
	}
	if snap == nil {
		return nil, nil
	}
	eng, err := detect.Restore(bytes.NewReader(snap.State), opts)
	switch {
	case errors.Is(err, detect.ErrSnapshotOptions):
		p.log.Warn("the engine snapshot was taken under other detection settings; starting from empty windows (sources that replay rebuild theirs)", "taken", snap.TakenAt)
		return nil, nil
	case err != nil:
		p.log.Warn("cannot restore the engine snapshot; starting from empty windows (sources that replay rebuild theirs)", "taken", snap.TakenAt, "err", err)
		return nil, nil
	}
	p.log.Info("detection state restored from the engine snapshot", "taken", snap.TakenAt, "bytes", len(snap.State), "stored_bytes", snap.Stored)
	return eng, snap
}

// snapshotFrom returns where source name resumes after a restore: its
// positions in the snapshot.
func snapshotFrom(snap *store.EngineSnapshot, name string) []source.Position {
	var out []source.Position
	for _, ps := range snap.Positions {
		if ps.Source == name {
			out = append(out, source.Position{Object: ps.Object, Token: ps.Token, Name: ps.Name})
		}
	}
	return out
}

// setupSnapshots decides whether the processor takes snapshots (some
// source cannot replay) and, if so, restores the engine from the stream's
// snapshot when there is a usable one (p.eng is then set).
func (p *processor) setupSnapshots(ctx context.Context, cfg *config.Config, sources []named, opts detect.Options) error {
	p.snap = snapshots{held: map[[2]string]store.Position{}, at: map[[2]string]store.Position{}}
	for _, s := range sources {
		if r, ok := s.src.(source.Replayer); !ok || !r.Replayable() {
			p.snap.on = true
		}
	}
	if !p.snap.on {
		return nil
	}
	every, err := snapshotInterval(cfg)
	if err != nil {
		return err
	}
	p.snap.every, p.snap.last = every, time.Now()
	eng, snap := p.restoreSnapshot(ctx, opts)
	if eng == nil {
		return nil
	}
	p.eng, p.snap.restored = eng, snap
	if p.snap.floor, err = p.st.StreamContributions(ctx, Stream); err != nil {
		return err
	}
	if p.clock != nil && len(snap.Alarms) > 0 {
		if err := p.clock.RestoreState(snap.Alarms); err != nil {
			p.log.Warn("cannot restore the alarms' state from the snapshot; they start again from their saved states", "err", err)
		}
	}
	names := map[string]bool{}
	for _, s := range sources {
		names[s.name] = true
	}
	for _, ps := range snap.Positions {
		if names[ps.Source] {
			p.snap.at[[2]string{ps.Source, ps.Object}] = ps
		}
	}
	return nil
}

// earlySettled reports, for an early finding stored before a restart from
// a snapshot, whether the restored engine has judged every window it
// spans: if the closed windows did not confirm it by then, they never
// will, and it is withdrawn as an uninterrupted run would have.
func (p *processor) earlySettled(id string) bool {
	f, err := p.st.GetFinding(context.Background(), id)
	if err != nil {
		return true // gone from the store: nothing to keep
	}
	return p.eng.JudgedBefore().After(f.LastSeen)
}

// aboveFloor drops, after a restore, the findings whose values are still
// below what the stream stored before the restart: the records that
// brought them there are delivered again but not all processed again
// yet. Writing them would make counts go down for a while (and answer
// the change); once a finding reaches its stored value it is written as
// usual.
func (p *processor) aboveFloor(fs []finding.Finding) []finding.Finding {
	if len(p.snap.floor) == 0 {
		return fs
	}
	out := fs[:0]
	for _, f := range fs {
		if fl, ok := p.snap.floor[f.ID]; ok {
			if f.Count < fl.Count || f.LastSeen.Before(fl.LastSeen) || f.FirstSeen.After(fl.FirstSeen) {
				continue
			}
			delete(p.snap.floor, f.ID)
		}
		out = append(out, f)
	}
	return out
}
