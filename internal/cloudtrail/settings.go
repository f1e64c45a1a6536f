package cloudtrail

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/flowguard/flowguard/internal/detect"
)

// Settings are the CloudTrail rules' settings, the configuration file's
// cloudtrail: section (docs/detection.md, "CloudTrail").
type Settings struct {
	// BruteForce sets the console sign-in brute-force rules.
	BruteForce BruteForceSettings `yaml:"brute_force"`
	// SensitivePorts are the ports whose opening to the internet (a
	// security group or network ACL rule from 0.0.0.0/0 or ::/0) is a
	// finding.
	SensitivePorts []uint16 `yaml:"sensitive_ports,flow"`
	// MaxTrackedSignIns bounds the sign-ins (failed and successful) the
	// brute-force rules remember across addresses and users, for a
	// process that runs for months (serve); the least recently active
	// key's are forgotten first, and counted.
	MaxTrackedSignIns int `yaml:"max_tracked_sign_ins"`
}

// BruteForceSettings: MinFailures failed sign-ins within Window from one
// address, or against one user from at least MinUserSources addresses.
type BruteForceSettings struct {
	Window         detect.Duration `yaml:"window"`
	MinFailures    int             `yaml:"min_failures"`
	MinUserSources int             `yaml:"min_user_sources"`
}

// DefaultMaxTrackedSignIns is max_tracked_sign_ins unless set.
const DefaultMaxTrackedSignIns = 100_000

// DefaultSettings returns the defaults: 10 failures in 10 minutes, 2
// sources for the per-user rule, DefaultSensitivePorts, 100,000 sign-ins.
func DefaultSettings() Settings {
	return Settings{
		BruteForce:        BruteForceSettings{Window: detect.Duration(defaultBurstWindow), MinFailures: defaultBurstFailures, MinUserSources: defaultBurstUserSources},
		SensitivePorts:    slices.Clone(DefaultSensitivePorts),
		MaxTrackedSignIns: DefaultMaxTrackedSignIns,
	}
}

// Validate checks every value; the errors (*detect.FieldError) name the
// key path under prefix ("cloudtrail").
func (s *Settings) Validate(prefix string) error {
	var errs []error
	bad := func(key, msg string) { errs = append(errs, &detect.FieldError{Path: prefix + "." + key, Msg: msg}) }
	if w := time.Duration(s.BruteForce.Window); w < time.Minute || w > 24*time.Hour {
		bad("brute_force.window", fmt.Sprintf("%s is out of range (1m to 24h)", s.BruteForce.Window))
	}
	if s.BruteForce.MinFailures < 2 {
		bad("brute_force.min_failures", fmt.Sprintf("%d is too small (at least 2: one failed password is no attack)", s.BruteForce.MinFailures))
	}
	if s.BruteForce.MinUserSources < 2 {
		bad("brute_force.min_user_sources", fmt.Sprintf("%d is too small (at least 2: one address is the per-address rule)", s.BruteForce.MinUserSources))
	}
	if len(s.SensitivePorts) == 0 {
		bad("sensitive_ports", "give at least one port (leave the key out for the defaults)")
	}
	if slices.Contains(s.SensitivePorts, 0) {
		bad("sensitive_ports", "port 0 is not a port")
	}
	if s.MaxTrackedSignIns < 100 {
		bad("max_tracked_sign_ins", fmt.Sprintf("%d is too small (at least 100)", s.MaxTrackedSignIns))
	}
	return errors.Join(errs...)
}

// Apply sets the options' thresholds from the settings.
func (s *Settings) Apply(o *Options) {
	o.BurstWindow = time.Duration(s.BruteForce.Window)
	o.BurstFailures = s.BruteForce.MinFailures
	o.BurstUserSources = s.BruteForce.MinUserSources
	o.SensitivePorts = slices.Clone(s.SensitivePorts)
	o.MaxTrackedSignIns = s.MaxTrackedSignIns
}
