package detect

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
)

// Finding types raised by the detectors.
const (
	TypeRepeatedReject  = "Recon:EC2/RepeatedReject"
	TypePortscan        = "Recon:EC2/Portscan"
	TypePortProbe       = "Recon:EC2/PortProbeUnprotectedPort"
	TypeSSHBruteForce   = "UnauthorizedAccess:EC2/SSHBruteForce"
	TypeRDPBruteForce   = "UnauthorizedAccess:EC2/RDPBruteForce"
	TypeInboundFlood    = "Impact:EC2/InboundFlood"
	TypeDoSPrefix       = "Backdoor:EC2/DenialOfService."
	TypeExfiltration    = "Exfiltration:EC2/UnusualOutboundVolume"
	TypePortUnusual     = "Behavior:EC2/NetworkPortUnusual"
	TypeMaliciousCaller = "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"
	TypeUnexpected      = "Policy:EC2/UnexpectedSource"
	TypeReturnRejected  = "Policy:EC2/StatelessReturnTrafficRejected"
)

// IsAttack reports whether a finding type names an attack (everything but
// the Policy: findings, which report misconfiguration).
func IsAttack(typ string) bool { return !strings.HasPrefix(typ, "Policy:") }

// Sample is one record behind a finding: where it is and its text.
type Sample struct {
	Source string `json:"source"`
	Line   int    `json:"line,omitempty"`
	Text   string `json:"text"`
}

// Result is a finding with what --explain shows: the rule, its thresholds
// and a few of the records.
type Result struct {
	finding.Finding
	Rule       string         `json:"rule"`
	Thresholds map[string]any `json:"thresholds,omitempty"`
	Samples    []Sample       `json:"samples,omitempty"`

	ev     evidence
	prefix netip.Prefix
	top    []TopSource
}

// clone returns a copy of r that shares nothing it changes with r.
func (r *Result) clone() *Result {
	c := *r
	c.Target.Ports = slices.Clone(r.Target.Ports)
	c.Samples = slices.Clone(r.Samples)
	c.Evidence = nil
	c.ev = maps.Clone(r.ev)
	return &c
}

// evidence is a finding's numbers, keyed by the declared evidence keys
// (finding.LookupEvidence), combined across windows by their declared rule.
type evidence map[finding.EvidenceKey]int64

type typ uint8

const (
	typThreat typ = iota + 1
	typUnexpected
)

type pendKey struct {
	t             typ
	actor, target addrKey
	port          uint16
}

type pendAgg struct {
	count, accepted, rejected, bytes uint64
	first, last                      uint32
	inbound                          bool
	samples                          []Sample
}

func (e *Engine) pend(p *pane, c *chunk, f *flow, t typ, actor, target addrKey, port uint16, dir finding.Direction) {
	k := pendKey{t, actor, target, port}
	a := p.pend[k]
	if a == nil {
		a = &pendAgg{}
		p.pend[k] = a
	}
	a.count++
	switch f.action {
	case 1:
		a.accepted++
	case 2:
		a.rejected++
	}
	a.bytes += f.bytes
	span(&a.first, &a.last, f)
	if dir == finding.Inbound {
		a.inbound = true
	}
	addSample(&a.samples, c, f)
}

// spec is one window's contribution to a finding.
type spec struct {
	typ      string
	sev      float64
	actor    addrKey
	dir      finding.Direction
	target   addrKey
	idTarget string
	ports    []uint16
	count    int64
	first    uint32
	last     uint32
	ev       evidence
	samples  []Sample
	prefix   netip.Prefix
	top      []TopSource // a flood's heaviest sources
	rule     string
	thr      map[string]any
}

func addrOrZero(k addrKey) netip.Addr {
	if !k.valid() {
		return netip.Addr{}
	}
	return k.addr()
}

