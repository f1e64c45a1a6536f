package respond

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"os"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/netaddr"
)

// Guard names, as refusals and the audit trail give them.
const (
	GuardKillSwitch = "kill-switch"
	GuardPrefix     = "prefix"
	GuardReserved   = "reserved"
	GuardHome       = "home-network"
	GuardAllowlist  = "allowlist"
	GuardAWS        = "aws-service-range"
	GuardSeverity   = "min-severity"
	GuardRate       = "max-blocks-per-hour"
	GuardDryRun     = "dry-run"
	GuardUnbanned   = "manual-unban"
	GuardNoTarget   = "no-target"
	GuardFull       = "full"
)

// Refusal is a guard's "no", with the reason in words.
type Refusal struct {
	Guard  string `json:"guard"`
	Reason string `json:"reason"`
}

func (r *Refusal) Error() string { return r.Guard + ": " + r.Reason }

// protected is a range flowguard never blocks, and why.
type protected struct {
	p   netip.Prefix
	why string
}

// Ranges that are never blocked whatever the configuration: addresses that
// are not someone on the internet.
var reservedRanges = mustPrefixes(
	"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
	"::/128", "::1/128", "fe80::/10", "ff00::/8", "::ffff:0:0/96",
)

// privateRanges are the private and shared address spaces; they are the
// default home networks and are never blocked (a deny on one cuts the
// VPC's own traffic).
var privateRanges = mustPrefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Guards decide whether an address may be blocked. Every block passes all
// of them; no configuration turns off the reserved, home, allow-list and
// AWS-range guards.
type Guards struct {
	cfg       *Config
	reserved  []protected
	home      []protected
	allow     []protected
	aws       *AWSRanges
	stat      func(string) (fs.FileInfo, error)
	minV4     int
	minV6     int
	minSev    float64
	maxPerHr  int
	enforcing bool
}

// NewGuards builds the guards from the configuration, the home networks
// and allow-list (the top-level `home_networks` and `allowlist` keys) and
// AWS's ranges. Private address space is always treated as home. In
// enforce mode, AWS's ranges are required.
func NewGuards(cfg *Config, home, allow []netip.Prefix, aws *AWSRanges) (*Guards, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	if v := cfg.MinSeverity; v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
		return nil, fmt.Errorf("response.min_severity %g: want a number from 0 to 10", *v)
	}
	if cfg.Enforcing() && (aws == nil || aws.Len() == 0) {
		return nil, errors.New("enforce mode needs AWS's IP ranges (response.aws_ip_ranges), so that AWS service addresses are never blocked")
	}
	g := &Guards{cfg: cfg, aws: aws, stat: os.Stat, minV4: 24, minV6: 64, minSev: cfg.minSeverity(),
		maxPerHr: cfg.maxBlocksPerHour(), enforcing: cfg.Enforcing()}
	if cfg.MinPrefixV4 > 0 {
		g.minV4 = cfg.MinPrefixV4
	}
	if cfg.MinPrefixV6 > 0 {
		g.minV6 = cfg.MinPrefixV6
	}
	for _, p := range reservedRanges {
		g.reserved = append(g.reserved, protected{p, "reserved address space " + p.String()})
	}
	for _, p := range privateRanges {
		g.home = append(g.home, protected{p, "private address space " + p.String()})
	}
	for _, p := range home {
		if !p.IsValid() {
			return nil, errors.New("invalid home network")
		}
		g.home = append(g.home, protected{netaddr.CanonPrefix(p), "home network " + p.String()})
	}
	for _, p := range allow {
		if !p.IsValid() {
			return nil, errors.New("invalid allow-list entry")
		}
		g.allow = append(g.allow, protected{netaddr.CanonPrefix(p), "allow-list entry " + p.String()})
	}
	return g, nil
}

// Enforcing reports whether blocks reach AWS.
func (g *Guards) Enforcing() bool { return g.enforcing }

// KillSwitch returns a refusal when the kill switch is on (the flag, or
// the file exists).
func (g *Guards) KillSwitch() *Refusal {
	if g.cfg.KillSwitch {
		return &Refusal{GuardKillSwitch, "the kill switch is on (response.kill_switch): no new blocks"}
	}
	if f := g.cfg.KillSwitchFile; f != "" {
		if _, err := g.stat(f); err == nil || !errors.Is(err, fs.ErrNotExist) {
			// An unreadable path counts as present: fail safe.
			return &Refusal{GuardKillSwitch, fmt.Sprintf("the kill switch file %s exists: no new blocks", f)}
		}
	}
	return nil
}

