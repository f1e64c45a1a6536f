package finding

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/flowguard/flowguard/internal/netaddr"
)

// Feedback values, as GuardDuty names them.
const (
	Useful    = "USEFUL"
	NotUseful = "NOT_USEFUL"
)

// ParseFeedback reads a feedback value: "useful" or "not-useful" in any
// case, with '-', '_' or a space between the words.
func ParseFeedback(s string) (string, error) {
	n := strings.ToUpper(strings.TrimSpace(s))
	n = strings.NewReplacer("-", "_", " ", "_").Replace(n)
	switch n {
	case Useful, NotUseful:
		return n, nil
	}
	return "", fmt.Errorf("feedback %q: want useful or not-useful", s)
}

// ActionArchive is the one suppression action: matching findings are
// recorded but archived, and archived findings are not sent to responders.
const ActionArchive = "ARCHIVE"

// SuppressionRule archives the findings that match all of its criteria, as
// a GuardDuty suppression rule does. Within one criterion the values are
// alternatives (any may match); an empty criterion matches everything, but a
// rule needs at least one criterion.
//
//	suppression_rules:
//	  - name: scanner-vendor
//	    description: our contracted vulnerability scanner
//	    types: ["Recon:*"]
//	    actors: [198.51.100.0/28]
//	  - name: low-noise
//	    types: [Recon:EC2/RepeatedReject]
//	    severity_below: 3
type SuppressionRule struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Types are finding types, exact ("Recon:EC2/Portscan") or a prefix
	// ending in '*' ("Recon:*", "UnauthorizedAccess:EC2/*").
	Types []string `yaml:"types,omitempty" json:"types,omitempty"`
	// Actors and Targets are IP addresses or CIDR blocks. A finding without
	// a target IP (a sweep over many hosts) does not match Targets.
	Actors  []string `yaml:"actors,omitempty" json:"actors,omitempty"`
	Targets []string `yaml:"targets,omitempty" json:"targets,omitempty"`
	// Ports match a finding when any of its target ports is listed.
	Ports []uint16 `yaml:"ports,omitempty" json:"ports,omitempty"`
	// SeverityBelow matches findings whose severity is lower than it.
	SeverityBelow float64 `yaml:"severity_below,omitempty" json:"severity_below,omitempty"`
	// Action is ARCHIVE (the default and the only action).
	Action string `yaml:"action,omitempty" json:"action,omitempty"`
}

// Validate checks the rule: a name, at least one criterion, valid types,
// addresses, severity and action.
func (r *SuppressionRule) Validate() error {
	_, err := r.Compile()
	return err
}

// Compile checks the rule and prepares it for matching.
func (r *SuppressionRule) Compile() (*Matcher, error) {
	name := r.Name
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("suppression rule: name is required")
	}
	fail := func(format string, args ...any) (*Matcher, error) {
		return nil, fmt.Errorf("suppression rule %q: "+format, append([]any{name}, args...)...)
	}
	if a := strings.ToUpper(r.Action); a != "" && a != ActionArchive {
		return fail("action %q: the only action is ARCHIVE", r.Action)
	}
	if len(r.Types) == 0 && len(r.Actors) == 0 && len(r.Targets) == 0 && len(r.Ports) == 0 && r.SeverityBelow == 0 {
		return fail("no criteria: give types, actors, targets, ports or severity_below (a rule without criteria would archive every finding)")
	}
	if !(r.SeverityBelow >= 0 && r.SeverityBelow <= 10) { // NaN too
		return fail("severity_below %g: want a number from 0 to 10", r.SeverityBelow)
	}
	m := &Matcher{Rule: *r, severityBelow: r.SeverityBelow}
	for _, t := range r.Types {
		p, err := compileType(t)
		if err != nil {
			return fail("%v", err)
		}
		m.types = append(m.types, p)
	}
	var err error
	if m.actors, err = ParsePrefixes(r.Actors); err != nil {
		return fail("actors: %v", err)
	}
	if m.targets, err = ParsePrefixes(r.Targets); err != nil {
		return fail("targets: %v", err)
	}
	for _, p := range r.Ports {
		if p == 0 {
			return fail("port 0 is not a port")
		}
	}
	m.ports = r.Ports
	return m, nil
}

// typePattern is an exact finding type or a prefix.
type typePattern struct {
	s      string
	prefix bool
}

