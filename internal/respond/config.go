package respond

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
	"gopkg.in/yaml.v3"
)

// Config is the `response:` section of flowguard's configuration file:
//
//	response:
//	  mode: enforce                 # default dry-run: nothing is blocked
//	  aws_ip_ranges: ip-ranges.json # a local copy of AWS's published ranges
//	  kill_switch_file: /etc/flowguard/STOP
//	  min_severity: 7
//	  max_blocks_per_hour: 10
//	  ban_time: 1h
//	  ban_time_increment: {factor: 2, max: 7d}
//	  nacl:
//	    network_acls: [acl-0123456789abcdef0]   # else the attacked subnet's ACL
//	    rule_range: [1, 99]
//	    max_entries: 20
//	    evict: oldest               # or lowest-severity
//	  wafv2:
//	    scope: REGIONAL
//	    ipv4_set: {name: flowguard-v4, id: …}
//	    ipv6_set: {name: flowguard-v6, id: …}
//	  routes:
//	    - types: ["UnauthorizedAccess:EC2/SSHBruteForce", "Recon:*"]
//	      min_severity: 5
//	      block: [nacl]
//	      notify: [oncall-slack]
//	      repeat_interval: 4h
//	      group_by: [type]
//	  publishing_frequency: SIX_HOURS
//
// The home networks and the allow-list are the top-level `home_networks`
// and `allowlist` keys; they are passed to NewGuards. Paths are relative
// to the configuration file (see Resolve).
type Config struct {
	// Mode is "dry-run" (the default: guards run, blocks are recorded
	// as "would block", nothing reaches AWS) or "enforce".
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// KillSwitch stops all new blocks when true.
	KillSwitch bool `yaml:"kill_switch,omitempty" json:"kill_switch,omitempty"`
	// KillSwitchFile stops all new blocks while the file exists.
	KillSwitchFile string `yaml:"kill_switch_file,omitempty" json:"kill_switch_file,omitempty"`
	// AWSIPRanges is a local copy of
	// https://ip-ranges.amazonaws.com/ip-ranges.json; addresses in it are
	// never blocked. Required in enforce mode.
	AWSIPRanges string `yaml:"aws_ip_ranges,omitempty" json:"aws_ip_ranges,omitempty"`
	// MinPrefixV4 and MinPrefixV6 are the shortest prefixes that may be
	// blocked (default /24 and /64); /0 is never allowed.
	MinPrefixV4 int `yaml:"min_prefix_v4,omitempty" json:"min_prefix_v4,omitempty"`
	MinPrefixV6 int `yaml:"min_prefix_v6,omitempty" json:"min_prefix_v6,omitempty"`
	// MaxBlocksPerHour caps new bans in any hour (default 10).
	MaxBlocksPerHour int `yaml:"max_blocks_per_hour,omitempty" json:"max_blocks_per_hour,omitempty"`
	// MinSeverity is the lowest severity that may block (default 7, High),
	// whatever the routes say.
	MinSeverity *float64 `yaml:"min_severity,omitempty" json:"min_severity,omitempty"`
	// BanTime is how long a first ban lasts (default 1h).
	BanTime Duration `yaml:"ban_time,omitempty" json:"ban_time,omitempty"`
	// BanTimeIncrement makes repeat offenders' bans longer.
	BanTimeIncrement *BanIncrement `yaml:"ban_time_increment,omitempty" json:"ban_time_increment,omitempty"`
	// UnbanGrace is how long a manual unblock keeps the address from
	// being blocked again (default 24h).
	UnbanGrace Duration `yaml:"unban_grace,omitempty" json:"unban_grace,omitempty"`

	NACL  *NACLConfig  `yaml:"nacl,omitempty" json:"nacl,omitempty"`
	WAFv2 *WAFv2Config `yaml:"wafv2,omitempty" json:"wafv2,omitempty"`

	// Routes send events to blockers and notifiers; an event follows
	// every route it matches.
	Routes []Route `yaml:"routes,omitempty" json:"routes,omitempty"`
	// PublishingFrequency is how often updates to an already notified
	// finding are sent: FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS (default,
	// as GuardDuty).
	PublishingFrequency string `yaml:"publishing_frequency,omitempty" json:"publishing_frequency,omitempty"`
	// Retry bounds the retries of throttled or failed AWS and notifier
	// calls.
	Retry RetryConfig `yaml:"retry,omitempty" json:"retry,omitempty"`
}

