package source

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	gdsdk "github.com/aws/aws-sdk-go-v2/service/guardduty"

	"github.com/flowguard/flowguard/internal/guardduty"
	"github.com/flowguard/flowguard/internal/store"
)

// GuardDutyConfig is a guardduty source's entry: the findings of one
// GuardDuty detector, polled with ListFindings/GetFindings and yielded
// as EventBridge "GuardDuty Finding" events (JSON lines), so that they
// take the path of findings received from EventBridge.
type GuardDutyConfig struct {
	DetectorID string `yaml:"detector_id"`
	AWSKeys    `yaml:",inline"`
	// PollInterval is the wait between polls (default 1m).
	PollInterval time.Duration `yaml:"poll_interval"`
	// Start is how far back the first poll reaches, by the findings'
	// updatedAt, when no position is saved (default 24h).
	Start time.Duration `yaml:"start"`
	// Sync carries archive and feedback between the store and GuardDuty,
	// both ways, after each poll (guardduty.Syncer).
	Sync bool `yaml:"sync"`
}

// NewGuardDuty builds a guardduty source.
func NewGuardDuty(cfg LiveConfig, deps LiveDeps) (Live, error) {
	var gc GuardDutyConfig
	if err := cfg.Decode(&gc); err != nil {
		return nil, err
	}
	if gc.DetectorID == "" {
		return nil, fmt.Errorf("sources.%s: a guardduty source needs detector_id (aws guardduty list-detectors)", cfg.Name)
	}
	if gc.PollInterval <= 0 {
		gc.PollInterval = time.Minute
	}
	if gc.Start <= 0 {
		gc.Start = 24 * time.Hour
	}
	base, err := newLiveBase(cfg, "", deps) // events are JSON, not flow logs
	if err != nil {
		return nil, err
	}
	return &guardDutySource{liveBase: base, cfg: gc}, nil
}

type guardDutySource struct {
	liveBase
	cfg GuardDutyConfig
	// api, when set (tests), replaces the client built from cfg.
	api guardduty.API
	// st is the daemon's store, for Sync.
	st *store.Store
}

// SetStore gives the source the daemon's store, which the sync of
// archive and feedback (the sync key) reads and writes.
func (g *guardDutySource) SetStore(st *store.Store) { g.st = st }

func (g *guardDutySource) object() string { return "guardduty:" + g.cfg.DetectorID }

// Run polls the detector from the saved checkpoint (the newest updatedAt
// yielded, and the findings yielded at it: guardduty.Checkpoint), yielding
// the findings updated since.
func (g *guardDutySource) Run(ctx context.Context, from []Position, emit Emit) error {
	api := g.api
	if api == nil {
		cfg, err := loadAWS(ctx, g.cfg.AWSKeys)
		if err != nil {
			return err
		}
		api = gdsdk.NewFromConfig(cfg)
	}
	// cp: the poll reads from cp.Millis on, and skips the findings it
	// lists (yielded and committed with that millisecond).
	cp := guardduty.Checkpoint{Millis: g.now().Add(-g.cfg.Start).UnixMilli()}
	for _, p := range from {
		if p.Object == g.object() {
			c, err := guardduty.ParseCheckpoint(p.Token)
			if err != nil {
				return err
			}
			cp = c
		}
	}
	bo := backoff{min: min(g.cfg.PollInterval, time.Second), max: 5 * time.Minute}
	for {
		fs, next, err := guardduty.Poll(ctx, api, g.cfg.DetectorID, cp.Millis)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			g.state.fail(err)
			if !bo.wait(ctx) {
				return nil
			}
			continue
		}
		bo.reset()
		g.state.connected()
		var data bytes.Buffer
		var newest time.Time
		atNext := guardduty.Checkpoint{Millis: next}
		if next == cp.Millis {
			atNext.IDs = slices.Clone(cp.IDs)
		}
		for i := range fs {
			f := &fs[i]
			ms, _ := guardduty.Millis(f)
			if cp.Has(f.ID, ms) {
				continue // yielded before, at the checkpoint's millisecond
			}
			ev, err := guardduty.Event(*f)
			if err != nil {
				return err
			}
			data.Write(ev)
			data.WriteByte('\n')
			if ms == next {
				atNext.IDs = append(atNext.IDs, f.ID)
			}
			if t := time.UnixMilli(ms); t.After(newest) {
				newest = t
			}
		}
		slices.Sort(atNext.IDs)
		atNext.IDs = slices.Compact(atNext.IDs)
		if data.Len() > 0 {
			pos := Position{Object: g.object(), Token: guardduty.FormatCheckpoint(atNext), Name: "guardduty detector " + g.cfg.DetectorID}
			if err := emit(ctx, Chunk{Object: pos.Object, Name: pos.Name, Data: data.Bytes(), Line: 1, Position: pos, Arrived: g.now()}); err != nil {
				return nil
			}
			g.state.read(pos, int64(data.Len()), newest)
		}
		cp = atNext
		if g.cfg.Sync && g.st != nil {
			sy := &guardduty.Syncer{API: api, DetectorID: g.cfg.DetectorID, Store: g.st}
			if _, err := sy.Sync(ctx); err != nil && ctx.Err() == nil {
				g.state.fail(err)
			}
		}
		if !sleep(ctx, g.cfg.PollInterval) {
			return nil
		}
	}
}

// Commit has nothing to acknowledge: the checkpoint is the position.
func (g *guardDutySource) Commit(context.Context, []Position) error { return nil }
