package guardduty

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

// Where a finding of a correlation view comes from.
const (
	SideFlow       = "flow"       // flowguard, from flow logs
	SideCloudTrail = "cloudtrail" // flowguard, from CloudTrail
	SideGuardDuty  = "guardduty"  // GuardDuty's own, ingested
)

// Kinds of disagreement between GuardDuty and flowguard.
const (
	GuardDutyOnly   = "guardduty_only" // GuardDuty raised a class of finding flowguard did not
	FlowguardOnly   = "flowguard_only" // flowguard raised a class GuardDuty did not
	SeverityDiffers = "severity"       // both raised the class, at different levels
)

// Correlation is one view of everything known about an actor (an
// address) or a resource (an instance, interface, user, AWS resource id):
// flowguard's flow and CloudTrail findings and GuardDuty's, and where
// GuardDuty and flowguard disagree.
type Correlation struct {
	Subject    string            `json:"subject"`
	Flow       []finding.Finding `json:"flow"`
	CloudTrail []finding.Finding `json:"cloudtrail"`
	GuardDuty  []finding.Finding `json:"guardduty"`
	// GuardDutyInUse is whether the store holds any GuardDuty finding at
	// all; without one there is nothing to disagree with.
	GuardDutyInUse bool           `json:"guardduty_in_use"`
	Disagreements  []Disagreement `json:"disagreements"`
	FirstSeen      time.Time      `json:"first_seen,omitzero"`
	LastSeen       time.Time      `json:"last_seen,omitzero"`
}

// Disagreement is one point where GuardDuty and flowguard differ about
// the subject, for one class of finding (its type without the variant
// after a dot: Backdoor:EC2/DenialOfService.Tcp is Backdoor:EC2/DenialOfService).
type Disagreement struct {
	Kind   string `json:"kind"`
	Class  string `json:"class"`
	Detail string `json:"detail"`
	// The levels (Low, Medium, High) and highest severities of each side
	// for the class; empty for the side that raised none.
	GuardDuty         string   `json:"guardduty,omitempty"`
	Flowguard         string   `json:"flowguard,omitempty"`
	GuardDutySeverity float64  `json:"guardduty_severity,omitempty"`
	FlowguardSeverity float64  `json:"flowguard_severity,omitempty"`
	FindingIDs        []string `json:"finding_ids"`
}

// Side says where a finding comes from: GuardDuty (ingested), CloudTrail
// (an IAMUser type raised by flowguard) or flow logs.
func Side(f *finding.Finding) string {
	switch {
	case f.Evidence[EvSource] == Source:
		return SideGuardDuty
	case strings.Contains(f.Type, ":IAMUser/"):
		return SideCloudTrail
	}
	return SideFlow
}

// Class is a finding type without its variant: the part of the name after
// the first dot following the resource ("DenialOfService.Tcp").
func Class(typ string) string {
	slash := strings.IndexByte(typ, '/')
	if dot := strings.IndexByte(typ[slash+1:], '.'); dot >= 0 {
		return typ[:slash+1+dot]
	}
	return typ
}

// about reports whether a finding names the subject: the address as its
// actor or target, or the resource as an instance, interface, user or
// resource of either.
func about(f *finding.Finding, ip netip.Addr, resource string) bool {
	if ip.IsValid() {
		return f.Actor.IP == ip || f.Target.IP == ip
	}
	return resource != "" && (f.Target.InstanceID == resource || f.Target.InterfaceID == resource || f.Target.Resource == resource ||
		f.Actor.InstanceID == resource || f.Actor.InterfaceID == resource || f.Actor.User == resource)
}