// BanIncrement is fail2ban's bantime.increment: the n-th ban of an address
// (n from 1) lasts ban_time × factor^(n-1), at most Max.
type BanIncrement struct {
	Factor float64  `yaml:"factor,omitempty" json:"factor,omitempty"` // default 2
	Max    Duration `yaml:"max,omitempty" json:"max,omitempty"`       // default 7d
}

// NACLConfig configures network ACL deny entries.
type NACLConfig struct {
	// NetworkACLs are the ACLs to write to. When empty, the ACL of the
	// attacked subnet is found from the finding's network interface.
	NetworkACLs []string `yaml:"network_acls,omitempty" json:"network_acls,omitempty"`
	// RuleRange is the inclusive range of rule numbers flowguard may
	// use, below the user's own allow rules (default [1, 99]).
	RuleRange []int32 `yaml:"rule_range,omitempty" json:"rule_range,omitempty"`
	// MaxEntries is the account's entries-per-direction quota (default
	// 20, AWS's default; up to 40 when raised).
	MaxEntries int `yaml:"max_entries,omitempty" json:"max_entries,omitempty"`
	// Evict says which flowguard entry gives way when the ACL is full:
	// "oldest" (default) or "lowest-severity".
	Evict string `yaml:"evict,omitempty" json:"evict,omitempty"`
	// Region overrides the AWS region.
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
}

// IPSetRef names a WAFv2 IP set.
type IPSetRef struct {
	Name string `yaml:"name" json:"name"`
	ID   string `yaml:"id" json:"id"`
}

// WAFv2Config configures WAFv2 IP set blocking.
type WAFv2Config struct {
	// Scope is REGIONAL (ALB, API Gateway, AppSync) or CLOUDFRONT.
	Scope   string    `yaml:"scope" json:"scope"`
	IPv4Set *IPSetRef `yaml:"ipv4_set,omitempty" json:"ipv4_set,omitempty"`
	IPv6Set *IPSetRef `yaml:"ipv6_set,omitempty" json:"ipv6_set,omitempty"`
	// MaxAddresses caps the addresses in a set (default and maximum
	// 10,000, AWS's limit).
	MaxAddresses int `yaml:"max_addresses,omitempty" json:"max_addresses,omitempty"`
	// Evict: "oldest" (default) or "lowest-severity".
	Evict  string `yaml:"evict,omitempty" json:"evict,omitempty"`
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
}

// Route sends matching events to blockers and notifiers.
type Route struct {
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Types are exact finding types or prefixes ending in '*'; empty
	// matches every finding.
	Types []string `yaml:"types,omitempty" json:"types,omitempty"`
	// MinSeverity selects findings at or above it.
	MinSeverity float64 `yaml:"min_severity,omitempty" json:"min_severity,omitempty"`
	// Alarms are alarm names (or "*") whose state changes follow the
	// route; without it the route takes no alarms.
	Alarms []string `yaml:"alarms,omitempty" json:"alarms,omitempty"`
	// Block names blockers: "nacl", "wafv2".
	Block []string `yaml:"block,omitempty" json:"block,omitempty"`
	// Notify names notifiers (their names in the notifiers config).
	Notify []string `yaml:"notify,omitempty" json:"notify,omitempty"`
	// RepeatInterval re-sends an unchanged finding or a still-firing
	// alarm after this long (0: never).
	RepeatInterval Duration `yaml:"repeat_interval,omitempty" json:"repeat_interval,omitempty"`
	// GroupBy makes digests: events of one run with the same values of
	// these keys ("type", "actor", "target", "severity") share a
	// message. Empty: one message for all the run's events.
	GroupBy []string `yaml:"group_by,omitempty" json:"group_by,omitempty"`
	// PublishingFrequency overrides the top-level one for this route.
	PublishingFrequency string `yaml:"publishing_frequency,omitempty" json:"publishing_frequency,omitempty"`
}

