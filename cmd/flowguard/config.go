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
		Short: "Check a configuration file: keys, values and threat lists",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := config.Load(args[0])
			if err != nil {
				return err
			}
			alarms, filters := 0, 0
			if c.Alarms != nil {
				alarms, filters = len(c.Alarms.Alarms), len(c.Alarms.MetricFilters)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: %d home network(s), %d allow-listed, %d threat list entries from %d file(s), %d expected-source rule(s), %d metric filter(s), %d alarm(s), %d suppression rule(s), %d trusted IP(s)\n",
				args[0], len(c.HomeNetworks), len(c.Allowlist), len(c.Threats), len(c.ThreatLists), len(c.ExpectedSources),
				filters, alarms, len(c.SuppressionRules), len(c.TrustedIPs))
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
