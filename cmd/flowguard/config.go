package main

import (
	"fmt"
	"io"

	"github.com/flowguard/flowguard/internal/config"
	"github.com/spf13/cobra"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the configuration file or print the defaults",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Check a configuration file: keys, values, threat lists and AWS's IP ranges",
		Long: `Check a configuration file: every key and value, the threat lists and
the response section's files (aws_ip_ranges must be AWS's ip-ranges.json
with both IPv4 and IPv6 prefixes). Errors name the file, line, column and
key, and exit 1. Warnings (settings that are valid but likely not what was
meant, such as a nacl.rule_range reaching rule 100) are printed to standard
error and do not fail the check.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := config.Load(args[0])
			if err != nil {
				return err
			}
			for _, w := range c.Warnings() {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", w)
			}
			alarms, filters := 0, 0
			if c.Alarms != nil {
				alarms, filters = len(c.Alarms.Alarms), len(c.Alarms.MetricFilters)
			}
			ranges := ""
			if c.AWSRanges != nil {
				v4, v6 := c.AWSRanges.Counts()
				ranges = fmt.Sprintf(", AWS IP ranges: %d IPv4 and %d IPv6 prefix(es)", v4, v6)
				if c.AWSRanges.CreateDate != "" {
					ranges += " of " + c.AWSRanges.CreateDate
				}
			}
			warned := ""
			if n := len(c.Warnings()); n > 0 {
				warned = fmt.Sprintf(" with %d warning(s)", n)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: ok%s: %d home network(s), %d allow-listed, %d threat list entries from %d file(s), %d expected-source rule(s), %d metric filter(s), %d alarm(s), %d suppression rule(s), %d trusted IP(s)%s\n",
				args[0], warned, len(c.HomeNetworks), len(c.Allowlist), len(c.Threats), len(c.ThreatLists), len(c.ExpectedSources),
				filters, alarms, len(c.SuppressionRules), len(c.TrustedIPs), ranges)
			return err
		},
	}, &cobra.Command{
		Use:   "default",
		Short: "Print the default configuration, every key with its documented default",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeDefaultConfig(cmd.OutOrStdout())
		},
	})
	return cmd
}

func writeDefaultConfig(w io.Writer) error {
	c := config.DefaultConfig()
	b, err := c.Marshal()
	if err != nil {
		return err
	}
	const head = `# flowguard configuration: the defaults (docs/configuration.md explains
# every key). Paths are relative to this file. Other sections may be
# added: alarms: (docs/findings.md, flowguard alarms import),
# suppression_rules:, trusted_ips:, response: and notify: (docs/response.md).
`
	if _, err := io.WriteString(w, head+string(b)); err != nil {
		return fmt.Errorf("cannot write: %w", err)
	}
	return nil
}