// RetryConfig bounds retries.
type RetryConfig struct {
	MaxAttempts int      `yaml:"max_attempts,omitempty" json:"max_attempts,omitempty"` // default 5
	Initial     Duration `yaml:"initial,omitempty" json:"initial,omitempty"`           // default 200ms
	Max         Duration `yaml:"max,omitempty" json:"max,omitempty"`                   // default 20s
	// Timeout bounds each attempt (default 30s).
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Duration is a time.Duration read from YAML as "90s", "4h" or "7d".
type Duration time.Duration

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as 90s, 4h or 7d", n.Line)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalText writes the duration as a string (JSON).
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a duration string (JSON).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// ParseDuration reads Go durations plus a "d" (day) unit: "7d", "1d12h".
// Negative durations, and durations too long for time.Duration (about
// 292 years), are errors.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("duration %q: want a duration such as 90s, 4h or 7d", s)
	var days time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 64)
		if err != nil || n > math.MaxInt64/uint64(24*time.Hour) {
			return 0, bad
		}
		days = time.Duration(n) * 24 * time.Hour
		rest = s[i+1:]
		if rest == "" {
			return days, nil
		}
	}
	v, err := time.ParseDuration(rest)
	if err != nil || v < 0 || v > math.MaxInt64-days {
		return 0, bad
	}
	return days + v, nil
}

// Modes.
const (
	ModeDryRun  = "dry-run"
	ModeEnforce = "enforce"
)

// Eviction policies.
const (
	EvictOldest         = "oldest"
	EvictLowestSeverity = "lowest-severity"
)

// Publishing frequencies, as GuardDuty names them.
var publishingFrequencies = map[string]time.Duration{
	"FIFTEEN_MINUTES": 15 * time.Minute,
	"ONE_HOUR":        time.Hour,
	"SIX_HOURS":       6 * time.Hour,
}

// Defaults.
const (
	DefaultBanTime          = time.Hour
	DefaultMaxBlocksPerHour = 10
	DefaultMinSeverity      = 7.0
	DefaultUnbanGrace       = 24 * time.Hour
	DefaultRuleMin          = 1
	DefaultRuleMax          = 99
	DefaultNACLEntries      = 20
	MaxNACLEntries          = 40
	MaxIPSetAddresses       = 10000
	maxBanFactor            = 1000
)

// Enforcing reports whether the mode is enforce.
func (c *Config) Enforcing() bool { return c.Mode == ModeEnforce }

