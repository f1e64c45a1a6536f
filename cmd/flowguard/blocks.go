package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/wafv2"
	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/store"
	"github.com/spf13/cobra"
)

func newBlocksCmd() *cobra.Command {
	var db dbFlag
	cmd := &cobra.Command{
		Use:   "blocks",
		Short: "List blocks, unblock an address, expire bans, show the history of blocks",
		Long: `Work with the blocks flowguard placed: network ACL deny entries and WAFv2
IP set addresses. The database is the record of what flowguard owns;
entries someone else created are never listed here, and never touched.`,
	}
	db.register(cmd)
	cmd.AddCommand(newBlocksListCmd(&db), newBlocksHistoryCmd(&db), newBlocksUnblockCmd(&db), newBlocksExpireCmd(&db))
	return cmd
}

func newBlocksListCmd(db *dbFlag) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the blocks in force (and those pending or being removed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			rows, err := readBlocks(cmd, db, store.BlockFilter{LiveOnly: true})
			if err != nil {
				return err
			}
			return writeBlocks(cmd.OutOrStdout(), output, rows)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func newBlocksHistoryCmd(db *dbFlag) *cobra.Command {
	var output, since string
	var limit int
	cmd := &cobra.Command{
		Use:   "history [ADDR]",
		Short: "Show every block, past and present, optionally of one address",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			fl := store.BlockFilter{Limit: limit}
			if len(args) == 1 {
				p, err := finding.ParsePrefix(args[0])
				if err != nil {
					return err
				}
				fl.Prefix = p
			}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return fmt.Errorf("--since: %w", err)
				}
				fl.Since = t
			}
			rows, err := readBlocks(cmd, db, fl)
			if err != nil {
				return err
			}
			return writeBlocks(cmd.OutOrStdout(), output, rows)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().StringVar(&since, "since", "", "created at or after: a duration back from now (24h, 7d), an RFC 3339 time or a date")
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most this many (the newest; 0: all)")
	return cmd
}

// readBlocks reads block rows; a missing database has none.
func readBlocks(cmd *cobra.Command, db *dbFlag, fl store.BlockFilter) ([]store.BlockRecord, error) {
	if p, ok := db.exists(); !ok {
		fmt.Fprintf(cmd.ErrOrStderr(), "flowguard: no database at %s yet: no blocks\n", p)
		return nil, nil
	}
	st, err := db.open(cmd.Context(), true)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return st.ListBlocks(cmd.Context(), fl)
}

