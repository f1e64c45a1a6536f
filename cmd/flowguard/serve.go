package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/flowguard/flowguard/internal/daemon"
	"github.com/flowguard/flowguard/internal/server"
	"github.com/flowguard/flowguard/internal/store"
)

func newServeCmd(g *globals) *cobra.Command {
	var cfgPath, db, listen string
	cmd := &cobra.Command{
		Use:   "serve --config FILE [--db PATH]",
		Short: "Run the daemon: follow live sources, detect, respond, serve the HTTP API and metrics",
		Long: `Run flowguard as a daemon. It follows the configuration's sources: (files,
directories and globs as they grow, rotate and appear), runs the same
detection, metric filters, alarms and responses as the batch commands,
stores findings in the same database the findings command reads, and serves
the HTTP API (server.listen, default 127.0.0.1:8787) with Prometheus
metrics at /metrics.

SIGINT and SIGTERM drain what was read, save the checkpoints and exit 0;
SIGHUP reloads the configuration (a bad one is refused and the old one
kept). After a crash (even kill -9) a restart neither loses nor counts
twice anything: see docs/daemon.md.

  flowguard serve --config flowguard.yaml --db /var/lib/flowguard/flowguard.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgPath == "" {
				return fmt.Errorf("--config FILE is required: its sources: section says what to follow")
			}
			g.draining.Store(true)
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if db == "" {
				db = os.Getenv(store.EnvDB)
			}
			ctx := cmd.Context()
			// Caught from the start: SIGHUP's default action would end
			// the process.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			err = serve(ctx, log, hup, daemon.Options{
				ConfigPath:    cfgPath,
				DBPath:        db,
				Logger:        log,
				BuildPipeline: buildPipeline,
				Serve: func(ctx context.Context, d *daemon.Daemon) error {
					return server.Run(ctx, d, listen)
				},
			})
			if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
				return nil // stopped by a signal while starting: nothing to save yet
			}
			return err
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file with a sources: section")
	cmd.Flags().StringVar(&db, "db", "", "findings database (default: $"+store.EnvDB+", else ~/.local/share/flowguard/flowguard.db)")
	cmd.Flags().StringVar(&listen, "listen", "", "address of the HTTP API, overriding server.listen (default 127.0.0.1:8787)")
	return cmd
}

// serve runs the daemon until ctx is done, reloading its configuration on
// each value from hup.
func serve(ctx context.Context, log *slog.Logger, hup <-chan os.Signal, o daemon.Options) error {
	d, err := daemon.New(ctx, o)
	if err != nil {
		return err
	}
	defer d.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading the configuration", "config", o.ConfigPath)
				_ = d.Reload(ctx)
			case <-done:
				return
			}
		}
	}()
	return d.Run(ctx)
}
