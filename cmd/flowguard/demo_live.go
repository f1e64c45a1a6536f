package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/daemon"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/server"
	"github.com/flowguard/flowguard/internal/store"
	"github.com/flowguard/flowguard/internal/synth"
)

// The live demo's traffic: half an hour of one VPC (about 2,000 records a
// minute), shifted in time so that the first port scan starts
// demoScanDelay after the start. What came before it is written at once
// (a history to look at); the rest is appended as its time comes.
const (
	demoRecords   = 60_000
	demoDuration  = 30 * time.Minute
	demoScanDelay = 10 * time.Second
	demoTick      = time.Second
)

// demoConfig is the daemon's configuration for the demo: detection windows
// short enough that an attack is a finding within a minute, and dry-run
// responses (block-dry-run in the audit trail) for every finding of
// medium severity or more.
const demoConfig = `# flowguard demo: written by flowguard demo
home_networks: [%s]
threat_lists: [threats.txt]
detectors:
  window: 30s
  allowed_lateness: 10s
server:
  listen: %s
sources:
  - name: demo
    type: files
    paths: [logs/]
    poll_interval: 250ms
# The network ACL below is simulated by the demo: nothing reaches AWS.
response:
  mode: dry-run
  min_severity: 4
  max_blocks_per_hour: 1000
  ban_time: 1h
  nacl:
    network_acls: [%s]
  routes:
    - name: demo
      min_severity: 4
      block: [nacl]
`

type liveDemoOptions struct {
	seed   uint64
	keep   string
	listen string
}

// demoRecord is a generated record as text, with its end time (when AWS
// would deliver it).
type demoRecord struct {
	end  int64
	line []byte
}

// runLiveDemo is flowguard demo: the daemon on a temporary directory, fed
// in real time, with the dashboard's address on standard output.
func runLiveDemo(cmd *cobra.Command, g *globals, o liveDemoOptions) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	log, err := g.logger(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	dir := o.keep
	if dir == "" {
		tmp, err := os.MkdirTemp("", "flowguard-demo-")
		if err != nil {
			return fmt.Errorf("cannot make the demo's directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if _, err := os.Stat(filepath.Join(dir, "flowguard.db")); err == nil {
		return fmt.Errorf("--keep %s holds an earlier demo: name a new directory", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return fmt.Errorf("cannot make the demo's directory: %w", err)
	}
	now := time.Now()
	recs, gen, labels, err := demoTraffic(o.seed, now)
	if err != nil {
		return err
	}
	var home []string
	for _, p := range gen.HomeNetworks() {
		home = append(home, p.String())
	}
	var threats strings.Builder
	threats.WriteString("# the demo's threat list\n")
	for _, a := range gen.ThreatList() {
		threats.WriteString(a.String() + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "threats.txt"), []byte(threats.String()), 0o644); err != nil {
		return fmt.Errorf("cannot write the demo's threat list: %w", err)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", o.listen, err)
	}
	defer ln.Close()
	cfgPath := filepath.Join(dir, "flowguard.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, demoConfig, strings.Join(home, ", "), ln.Addr(), demoACLID), 0o644); err != nil {
		return fmt.Errorf("cannot write the demo's configuration: %w", err)
	}
	logPath := filepath.Join(dir, "logs", "flowlogs.log")
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot write the demo's flow logs: %w", err)
	}
	defer f.Close()
	// The history before the first scan, at once.
	next, err := appendDue(f, recs, 0, now.Unix())
	if err != nil {
		return err
	}
	d, err := daemon.New(ctx, daemon.Options{ConfigPath: cfgPath, DBPath: filepath.Join(dir, "flowguard.db"), Logger: log,
		BuildPipeline: func(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*respond.Pipeline, error) {
			return buildPipelineWith(ctx, cfg, st, log, demoBlockers)
		},
		Serve: func(ctx context.Context, d *daemon.Daemon) error {
			s, err := server.New(d)
			if err != nil {
				return err
			}
			return s.Serve(ctx, ln)
		}})
	if err != nil {
		return err
	}
	defer d.Close()
	tok, err := os.ReadFile(d.TokenPath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot read the API token: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- d.Run(runCtx) }()
	// The token is generated when the API starts.
	for i := 0; len(tok) == 0 && i < 100; i++ {
		time.Sleep(50 * time.Millisecond)
		tok, _ = os.ReadFile(d.TokenPath())
	}
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(out, "flowguard demo: one VPC's traffic, live, with labelled attacks at known moments.\n\n")
	fmt.Fprintf(out, "Open the dashboard: %s\n", url)
	fmt.Fprintf(out, "API token (for archive, suppress, unblock and queries): %s\n", strings.TrimSpace(string(tok)))
	fmt.Fprintf(out, "Data, configuration and database: %s%s\n\n", dir, map[bool]string{true: " (removed at exit; --keep DIR keeps them)"}[o.keep == ""])
	fmt.Fprintf(out, "Attacks (times in UTC; responses are dry runs: flowguard records what it would block):\n")
	for _, l := range labels {
		target := l.Target
		if target == "" {
			target = "many hosts"
		}
		when := "history"
		if l.FirstSeen.After(now) {
			when = "in " + l.FirstSeen.Sub(now).Round(time.Second).String()
		}
		fmt.Fprintf(out, "  %s %-12s %-45s %s → %s\n", l.FirstSeen.UTC().Format("15:04:05"), when, l.Type, l.Actor, target)
	}
	fmt.Fprintf(out, "\nCtrl-C stops the demo.\n")
	if f, ok := out.(interface{ Sync() error }); ok {
		_ = f.Sync()
	}
	tick := time.NewTicker(demoTick)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		case t := <-tick.C:
			if next < len(recs) {
				if next, err = appendDue(f, recs, next, t.Unix()); err != nil {
					cancel()
					<-errc
					return err
				}
				if next == len(recs) {
					log.Info("the demo's traffic is all written; the dashboard stays up", "records", len(recs))
				}
			}
		}
	}
}

