// Package daemon is flowguard serve: live sources → decoding → detection
// and alarms → findings in the store → responses, with one lifecycle
// driver, checkpoints saved with the state they produced, and the HTTP API
// (package server). docs/daemon.md describes it.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/server"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/flowguard/flowguard/internal/store"
)

// PipelineBuilder builds the response pipeline a configuration describes
// (the same one flowguard detect --respond uses).
type PipelineBuilder func(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*respond.Pipeline, error)

// Options configure a Daemon.
type Options struct {
	// ConfigPath is the configuration file; it is read again on Reload.
	ConfigPath string
	// DBPath is the store; "" means store.DefaultPath.
	DBPath string
	// Logger is the one logger; each component gets it with its name.
	Logger *slog.Logger
	// BuildPipeline builds the response pipeline when the configuration
	// has a response: section; nil means no responses.
	BuildPipeline PipelineBuilder
	// Serve, when set, runs the HTTP API until its context is done; it is
	// started last and stopped first.
	Serve func(ctx context.Context, d *Daemon) error
	// ExpireEvery is how often blocks whose time is up are removed (and
	// unblocks asked for carried out); 0 means every minute.
	ExpireEvery time.Duration
}

// Daemon is a running flowguard serve.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	Metrics *Metrics
	events  *server.Hub // live events for the dashboard
	recent  *recentRing // stream sources' data for queries (recent.go)

	mu      sync.Mutex
	cfg     *config.Config
	st      *store.Store
	sources []named
	proc    *processor
	// restart asks the running generation of processor and sources to
	// stop so that the next one starts with the configuration in force.
	restart chan struct{}
}

type named struct {
	name string
	src  source.Live
}

// New reads the configuration and opens the store; it starts nothing.
func New(ctx context.Context, o Options) (*Daemon, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	d := &Daemon{opts: o, log: o.Logger, cfg: cfg, Metrics: NewMetrics(), events: server.NewHub(), restart: make(chan struct{}, 1),
		recent: newRecentRing(recentLimit(cfg))}
	if d.sources, err = d.buildSources(cfg); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, o.DBPath)
	if err != nil {
		return nil, err
	}
	d.st = st
	d.Metrics.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowguard_blocks_active",
		Help: "Blocks in force (network ACL entries, WAF IP set addresses)."}, func() float64 {
		rows, err := st.ListBlocks(context.Background(), store.BlockFilter{States: []store.BlockState{store.BlockActive}})
		if err != nil {
			return -1
		}
		return float64(len(rows))
	}))
	return d, nil
}

// buildSources builds the sources a configuration names.
func (d *Daemon) buildSources(cfg *config.Config) ([]named, error) {
	if len(cfg.Sources) == 0 {
		return nil, fmt.Errorf("%s has no sources: section: name what to follow (see docs/daemon.md)", cfg.Path)
	}
	var out []named
	for _, sc := range cfg.Sources {
		src, err := source.NewLive(sc, source.LiveDeps{Logger: d.log.With("component", "source", "source", sc.Name), Dir: cfg.Dir})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Path, err)
		}
		out = append(out, named{sc.Name, src})
	}
	return out, nil
}

// Registry returns the registry of the daemon's metrics.
func (d *Daemon) Registry() *prometheus.Registry { return d.Metrics.Registry }

// Events returns the hub the daemon publishes live events into (GET
// /api/v1/events).
func (d *Daemon) Events() *server.Hub { return d.events }

// Store returns the daemon's store.
func (d *Daemon) Store() *store.Store { return d.st }

// Config returns the configuration in force.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Logger returns the daemon's logger.
func (d *Daemon) Logger() *slog.Logger { return d.log }

// Sources returns each source's status, in configuration order.
func (d *Daemon) Sources() []source.Status {
	d.mu.Lock()
	srcs := d.sources
	d.mu.Unlock()
	out := make([]source.Status, len(srcs))
	for i, s := range srcs {
		out[i] = s.src.Status()
		out[i].Name = s.name
	}
	return out
}

// Ready reports whether the checkpoints are loaded and every source has
// reached its data.
func (d *Daemon) Ready() bool {
	d.mu.Lock()
	p, srcs := d.proc, d.sources
	d.mu.Unlock()
	if p == nil || !p.started.Load() {
		return false
	}
	for _, s := range srcs {
		if !s.src.Status().Connected {
			return false
		}
	}
	return true
}

// Close closes the store.
func (d *Daemon) Close() error { return d.st.Close() }