// upsertInto adds a window's contribution to the finding with the same id
// in results; notify: call OnFinding.
func (e *Engine) upsertInto(results map[string]*Result, s spec, notify bool) {
	actor := addrOrZero(s.actor)
	target := addrOrZero(s.target)
	idt := s.idTarget
	if idt == "" && target.IsValid() {
		idt = target.String()
	}
	id := finding.ID(s.typ, actor, idt)
	r := results[id]
	if r == nil && !notify {
		// Peek: start from what the closed windows found, so that the
		// peeked finding is the one the closing window will hold.
		if c := e.results[id]; c != nil {
			r = c.clone()
			results[id] = r
		}
	}
	first := time.Unix(int64(s.first), 0).UTC()
	last := time.Unix(int64(s.last), 0).UTC()
	if r == nil {
		r = &Result{Finding: finding.Finding{
			ID: id, Type: s.typ, Severity: s.sev,
			Actor:     finding.Actor{IP: actor, Direction: s.dir},
			Target:    finding.Target{IP: target},
			FirstSeen: first, LastSeen: last,
		}, Rule: s.rule, Thresholds: s.thr, ev: evidence{}, prefix: s.prefix}
		results[id] = r
	} else {
		if first.Before(r.FirstSeen) {
			r.FirstSeen = first
		}
		if last.After(r.LastSeen) {
			r.LastSeen = last
		}
		r.Severity = max(r.Severity, s.sev)
		if s.dir == finding.Inbound {
			r.Actor.Direction = s.dir // deterministic whatever the order
		}
		if s.prefix.IsValid() {
			r.prefix = mergePrefix(r.prefix, s.prefix)
		}
	}
	r.Count += s.count
	for k, v := range s.ev {
		if old, ok := r.ev[k]; ok {
			v = finding.CombineInt(finding.EvidenceRuleFor(string(k)), old, v)
		}
		r.ev[k] = v
	}
	if s.top != nil {
		r.top = s.top // newest, as declared for top_sources
	}
	for _, p := range s.ports {
		if i, found := slices.BinarySearch(r.Target.Ports, p); !found && (len(r.Target.Ports) < 32 || p < r.Target.Ports[31]) {
			r.Target.Ports = slices.Insert(r.Target.Ports, i, p)
			if len(r.Target.Ports) > 32 {
				r.Target.Ports = r.Target.Ports[:32]
			}
		}
	}
	for _, sm := range s.samples {
		if len(r.Samples) < maxSamples {
			r.Samples = append(r.Samples, sm)
		}
	}
	if notify && e.onFind != nil {
		e.finish(r)
		e.onFind(r)
	}
}

func mergePrefix(a, b netip.Prefix) netip.Prefix {
	if !a.IsValid() {
		return b
	}
	if !b.IsValid() || a.Addr().Is4() != b.Addr().Is4() {
		return a
	}
	p := commonPrefix([]addrKey{keyOf(a.Addr()), keyOf(b.Addr())})
	bits := min(a.Bits(), b.Bits(), p.Bits())
	q, _ := a.Addr().Prefix(bits)
	return q
}

// finish fills the interface ids, evidence, title and description.
func (e *Engine) finish(r *Result) {
	if id, ok := e.hostIdx[keyOf(r.Target.IP)]; ok && r.Target.IP.IsValid() {
		r.Target.InterfaceID = e.hosts[id].ifaceID()
	}
	if r.Actor.IP.IsValid() && r.Actor.Direction != finding.Inbound {
		if id, ok := e.hostIdx[keyOf(r.Actor.IP)]; ok {
			r.Actor.InterfaceID = e.hosts[id].ifaceID()
		}
	}
	r.Evidence = make(map[string]any, len(r.ev)+2)
	for k, v := range r.ev {
		r.Evidence[string(k)] = v
	}
	if r.prefix.IsValid() {
		r.Evidence[string(finding.EvSourcesPrefix)] = r.prefix.String()
	}
	if len(r.top) > 0 {
		r.Evidence[string(finding.EvTopSources)] = slices.Clone(r.top)
	}
	r.Title = title(r)
}

// Results returns the findings so far, ordered by first seen, type, actor
// and target.
func (e *Engine) Results() []*Result { return e.sorted(e.results) }

func (e *Engine) sorted(results map[string]*Result) []*Result {
	out := make([]*Result, 0, len(results))
	for _, r := range results {
		e.finish(r)
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Result) int {
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		if c := a.Actor.IP.Compare(b.Actor.IP); c != 0 {
			return c
		}
		if c := a.Target.IP.Compare(b.Target.IP); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// Closed returns the finding id as the closed windows raised it, or nil
// when they did not.
func (e *Engine) Closed(id string) *Result {
	r := e.results[id]
	if r != nil {
		e.finish(r)
	}
	return r
}

// Findings returns the findings so far, in the order of Results.
func (e *Engine) Findings() []finding.Finding {
	rs := e.Results()
	out := make([]finding.Finding, len(rs))
	for i, r := range rs {
		out[i] = r.Finding
	}
	return out
}

// Num formats n with thousands separators: 1,234,567.
func Num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return Num(n) + " bytes"
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return Num(n) + " " + many
}

func portList(ps []uint16) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == 5 {
			b.WriteString("…")
			break
		}
		b.WriteString(strconv.Itoa(int(p)))
	}
	return b.String()
}

