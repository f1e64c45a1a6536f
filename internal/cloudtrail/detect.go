package cloudtrail

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
)

// Finding types raised from CloudTrail. GuardDuty's names where GuardDuty
// has the idea, the same Category:Resource/Name style otherwise;
// docs/detection.md ("CloudTrail") describes each.
const (
	TypeBruteForceSource    = "CredentialAccess:IAMUser/ConsoleLoginBruteForce"
	TypeBruteForceUser      = "CredentialAccess:IAMUser/ConsoleLoginBruteForce.User"
	TypeRoot                = "Policy:IAMUser/RootCredentialUsage"
	TypeNoMFA               = "Policy:IAMUser/ConsoleLoginWithoutMFA"
	TypeUnexpectedSource    = "Policy:IAMUser/ConsoleLoginUnexpectedSource"
	TypeMaliciousIP         = "UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom"
	TypeFromAttacker        = "UnauthorizedAccess:IAMUser/ConsoleLoginFromAttacker"
	TypeSecurityGroupOpen   = "Policy:IAMUser/SecurityGroupOpenedToInternet"
	TypeNetworkACLOpen      = "Policy:IAMUser/NetworkACLOpenedToInternet"
	TypeRouteOpen           = "Policy:IAMUser/RouteOpenedToInternet"
	TypeCloudTrailDisabled  = "Stealth:IAMUser/CloudTrailLoggingDisabled"
	TypeFlowLogsDeleted     = "Stealth:IAMUser/FlowLogsDeleted"
	TypeGuardDutyArchived   = "Stealth:IAMUser/GuardDutyFindingsArchived"
	TypeGuardDutyFeedback   = "Stealth:IAMUser/GuardDutyFeedbackChanged"
	TypeGuardDutyDetector   = "Stealth:IAMUser/GuardDutyDetectorChanged"
	TypeGuardDutyFilter     = "Stealth:IAMUser/GuardDutyFilterChanged"
	hiddenUser              = "HIDDEN_DUE_TO_SECURITY_REASONS"
	signInName              = "ConsoleLogin"
	defaultBurstWindow      = 10 * time.Minute
	defaultBurstFailures    = 10
	defaultBurstUserSources = 2
)

// DefaultSensitivePorts are the ports whose opening to the internet is a
// finding: remote shells and desktops, databases, caches, admin APIs.
var DefaultSensitivePorts = []uint16{20, 21, 22, 23, 25, 135, 139, 445, 1433, 1521, 2375, 2376, 3306, 3389, 5432, 5900, 5984, 6379, 8020, 9200, 9300, 11211, 27017}

// Options configure the detections.
type Options struct {
	// Home are our networks: a caller inside them is "lateral".
	Home []netip.Prefix
	// Allow are trusted sources: never named by the sign-in rules.
	Allow []netip.Prefix
	// Threats are the threat-list entries.
	Threats []netip.Prefix
	// SignInSources are the addresses console sign-ins are expected
	// from; empty turns the unexpected-source rule off.
	SignInSources []netip.Prefix
	// Attackers maps addresses that attack us in the flow logs to the
	// findings naming them (the join).
	Attackers map[netip.Addr][]finding.Finding
	// DeferJoin keeps the sign-ins for the join until SetAttackers gives
	// the flow findings (detect reads CloudTrail while the flow logs are
	// still being read).
	DeferJoin bool
	// Lookup, when set, finds more such findings (in the store).
	Lookup func(netip.Addr) []finding.Finding
	// BurstWindow and BurstFailures: that many failed sign-ins within the
	// window from one source, or against one user from at least
	// BurstUserSources sources, are brute force. Defaults 10 min, 10, 2.
	BurstWindow      time.Duration
	BurstFailures    int
	BurstUserSources int
	// Streaming is set by a caller that runs for long (serve): sign-ins
	// older than the newest by two windows and an hour are then folded
	// into their key's sums and forgotten. A batch run (detect), whose
	// inputs may come in any order, keeps them.
	Streaming bool
	// SensitivePorts default to DefaultSensitivePorts.
	SensitivePorts []uint16
	// MaxTrackedSignIns bounds the sign-ins the brute-force rules keep
	// (DefaultMaxTrackedSignIns when 0).
	MaxTrackedSignIns int
}

// Detector raises findings from CloudTrail records. Add the records in
// any order, then call Findings.
type Detector struct {
	o        Options
	found    map[string]*finding.Finding
	signIns  *signIns // the brute-force rules' memory, by "ip:" or "user:" key
	deferred []Event  // sign-ins waiting for SetAttackers (DeferJoin)
	records  int64
	Changes  []GuardDutyChange // archive and feedback seen, in order
}