// newProcessor builds the engines from the configuration and loads the
// committed positions.
func (d *Daemon) newProcessor(ctx context.Context, cfg *config.Config, sources []named) (*processor, [][]source.Position, error) {
	p := &processor{log: d.log.With("component", "processor"), st: d.st, m: d.Metrics,
		in: make(chan item, 16), sources: map[string]source.Live{}, committed: map[string]map[string]string{},
		changed: map[string]*detect.Result{}, peeked: map[string]peekMark{}, pos: map[[2]string]store.Position{}, errSeen: map[string]int{},
		reloads: make(chan reload, 1), expireEvery: d.opts.ExpireEvery}
	if p.expireEvery <= 0 {
		p.expireEvery = time.Minute
	}
	opts, err := cfg.DetectOptions()
	if err != nil {
		return nil, nil, err
	}
	opts.OnFinding = func(r *detect.Result) { p.changed[r.ID] = r }
	p.trail = newTrailState(cfg, p)
	p.traffic = newDashHook(cfg, d.events)
	if cfg.Alarms != nil && len(cfg.Alarms.Alarms) > 0 {
		eng, err := alarm.NewEngine(cfg.Alarms)
		if err != nil {
			return nil, nil, fmt.Errorf("alarms: %w", err)
		}
		p.clock = &alarm.Clock{Engine: eng, Lateness: time.Duration(cfg.Detectors.AllowedLateness)}
		p.alarmCfg = cfg.Alarms
	}
	if err := p.setupSnapshots(ctx, cfg, sources, opts); err != nil {
		return nil, nil, err
	}
	if p.eng == nil {
		if p.eng, err = detect.New(opts); err != nil {
			return nil, nil, err
		}
	}
	if p.policy, err = cfg.Config.Policy(); err != nil {
		return nil, nil, err
	}
	if cfg.Response != nil && d.opts.BuildPipeline != nil {
		if p.pipeline, err = d.opts.BuildPipeline(ctx, cfg, d.st, d.log.With("component", "respond")); err != nil {
			return nil, nil, err
		}
	}
	early, err := d.st.LoadEarly(ctx, Stream)
	if err != nil {
		return nil, nil, err
	}
	p.inherited = map[string]bool{}
	for _, id := range early {
		p.peeked[id] = peekMark{} // written again if still open
		p.inherited[id] = true
	}
	p.rebuilt = true
	from := make([][]source.Position, len(sources))
	p.recent, p.streamed = d.recent, map[string]bool{}
	for i, s := range sources {
		p.sources[s.name] = s.src
		p.streamed[s.name] = s.src.Status().Type != "files"
		if ss, ok := s.src.(interface{ SetStore(*store.Store) }); ok {
			ss.SetStore(d.st) // the guardduty source's archive/feedback sync
		}
		saved, err := d.st.LoadPositions(ctx, s.name)
		if err != nil {
			return nil, nil, err
		}
		p.committed[s.name] = map[string]string{}
		for _, ps := range saved {
			p.committed[s.name][ps.Object] = ps.Token
			from[i] = append(from[i], source.Position{Object: ps.Object, Token: ps.Token, Name: ps.Name})
		}
		r, ok := s.src.(source.Replayer)
		if !ok || !r.Replayable() {
			p.rebuilt = false
		}
		if p.snap.restored != nil {
			// The state holds every source's records up to its position
			// in the snapshot: each resumes there. A source that replays
			// reads again what it committed after it, which rebuilds the
			// rest of the state without being written twice.
			from[i] = snapshotFrom(p.snap.restored, s.name)
			continue
		}
		if p.snap.on && (!ok || !r.Replayable()) {
			for _, ps := range saved {
				p.snap.at[[2]string{s.name, ps.Object}] = ps
			}
		}
		if ok && r.Replayable() {
			// Read everything again to rebuild the in-memory state; what
			// was committed is recognised and not written twice.
			from[i] = nil
			if len(saved) > 0 {
				p.log.Info("replaying the source to rebuild the detection state", "source", s.name, "objects", len(saved))
			}
		}
	}
	return p, from, nil
}

// Run starts the components in order (store, response pipeline,
// processor, sources, HTTP API) and, when ctx is done or one of them
// fails, stops them in reverse: the API, then the sources, then the
// processor, which drains what the sources handed over and commits it.
// A reload that changes the detection (see Reload) stops the processor
// and the sources the same way and starts them again under the new
// configuration, the API staying up.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// The HTTP API: started first here so that it answers (not ready)
	// while the state is rebuilt, and stopped after the others' context
	// is done.
	apiDone := make(chan error, 1)
	if d.opts.Serve != nil {
		go func() {
			err := d.opts.Serve(ctx, d)
			if err != nil && !errors.Is(err, context.Canceled) {
				cancel(fmt.Errorf("http: %w", err))
			}
			apiDone <- err
		}()
	} else {
		apiDone <- nil
	}

	var err error
	for {
		d.mu.Lock()
		cfg, sources := d.cfg, d.sources
		d.mu.Unlock()
		var again bool
		again, err = d.generation(ctx, cfg, sources)
		if err != nil || !again || ctx.Err() != nil {
			break
		}
		d.log.Info("restarting detection under the new configuration: replaying the sources")
	}
	cancel(nil)
	apiErr := <-apiDone
	if errors.Is(apiErr, context.Canceled) {
		apiErr = nil
	}
	if err == nil && context.Cause(ctx) != nil && !errors.Is(context.Cause(ctx), context.Canceled) {
		err = context.Cause(ctx)
	}
	d.log.Info("stopped")
	return errors.Join(err, apiErr)
}

