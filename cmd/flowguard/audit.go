package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/flowguard/flowguard/internal/store"
	"github.com/spf13/cobra"
)

func newAuditCmd() *cobra.Command {
	var db dbFlag
	var output, since, action, findingID string
	var limit int
	cmd := &cobra.Command{
		Use:   "audit [--since T] [--action A] [--finding ID] [--output table|json]",
		Short: "Read the audit trail: blocks, unblocks, refusals, evictions, notifications",
		Long: `Read the audit trail, oldest first. Every block, unblock, refusal by a guard,
eviction, reconciliation finding and notification is recorded with the
finding that caused it.

Actions: block, block-dry-run, block-refused, block-failed, unblock,
unblock-failed, unban, evict, reconcile-gone, reconcile-foreign, notify,
notify-failed (and the findings commands' own).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			fl := store.AuditFilter{Action: action, FindingID: findingID, Limit: limit}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return fmt.Errorf("--since: %w", err)
				}
				fl.Since = t
			}
			var entries []store.AuditEntry
			if p, ok := db.exists(); !ok {
				fmt.Fprintf(cmd.ErrOrStderr(), "flowguard: no database at %s yet: nothing audited\n", p)
			} else {
				st, err := db.open(cmd.Context(), true)
				if err != nil {
					return err
				}
				defer st.Close()
				if findingID != "" {
					if id, err := st.ResolveID(cmd.Context(), findingID); err == nil {
						fl.FindingID = id
					}
				}
				if entries, err = st.ListAudit(cmd.Context(), fl); err != nil {
					return err
				}
			}
			return writeAudit(cmd.OutOrStdout(), output, entries)
		},
	}
	db.register(cmd)
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	f.StringVar(&since, "since", "", "at or after: a duration back from now (24h, 7d), an RFC 3339 time or a date")
	f.StringVar(&action, "action", "", "only this action (block, unblock, block-refused, evict, notify …)")
	f.StringVar(&findingID, "finding", "", "only entries about this finding (id or unique prefix)")
	f.IntVar(&limit, "limit", 0, "the newest N entries (0: all)")
	return cmd
}

// writeAudit prints audit entries as a table or a JSON array (never null).
func writeAudit(w io.Writer, output string, es []store.AuditEntry) error {
	if output == "json" {
		return writeJSONList(w, es)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTION\tSUBJECT\tFINDING\tDETAIL")
	for _, e := range es {
		fid := e.FindingID
		if len(fid) > 12 {
			fid = fid[:12]
		}
		d := string(e.Detail)
		if d == "" {
			d = "{}"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", escaped(e.Time.Format(time.RFC3339), e.Action, e.Subject, fid, d)...)
	}
	return tw.Flush()
}
