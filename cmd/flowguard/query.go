package main

import (
	"fmt"

	"github.com/flowguard/flowguard/internal/query"
	"github.com/spf13/cobra"
)

func newQueryCmd() *cobra.Command {
	var in inputFlags
	var output string
	var maxRows int
	cmd := &cobra.Command{
		Use:   "query [--format F] [--output table|json|csv] 'QUERY' PATH...",
		Short: "Run a CloudWatch Logs Insights query over flow logs",
		Long: `Run a CloudWatch Logs Insights query over flow log files, directories,
globs, standard input (-) or s3://bucket/prefix. A query copied from the
AWS console runs unchanged, for example:

  flowguard query 'filter action="REJECT" | stats count() by srcaddr | filter count >= 2 | sort count desc' logs/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" && output != "csv" {
				return fmt.Errorf("--output %q: use table, json or csv", output)
			}
			prog, err := query.Compile(args[0], query.Options{MaxRows: maxRows})
			if err != nil {
				return fmt.Errorf("query: %w", err)
			}
			for _, w := range prog.Warnings() {
				fmt.Fprintln(cmd.ErrOrStderr(), "flowguard: warning:", w)
			}
			r, err := in.open(cmd, args[1:])
			if err != nil {
				return err
			}
			res, err := prog.Run(r.ctx, r.scanner, r.inputs)
			if err == nil {
				err = query.Write(cmd.OutOrStdout(), output, res)
			}
			return r.finish(cmd.ErrOrStderr(), err)
		},
	}
	in.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or csv")
	cmd.Flags().IntVar(&maxRows, "max-rows", 10000, "rows returned by a query without limit, as Logs Insights (0: all)")
	return cmd
}