// generation runs one processor and the sources until ctx is done, the
// processor fails, or a restart is asked for (again is then true).
func (d *Daemon) generation(ctx context.Context, cfg *config.Config, sources []named) (again bool, err error) {
	p, from, err := d.newProcessor(ctx, cfg, sources)
	if err != nil {
		return false, err
	}
	if p.pipeline != nil {
		rep, err := p.pipeline.Start(ctx)
		p.countReport(rep)
		if err != nil {
			d.log.Warn("cannot resume earlier response work", "err", err)
		}
		p.respond(ctx) // what a crash left queued
	}
	d.mu.Lock()
	d.proc = p
	d.mu.Unlock()

	// The processor: stopped last, by closing its input.
	procDone := make(chan struct{})
	var procErr error
	go func() {
		defer close(procDone)
		// Not cancelled with the others: it stops when its input is
		// closed, after the sources, so that nothing handed over is lost.
		procErr = p.run(context.WithoutCancel(ctx))
	}()

	// The sources: each emits into the processor's input.
	srcCtx, stopSources := context.WithCancel(ctx)
	defer stopSources()
	var srcWG sync.WaitGroup
	for i, s := range sources {
		srcWG.Add(1)
		go func() {
			defer srcWG.Done()
			emit := func(ctx context.Context, c source.Chunk) error {
				select {
				case p.in <- item{src: s.name, c: c}:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				case <-procDone:
					return errors.New("the processor stopped")
				}
			}
			if err := s.src.Run(srcCtx, from[i], emit); err != nil && srcCtx.Err() == nil {
				d.log.Error("source stopped", "source", s.name, "err", err)
			}
		}()
	}
	d.log.Info("started", "sources", len(sources), "db", d.st.Path())

	select {
	case <-ctx.Done():
	case <-procDone:
	case <-d.restart:
		again = true
	}
	d.log.Info("stopping: draining the sources' data and saving the checkpoints")
	stopSources()
	srcWG.Wait()
	close(p.in)
	<-procDone
	if procErr != nil {
		return false, fmt.Errorf("processor: %w", procErr)
	}
	return again, nil
}

// Reload reads the configuration again. A configuration that does not
// load is refused and the one in force is kept. Suppression rules,
// trusted IPs, response routes and notifiers change at once, in the
// running processor. A change to the detectors, networks, threat lists,
// alarms or sources restarts the processor and the sources under the new
// configuration: the detection state is rebuilt by replaying the sources
// (the engines cannot change their rules while keeping their windows),
// and what was committed is not written twice.
func (d *Daemon) Reload(ctx context.Context) error {
	cfg, err := config.Load(d.opts.ConfigPath)
	if err != nil {
		d.log.Error("configuration refused; keeping the one in force", "err", err)
		return err
	}
	policy, err := cfg.Config.Policy()
	if err != nil {
		d.log.Error("configuration refused; keeping the one in force", "err", err)
		return err
	}
	var pl *respond.Pipeline
	if cfg.Response != nil && d.opts.BuildPipeline != nil {
		if pl, err = d.opts.BuildPipeline(ctx, cfg, d.st, d.log.With("component", "respond")); err != nil {
			d.log.Error("configuration refused; keeping the one in force", "err", err)
			return err
		}
	}
	d.mu.Lock()
	old, p := d.cfg, d.proc
	d.mu.Unlock()
	d.recent.setLimit(recentLimit(cfg))
	if changed(old, cfg) {
		// The engines cannot change their rules while keeping their
		// windows: the state is rebuilt under the new rules by replay.
		sources, err := d.buildSources(cfg)
		if err != nil {
			d.log.Error("configuration refused; keeping the one in force", "err", err)
			return err
		}
		d.mu.Lock()
		d.cfg, d.sources = cfg, sources
		d.mu.Unlock()
		d.log.Info("detection settings, networks, threat lists, alarms or sources changed: restarting detection")
		select {
		case d.restart <- struct{}{}:
		default:
		}
		return nil
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	if p != nil {
		select {
		case p.reloads <- reload{policy: policy, pipeline: pl}:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			// The processor is stopping or restarting: the next one
			// starts from the configuration in force, which is cfg.
		}
	}
	return nil
}

// changed reports whether the parts of the configuration that need a
// restart differ.
func changed(a, b *config.Config) bool {
	part := func(c *config.Config) string {
		x := *c
		x.Response, x.Notify, x.Server = nil, nil, nil
		x.Config = b.Config
		out, _ := x.Marshal()
		return string(out) + fmt.Sprint(c.Threats) // the lists' contents, not only their paths
	}
	return part(a) != part(b)
}

// TokenPath returns where the API token is: server.token_file, else
// "token" next to the database.
func (d *Daemon) TokenPath() string {
	cfg := d.Config()
	if cfg.Server != nil && cfg.Server.TokenFile != "" {
		if filepath.IsAbs(cfg.Server.TokenFile) || cfg.Dir == "" {
			return cfg.Server.TokenFile
		}
		return filepath.Join(cfg.Dir, cfg.Server.TokenFile)
	}
	return filepath.Join(filepath.Dir(d.st.Path()), "token")
}
