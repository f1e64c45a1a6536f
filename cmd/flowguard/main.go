// Command flowguard finds attacks in AWS VPC Flow Logs and answers them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(bootstrapArgs(os.Args[0], os.Args[1:])))
}

// run executes the command line args and returns the process exit code.
// Every command runs under one context that SIGINT and SIGTERM cancel, so
// that a long query or detect stops cleanly (its CPU profile written) and
// the daemon drains and saves its checkpoints; a second signal kills.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	root, g := newRoot()
	root.SetArgs(args)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// A command blocked in a read that no context reaches (a pipe
		// on standard input) is abandoned after a grace period; the
		// daemon, which drains and saves its checkpoints, is waited for.
		select {
		case err = <-done:
		case <-waitGrace(g):
			err = context.Canceled
		}
	}
	g.finish() // cobra skips the post-run hooks when a command fails
	return exitCode(ctx, err, os.Stderr)
}

// interruptGrace is how long a command may take to stop after a signal.
const interruptGrace = 2 * time.Second

// waitGrace returns a channel closed after the grace period, unless the
// command drains on its own (serve), in which case it never closes.
func waitGrace(g *globals) <-chan time.Time {
	if g.draining.Load() {
		return nil
	}
	return time.After(interruptGrace)
}

// exitCode reports err on w and returns the exit code for it: 130 after
// an interruption, as shells do.
func exitCode(ctx context.Context, err error, w io.Writer) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(exitError); ok {
		if ee.msg != "" {
			fmt.Fprintln(w, "flowguard:", ee.msg)
		}
		return ee.code
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		fmt.Fprintln(w, "flowguard: interrupted")
		return 130
	}
	fmt.Fprintln(w, "flowguard:", err)
	return 1
}

// exitError ends the program with a given exit code.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// globals are the root command's flags, read by the subcommands that need
// them.
type globals struct {
	logLevel, logFormat string
	stopProfile         func()
	// draining is set by commands that stop on their own after a signal
	// (serve drains its sources and saves its checkpoints).
	draining atomic.Bool
}

// finish stops the CPU profile, if one is being written.
func (g *globals) finish() {
	if g.stopProfile != nil {
		g.stopProfile()
		g.stopProfile = nil
	}
}

// logger builds the one logger of a run from --log-level and --log-format,
// writing to w.
func (g *globals) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(g.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", g.logFormat)
}

func newRootCmd() *cobra.Command {
	root, _ := newRoot()
	return root
}

func newRoot() (*cobra.Command, *globals) {
	var cpuProfile string
	g := &globals{}
	root := &cobra.Command{
		Use:           "flowguard",
		Short:         "Find attacks in AWS VPC Flow Logs and answer them",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := g.logger(io.Discard); err != nil {
				return err
			}
			if cpuProfile == "" {
				return nil
			}
			f, err := os.Create(cpuProfile)
			if err != nil {
				return fmt.Errorf("--cpuprofile: %w", err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return fmt.Errorf("--cpuprofile: %w", err)
			}
			g.stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
			return nil
		},
		PersistentPostRun: func(*cobra.Command, []string) { g.finish() },
	}
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file (for performance work)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.AddCommand(
		newLambdaCmd(g),
		newVersionCmd(),
		newParseCmd(),
		newQueryCmd(),
		newGenCmd(),
		newDemoCmd(g),
		newFindingsCmd(),
		newAlarmsCmd(),
		newDetectCmd(),
		newConfigCmd(),
		newBlocksCmd(),
		newIAMPolicyCmd(),
		newAuditCmd(),
		newServeCmd(g),
		newReportCmd(),
		newSGAuditCmd(),
	)
	return root, g
}
