package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/guardduty"
	"github.com/spf13/cobra"
)

func newFindingsCorrelateCmd(db *dbFlag) *cobra.Command {
	var output, since string
	cmd := &cobra.Command{
		Use:   "correlate IP|RESOURCE [--since T] [--output table|json]",
		Short: "Everything known about one address or resource: flow, CloudTrail and GuardDuty findings, and where GuardDuty and flowguard disagree",
		Long: `Show, in one view, the findings about an address (as actor or target) or a
resource (an instance, interface, user ARN or name, security group…):
flowguard's from flow logs, flowguard's from CloudTrail, and GuardDuty's
own; then where GuardDuty and flowguard disagree, class by class (the
finding type without its variant): a class only one of them raised, or a
class both raised at different severity levels. Archived findings count.

  flowguard findings correlate 198.51.100.23
  flowguard findings correlate i-0abcdef1234567890 --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var from time.Time
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return fmt.Errorf("--since: %w", err)
				}
				from = t
			}
			st, err := db.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer st.Close()
			c, err := guardduty.Correlate(cmd.Context(), st, args[0], from)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(c)
			}
			return writeCorrelation(cmd.OutOrStdout(), c)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().StringVar(&since, "since", "", "only findings last seen since (1h, 7d, or an RFC 3339 time)")
	return cmd
}

// writeCorrelation prints a correlation view: the findings of each side,
// then the disagreements.
func writeCorrelation(w io.Writer, c *guardduty.Correlation) error {
	var b strings.Builder
	n := len(c.Flow) + len(c.CloudTrail) + len(c.GuardDuty)
	fmt.Fprintf(&b, "%s: %d finding(s)", esc(c.Subject), n)
	if n > 0 {
		fmt.Fprintf(&b, ", %s to %s", timeText(c.FirstSeen), timeText(c.LastSeen))
	}
	b.WriteString("\n")
	for _, side := range []struct {
		name string
		fs   []finding.Finding
	}{{"flow logs (flowguard)", c.Flow}, {"CloudTrail (flowguard)", c.CloudTrail}, {"GuardDuty", c.GuardDuty}} {
		fmt.Fprintf(&b, "\n%s: ", side.name)
		if len(side.fs) == 0 {
			b.WriteString("none\n")
			continue
		}
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for i := range side.fs {
			f := &side.fs[i]
			arch := ""
			if f.Archived {
				arch = " (archived)"
			}
			fmt.Fprintf(tw, "  %s\t%s %.1f\t%s\t%s\t%s\n", escaped(shortID(f.ID), finding.Level(f.Severity), f.Severity, f.Type+arch,
				timeText(f.LastSeen), f.Title)...)
		}
		tw.Flush()
	}
	b.WriteString("\n")
	switch {
	case !c.GuardDutyInUse:
		b.WriteString("GuardDuty: no GuardDuty finding in the store, nothing to compare\n")
	case len(c.Disagreements) == 0:
		b.WriteString("GuardDuty and flowguard agree\n")
	default:
		b.WriteString("where GuardDuty and flowguard disagree:\n")
		for _, d := range c.Disagreements {
			fmt.Fprintf(&b, "  %s: %s\n", escaped(d.Kind, d.Detail)...)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("cannot write: %w", err)
	}
	return nil
}
