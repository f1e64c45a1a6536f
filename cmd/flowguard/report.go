package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/report"
	"github.com/flowguard/flowguard/internal/store"
)

func newReportCmd() *cobra.Command {
	var in inputFlags
	var det detectFlags
	var out, csvDir, db string
	var bin time.Duration
	cmd := &cobra.Command{
		Use:   "report [--out report.html] [--csv DIR] [--db PATH] PATH...",
		Short: "Write one self-contained HTML report (charts and tables) and CSV files over a period of flow logs",
		Long: `Write one HTML file that opens offline, in any browser, with no script:
traffic over time by action, rejected traffic and its trend, top rejected
sources, top talkers, traffic by source, destination port, protocol and
network interface (inline SVG charts, and their tables), and the findings
and blocks of the period. --csv DIR writes the same tables as CSV files
for spreadsheets (traffic.csv, rejected.csv, … findings.csv, blocks.csv).

The tables are Logs Insights queries (the engine of flowguard query) over
PATH: files, directories, globs or s3://bucket/prefix (each is read once
per table, so standard input is refused). The findings come from the
store with --db (those seen in the period, and its blocks), else from
running the detectors over PATH (--config, --home, --allow,
--threat-list as for detect).

  flowguard report --out vpc.html --csv vpc-csv/ logs/
  flowguard report --db /var/lib/flowguard/flowguard.db --out week.html s3://bucket/AWSLogs/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if slices.Contains(args, "-") {
				return fmt.Errorf("report reads its inputs once per table: name files, directories or s3:// prefixes, not standard input")
			}
			if bin < time.Second {
				return fmt.Errorf("--bin %s: want at least 1s", bin)
			}
			r, err := in.open(cmd, args)
			if err != nil {
				return err
			}
			prog := newProgress(cmd.ErrOrStderr(), len(report.Specs)+1)
			rep := &report.Report{Generated: time.Now(), Bin: bin}
			for _, i := range r.inputs {
				rep.Inputs = append(rep.Inputs, i.Name)
			}
			rep.Tables, err = report.Compute(r.ctx, r.scanner, r.inputs, report.Options{Bin: bin,
				Progress: func(done, _ int, name string) { prog.step(done, "table "+name) }})
			if err != nil {
				return r.finish(cmd.ErrOrStderr(), err)
			}
			from, to, _ := rep.Period()
			if db != "" {
				err = reportFromStore(cmd, db, rep, from, to)
			} else {
				err = reportDetect(cmd, &det, r, rep)
			}
			if err != nil {
				return r.finish(cmd.ErrOrStderr(), err)
			}
			prog.step(len(report.Specs)+1, "findings")
			prog.done()
			rep.Skipped = r.skipped.Count()
			if err := writeReportHTML(cmd.OutOrStdout(), out, rep); err != nil {
				return r.finish(cmd.ErrOrStderr(), err)
			}
			if csvDir != "" {
				if err := report.WriteCSV(csvDir, rep); err != nil {
					return r.finish(cmd.ErrOrStderr(), err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "flowguard: wrote %d CSV files in %s\n", len(rep.Tables)+2, csvDir)
			}
			return r.finish(cmd.ErrOrStderr(), nil)
		},
	}
	in.register(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&out, "out", "o", "report.html", "the HTML file to write (- for standard output)")
	fl.StringVar(&csvDir, "csv", "", "also write the tables as CSV files in this directory")
	fl.StringVar(&db, "db", "", "read the period's findings and blocks from this store instead of running the detectors")
	fl.DurationVar(&bin, "bin", 5*time.Minute, "time bin of the tables over time")
	fl.StringVar(&det.configFile, "config", "", "configuration file for the detectors (see flowguard config default)")
	fl.StringArrayVar(&det.home, "home", nil, "a home network, CIDR or address (repeatable)")
	fl.StringArrayVar(&det.allow, "allow", nil, "a source never named as an attacker (repeatable)")
	fl.StringArrayVar(&det.threats, "threat-list", nil, "a threat list file (repeatable)")
	return cmd
}

// reportDetect runs the detectors over the report's inputs.
func reportDetect(cmd *cobra.Command, f *detectFlags, r *reading, rep *report.Report) error {
	cfg, err := detectConfig(f)
	if err != nil {
		return err
	}
	opts, err := cfg.DetectOptions()
	if err != nil {
		return err
	}
	eng, err := detect.New(opts)
	if err != nil {
		return err
	}
	again := *r.scanner
	again.Errors = nil // counted by the tables' first pass
	if err := eng.Run(r.ctx, &again, r.inputs); err != nil {
		return err
	}
	eng.Flush()
	for _, res := range eng.Results() {
		rep.Findings = append(rep.Findings, res.Finding)
	}
	rep.FindingsFrom = "the detectors run over the inputs"
	if f.configFile != "" {
		rep.FindingsFrom += " with " + f.configFile
	}
	return nil
}

// reportFromStore reads the findings seen in the period, and the blocks
// live in it, from the store.
func reportFromStore(cmd *cobra.Command, db string, rep *report.Report, from, to time.Time) error {
	if _, err := os.Stat(db); err != nil {
		return fmt.Errorf("--db %s: %w", db, err)
	}
	st, err := store.Open(cmd.Context(), db)
	if err != nil {
		return err
	}
	defer st.Close()
	fs, err := st.ListFindings(cmd.Context(), finding.Filter{Since: from})
	if err != nil {
		return err
	}
	for _, f := range fs {
		if to.IsZero() || !f.FirstSeen.After(to) {
			rep.Findings = append(rep.Findings, f)
		}
	}
	bs, err := st.ListBlocks(cmd.Context(), store.BlockFilter{})
	if err != nil {
		return err
	}
	for _, b := range bs {
		if (from.IsZero() || !b.Expires.Before(from)) && (to.IsZero() || !b.Created.After(to)) {
			rep.Blocks = append(rep.Blocks, b)
		}
	}
	rep.FindingsFrom = "the store " + db
	return nil
}

func writeReportHTML(stdout io.Writer, path string, rep *report.Report) error {
	if path == "-" {
		return report.Render(stdout, rep)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	werr := report.Render(f, rep)
	if err := f.Close(); werr == nil && err != nil {
		werr = fmt.Errorf("cannot write the report: %w", err)
	}
	return werr
}

// progress reports steps on standard error: a bar redrawn in place on a
// terminal, one plain line per step otherwise.
type progress struct {
	w     io.Writer
	total int
	tty   bool
	start time.Time
}

func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) step(done int, what string) {
	el := time.Since(p.start).Round(100 * time.Millisecond)
	if !p.tty {
		fmt.Fprintf(p.w, "flowguard: report: %d/%d %s (%s)\n", done, p.total, what, el)
		return
	}
	const width = 30
	n := done * width / max(p.total, 1)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d %-28s %s", strings.Repeat("#", n), strings.Repeat(".", width-n), done, p.total, what, el)
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