// Resolve makes the configuration's paths relative to dir (the
// configuration file's directory).
func (c *Config) Resolve(dir string) {
	for _, p := range []*string{&c.AWSIPRanges, &c.KillSwitchFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// Validate checks the configuration; blockers lists the names routes may
// use in `block:` and notifiers those in `notify:` (nil: do not check
// notifier names).
func (c *Config) Validate(notifiers []string) error {
	var errs []error
	switch c.Mode {
	case "", ModeDryRun:
	case ModeEnforce:
		if c.AWSIPRanges == "" {
			errs = append(errs, errors.New("response.mode enforce needs response.aws_ip_ranges: a local copy of https://ip-ranges.amazonaws.com/ip-ranges.json, so that AWS service addresses are never blocked"))
		}
	default:
		errs = append(errs, fmt.Errorf("response.mode %q: want dry-run or enforce", c.Mode))
	}
	if c.MinPrefixV4 < 0 || c.MinPrefixV4 > 32 {
		errs = append(errs, fmt.Errorf("response.min_prefix_v4 %d: want 1 to 32", c.MinPrefixV4))
	}
	if c.MinPrefixV6 < 0 || c.MinPrefixV6 > 128 {
		errs = append(errs, fmt.Errorf("response.min_prefix_v6 %d: want 1 to 128", c.MinPrefixV6))
	}
	if c.MaxBlocksPerHour < 0 {
		errs = append(errs, fmt.Errorf("response.max_blocks_per_hour %d: want 0 (default %d) or more", c.MaxBlocksPerHour, DefaultMaxBlocksPerHour))
	}
	// Comparisons written so that NaN fails them: NaN < 0 and NaN > 10 are
	// both false, which once let `min_severity: .nan` turn the guard off.
	if c.MinSeverity != nil && !(*c.MinSeverity >= 0 && *c.MinSeverity <= 10) {
		errs = append(errs, fmt.Errorf("response.min_severity %g: want 0 to 10", *c.MinSeverity))
	}
	if f := c.BanTimeIncrement; f != nil && f.Factor != 0 && !(f.Factor >= 1 && f.Factor <= maxBanFactor) {
		errs = append(errs, fmt.Errorf("response.ban_time_increment.factor %g: want 1 to %d", f.Factor, maxBanFactor))
	}
	if f := c.PublishingFrequency; f != "" {
		if _, ok := publishingFrequencies[f]; !ok {
			errs = append(errs, fmt.Errorf("response.publishing_frequency %q: want FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS", f))
		}
	}
	blockers := map[string]bool{}
	if n := c.NACL; n != nil {
		blockers[NACLName] = true
		if len(n.RuleRange) != 0 {
			if len(n.RuleRange) != 2 || n.RuleRange[0] < 1 || n.RuleRange[1] > 32766 || n.RuleRange[0] > n.RuleRange[1] {
				errs = append(errs, fmt.Errorf("response.nacl.rule_range %v: want [first, last] within 1-32766", n.RuleRange))
			}
		}
		if n.MaxEntries != 0 && (n.MaxEntries < 2 || n.MaxEntries > MaxNACLEntries) {
			errs = append(errs, fmt.Errorf("response.nacl.max_entries %d: want 2 to %d (AWS's default is 20)", n.MaxEntries, MaxNACLEntries))
		}
		if err := checkEvict(n.Evict); err != nil {
			errs = append(errs, fmt.Errorf("response.nacl.evict: %w", err))
		}
		for _, id := range n.NetworkACLs {
			if !strings.HasPrefix(id, "acl-") {
				errs = append(errs, fmt.Errorf("response.nacl.network_acls: %q is not a network ACL id (acl-…)", id))
			}
		}
	}
	if w := c.WAFv2; w != nil {
		blockers[WAFv2Name] = true
		if w.Scope != "REGIONAL" && w.Scope != "CLOUDFRONT" {
			errs = append(errs, fmt.Errorf("response.wafv2.scope %q: want REGIONAL or CLOUDFRONT", w.Scope))
		}
		if w.IPv4Set == nil && w.IPv6Set == nil {
			errs = append(errs, errors.New("response.wafv2: name ipv4_set, ipv6_set or both"))
		}
		for _, s := range []*IPSetRef{w.IPv4Set, w.IPv6Set} {
			if s != nil && (s.Name == "" || s.ID == "") {
				errs = append(errs, errors.New("response.wafv2: an IP set needs its name and id"))
			}
		}
		if w.MaxAddresses < 0 || w.MaxAddresses > MaxIPSetAddresses {
			errs = append(errs, fmt.Errorf("response.wafv2.max_addresses %d: want at most %d", w.MaxAddresses, MaxIPSetAddresses))
		}
		if err := checkEvict(w.Evict); err != nil {
			errs = append(errs, fmt.Errorf("response.wafv2.evict: %w", err))
		}
	}
	known := map[string]bool{}
	for _, n := range notifiers {
		known[n] = true
	}
	for i, r := range c.Routes {
		where := fmt.Sprintf("response.routes[%d]", i)
		if r.Name != "" {
			where += " (" + r.Name + ")"
		}
		for _, t := range r.Types {
			if t == "" || (strings.Contains(t, "*") && !strings.HasSuffix(t, "*")) || strings.Count(t, "*") > 1 {
				errs = append(errs, fmt.Errorf("%s: type %q: want an exact type or a prefix ending in *", where, t))
			}
		}
		if !(r.MinSeverity >= 0 && r.MinSeverity <= 10) {
			errs = append(errs, fmt.Errorf("%s: min_severity %g: want 0 to 10", where, r.MinSeverity))
		}
		for _, b := range r.Block {
			if !blockers[b] {
				errs = append(errs, fmt.Errorf("%s: block %q: no such blocker configured (nacl, wafv2)", where, b))
			}
		}
		if notifiers != nil {
			for _, n := range r.Notify {
				if !known[n] {
					errs = append(errs, fmt.Errorf("%s: notify %q: no notifier of that name", where, n))
				}
			}
		}
		for _, g := range r.GroupBy {
			switch g {
			case "type", "actor", "target", "severity", "alarm":
			default:
				errs = append(errs, fmt.Errorf("%s: group_by %q: want type, actor, target, severity or alarm", where, g))
			}
		}
		if f := r.PublishingFrequency; f != "" {
			if _, ok := publishingFrequencies[f]; !ok {
				errs = append(errs, fmt.Errorf("%s: publishing_frequency %q: want FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS", where, f))
			}
		}
	}
	return errors.Join(errs...)
}

// A Warning is a setting that is valid but likely not what was meant.
type Warning struct {
	Path string // key path: response.nacl.rule_range
	Msg  string
}

// defaultACLAllowRules are the rule numbers of a default network ACL's
// allow-all entries: 100 for IPv4, 101 for IPv6. AWS's examples number
// custom ACL rules from 100 up (100, 110, 120 …), so that is where an
// ACL's own entries usually are.
const (
	defaultACLAllowRule   = 100
	defaultACLAllowRuleV6 = 101
)

// Warnings returns the settings that are valid but likely not what was
// meant: a nacl.rule_range that reaches rule 100, where a default ACL's
// allow-all entries and usually the user's own rules are. A network ACL
// applies the lowest-numbered matching entry, so a deny numbered after an
// allow of the same traffic never takes effect, and numbers the ACL
// already uses are skipped.
func (c *Config) Warnings() []Warning {
	var out []Warning
	if n := c.NACL; n != nil && len(n.RuleRange) == 2 && n.RuleRange[0] <= n.RuleRange[1] {
		lo, hi := n.RuleRange[0], n.RuleRange[1]
		switch {
		case lo <= defaultACLAllowRuleV6 && hi >= defaultACLAllowRule:
			out = append(out, Warning{"response.nacl.rule_range", fmt.Sprintf(
				"[%d, %d] holds rules %d and %d, a default network ACL's allow-all entries (IPv4, IPv6), where ACLs usually number their own rules (100, 110, 120 …): a deny entry after an allow rule never takes effect; keep the range below your lowest rule, as the default [%d, %d] does",
				lo, hi, defaultACLAllowRule, defaultACLAllowRuleV6, DefaultRuleMin, DefaultRuleMax)})
		case hi >= defaultACLAllowRule:
			out = append(out, Warning{"response.nacl.rule_range", fmt.Sprintf(
				"[%d, %d] lies above rule %d, a default network ACL's allow-all entry, where ACLs usually number their own rules: a deny entry after an allow rule never takes effect; keep the range below your lowest rule, as the default [%d, %d] does",
				lo, hi, defaultACLAllowRule, DefaultRuleMin, DefaultRuleMax)})
		}
	}
	return out
}

func checkEvict(s string) error {
	switch s {
	case "", EvictOldest, EvictLowestSeverity:
		return nil
	}
	return fmt.Errorf("%q: want oldest or lowest-severity", s)
}

// banTime returns the length of the n-th ban (n from 1).
func (c *Config) banTime(n int) time.Duration {
	base := time.Duration(c.BanTime)
	if base <= 0 {
		base = DefaultBanTime
	}
	inc := c.BanTimeIncrement
	if inc == nil || n <= 1 {
		return base
	}
	factor := inc.Factor
	if factor == 0 {
		factor = 2
	}
	limit := time.Duration(inc.Max)
	if limit <= 0 {
		limit = 7 * 24 * time.Hour
	}
	d := float64(base)
	for i := 1; i < n; i++ {
		d *= factor
		if d >= float64(limit) {
			return limit
		}
	}
	return time.Duration(d)
}

func (c *Config) minSeverity() float64 {
	if c.MinSeverity == nil {
		return DefaultMinSeverity
	}
	return *c.MinSeverity
}

func (c *Config) maxBlocksPerHour() int {
	if c.MaxBlocksPerHour == 0 {
		return DefaultMaxBlocksPerHour
	}
	return c.MaxBlocksPerHour
}

func (c *Config) unbanGrace() time.Duration {
	if c.UnbanGrace <= 0 {
		return DefaultUnbanGrace
	}
	return time.Duration(c.UnbanGrace)
}

// publishing returns the update interval for a route.
func (c *Config) publishing(r *Route) time.Duration {
	if d, ok := publishingFrequencies[r.PublishingFrequency]; ok {
		return d
	}
	if d, ok := publishingFrequencies[c.PublishingFrequency]; ok {
		return d
	}
	return 6 * time.Hour
}

// matchType reports whether a finding type matches a route's pattern.
func matchType(pattern, typ string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(typ, p)
	}
	return pattern == typ
}

// matches reports whether the route takes the event.
func (r *Route) matches(ev *Event) bool {
	if ev.Finding != nil {
		f := ev.Finding
		if f.Severity < r.MinSeverity {
			return false
		}
		if len(r.Types) == 0 {
			return true
		}
		for _, t := range r.Types {
			if matchType(t, f.Type) {
				return true
			}
		}
		return false
	}
	if ev.Alarm != nil {
		for _, a := range r.Alarms {
			if a == "*" || a == ev.Alarm.Alarm {
				return true
			}
		}
	}
	return false
}

// severityOf returns an event's severity (alarms count as High when they
// go to ALARM).
func severityOf(ev *Event) float64 {
	if ev.Finding != nil {
		return ev.Finding.Severity
	}
	return finding.High
}