// Correlate builds the view of subject, an IP address or a resource id,
// from the findings in the store (archived ones too: an archive is a
// judgement, not an absence) last seen at or after since (zero: all).
func Correlate(ctx context.Context, st *store.Store, subject string, since time.Time) (*Correlation, error) {
	subject = strings.TrimSpace(subject)
	if subject == "" {
		return nil, fmt.Errorf("correlate: name an IP address or a resource (instance, interface, user, resource id)")
	}
	var ip netip.Addr
	resource := subject
	if a, err := netip.ParseAddr(subject); err == nil {
		ip, resource = a.Unmap(), ""
		subject = ip.String()
	}
	all, err := st.ListFindings(ctx, finding.Filter{Archived: finding.AnyArchived, Since: since})
	if err != nil {
		return nil, fmt.Errorf("correlate %s: %w", subject, err)
	}
	c := &Correlation{Subject: subject, Flow: []finding.Finding{}, CloudTrail: []finding.Finding{}, GuardDuty: []finding.Finding{}, Disagreements: []Disagreement{}}
	for i := range all {
		f := &all[i]
		side := Side(f)
		if side == SideGuardDuty {
			c.GuardDutyInUse = true
		}
		if !about(f, ip, resource) {
			continue
		}
		switch side {
		case SideGuardDuty:
			c.GuardDuty = append(c.GuardDuty, *f)
		case SideCloudTrail:
			c.CloudTrail = append(c.CloudTrail, *f)
		default:
			c.Flow = append(c.Flow, *f)
		}
		if c.FirstSeen.IsZero() || f.FirstSeen.Before(c.FirstSeen) {
			c.FirstSeen = f.FirstSeen
		}
		if f.LastSeen.After(c.LastSeen) {
			c.LastSeen = f.LastSeen
		}
	}
	for _, fs := range [][]finding.Finding{c.Flow, c.CloudTrail, c.GuardDuty} {
		slices.SortStableFunc(fs, func(a, b finding.Finding) int { return a.FirstSeen.Compare(b.FirstSeen) })
	}
	if c.GuardDutyInUse {
		c.Disagreements = disagreements(subject, c.GuardDuty, append(slices.Clone(c.Flow), c.CloudTrail...))
	}
	return c, nil
}

// classSide is what one side raised of one class.
type classSide struct {
	sev   float64
	types []string
	ids   []string
}

func byClass(fs []finding.Finding) (map[string]*classSide, []string) {
	m := map[string]*classSide{}
	var order []string
	for i := range fs {
		f := &fs[i]
		k := Class(f.Type)
		cs := m[k]
		if cs == nil {
			cs = &classSide{}
			m[k] = cs
			order = append(order, k)
		}
		cs.sev = max(cs.sev, f.Severity)
		if !slices.Contains(cs.types, f.Type) {
			cs.types = append(cs.types, f.Type)
		}
		cs.ids = append(cs.ids, f.ID)
	}
	slices.Sort(order)
	return m, order
}

// disagreements compares, class by class, GuardDuty's findings about a
// subject with flowguard's.
func disagreements(subject string, gd, fg []finding.Finding) []Disagreement {
	g, gOrder := byClass(gd)
	f, fOrder := byClass(fg)
	out := []Disagreement{}
	level := func(s float64) string { return fmt.Sprintf("%s %.1f", finding.Level(s), s) }
	for _, k := range gOrder {
		gs, fs := g[k], f[k]
		if fs == nil {
			none := "flowguard raised no finding of that class"
			if len(fg) == 0 {
				none = "flowguard has no finding about it at all"
			}
			out = append(out, Disagreement{Kind: GuardDutyOnly, Class: k, GuardDuty: finding.Level(gs.sev), GuardDutySeverity: gs.sev, FindingIDs: gs.ids,
				Detail: fmt.Sprintf("GuardDuty raised %s (%s) about %s; %s", strings.Join(gs.types, ", "), level(gs.sev), subject, none)})
			continue
		}
		if finding.Level(gs.sev) != finding.Level(fs.sev) {
			out = append(out, Disagreement{Kind: SeverityDiffers, Class: k,
				GuardDuty: finding.Level(gs.sev), GuardDutySeverity: gs.sev, Flowguard: finding.Level(fs.sev), FlowguardSeverity: fs.sev,
				FindingIDs: append(slices.Clone(gs.ids), fs.ids...),
				Detail:     fmt.Sprintf("%s about %s: GuardDuty says %s, flowguard %s", k, subject, level(gs.sev), level(fs.sev))})
		}
	}
	for _, k := range fOrder {
		if g[k] != nil {
			continue
		}
		fs := f[k]
		none := "GuardDuty raised no finding of that class"
		if len(gd) == 0 {
			none = "GuardDuty has no finding about it at all"
		}
		out = append(out, Disagreement{Kind: FlowguardOnly, Class: k, Flowguard: finding.Level(fs.sev), FlowguardSeverity: fs.sev, FindingIDs: fs.ids,
			Detail: fmt.Sprintf("flowguard raised %s (%s) about %s; %s", strings.Join(fs.types, ", "), level(fs.sev), subject, none)})
	}
	return out
}