func compileType(t string) (typePattern, error) {
	t = strings.TrimSpace(t)
	if t == "" || t == "*" {
		return typePattern{}, fmt.Errorf("type %q: give a finding type or a prefix such as Recon:*", t)
	}
	if strings.HasSuffix(t, "*") {
		p := strings.TrimSuffix(t, "*")
		if strings.Contains(p, "*") {
			return typePattern{}, fmt.Errorf("type %q: '*' may only end a prefix", t)
		}
		return typePattern{s: p, prefix: true}, nil
	}
	if strings.Contains(t, "*") {
		return typePattern{}, fmt.Errorf("type %q: '*' may only end a prefix", t)
	}
	return typePattern{s: t}, nil
}

func (p typePattern) match(typ string) bool {
	if p.prefix {
		return strings.HasPrefix(typ, p.s)
	}
	return typ == p.s
}

// ParsePrefixes reads IP addresses and CIDR blocks; an address becomes a
// single-address prefix. IPv4-mapped IPv6 forms are read as IPv4.
func ParsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ParsePrefix reads one IP address or CIDR block, in canonical form
// (netaddr.CanonPrefix): an IPv4-mapped IPv6 address or block is read as
// IPv4, host bits are cleared and a zone is dropped.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR block", s)
		}
		return netaddr.CanonPrefix(p), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR block", s)
	}
	a = netaddr.Canon(a)
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = netaddr.Canon(a)
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Matcher is a compiled suppression rule.
type Matcher struct {
	// Rule is the rule as written.
	Rule          SuppressionRule
	types         []typePattern
	actors        []netip.Prefix
	targets       []netip.Prefix
	ports         []uint16
	severityBelow float64
}

// Match reports whether the finding meets every criterion of the rule.
func (m *Matcher) Match(f *Finding) bool {
	if len(m.types) > 0 {
		ok := false
		for _, p := range m.types {
			if p.match(f.Type) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(m.actors) > 0 && !containsAddr(m.actors, f.Actor.IP) {
		return false
	}
	if len(m.targets) > 0 && !containsAddr(m.targets, f.Target.IP) {
		return false
	}
	if len(m.ports) > 0 {
		ok := false
		for _, p := range f.Target.Ports {
			if slices.Contains(m.ports, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if m.severityBelow > 0 && !(f.Severity < m.severityBelow) {
		return false
	}
	return true
}

// Trusted is a trusted-IP list: actors in it raise no findings at all (a
// GuardDuty trusted IP list). A nil *Trusted trusts nobody.
type Trusted struct {
	prefixes []netip.Prefix
}

// NewTrusted reads a trusted-IP list of addresses and CIDR blocks.
func NewTrusted(ss []string) (*Trusted, error) {
	ps, err := ParsePrefixes(ss)
	if err != nil {
		return nil, fmt.Errorf("trusted_ips: %w", err)
	}
	return &Trusted{prefixes: ps}, nil
}

// Contains reports whether the address is trusted.
func (t *Trusted) Contains(a netip.Addr) bool {
	return t != nil && containsAddr(t.prefixes, a)
}

// Policy is the suppression rules and the trusted-IP list together, as the
// configuration gives them. A nil *Policy keeps and archives nothing.
type Policy struct {
	Rules   []*Matcher
	Trusted *Trusted
}

// NewPolicy compiles suppression rules and a trusted-IP list.
func NewPolicy(rules []SuppressionRule, trusted []string) (*Policy, error) {
	p := &Policy{}
	var errs []error
	seen := map[string]bool{}
	for i := range rules {
		m, err := rules[i].Compile()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[m.Rule.Name] {
			errs = append(errs, fmt.Errorf("suppression rule %q is defined twice", m.Rule.Name))
		}
		seen[m.Rule.Name] = true
		p.Rules = append(p.Rules, m)
	}
	t, err := NewTrusted(trusted)
	if err != nil {
		errs = append(errs, err)
	}
	p.Trusted = t
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// Suppressing returns the name of the first rule that matches the finding.
func (p *Policy) Suppressing(f *Finding) (string, bool) {
	if p == nil {
		return "", false
	}
	for _, m := range p.Rules {
		if m.Match(f) {
			return m.Rule.Name, true
		}
	}
	return "", false
}

// Apply drops the findings of trusted actors and archives the ones that a
// suppression rule matches, reusing fs's backing array. It returns the
// findings kept.
func (p *Policy) Apply(fs []Finding) []Finding {
	if p == nil {
		return fs
	}
	out := fs[:0]
	for _, f := range fs {
		if p.Trusted.Contains(f.Actor.IP) {
			continue
		}
		if _, ok := p.Suppressing(&f); ok {
			f.Archived = true
		}
		out = append(out, f)
	}
	clear(fs[len(out):])
	return out
}
