package main

import (
	"fmt"
	"os"
	"reflect"
	"runtime/debug"

	"github.com/flowguard/flowguard/internal/query"
	"github.com/spf13/cobra"
)

func newQueryCmd() *cobra.Command {
	var in inputFlags
	var output string
	var maxRows int
	cmd := &cobra.Command{
		Use:   "query [--format F] [--output table|json|csv] 'QUERY' PATH...",
		Short: "Run a CloudWatch Logs Insights query over flow logs or CloudTrail",
		Long: `Run a CloudWatch Logs Insights query over flow log files, directories,
globs, standard input (-) or s3://bucket/prefix. A query copied from the
AWS console runs unchanged, for example:

  flowguard query 'filter action="REJECT" | stats count() by srcaddr | filter count >= 2 | sort count desc' logs/

CloudTrail files (recognised by content, as detect does) are queried with
their fields as Logs Insights names them:

  flowguard query 'filter eventName="ConsoleLogin" | stats count(*) by userIdentity.arn, sourceIPAddress' trail/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// A query allocates column buffers by the batch and keeps
			// little: collecting when the heap has grown to five times
			// what is live rather than twice takes 10-17% off the CPU
			// of the grouping shapes (docs/performance.md). GOGC, when
			// set, wins.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(400)
			}
			if output != "table" && output != "json" && output != "csv" {
				return fmt.Errorf("--output %q: use table, json or csv", output)
			}
			prog, err := query.Compile(args[0], query.Options{MaxRows: maxRows})
			if err != nil {
				return fmt.Errorf("query: %w", err)
			}
			r, err := in.open(cmd, args[1:])
			if err != nil {
				return err
			}
			res, err := runQuery(r, prog, cmd.ErrOrStderr()) // flow logs or CloudTrail
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

// escaped returns args for a table row or a line of text, with every
// string, byte slice and Stringer (such as an address or a typed string)
// passed through query.EscapeText: the command's table writers print
// log-derived text through it, so a field cannot carry a terminal escape,
// a tab or a newline into the output. Numbers pass unchanged.
func escaped(args ...any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			out[i] = query.EscapeText(v)
		case []byte:
			out[i] = query.EscapeText(string(v))
		case fmt.Stringer:
			if isNumber(v) { // a numeric enum printed with %d keeps its verb
				out[i] = a
			} else {
				out[i] = query.EscapeText(v.String())
			}
		default:
			out[i] = escapeKind(a)
		}
	}
	return out
}

// escapeKind escapes a value of a named string type (an enum such as a
// direction or a state), and returns anything else as it is.
func escapeKind(a any) any {
	if rv := reflect.ValueOf(a); rv.IsValid() && rv.Kind() == reflect.String {
		return query.EscapeText(rv.String())
	}
	return a
}

func isNumber(a any) bool {
	switch reflect.ValueOf(a).Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// esc is query.EscapeText, for text assembled before printing.
func esc(s string) string { return query.EscapeText(s) }