func title(r *Result) string {
	a, t := r.Actor.IP.String(), r.Target.IP.String()
	ev := r.ev
	switch {
	case r.Type == TypeRepeatedReject:
		s := fmt.Sprintf("%s was rejected %s", a, plural(ev["rejected"], "time", "times"))
		if r.Target.IP.IsValid() {
			s += " by " + t
		} else if h := ev["distinct_hosts"]; h > 1 {
			s += " by " + plural(h, "host", "hosts")
		}
		if _, slow := ev[finding.EvHorizonSeconds]; slow && len(r.Target.Ports) == 1 {
			s += fmt.Sprintf(" on port %d over %s", r.Target.Ports[0], r.LastSeen.Sub(r.FirstSeen).Round(time.Minute))
		}
		return s
	case r.Type == TypePortscan && r.Actor.Direction == finding.Inbound && r.Target.IP.IsValid():
		return fmt.Sprintf("%s scanned %s on %s", a, plural(ev["distinct_ports"], "port", "ports"), t)
	case r.Type == TypePortscan && r.Target.IP.IsValid():
		return fmt.Sprintf("%s (ours) scanned %s on %s", a, plural(ev["distinct_ports"], "port", "ports"), t)
	case r.Type == TypePortscan && r.Actor.Direction == finding.Inbound:
		return fmt.Sprintf("%s swept port %s of %s", a, portList(r.Target.Ports), plural(ev["distinct_hosts"], "of our hosts", "of our hosts"))
	case r.Type == TypePortscan && r.Actor.Direction == finding.Lateral:
		return fmt.Sprintf("%s (ours) swept port %s of %s in our networks", a, portList(r.Target.Ports), plural(ev["distinct_hosts"], "host", "hosts"))
	case r.Type == TypePortscan:
		return fmt.Sprintf("%s (ours) scanned port %s of %s", a, portList(r.Target.Ports), plural(ev["distinct_hosts"], "outside host", "outside hosts"))
	case r.Type == TypeSSHBruteForce || r.Type == TypeRDPBruteForce:
		proto := "SSH"
		if r.Type == TypeRDPBruteForce {
			proto = "RDP"
		}
		who := a
		if r.Actor.Direction != finding.Inbound {
			who += " (ours)"
		}
		return fmt.Sprintf("%s made %s %s connection attempts to %s", who, Num(ev["attempts"]), proto, t)
	case r.Type == TypePortProbe:
		return fmt.Sprintf("port %s of %s is open to the world and was probed by %s", portList(r.Target.Ports), t, plural(ev["distinct_sources"], "source", "sources"))
	case r.Type == TypeInboundFlood:
		switch {
		case r.prefix.IsValid():
			return fmt.Sprintf("%s was flooded with %s packets from %s (%s heavy sources)", t, Num(ev["packets"]), r.prefix, Num(ev["heavy_sources"]))
		case r.Actor.IP.IsValid():
			return fmt.Sprintf("%s was flooded with %s packets, most from %s", t, Num(ev["packets"]), a)
		}
		return fmt.Sprintf("%s was flooded with %s packets from many unrelated sources (%s heavy; no single actor)", t, Num(ev["packets"]), Num(ev["heavy_sources"]))
	case strings.HasPrefix(r.Type, TypeDoSPrefix):
		return fmt.Sprintf("%s (ours) sent %s packets to %s: a denial of service", a, Num(ev["packets"]), t)
	case r.Type == TypeExfiltration:
		return fmt.Sprintf("%s (ours) sent %s to %s, far above its usual volume", a, byteSize(ev["bytes"]), t)
	case r.Type == TypePortUnusual:
		return fmt.Sprintf("%s (ours) connected to port %s, which it had not used before (%s)", a, portList(r.Target.Ports), t)
	case r.Type == TypeMaliciousCaller && r.Actor.Direction == finding.Inbound:
		return fmt.Sprintf("%s, on a threat list, connected to %s (%s)", a, t, plural(r.Count, "record", "records"))
	case r.Type == TypeMaliciousCaller:
		return fmt.Sprintf("%s talked to %s, which is on a threat list (%s)", t, a, plural(r.Count, "record", "records"))
	case r.Type == TypeUnexpected:
		return fmt.Sprintf("%s reached port %s of %s, outside the expected sources", a, portList(r.Target.Ports), t)
	case r.Type == TypeReturnRejected:
		return fmt.Sprintf("%s of %s's outbound connections were rejected on the way back (stateless network ACL?)",
			plural(ev["rejected"], "response", "responses"), a)
	}
	return r.Type
}
