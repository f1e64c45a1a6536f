package main

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/spf13/cobra"
)

// inputFlags are the flags of every command that reads flow logs.
type inputFlags struct {
	format    string
	region    string
	profile   string
	endpoint  string
	strict    bool
	workers   int
	maxErrors int
}

func (f *inputFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.format, "format", "", "record format in AWS syntax (${version} ${srcaddr} …) for files without a header line; default: the v2 format")
	fl.StringVar(&f.region, "region", "", "AWS region for s3:// paths")
	fl.StringVar(&f.profile, "profile", "", "AWS shared config profile for s3:// paths")
	fl.StringVar(&f.endpoint, "endpoint-url", "", "S3-compatible endpoint for s3:// paths")
	fl.BoolVar(&f.strict, "strict", false, "stop at the first malformed line instead of skipping it")
	fl.IntVar(&f.workers, "workers", 0, "decoding goroutines (default: one per core)")
	fl.IntVar(&f.maxErrors, "max-errors", 10, "how many skipped lines to describe on standard error")
}

// reading is one run over the inputs named on the command line.
type reading struct {
	scanner *flowlog.Scanner
	inputs  []flowlog.Input
	skipped *flowlog.Skipped
	ctx     context.Context
	cancel  context.CancelCauseFunc
}

// strictSink stops the run at the first skipped line.
type strictSink struct {
	*flowlog.Skipped
	cancel context.CancelCauseFunc
	once   sync.Once
}

func (s *strictSink) Skip(e *flowlog.LineError) {
	s.Skipped.Skip(e)
	s.once.Do(func() { s.cancel(fmt.Errorf("--strict: %w", e)) })
}

func (f *inputFlags) open(cmd *cobra.Command, args []string) (*reading, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("no input: name files, directories, globs, s3://bucket/prefix or - for standard input")
	}
	ctx, cancel := context.WithCancelCause(cmd.Context())
	r := &reading{ctx: ctx, cancel: cancel, skipped: &flowlog.Skipped{Keep: f.maxErrors}}
	r.scanner = &flowlog.Scanner{Workers: f.workers, Errors: r.skipped}
	if f.strict {
		r.scanner.Errors = &strictSink{Skipped: r.skipped, cancel: cancel}
	}
	if f.format != "" {
		fm, err := flowlog.ParseFormat(f.format)
		if err != nil {
			cancel(nil)
			return nil, fmt.Errorf("--format: %w", err)
		}
		r.scanner.Format = fm
	}
	inputs, err := source.Expand(ctx, args, source.Options{
		Stdin:       cmd.InOrStdin(),
		Region:      f.region,
		Profile:     f.profile,
		EndpointURL: f.endpoint,
		// Unreadable entries of directories and globs are skipped
		// input, counted and reported like unreadable files.
		Errors: r.scanner.Errors,
	})
	if err != nil {
		if cause := context.Cause(ctx); ctx.Err() != nil && cause != nil {
			err = cause // --strict stopped the expansion
		}
		cancel(nil)
		return nil, err
	}
	r.inputs = inputs
	return r, nil
}

// finish reports skipped input on w and turns it into the exit status: a
// run that skipped anything exits with 2 after printing its results.
func (r *reading) finish(w io.Writer, runErr error) error {
	r.cancel(nil)
	n := r.skipped.Count()
	for _, e := range r.skipped.First() {
		fmt.Fprintln(w, "flowguard: skipped:", e)
	}
	if runErr != nil {
		return runErr
	}
	if n > 0 {
		more := ""
		if shown := int64(len(r.skipped.First())); n > shown {
			more = fmt.Sprintf(" (%d shown)", shown)
		}
		return exitError{code: 2, msg: fmt.Sprintf("%d malformed line(s) or input(s) skipped%s", n, more)}
	}
	return nil
}