// CheckPrefix runs the guards that depend only on the address: kill
// switch, prefix length, reserved, home, allow-list and AWS ranges. An
// IPv4-mapped prefix is judged as the IPv4 prefix it is. An IPv6 prefix
// whose addresses embed IPv4 addresses (NAT64, IPv4-compatible, 6to4,
// Teredo: see netaddr.Embedded) is also judged by the IPv4 range it
// embeds: blocking it would cut that range off, so the range must be no
// wider than response.min_prefix_v4 and hold no home, private,
// allow-listed or AWS address.
func (g *Guards) CheckPrefix(p netip.Prefix) *Refusal {
	if r := g.KillSwitch(); r != nil {
		return r
	}
	if !p.IsValid() {
		return &Refusal{GuardPrefix, "no address to block"}
	}
	p = netaddr.CanonPrefix(p)
	if r := g.checkWidth(p); r != nil {
		return r
	}
	if r := g.checkProtected(p, true); r != nil {
		return r
	}
	for _, e := range netaddr.Embedded(p) {
		r := g.checkWidth(e.IPv4)
		if r == nil {
			r = g.checkProtected(e.IPv4, false)
		}
		if r != nil {
			r.Reason = fmt.Sprintf("%s embeds %s (%s): %s", p, e.IPv4, e.Scheme, r.Reason)
			return r
		}
	}
	return nil
}

// checkWidth refuses a prefix wider than the configured minimum.
func (g *Guards) checkWidth(p netip.Prefix) *Refusal {
	if p.Bits() == 0 {
		return &Refusal{GuardPrefix, fmt.Sprintf("%s would block the whole internet", p)}
	}
	if p.Addr().Is4() && p.Bits() < g.minV4 {
		return &Refusal{GuardPrefix, fmt.Sprintf("%s is wider than /%d (response.min_prefix_v4)", p, g.minV4)}
	}
	if p.Addr().Is6() && p.Bits() < g.minV6 {
		return &Refusal{GuardPrefix, fmt.Sprintf("%s is wider than /%d (response.min_prefix_v6)", p, g.minV6)}
	}
	return nil
}

// checkProtected refuses a prefix that overlaps a protected range: the
// reserved ranges (when reserved is true), the home networks and private
// space, the allow-list and AWS's ranges.
func (g *Guards) checkProtected(p netip.Prefix, reserved bool) *Refusal {
	sets := []struct {
		guard string
		list  []protected
	}{{GuardReserved, g.reserved}, {GuardHome, g.home}, {GuardAllowlist, g.allow}}
	if !reserved {
		sets = sets[1:]
	}
	for _, set := range sets {
		for _, q := range set.list {
			if q.p.Overlaps(p) {
				return &Refusal{set.guard, fmt.Sprintf("%s is in the %s", p, q.why)}
			}
		}
	}
	if q, svc, ok := g.aws.Overlapping(p); ok {
		return &Refusal{GuardAWS, fmt.Sprintf("%s is in AWS's published range %s (%s)", p, q, svc)}
	}
	return nil
}

// Check runs every guard for blocking prefix because of f; recentBans is
// the number of bans decided in the last hour. It returns nil when the
// block may go ahead. The dry-run guard comes last, so that a dry-run
// refusal means "every other guard passed: this would be blocked".
func (g *Guards) Check(f *finding.Finding, p netip.Prefix, recentBans int) *Refusal {
	if r := g.CheckPrefix(p); r != nil {
		return r
	}
	sev := 0.0
	if f != nil {
		sev = f.Severity
	}
	if !(sev >= g.minSev) { // a NaN severity never passes

		return &Refusal{GuardSeverity, fmt.Sprintf("severity %.1f is below %.1f (response.min_severity)", sev, g.minSev)}
	}
	if recentBans >= g.maxPerHr {
		return &Refusal{GuardRate, fmt.Sprintf("%d blocks in the last hour reach the limit of %d (response.max_blocks_per_hour)", recentBans, g.maxPerHr)}
	}
	if !g.enforcing {
		return &Refusal{GuardDryRun, "dry-run: would block (set response.mode: enforce to block)"}
	}
	return nil
}

// ActorPrefix returns what blocking a finding's actor blocks: the actor's
// address alone, or, for a finding whose actor is one network (a flood
// from one network carries evidence sources_prefix), that network,
// masked. A sources_prefix that does not hold the actor is ignored. A
// finding with no actor gives the zero prefix, which the guards refuse.
func ActorPrefix(f *finding.Finding) netip.Prefix {
	if f == nil || !f.Actor.IP.IsValid() {
		return netip.Prefix{}
	}
	a := netaddr.Canon(f.Actor.IP)
	if s, ok := f.Evidence[string(finding.EvSourcesPrefix)].(string); ok {
		if p, err := netip.ParsePrefix(s); err == nil {
			if p = netaddr.CanonPrefix(p); p.Contains(a) {
				return p
			}
		}
	}
	return netip.PrefixFrom(a, a.BitLen())
}
