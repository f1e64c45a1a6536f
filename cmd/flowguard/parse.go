package main

import (
	"bufio"
	"fmt"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/spf13/cobra"
)

func newParseCmd() *cobra.Command {
	var in inputFlags
	var output string
	cmd := &cobra.Command{
		Use:   "parse [--format F] [--output jsonl] PATH...",
		Short: "Print each flow log record as one JSON object per line",
		Long: `Print each flow log record as one JSON object per line. Keys are the AWS
field names of the record's format (srcaddr, account-id, log-status …),
integers are JSON numbers, and absent fields ("-") are left out.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "jsonl" && output != "json" {
				return fmt.Errorf("--output %q: parse prints jsonl", output)
			}
			r, err := in.open(cmd, args)
			if err != nil {
				return err
			}
			out := bufio.NewWriterSize(cmd.OutOrStdout(), 256<<10)
			err = flowlog.ScanOrdered(r.ctx, r.scanner, r.inputs, func(_ int, b *flowlog.Batch) []byte {
				b.Validate()
				var buf []byte
				for i := 0; i < b.N; i++ {
					if b.Bad(i) {
						continue
					}
					buf = b.AppendJSON(buf, i)
					buf = append(buf, '\n')
				}
				return buf
			}, func(p []byte) error {
				_, err := out.Write(p)
				return err
			})
			if ferr := out.Flush(); err == nil {
				err = ferr
			}
			return r.finish(cmd.ErrOrStderr(), err)
		},
	}
	in.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "jsonl", "output format: jsonl")
	return cmd
}