// New returns a detector.
func New(o Options) *Detector {
	if o.BurstWindow <= 0 {
		o.BurstWindow = defaultBurstWindow
	}
	if o.BurstFailures <= 0 {
		o.BurstFailures = defaultBurstFailures
	}
	if o.BurstUserSources <= 0 {
		o.BurstUserSources = defaultBurstUserSources
	}
	if o.SensitivePorts == nil {
		o.SensitivePorts = DefaultSensitivePorts
	}
	if o.MaxTrackedSignIns <= 0 {
		o.MaxTrackedSignIns = DefaultMaxTrackedSignIns
	}
	return &Detector{o: o, found: map[string]*finding.Finding{}, signIns: newSignIns()}
}

// Records is how many records were added.
func (d *Detector) Records() int64 { return d.records }

func in(ps []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Add judges one record.
func (d *Detector) Add(e Event) {
	d.records++
	ip := e.IP()
	if e.EventName == signInName {
		d.signIn(e, ip)
	} else if e.UserIdentity.Type == "Root" && e.UserIdentity.InvokedBy == "" && !e.Failed() {
		d.raise(e, TypeRoot, finding.Low, e.User(), fmt.Sprintf("root credentials called %s", e.EventName), nil)
	}
	if in(d.o.Threats, ip) && !in(d.o.Allow, ip) {
		d.raise(e, TypeMaliciousIP, finding.Medium, e.User(),
			fmt.Sprintf("%s called %s from %s, an address on a threat list", e.User(), e.EventName, ip), nil)
	}
	if e.Failed() {
		return
	}
	switch e.EventName {
	case "AuthorizeSecurityGroupIngress":
		d.securityGroup(e)
	case "CreateNetworkAclEntry", "ReplaceNetworkAclEntry":
		d.networkACL(e)
	case "CreateRoute", "ReplaceRoute":
		d.route(e)
	case "StopLogging", "DeleteTrail":
		var p struct{ Name string }
		_ = json.Unmarshal(e.RequestParameters, &p)
		d.raise(e, TypeCloudTrailDisabled, finding.Low, p.Name,
			fmt.Sprintf("%s called %s on trail %s", e.User(), e.EventName, p.Name), map[string]any{"trail": p.Name})
	case "DeleteFlowLogs":
		// EC2 writes this request in several shapes ({"flowLogIds": […]},
		// {"DeleteFlowLogsRequest": {"FlowLogId": {"content": "fl-…"}}}):
		// take every flow log id in it.
		var p any
		_ = json.Unmarshal(e.RequestParameters, &p)
		ids := idsWithPrefix(p, "fl-", nil)
		d.raise(e, TypeFlowLogsDeleted, finding.Medium, strings.Join(ids, ","),
			fmt.Sprintf("%s deleted flow logs %s", e.User(), strings.Join(ids, ", ")), map[string]any{"flow_log_ids": ids})
	}
	if e.EventSource == "guardduty.amazonaws.com" {
		d.guardDuty(e)
	}
}

// signIn judges a ConsoleLogin record.
func (d *Detector) signIn(e Event, ip netip.Addr) {
	user := d.signInUser(e)
	a := attempt{at: e.EventTime, ip: ip, user: user}
	failed := e.Failed()
	if ip.IsValid() && !in(d.o.Allow, ip) {
		d.remember("ip:"+ip.String(), a, failed)
	}
	d.remember("user:"+user, a, failed)
	if ip.IsValid() && !in(d.o.Allow, ip) {
		if d.o.DeferJoin {
			e.Raw = nil // not needed for the join
			d.deferred = append(d.deferred, e)
		} else {
			d.join(e, ip, user, failed)
		}
	}
	if failed {
		return
	}
	typ := e.UserIdentity.Type
	if typ == "Root" {
		d.raise(e, TypeRoot, finding.Low, user, fmt.Sprintf("root signed in to the console from %s", addr(ip)), nil)
	}
	if (typ == "Root" || typ == "IAMUser") && e.MFAUsed() == "No" {
		d.raise(e, TypeNoMFA, finding.Medium, user, fmt.Sprintf("%s signed in to the console without MFA from %s", user, addr(ip)), nil)
	}
	if len(d.o.SignInSources) > 0 && ip.IsValid() && !in(d.o.SignInSources, ip) && !in(d.o.Allow, ip) {
		d.raise(e, TypeUnexpectedSource, finding.Medium, user,
			fmt.Sprintf("%s signed in to the console from %s, outside the expected sources", user, ip), nil)
	}
}

// join raises the sign-in-from-attacker finding when the flow findings
// name the sign-in's address as attacking us.
func (d *Detector) join(e Event, ip netip.Addr, user string, failed bool) {
	if fs := d.attackers(ip); len(fs) > 0 {
		ids, types := make([]string, 0, len(fs)), make([]string, 0, len(fs))
		for _, f := range fs {
			ids = append(ids, f.ID)
			if !slices.Contains(types, f.Type) {
				types = append(types, f.Type)
			}
		}
		sort.Strings(types)
		outcome := "signed in"
		if failed {
			outcome = "tried to sign in"
		}
		// One finding per address: every sign-in from it, whoever as.
		f := d.raiseKeyed(e, TypeFromAttacker, finding.High, "", "",
			fmt.Sprintf("%s %s as %s; the flow logs show it attacking us (%s)", ip, outcome, user, strings.Join(types, ", ")),
			map[string]any{"flow_findings": ids, "flow_types": types})
		users, _ := f.Evidence["users"].([]string)
		if !slices.Contains(users, user) {
			f.Evidence["users"] = append(users, user)
		}
		if !failed {
			f.Evidence["signed_in"] = true
			f.Actor.User = user
		} else if f.Evidence["signed_in"] == nil {
			f.Evidence["signed_in"] = false
		}
	}
}

// SetAttackers gives a detector made with DeferJoin the flow findings to
// join the sign-ins with (by actor address), and joins the sign-ins
// added so far; later ones are joined as they come.
func (d *Detector) SetAttackers(m map[netip.Addr][]finding.Finding) {
	d.o.Attackers, d.o.DeferJoin = m, false
	for _, e := range d.deferred {
		d.join(e, e.IP(), d.signInUser(e), e.Failed())
	}
	d.deferred = nil
}

// signInUser names the user of a sign-in.
func (d *Detector) signInUser(e Event) string {
	if e.UserIdentity.UserName == hiddenUser {
		return hiddenUser // failures for names that do not exist
	}
	return e.User()
}

// attackers returns the flow findings naming ip as an attacker.
func (d *Detector) attackers(ip netip.Addr) []finding.Finding {
	if !ip.IsValid() {
		return nil
	}
	fs := d.o.Attackers[ip]
	if d.o.Lookup != nil {
		for _, f := range d.o.Lookup(ip) {
			if !slices.ContainsFunc(fs, func(g finding.Finding) bool { return g.ID == f.ID }) {
				fs = append(fs, f)
			}
		}
	}
	return fs
}

// IsAttack reports whether a flow finding names its actor as attacking
// us: inbound, and not a Policy finding (a misconfiguration).
func IsAttack(f *finding.Finding) bool {
	return f.Actor.IP.IsValid() && f.Actor.Direction == finding.Inbound && !strings.HasPrefix(f.Type, "Policy:") &&
		!strings.Contains(f.Type, ":IAMUser/") && f.Evidence["source"] == nil
}

func addr(a netip.Addr) string {
	if !a.IsValid() {
		return "an unknown address"
	}
	return a.String()
}

// raise adds one record to the finding of (type, actor, target).
func (d *Detector) raise(e Event, typ string, sev float64, target, title string, ev map[string]any) *finding.Finding {
	return d.raiseKeyed(e, typ, sev, e.User()+"\x00"+target, target, title, ev)
}

// raiseKeyed is raise with the identity's target part given: key.
func (d *Detector) raiseKeyed(e Event, typ string, sev float64, key, target, title string, ev map[string]any) *finding.Finding {
	ip := e.IP()
	id := finding.ID(typ, ip, key)
	f := d.found[id]
	if f == nil {
		dir := finding.Inbound
		if in(d.o.Home, ip) {
			dir = finding.Lateral
		}
		f = &finding.Finding{
			ID: id, Type: typ, Severity: sev, Title: title,
			Actor:     finding.Actor{IP: ip, Direction: dir, User: e.User()},
			Target:    finding.Target{Resource: target},
			FirstSeen: e.EventTime, LastSeen: e.EventTime,
			Evidence: map[string]any{"account": e.RecipientAccountID, "event_names": []string{}, "event_ids": []string{}},
		}
		d.found[id] = f
	}
	f.Count++
	if e.EventTime.Before(f.FirstSeen) {
		f.FirstSeen = e.EventTime
	}
	if e.EventTime.After(f.LastSeen) {
		f.LastSeen = e.EventTime
		f.Title = title
	}
	names := f.Evidence["event_names"].([]string)
	if !slices.Contains(names, e.EventName) {
		f.Evidence["event_names"] = append(names, e.EventName)
	}
	if ids := f.Evidence["event_ids"].([]string); len(ids) < 10 && e.EventID != "" {
		f.Evidence["event_ids"] = append(ids, e.EventID)
	}
	for k, v := range ev {
		f.Evidence[k] = v
	}
	return f
}

// Findings returns the findings, brute force judged over all the records
// added, ordered by first seen.
func (d *Detector) Findings() []finding.Finding {
	d.forget()
	out := make([]finding.Finding, 0, len(d.found))
	for _, f := range d.found {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].FirstSeen.Equal(out[j].FirstSeen) {
			return out[i].FirstSeen.Before(out[j].FirstSeen)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// idsWithPrefix collects the strings in a decoded JSON value that start
// with prefix.
func idsWithPrefix(v any, prefix string, out []string) []string {
	switch x := v.(type) {
	case string:
		if strings.HasPrefix(x, prefix) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	case []any:
		for _, y := range x {
			out = idsWithPrefix(y, prefix, out)
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = idsWithPrefix(x[k], prefix, out)
		}
	}
	return out
}
