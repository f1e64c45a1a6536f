package finding

// Config is the findings part of flowguard's configuration file, meant to
// be embedded inline in the top-level config:
//
//	suppression_rules:
//	  - name: vendor-scanner
//	    types: ["Recon:*"]
//	    actors: [198.51.100.0/28]
//	trusted_ips: [203.0.113.7, 192.0.2.0/24]
type Config struct {
	// SuppressionRules archive the findings they match; the findings are
	// still recorded but not sent to responders.
	SuppressionRules []SuppressionRule `yaml:"suppression_rules,omitempty" json:"suppression_rules,omitempty"`
	// TrustedIPs are addresses and CIDR blocks whose activity raises no
	// findings at all.
	TrustedIPs []string `yaml:"trusted_ips,omitempty" json:"trusted_ips,omitempty"`
}

// Validate checks every rule, that rule names are unique, and the
// trusted-IP list.
func (c *Config) Validate() error {
	_, err := c.Policy()
	return err
}

// Policy compiles the configuration.
func (c *Config) Policy() (*Policy, error) {
	return NewPolicy(c.SuppressionRules, c.TrustedIPs)
}
