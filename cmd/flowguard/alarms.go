package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/spf13/cobra"
)

func newAlarmsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alarms",
		Short: "Import CloudWatch metric filters and alarms, run them over flow logs, test them by replay",
	}
	cmd.AddCommand(newAlarmsImportCmd(), newAlarmsTestCmd(), newAlarmsRunCmd())
	return cmd
}

func newAlarmsImportCmd() *cobra.Command {
	var params []string
	var output string
	cmd := &cobra.Command{
		Use:   "import [--param K=V ...] [--output FILE] TEMPLATE",
		Short: "Convert a CloudFormation template's metric filters and alarms into flowguard config",
		Long: `Read a CloudFormation template (YAML or JSON; - for standard input) and
convert its AWS::Logs::MetricFilter, AWS::CloudWatch::Alarm and SNS topic
resources into the alarms: section of flowguard's configuration, printed on
standard output or written to --output FILE.

Template parameters come from --param Name=Value (repeatable), else from
their defaults; the pseudo parameters AWS::Region, AWS::AccountId,
AWS::Partition and AWS::StackName can be given the same way. Resources that
cannot be converted are skipped with a warning on standard error.`,
		Example: `  flowguard alarms import --param Environment=prod --param AWS::Region=eu-west-1 stack.yaml >> flowguard.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pm := map[string]string{}
			for _, p := range params {
				k, v, ok := strings.Cut(p, "=")
				if !ok || strings.TrimSpace(k) == "" {
					return fmt.Errorf("--param %q: want Name=Value", p)
				}
				pm[strings.TrimSpace(k)] = v
			}
			var r io.Reader
			name := args[0]
			if name == "-" {
				r, name = cmd.InOrStdin(), "standard input"
			} else {
				f, err := os.Open(name)
				if err != nil {
					return fmt.Errorf("cannot open template: %w", err)
				}
				defer f.Close()
				r = f
			}
			cfg, err := alarm.ImportCloudFormation(r, pm)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "flowguard: warning:", w)
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("%s: the imported configuration is not valid: %w", name, err)
			}
			out, err := cfg.MarshalSection()
			if err != nil {
				return err
			}
			if output == "" || output == "-" {
				_, err = cmd.OutOrStdout().Write(out)
				return err
			}
			if err := os.WriteFile(output, out, 0o644); err != nil {
				return fmt.Errorf("cannot write %s: %w", output, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "flowguard: wrote %d metric filter(s), %d alarm(s) and %d topic(s) to %s\n",
				len(cfg.MetricFilters), len(cfg.Alarms), len(cfg.Topics), output)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&params, "param", "p", nil, "template parameter Name=Value (repeatable)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the alarms: section to this file instead of standard output")
	return cmd
}

func newAlarmsTestCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "test FILE...",
		Short: "Run alarm replay tests, as promtool test rules does",
		Long: `Run time-replay test files: each gives a configuration (metric filters and
alarms) and tests that feed log lines at given times and list the alarm
state changes expected. Every difference is printed; the exit code is 1
when any test fails or a file cannot be read.

  config:
    metric_filters: [...]
    alarms: [...]
  tests:
    - name: a burst of rejects
      start: 2026-11-22T10:00:00Z
      duration: 15m
      input:
        - at: 30s
          line: "2 123456789010 eni-1 198.51.100.7 10.0.0.5 4444 22 6 1 40 1 2 REJECT OK"
          repeat: 3
          every: 10s
      expect:
        - at: 2m
          alarm: reject-spike
          from: INSUFFICIENT_DATA
          to: ALARM`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			total, failed, broken := 0, 0, 0
			for _, path := range args {
				fmt.Fprintf(w, "Unit Testing: %s\n", path)
				rf, err := alarm.LoadReplayFile(path)
				if err != nil {
					fmt.Fprintf(w, "  FAILED: %v\n", err)
					broken++
					continue
				}
				if len(rf.Tests) == 0 {
					fmt.Fprintln(w, "  FAILED: the file has no tests")
					broken++
					continue
				}
				for i := range rf.Tests {
					rt := &rf.Tests[i]
					total++
					name := rt.Name
					if name == "" {
						name = fmt.Sprintf("test %d", i+1)
					}
					diffs, err := rt.Check(&rf.Config)
					switch {
					case err != nil:
						failed++
						fmt.Fprintf(w, "  FAILED: %s\n    %v\n", name, err)
					case len(diffs) > 0:
						failed++
						fmt.Fprintf(w, "  FAILED: %s\n", name)
						for _, d := range diffs {
							fmt.Fprintf(w, "    %s\n", d)
						}
					default:
						fmt.Fprintf(w, "  PASSED: %s\n", name)
					}
				}
			}
			if failed > 0 || broken > 0 {
				msg := fmt.Sprintf("%d of %d alarm test(s) failed", failed, total)
				if broken > 0 {
					msg += fmt.Sprintf(", %d file(s) could not be run", broken)
				}
				return exitError{code: 1, msg: msg}
			}
			fmt.Fprintf(w, "SUCCESS: %d test(s) passed\n", total)
			return nil
		},
	}
}
