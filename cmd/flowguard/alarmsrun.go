package main

import (
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/spf13/cobra"
)

func newAlarmsRunCmd() *cobra.Command {
	var in inputFlags
	var cfgPath, output string
	var lateness time.Duration
	var db dbFlag
	var respondFlag bool
	cmd := &cobra.Command{
		Use:   "run --config FILE [--output table|json] PATH...",
		Short: "Run the configured metric filters and alarms over flow logs, on the records' own time",
		Long: `Run the alarms: section of the configuration (metric filters and
CloudWatch-style alarms, as written by "flowguard alarms import") over flow
log files, as CloudWatch would have over the same records: each record is a
log event at its start time, metrics are aggregated per minute, and every
alarm is evaluated minute by minute. Prints every state change (OK, ALARM,
INSUFFICIENT_DATA) with its reason.

Records may arrive out of order within --lateness; a minute is evaluated
once records more than --lateness newer have been seen, and every minute
up to the last record (plus the alarms' evaluation range) at the end.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("--output %q: use table or json", output)
			}
			if cfgPath == "" {
				return fmt.Errorf("--config FILE is required: it holds the metric filters and alarms")
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			if cfg.Alarms == nil || len(cfg.Alarms.Alarms) == 0 {
				return fmt.Errorf("%s has no alarms: section (flowguard alarms import writes one)", cfgPath)
			}
			eng, err := alarm.NewEngine(cfg.Alarms)
			if err != nil {
				return fmt.Errorf("%s: alarms: %w", cfgPath, err)
			}
			r, err := in.open(cmd, args)
			if err != nil {
				return err
			}
			var changes []alarm.StateChange
			clock := &alarm.Clock{Engine: eng, Lateness: lateness}
			type event struct {
				ts   time.Time
				line []byte
			}
			err = flowlog.ScanOrdered(r.ctx, r.scanner, r.inputs, func(_ int, b *flowlog.Batch) []event {
				pos := b.Format.Index(flowlog.FieldStart)
				var starts []uint64
				var present []bool
				if pos >= 0 {
					starts, present = b.Uints(pos, nil)
				}
				out := make([]event, 0, b.N)
				for i := 0; i < b.N; i++ {
					if b.Bad(i) || pos < 0 || !present[i] {
						continue // no time: CloudWatch would not have it either
					}
					out = append(out, event{time.Unix(int64(starts[i]), 0).UTC(), b.Message(i, nil)})
				}
				return out
			}, func(evs []event) error {
				for _, e := range evs {
					changes = append(changes, clock.Observe(e.ts, e.line)...)
				}
				return nil
			})
			if err == nil {
				changes = append(changes, clock.Drain(cfg.Alarms)...)
				err = writeStateChanges(cmd.OutOrStdout(), output, changes)
			}
			if err == nil && respondFlag {
				err = respondAlarms(cmd, &db, cfg, changes)
			}
			return r.finish(cmd.ErrOrStderr(), err)
		},
	}
	in.register(cmd)
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file with an alarms: section")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().DurationVar(&lateness, "lateness", 15*time.Minute, "how late records may arrive and still count")
	cmd.Flags().BoolVar(&respondFlag, "respond", false, "send the state changes through the configuration's response routes (notifications)")
	db.register(cmd)
	return cmd
}

// respondAlarms sends alarm state changes through the response pipeline,
// as CloudWatch sends them to the alarm's actions.
func respondAlarms(cmd *cobra.Command, db *dbFlag, cfg *config.Config, changes []alarm.StateChange) error {
	if cfg.Response == nil {
		return fmt.Errorf("--respond: %s has no response: section", cfg.Path)
	}
	st, err := db.open(cmd.Context(), false)
	if err != nil {
		return err
	}
	defer st.Close()
	pl, err := buildPipeline(cmd.Context(), cfg, st, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	events := make([]respond.Event, len(changes))
	for i := range changes {
		events[i] = respond.Event{Alarm: &changes[i]}
	}
	return respondEvents(cmd.Context(), cmd.ErrOrStderr(), pl, events)
}

func writeStateChanges(w io.Writer, output string, changes []alarm.StateChange) error {
	if output == "json" {
		return writeJSONList(w, changes)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tALARM\tFROM\tTO\tREASON")
	for _, c := range changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", escaped(c.Time.UTC().Format("2006-01-02 15:04"), c.Alarm, c.From, c.To, c.Reason)...)
	}
	return tw.Flush()
}