// appendDue writes the records from recs[i] on that end by now and returns
// the index of the first one not written.
func appendDue(w io.Writer, recs []demoRecord, i int, now int64) (int, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	for ; i < len(recs) && recs[i].end <= now; i++ {
		bw.Write(recs[i].line)
	}
	if err := bw.Flush(); err != nil {
		return i, fmt.Errorf("cannot write the demo's flow logs: %w", err)
	}
	return i, nil
}

// demoTraffic generates the demo's records as text lines, shifted so that
// the first port scan starts demoScanDelay after now, in order of end
// time; it returns them with the generator and its labels, shifted too.
func demoTraffic(seed uint64, now time.Time) ([]demoRecord, *synth.Generator, []synth.Label, error) {
	cfg := synth.DefaultConfig()
	cfg.Records, cfg.Seed, cfg.Duration = demoRecords, seed, demoDuration
	cfg.LateShare = -1 // the records are written in time order anyway
	gen := synth.New(cfg)
	var raw []synth.Record
	if err := gen.Each(func(r *synth.Record) error { raw = append(raw, *r); return nil }); err != nil {
		return nil, nil, nil, fmt.Errorf("cannot generate the demo's traffic: %w", err)
	}
	labels := gen.Labels()
	scan := slices.IndexFunc(labels, func(l synth.Label) bool { return l.Scenario == "vertical-portscan" })
	if scan < 0 {
		return nil, nil, nil, fmt.Errorf("the demo's traffic has no port scan (seed %d): try another --seed", seed)
	}
	shift := now.Add(demoScanDelay).Unix() - labels[scan].FirstSeen.Unix()
	recs := make([]demoRecord, len(raw))
	for i := range raw {
		r := &raw[i]
		if r.Start != 0 {
			r.Start += shift
		}
		if r.End != 0 {
			r.End += shift
		}
		line := gen.AppendText(nil, r)
		recs[i] = demoRecord{end: r.End, line: append(line, '\n')}
	}
	slices.SortStableFunc(recs, func(a, b demoRecord) int { return int(a.end - b.end) })
	d := time.Duration(shift) * time.Second
	for i := range labels {
		labels[i].FirstSeen = labels[i].FirstSeen.Add(d)
		labels[i].LastSeen = labels[i].LastSeen.Add(d)
	}
	return recs, gen, labels, nil
}
