package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/flowguard/flowguard/internal/sgaudit"
	"github.com/flowguard/flowguard/internal/store"
	"github.com/spf13/cobra"
)

func newSGAuditCmd() *cobra.Command {
	var in inputFlags
	var db dbFlag
	var groups, interfaces, prefixLists, vpc, output, minPeriod, commands, terraform string
	var apply, yes bool
	cmd := &cobra.Command{
		Use:   "sg-audit [--groups F --interfaces F [--prefix-lists F]] [--output table|json|csv] PATH...",
		Short: "Judge security-group rules by the accepted traffic flow logs saw",
		Long: `Judge every security-group rule by the flows it let in or out: each accepted
flow on an interface, started by its sender (replies are not uses: security
groups are stateful), is matched to the rules of the groups attached to the
interface. Verdicts: used, unused (no accepted flow in the period),
broader-than-used (a wide CIDR whose sources fit a few narrow prefixes,
proposed), unknown (the rule's interfaces have no flow logs).

The groups and interfaces come from the EC2 API (read only; --vpc limits it)
or from the JSON of 'aws ec2 describe-security-groups' and
'describe-network-interfaces' (--groups, --interfaces), prefix lists from
--prefix-lists (describe-managed-prefix-lists, each list with its Entries).

--remediation and --terraform write AWS CLI commands and a Terraform snippet
to review. --apply revokes the unused rules through the EC2 API (a dry run
unless --yes), recorded in the audit trail; it refuses when the logs cover
less than --min-period. See docs/sg-audit.md.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" && output != "csv" {
				return fmt.Errorf("--output %q: use table, json or csv", output)
			}
			if (groups == "") != (interfaces == "") {
				return fmt.Errorf("--groups and --interfaces go together (or neither, to read them from the EC2 API)")
			}
			opts := sgaudit.DefaultOptions()
			if minPeriod != "" {
				now := time.Now()
				t, err := parseSince(minPeriod, now)
				if err != nil || !t.Before(now) {
					return fmt.Errorf("--min-period %q: want a duration such as 7d or 336h", minPeriod)
				}
				opts.MinPeriod = now.Sub(t)
			}
			ctx := cmd.Context()
			var client *ec2.Client
			ec2Client := func() (*ec2.Client, error) {
				if client != nil {
					return client, nil
				}
				var lo []func(*awsconfig.LoadOptions) error
				if in.region != "" {
					lo = append(lo, awsconfig.WithRegion(in.region))
				}
				if in.profile != "" {
					lo = append(lo, awsconfig.WithSharedConfigProfile(in.profile))
				}
				cfg, err := awsconfig.LoadDefaultConfig(ctx, lo...)
				if err != nil {
					return nil, fmt.Errorf("cannot load AWS credentials: %w", err)
				}
				client = ec2.NewFromConfig(cfg)
				return client, nil
			}
			var inv *sgaudit.Inventory
			var err error
			if groups != "" {
				inv, err = sgaudit.LoadFiles(groups, interfaces, prefixLists)
			} else {
				c, cerr := ec2Client()
				if cerr != nil {
					return cerr
				}
				inv, err = sgaudit.LoadEC2(ctx, c, vpc)
				if err == nil && prefixLists != "" {
					inv.PrefixLists, err = sgaudit.ReadPrefixLists(prefixLists)
				}
			}
			if err != nil {
				return err
			}
			r, err := in.open(cmd, args)
			if err != nil {
				return err
			}
			a := sgaudit.New(inv, opts)
			if err := a.Scan(r.ctx, r.scanner, r.inputs); err != nil {
				return r.finish(cmd.ErrOrStderr(), err)
			}
			rep := a.Report()
			out := cmd.OutOrStdout()
			switch output {
			case "json":
				rep.WriteSummary(cmd.ErrOrStderr())
				err = rep.WriteJSON(out)
			case "csv":
				rep.WriteSummary(cmd.ErrOrStderr())
				err = rep.WriteCSV(out)
			default:
				err = rep.WriteTable(out)
			}
			if err == nil && commands != "" {
				err = writeFile(commands, rep.WriteCommands)
			}
			if err == nil && terraform != "" {
				err = writeFile(terraform, rep.WriteTerraform)
			}
			if err == nil && apply {
				err = applySGAudit(ctx, cmd.ErrOrStderr(), &db, ec2Client, rep, !yes)
			}
			return r.finish(cmd.ErrOrStderr(), err)
		},
	}
	in.register(cmd)
	db.register(cmd)
	f := cmd.Flags()
	f.StringVar(&groups, "groups", "", "JSON of 'aws ec2 describe-security-groups' (default: ask the EC2 API)")
	f.StringVar(&interfaces, "interfaces", "", "JSON of 'aws ec2 describe-network-interfaces'")
	f.StringVar(&prefixLists, "prefix-lists", "", "JSON of 'aws ec2 describe-managed-prefix-lists', each list with an Entries array")
	f.StringVar(&vpc, "vpc", "", "with the EC2 API: only this VPC's groups and interfaces")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json or csv")
	f.StringVar(&minPeriod, "min-period", "7d", "shortest evidence that may call a rule unused (a weekly job is invisible in a day of logs)")
	f.StringVar(&commands, "remediation", "", "write AWS CLI commands carrying out the suggestions to this file, to review")
	f.StringVar(&terraform, "terraform", "", "write a Terraform snippet of the narrowed rules to this file, to review")
	f.BoolVar(&apply, "apply", false, "revoke the unused rules through the EC2 API (a dry run unless --yes)")
	f.BoolVar(&yes, "yes", false, "with --apply: really revoke")
	return cmd
}

// writeFile writes what fn prints to path.
func writeFile(path string, fn func(io.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot create %w", err)
	}
	fn(f)
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write %w", err)
	}
	return nil
}

// applySGAudit revokes the unused rules (or says what it would revoke),
// recording each in the audit trail, and prints what it did on w.
func applySGAudit(ctx context.Context, w io.Writer, db *dbFlag, client func() (*ec2.Client, error), rep *sgaudit.Report, dryRun bool) error {
	c, err := client()
	if err != nil {
		return err
	}
	st, err := db.open(ctx, false)
	if err != nil {
		return err
	}
	defer st.Close()
	user := currentUser()
	out, err := sgaudit.Apply(ctx, c, rep, sgaudit.ApplyOptions{DryRun: dryRun,
		Audit: func(ctx context.Context, action, subject string, detail []byte) error {
			var m map[string]any
			json.Unmarshal(detail, &m)
			m["user"] = user
			detail, _ = json.Marshal(m)
			_, err := st.AppendAudit(ctx, store.AuditEntry{Action: action, Subject: subject, Detail: detail})
			return err
		}})
	if dryRun && len(out) > 0 {
		fmt.Fprintln(w, "dry run: nothing revoked; --yes revokes these rules:")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range out {
		detail := r.Outcome
		if r.Error != "" {
			detail += ": " + r.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %d-%d\t%s\t%s\n", r.GroupID, r.RuleID, r.Direction, r.Protocol, r.FromPort, r.ToPort, r.Source, detail)
	}
	tw.Flush()
	if err != nil {
		return exitError{code: 3, msg: strings.TrimSpace(err.Error())}
	}
	return nil
}
