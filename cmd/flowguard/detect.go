package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/server"
	"github.com/flowguard/flowguard/internal/store"
	"github.com/spf13/cobra"
)

// detectFlags are the flags of flowguard detect.
type detectFlags struct {
	in         inputFlags
	configFile string
	home       []string
	allow      []string
	threats    []string
	baseline   []string
	output     string
	db         string
	noDB       bool
	explain    string
	respond    bool
}

func newDetectCmd() *cobra.Command {
	var f detectFlags
	cmd := &cobra.Command{
		Use:   "detect [--config FILE] [--home CIDR]... [--allow CIDR]... [--threat-list FILE]... [--output table|json] [--db PATH] [--explain IP] PATH...",
		Short: "Find attacks in flow logs",
		Long: `Find attacks in flow log files, directories, globs, standard input (-) or
s3://bucket/prefix: port scans and sweeps (inbound, outbound and lateral),
probes of open ports, SSH and RDP brute force, floods, denial of service and
unusual volume from our instances, unusual ports, threat-list callers and
unexpected sources, named as GuardDuty names them. Findings are printed and
recorded in the findings database (see flowguard findings).

Which side of a flow is ours comes from the home networks (--home, default
the private ranges; list a VPC's IPv6 block), flow-direction when the
format has it, and tcp-flags or ports for who started the conversation.
Rejected return traffic is a misconfiguration (a Policy finding), never an
attack. docs/detection.md describes every rule and its thresholds.

  flowguard detect --home 10.0.0.0/16 --allow 203.0.113.0/24 logs/
  flowguard detect --output json --no-db logs/ | jq '.[].title'
  flowguard detect --explain 198.51.100.23 logs/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runDetect(cmd, &f, args) },
	}
	f.in.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.configFile, "config", "", "configuration file (see flowguard config default)")
	fl.StringArrayVar(&f.home, "home", nil, "a home network, CIDR or address (repeatable; adds to the configuration)")
	fl.StringArrayVar(&f.allow, "allow", nil, "a source never named as an attacker, CIDR or address (repeatable)")
	fl.StringArrayVar(&f.threats, "threat-list", nil, "a threat list file: one IP or CIDR a line, # comments (repeatable)")
	fl.StringArrayVar(&f.baseline, "baseline", nil, "flow logs of normal traffic to learn the per-instance baselines from before judging PATH (repeatable)")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	fl.StringVar(&f.db, "db", "", "findings database (default: $"+store.EnvDB+", else ~/.local/share/flowguard/flowguard.db); --db '' records nothing")
	fl.BoolVar(&f.noDB, "no-db", false, "do not record the findings")
	fl.BoolVar(&f.respond, "respond", false, "answer the findings as the configuration's response: and notify: sections say (blocks stay dry-run unless response.mode is enforce)")
	fl.StringVar(&f.explain, "explain", "", "print, for the findings whose actor or target is this IP, the rule, thresholds, numbers and sample records")
	return cmd
}

// detectConfig assembles the configuration from --config and the flags.
func detectConfig(f *detectFlags) (*config.Config, error) {
	c := config.DefaultConfig()
	cfg := &c
	if f.configFile != "" {
		var err error
		if cfg, err = config.Load(f.configFile); err != nil {
			return nil, err
		}
	}
	add := func(flag string, vals []string, dst *[]config.Network) error {
		for _, v := range vals {
			p, err := finding.ParsePrefix(v)
			if err != nil {
				return fmt.Errorf("--%s: %w", flag, err)
			}
			*dst = append(*dst, config.Network{Prefix: p})
		}
		return nil
	}
	if err := add("home", f.home, &cfg.HomeNetworks); err != nil {
		return nil, err
	}
	if err := add("allow", f.allow, &cfg.Allowlist); err != nil {
		return nil, err
	}
	for _, path := range f.threats {
		ps, err := config.ReadThreatList(path)
		if err != nil {
			return nil, fmt.Errorf("--threat-list: %w", err)
		}
		cfg.Threats = append(cfg.Threats, ps...)
	}
	return cfg, nil
}

func runDetect(cmd *cobra.Command, f *detectFlags, args []string) error {
	if f.output != "table" && f.output != "json" {
		return fmt.Errorf("--output %q: use table or json", f.output)
	}
	var explainIP netip.Addr
	if f.explain != "" {
		a, err := netip.ParseAddr(f.explain)
		if err != nil {
			return fmt.Errorf("--explain %q: not an IP address", f.explain)
		}
		explainIP = a.Unmap()
	}
	cfg, err := detectConfig(f)
	if err != nil {
		return err
	}
	if f.respond && (cfg.Response == nil || f.noDB || cmd.Flags().Changed("db") && f.db == "") {
		return fmt.Errorf("--respond needs --config with a response: section, and the findings database (it is the record of what was done)")
	}
	opts, err := cfg.DetectOptions()
	if err != nil {
		return err
	}
	policy, err := cfg.Config.Policy()
	if err != nil {
		return err
	}
	eng, err := detect.New(opts)
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	if len(f.baseline) > 0 {
		r, err := f.in.open(cmd, f.baseline)
		if err != nil {
			return fmt.Errorf("--baseline: %w", err)
		}
		eng.SetLearning(true)
		err = eng.Run(r.ctx, r.scanner, r.inputs)
		if err := r.finish(stderr, err); err != nil {
			if ee, ok := err.(exitError); !ok || ee.code != 2 {
				return fmt.Errorf("--baseline: %w", err)
			}
		}
		eng.SetLearning(false)
	}
	r, err := f.in.open(cmd, args)
	if err != nil {
		return err
	}
	tr := newTrailReading(cfg, r.scanner.Errors) // CloudTrail and GuardDuty JSON, by content
	runErr := eng.Run(r.ctx, r.scanner, tr.inputs(r.inputs))
	if runErr == nil {
		eng.Flush()
		results := eng.Results()
		trail := tr.finish(results)
		results = append(results, trail.results...)
		applyPolicy(policy, &results)
		warnMetrics(stderr, eng.Metrics())
		out := cmd.OutOrStdout()
		switch {
		case explainIP.IsValid():
			runErr = writeExplain(out, explainIP, results)
		case f.output == "json":
			runErr = writeFindingsJSON(out, results)
		default:
			runErr = writeFindingsTable(out, results)
		}
		recording := !f.noDB && !(cmd.Flags().Changed("db") && f.db == "")
		if runErr == nil && recording {
			runErr = recordFindings(cmd, f.db, results, r.inputs)
		}
		if runErr == nil && recording {
			runErr = applyTrailChanges(cmd.Context(), stderr, f.db, trail.changes)
		}
		if runErr == nil && f.respond {
			runErr = respondFindings(cmd, f.db, cfg, results)
		}
	}
	return r.finish(stderr, runErr)
}

// applyPolicy drops the findings of trusted actors and archives those a
// suppression rule of the configuration matches.
func applyPolicy(p *finding.Policy, rs *[]*detect.Result) {
	if p == nil {
		return
	}
	out := (*rs)[:0]
	for _, r := range *rs {
		kept := p.Apply([]finding.Finding{r.Finding})
		if len(kept) == 0 {
			continue
		}
		r.Finding = kept[0]
		out = append(out, r)
	}
	*rs = out
}

func warnMetrics(w io.Writer, m detect.Metrics) {
	if m.TooLate > 0 {
		fmt.Fprintf(w, "flowguard: warning: %s record(s) arrived after their window was judged (more than allowed_lateness behind the newest record) and were not counted; name the inputs in time order or raise detectors.allowed_lateness\n", detect.Num(m.TooLate))
	}
	if m.Guessed > 0 && m.Guessed*20 > m.Records {
		fmt.Fprintf(w, "flowguard: warning: %s of %s records had neither address in the home networks and no flow-direction; their destination was taken as ours. Give your VPC's ranges (IPv6 too) with --home or home_networks\n", detect.Num(m.Guessed), detect.Num(m.Records))
	}
	if m.Evicted > 0 {
		fmt.Fprintf(w, "flowguard: note: %s single-probe sources were dropped to stay within max_tracked_sources\n", detect.Num(m.Evicted))
	}
}

func findingsOf(rs []*detect.Result) []finding.Finding {
	out := make([]finding.Finding, len(rs))
	for i, r := range rs {
		out[i] = r.Finding
	}
	return out
}

func writeFindingsJSON(w io.Writer, rs []*detect.Result) error {
	return server.WriteFindings(w, findingsOf(rs))
}

func writeFindingsTable(w io.Writer, rs []*detect.Result) error {
	if len(rs) == 0 {
		_, err := fmt.Fprintln(w, "no findings")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tTYPE\tACTOR\tTARGET\tCOUNT\tFIRST SEEN\tLAST SEEN\tTITLE")
	for _, r := range rs {
		sev := fmt.Sprintf("%s %.0f", finding.Level(r.Severity), r.Severity)
		if r.Archived {
			sev += " (archived)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", escaped(sev, r.Type, server.AddrText(r.Actor.IP), server.AddrText(r.Target.IP),
			detect.Num(r.Count), r.FirstSeen.Format("2006-01-02 15:04:05"), r.LastSeen.Format("15:04:05"), r.Title)...)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot write findings: %w", err)
	}
	return nil
}

// writeExplain prints, as cscli explain does for CrowdSec, which rule and
// which records produced each finding naming ip (server.WriteExplanation,
// which the dashboard's finding page shows too).
func writeExplain(w io.Writer, ip netip.Addr, rs []*detect.Result) error {
	n := 0
	for _, r := range rs {
		if r.Actor.IP != ip && r.Target.IP != ip {
			continue
		}
		n++
		e := server.ExplanationOf(r)
		if err := server.WriteExplanation(w, &r.Finding, &e); err != nil {
			return err
		}
		if _, err := io.WriteString(w, "\n"); err != nil {
			return fmt.Errorf("cannot write: %w", err)
		}
	}
	if n == 0 {
		if _, err := fmt.Fprintf(w, "no finding names %s\n", ip); err != nil {
			return fmt.Errorf("cannot write: %w", err)
		}
	}
	return nil
}

// recordFindings records the findings in the store as the contribution
// of this set of inputs (see recordStream): detect run again over the same
// files sets the same counts instead of adding them.
func recordFindings(cmd *cobra.Command, path string, rs []*detect.Result, inputs []flowlog.Input) error {
	if path == "" {
		p, err := store.DefaultPath()
		if err != nil {
			return err
		}
		path = p
	}
	st, err := store.Open(cmd.Context(), path)
	if err != nil {
		return fmt.Errorf("cannot record findings: %w", err)
	}
	defer st.Close()
	fs := findingsOf(rs)
	slices.SortFunc(fs, func(a, b finding.Finding) int { return strings.Compare(a.ID, b.ID) })
	res, err := recordStream(cmd.Context(), st, fs, inputs)
	if err != nil {
		return fmt.Errorf("cannot record findings in %s: %w", path, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "flowguard: recorded %d new and %d updated finding(s) in %s", res.Created, res.Updated, path)
	if res.Unchanged > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), " (%d unchanged: these inputs were counted before)", res.Unchanged)
	}
	fmt.Fprintln(cmd.ErrOrStderr())
	return nil
}

// respondFindings runs the recorded findings through the response
// pipeline. It reads them back from the store, so that the merged state
// counts (an archived or suppressed finding is not answered).
func respondFindings(cmd *cobra.Command, path string, cfg *config.Config, rs []*detect.Result) error {
	if path == "" {
		p, err := store.DefaultPath()
		if err != nil {
			return err
		}
		path = p
	}
	ctx := cmd.Context()
	st, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	var fs []finding.Finding
	for _, f := range findingsOf(rs) {
		stored, err := st.GetFinding(ctx, f.ID)
		if err != nil {
			return err
		}
		if !stored.Archived {
			fs = append(fs, stored)
		}
	}
	pl, err := buildPipeline(ctx, cfg, st, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	return respondTo(ctx, cmd.ErrOrStderr(), pl, fs)
}