// writeBlocks prints block rows as a table or a JSON array (never null).
func writeBlocks(w io.Writer, output string, rows []store.BlockRecord) error {
	if output == "json" {
		return writeJSONList(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tTARGET\tRULE\tSTATE\tSEVERITY\tCREATED\tEXPIRES\tFINDING\tNOTE")
	for _, r := range rows {
		rule := "-"
		if r.RuleNumber > 0 {
			rule = fmt.Sprint(r.RuleNumber)
		}
		note := r.RemovedBy
		if r.LastError != "" {
			note = r.LastError
		}
		fid := r.FindingID
		if len(fid) > 12 {
			fid = fid[:12]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\n", escaped(r.Prefix, r.Target, rule, r.State, r.Severity,
			r.Created.Format(time.RFC3339), r.Expires.Format(time.RFC3339), fid, note)...)
	}
	return tw.Flush()
}

func newBlocksUnblockCmd(db *dbFlag) *cobra.Command {
	var cfgPath, reason, by string
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "unblock ADDR [--config FILE] [--reason TEXT]",
		Short: "Remove flowguard's blocks of an address, and keep it unblocked for a while",
		Long: `Remove flowguard's blocks of an address. The unblock is recorded, and the
address is not blocked again for the grace period (response.unban_grace,
default 24h; --grace overrides), so that the same activity does not bring
the block straight back.

With --config, the entries are removed from AWS now; without it, they are
marked for removal, which the next flowguard run (or the daemon) carries
out. Only entries flowguard created are removed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := finding.ParsePrefix(args[0])
			if err != nil {
				return err
			}
			if by == "" {
				by = currentUser()
			}
			st, err := db.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer st.Close()
			if cfgPath == "" {
				rows, err := respond.RequestUnblock(cmd.Context(), st, p, by, reason, time.Now(), grace)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d block(s) marked for removal; the next run removes them from AWS\n", p, len(rows))
				return nil
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			if cfg.Response == nil {
				return fmt.Errorf("%s has no response: section", cfgPath)
			}
			if grace > 0 {
				cfg.Response.UnbanGrace = respond.Duration(grace)
			}
			pl, err := unblockPipeline(cmd.Context(), cfg.Response, st)
			if err != nil {
				return err
			}
			rep, err := pl.Unblock(cmd.Context(), p, by, reason)
			for _, o := range rep.Outcomes {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s %s\n", escaped(o.Kind, o.Prefix, o.Target, o.Reason)...)
			}
			if err != nil {
				return err
			}
			if n := rep.Count(respond.OutcomeFailed); n > 0 {
				return exitError{code: 1, msg: fmt.Sprintf("%d removal(s) failed; the next run retries them", n)}
			}
			if len(rep.Outcomes) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: no block in force; recorded so it is not blocked again before the grace period ends\n", p)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file: remove the entries from AWS now")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit trail)")
	cmd.Flags().StringVar(&by, "by", "", "who (default: the current user)")
	cmd.Flags().DurationVar(&grace, "grace", 0, "keep the address unblocked this long (default: response.unban_grace, else 24h)")
	return cmd
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// unblockPipeline builds a pipeline able to remove blocks: the configured
// blockers with the SDK's default credentials. Removal does not depend on
// the mode or the kill switch (it only takes flowguard's own entries
// away), so the guards are built in dry-run.
func unblockPipeline(ctx context.Context, cfg *respond.Config, st *store.Store) (*respond.Pipeline, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot load AWS credentials: %w", err)
	}
	blockers := responseBlockers(awsCfg, cfg)
	gcfg := *cfg
	gcfg.Mode = respond.ModeDryRun
	g, err := respond.NewGuards(&gcfg, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return respond.New(cfg, st, g, blockers, nil, respond.Options{})
}

// responseBlockers returns the blockers the response config enables, on SDK
// clients made from awsCfg (each blocker's region overrides the default).
func responseBlockers(awsCfg aws.Config, cfg *respond.Config) []respond.Planner {
	var out []respond.Planner
	if n := cfg.NACL; n != nil {
		out = append(out, respond.NewNACL(ec2.NewFromConfig(awsCfg, func(o *ec2.Options) {
			if n.Region != "" {
				o.Region = n.Region
			}
		}), n))
	}
	if w := cfg.WAFv2; w != nil {
		out = append(out, respond.NewWAFv2(wafv2.NewFromConfig(awsCfg, func(o *wafv2.Options) {
			if w.Scope == "CLOUDFRONT" {
				o.Region = "us-east-1" // CloudFront-scope WAF lives there
			} else if w.Region != "" {
				o.Region = w.Region
			}
		}), w))
	}
	return out
}

func newBlocksExpireCmd(db *dbFlag) *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "expire --config FILE",
		Short: "Remove the blocks whose ban time is over, and finish what earlier runs left",
		Long: `Remove from AWS the blocks whose ban time is over (also those that fell
due while nothing ran), place blocks an interrupted run recorded but did not
confirm, reconcile the database with what AWS actually has, and deliver
queued notifications. Run it from cron between detection runs; the daemon
does it by itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfgPath == "" {
				return fmt.Errorf("--config FILE is required: it says where flowguard blocks")
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
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
			rep, err := pl.Start(cmd.Context())
			writeReport(cmd.OutOrStdout(), rep)
			if err != nil {
				return err
			}
			return responderFailed(rep)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file with the response: section")
	return cmd
}
