package main

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/query"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/flowguard/flowguard/internal/synth"
	"github.com/spf13/cobra"
)

// seedQuery is the query AWS operators paste into the Logs Insights console
// to find the addresses that keep getting rejected.
const seedQuery = `filter action = "REJECT"
| stats count() by srcaddr
| filter count >= 2
| sort count desc`

func newDemoCmd(g *globals) *cobra.Command {
	var records int
	var seed uint64
	var keep, listen string
	var noServer bool
	cmd := &cobra.Command{
		Use:   "demo [--no-server]",
		Short: "Watch flowguard catch attacks in generated VPC traffic, live in a browser (no AWS account needed)",
		Long: `Run the daemon on generated traffic of one VPC, written in real time
with labelled attacks at known moments, and serve the dashboard. The
dashboard's address is printed as http://127.0.0.1:PORT/; nothing is
opened by itself. Responses are dry runs: flowguard records what it would
block. Within a minute of the first scan it is a finding and a dry-run
block. Ctrl-C stops it and removes its temporary directory.

--no-server runs the classic Logs Insights query and the detectors over a
batch of generated records and prints tables instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !noServer {
				return runLiveDemo(cmd, g, liveDemoOptions{seed: seed, keep: keep, listen: listen})
			}
			dir := keep
			if dir == "" {
				tmp, err := os.MkdirTemp("", "flowguard-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			} else if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			path := filepath.Join(dir, "flowlogs.log")
			cfg := synth.DefaultConfig()
			cfg.Records, cfg.Seed = records, seed
			gen := synth.New(cfg)
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			bw := bufio.NewWriterSize(f, 1<<20)
			if err := gen.WriteText(bw, false); err != nil {
				f.Close()
				return fmt.Errorf("cannot generate sample traffic: %w", err)
			}
			if err := bw.Flush(); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Generated %d flow log records of one VPC in %s\n", records, path)
			fmt.Fprintf(out, "with %d labelled attacks. Running the Logs Insights query\n\n%s\n\n", len(gen.Labels()), seedQuery)
			prog, err := query.Compile(seedQuery, query.Options{})
			if err != nil {
				return err
			}
			in, err := source.Expand(cmd.Context(), []string{path}, source.Options{})
			if err != nil {
				return err
			}
			res, err := prog.Run(cmd.Context(), &flowlog.Scanner{}, in)
			if err != nil {
				return err
			}
			top := *res
			if len(top.Rows) > 20 {
				top.Rows = top.Rows[:20]
			}
			if err := query.WriteText(out, &top); err != nil {
				return err
			}
			fmt.Fprintf(out, "\n%d addresses were rejected twice or more (top 20 shown).\n", len(res.Rows))
			own := 0
			for _, row := range res.Rows {
				for _, p := range gen.HomeNetworks() {
					if row[0].T == query.TAddr && p.Contains(row[0].A) {
						own++
						break
					}
				}
			}
			if own > 0 {
				fmt.Fprintf(out, "%d of them are this VPC's own addresses: rejected return traffic and blocked egress,\n"+
					"not attackers. The classic query cannot tell; flowguard's detectors know the direction.\n", own)
			}
			// The same traffic through flowguard's detectors, which know
			// which side of each flow is ours.
			var home []string
			for _, p := range gen.HomeNetworks() {
				home = append(home, p.String())
			}
			cfgd, err := detectConfig(&detectFlags{home: home})
			if err != nil {
				return err
			}
			for _, a := range gen.ThreatList() { // the demo's threat list
				cfgd.Threats = append(cfgd.Threats, netip.PrefixFrom(a, a.BitLen()))
			}
			opts, err := cfgd.DetectOptions()
			if err != nil {
				return err
			}
			eng, err := detect.New(opts)
			if err != nil {
				return err
			}
			if err := eng.Run(cmd.Context(), &flowlog.Scanner{}, in); err != nil {
				return err
			}
			eng.Flush()
			results := eng.Results()
			fmt.Fprintf(out, "\nflowguard detect on the same records (home networks %s, and a threat list) finds %d things worth a look:\n\n", strings.Join(home, ", "), len(results))
			if err := writeFindingsTable(out, results); err != nil {
				return err
			}
			fmt.Fprintf(out, "\nThe generator's labels (what really happened) are %d attacks:\n", len(gen.Labels()))
			for _, l := range gen.Labels() {
				target := l.Target
				if target == "" {
					target = "many hosts"
				}
				fmt.Fprintf(out, "  %-45s %s → %s\n", l.Type, l.Actor, target)
			}
			if keep != "" {
				fmt.Fprintf(out, "Try: flowguard query 'stats sum(bytes) as b by srcAddr, dstAddr | sort b desc | limit 10' %s\n", path)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&records, "records", 500_000, "records to generate (with --no-server)")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "random seed")
	cmd.Flags().StringVar(&keep, "keep", "", "write the sample data (and the demo's database) to this directory and keep it")
	cmd.Flags().BoolVar(&noServer, "no-server", false, "print the batch tables instead of serving the live dashboard")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "address of the dashboard (port 0: any free port)")
	return cmd
}
