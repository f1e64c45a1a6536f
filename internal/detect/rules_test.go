package detect

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"

	"github.com/flowguard/flowguard/internal/finding"
)

// rec is one hand-made record for the rule tests.
type rec struct {
	eni, src, dst string
	sp, dp        int
	proto         int
	pk, by        int
	st, en        int // seconds after t0
	act           string
	flags         int    // -1: absent
	dir           string // "" : absent
}

const t0 = 1795860000 // 2026-11-28T10:00:00Z

// records renders recs with a header naming the fields, flow-direction and
// tcp-flags included.
func records(recs []rec) []byte {
	var b strings.Builder
	b.WriteString("version interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status tcp-flags flow-direction\n")
	for _, r := range recs {
		eni := r.eni
		if eni == "" {
			eni = "eni-0123456789abcdef0"
		}
		flags, dir := "-", "-"
		if r.flags >= 0 {
			flags = fmt.Sprint(r.flags)
		}
		if r.dir != "" {
			dir = r.dir
		}
		proto := r.proto
		if proto == 0 {
			proto = 6
		}
		fmt.Fprintf(&b, "5 %s %s %s %d %d %d %d %d %d %d %s OK %s %s\n", eni, r.src, r.dst, r.sp, r.dp, proto, r.pk, r.by,
			t0+r.st, t0+r.en, r.act, flags, dir)
	}
	return []byte(b.String())
}

var home = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("2600:1f18:abc::/56")}

func detectRecs(t *testing.T, o Options, recs []rec) *Engine {
	t.Helper()
	if o.Home == nil {
		o.Home = home
	}
	if o.Settings.Window == 0 {
		o.Settings = DefaultSettings()
	}
	return runEngine(t, o, 0, 1, input("rules.log", records(recs)))
}

func only(t *testing.T, e *Engine, typ string) []*Result {
	t.Helper()
	var out []*Result
	for _, r := range e.Results() {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

func noAttacks(t *testing.T, e *Engine) {
	t.Helper()
	for _, r := range attacks(e.Results()) {
		t.Errorf("unexpected %s: %s", r.Type, r.Title)
	}
}

func TestVerticalScanIPv6(t *testing.T) {
	var rs []rec
	for p := 1; p <= 30; p++ {
		rs = append(rs, rec{src: "2001:db8::66", dst: "2600:1f18:abc:1::10", sp: 51000, dp: p, pk: 1, by: 80, st: p, en: p, act: "REJECT", flags: 2, dir: "ingress"})
	}
	e := detectRecs(t, Options{}, rs)
	got := only(t, e, TypePortscan)
	if len(got) != 1 {
		t.Fatalf("want one port scan, got %d", len(got))
	}
	r := got[0]
	if r.Actor.IP.String() != "2001:db8::66" || r.Target.IP.String() != "2600:1f18:abc:1::10" || r.Actor.Direction != finding.Inbound {
		t.Errorf("actor %v target %v", r.Actor, r.Target)
	}
	if r.Evidence["distinct_ports"] != int64(30) || r.Count != 30 || r.Target.InterfaceID != "eni-0123456789abcdef0" {
		t.Errorf("evidence %v count %d iface %q", r.Evidence, r.Count, r.Target.InterfaceID)
	}
	if r.Title != "2001:db8::66 scanned 30 ports on 2600:1f18:abc:1::10" {
		t.Errorf("title %q", r.Title)
	}
	if len(only(t, e, TypeRepeatedReject)) != 0 {
		t.Error("a scan should not also be reported as repeated rejects")
	}
	// Allow-listed, the same scanner is never named.
	e = detectRecs(t, Options{Allow: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}}, rs)
	noAttacks(t, e)
}

func TestSweepIPv6AndEvasion(t *testing.T) {
	var rs []rec
	for h := 1; h <= 8; h++ {
		// Source port 443 would look like return traffic by ports alone;
		// tcp-flags (SYN) say the sender started it.
		rs = append(rs, rec{src: "2001:db8::77", dst: fmt.Sprintf("2600:1f18:abc:1::%x", h), sp: 443, dp: 23, pk: 1, by: 80, st: h, en: h, act: "REJECT", flags: 2})
	}
	e := detectRecs(t, Options{}, rs)
	got := only(t, e, TypePortscan)
	if len(got) != 1 || got[0].Target.IP.IsValid() || got[0].Evidence["distinct_hosts"] != int64(8) || got[0].Target.Ports[0] != 23 {
		t.Fatalf("want one sweep of port 23 over 8 hosts, got %+v", got)
	}
	if len(only(t, e, TypeReturnRejected)) != 0 {
		t.Error("SYNs from port 443 are not return traffic")
	}
}

func TestReturnTrafficByFlags(t *testing.T) {
	var rs []rec
	for i := 0; i < 6; i++ {
		// From a non-service port, but SYN-ACK: a response.
		rs = append(rs, rec{src: "203.0.113.50", dst: "10.0.1.30", sp: 47000 + i, dp: 40000 + i, pk: 1, by: 60, st: i, en: i, act: "REJECT", flags: 18})
	}
	e := detectRecs(t, Options{}, rs)
	noAttacks(t, e)
	got := only(t, e, TypeReturnRejected)
	if len(got) != 1 || got[0].Actor.IP.String() != "10.0.1.30" || got[0].Count != 6 {
		t.Fatalf("want one policy finding for 10.0.1.30 with 6 records, got %+v", got)
	}
}

func TestOutboundAndLateralScans(t *testing.T) {
	var rs []rec
	for i := 0; i < 30; i++ {
		rs = append(rs, rec{src: "10.0.10.5", dst: fmt.Sprintf("198.18.%d.%d", i/200, 1+i%200), sp: 40000 + i, dp: 445, pk: 1, by: 60, st: i, en: i, act: "ACCEPT", flags: 2, dir: "egress"})
	}
	for i := 0; i < 7; i++ {
		rs = append(rs, rec{src: "10.0.10.6", dst: fmt.Sprintf("10.0.20.%d", 10+i), sp: 41000 + i, dp: 3306, pk: 1, by: 40, st: i, en: i, act: "REJECT", flags: 2})
	}
	for p := 0; p < 20; p++ {
		rs = append(rs, rec{src: "10.0.10.8", dst: "10.0.20.99", sp: 42000, dp: 8000 + p, pk: 1, by: 40, st: p, en: p, act: "REJECT", flags: 2})
	}
	e := detectRecs(t, Options{}, rs)
	got := only(t, e, TypePortscan)
	if len(got) != 3 {
		t.Fatalf("want an outbound sweep, a lateral sweep and a lateral vertical scan, got %d", len(got))
	}
	for _, r := range got {
		switch r.Actor.IP.String() {
		case "10.0.10.5":
			if r.Actor.Direction != finding.Outbound || r.Evidence["distinct_hosts"] != int64(30) {
				t.Errorf("outbound: %+v %v", r.Actor, r.Evidence)
			}
		case "10.0.10.6":
			if r.Actor.Direction != finding.Lateral || r.Evidence["distinct_hosts"] != int64(7) {
				t.Errorf("lateral: %+v %v", r.Actor, r.Evidence)
			}
		case "10.0.10.8":
			if r.Actor.Direction != finding.Lateral || r.Target.IP.String() != "10.0.20.99" || r.Evidence["distinct_ports"] != int64(20) {
				t.Errorf("lateral vertical: %+v %+v %v", r.Actor, r.Target, r.Evidence)
			}
		default:
			t.Errorf("actor %s", r.Actor.IP)
		}
	}
}

func TestRDPBruteForce(t *testing.T) {
	var rs []rec
	for i := 0; i < 25; i++ {
		rs = append(rs, rec{src: "198.51.100.9", dst: "10.0.1.20", sp: 50000 + i, dp: 3389, pk: 25, by: 9000, st: i * 10, en: i*10 + 4, act: "ACCEPT", flags: 3})
		rs = append(rs, rec{src: "10.0.1.20", dst: "198.51.100.9", sp: 3389, dp: 50000 + i, pk: 22, by: 12000, st: i * 10, en: i*10 + 4, act: "ACCEPT", flags: 19})
	}
	e := detectRecs(t, Options{}, rs)
	got := only(t, e, TypeRDPBruteForce)
	if len(got) != 1 || got[0].Evidence["attempts"] != int64(25) || got[0].Severity != finding.Low || got[0].Target.IP.String() != "10.0.1.20" {
		t.Fatalf("want one RDP brute force of 25 attempts, got %+v", got)
	}
	// Below the threshold, nothing.
	e = detectRecs(t, Options{}, rs[:2*19])
	noAttacks(t, e)
}

func TestFloodAndOutboundDoS(t *testing.T) {
	var rs []rec
	for s := 1; s <= 15; s++ {
		rs = append(rs, rec{src: fmt.Sprintf("198.18.7.%d", s*3), dst: "10.0.1.10", sp: 30000 + s, dp: 80, pk: 5000, by: 300000, st: 10, en: 60, act: "ACCEPT", flags: 2})
	}
	// A busy legitimate client on another host, below heavy.
	for i := 0; i < 50; i++ {
		rs = append(rs, rec{src: "203.0.113.80", dst: "10.0.1.11", sp: 40000 + i, dp: 443, pk: 15, by: 9000, st: i, en: i + 2, act: "ACCEPT", flags: 3})
	}
	rs = append(rs, rec{src: "10.0.10.9", dst: "192.0.2.200", sp: 12345, dp: 53, proto: 17, pk: 150000, by: 150000 * 70, st: 5, en: 60, act: "ACCEPT", flags: -1, dir: "egress"})
	e := detectRecs(t, Options{}, rs)
	fl := only(t, e, TypeInboundFlood)
	if len(fl) != 1 || fl[0].Target.IP.String() != "10.0.1.10" || fl[0].Evidence["heavy_sources"] != int64(15) ||
		fl[0].Evidence["packets"] != int64(75000) || fl[0].Evidence["sources_prefix"] != "198.18.7.0/24" || fl[0].Actor.IP.String() != "198.18.7.0" {
		t.Fatalf("flood: %+v", fl)
	}
	dos := only(t, e, TypeDoSPrefix+"Dns")
	if len(dos) != 1 || dos[0].Actor.IP.String() != "10.0.10.9" || dos[0].Target.IP.String() != "192.0.2.200" || dos[0].Severity != finding.High {
		t.Fatalf("DoS: %+v", dos)
	}
}

func TestExfiltrationAndUnusualPort(t *testing.T) {
	set := DefaultSettings()
	set.LearningPeriod = Duration(20 * 60 * 1e9)
	var rs []rec
	// 40 minutes of ordinary HTTPS calls, a few MB each window.
	for m := 0; m < 40; m++ {
		rs = append(rs, rec{src: "10.0.10.7", dst: "192.0.2.10", sp: 40000 + m, dp: 443, pk: 2000, by: 2 << 20, st: m * 60, en: m*60 + 30, act: "ACCEPT", flags: 3, dir: "egress"})
	}
	// Then 300 MiB to one outside host, and IRC on 6667.
	rs = append(rs, rec{src: "10.0.10.7", dst: "198.51.100.99", sp: 45000, dp: 443, pk: 220000, by: 300 << 20, st: 41 * 60, en: 41*60 + 50, act: "ACCEPT", flags: 2, dir: "egress"})
	rs = append(rs, rec{src: "10.0.10.7", dst: "198.51.100.98", sp: 45001, dp: 6667, pk: 30, by: 3000, st: 42 * 60, en: 42*60 + 50, act: "ACCEPT", flags: 2, dir: "egress"})
	e := detectRecs(t, Options{Settings: set}, rs)
	ex := only(t, e, TypeExfiltration)
	if len(ex) != 1 || ex[0].Target.IP.String() != "198.51.100.99" || ex[0].Evidence["bytes"] != int64(300<<20) {
		t.Fatalf("exfiltration: %+v", ex)
	}
	un := only(t, e, TypePortUnusual)
	if len(un) != 1 || un[0].Target.Ports[0] != 6667 || un[0].Actor.IP.String() != "10.0.10.7" {
		t.Fatalf("unusual port: %+v", un)
	}
	// Port 443, used while learning, is not unusual; nothing before the
	// learning period ends is judged unusual.
	set.LearningPeriod = Duration(24 * 3600 * 1e9)
	e = detectRecs(t, Options{Settings: set}, rs)
	if n := len(only(t, e, TypePortUnusual)); n != 0 {
		t.Errorf("%d unusual-port findings before the learning period ends", n)
	}
}

func TestThreatListBothWays(t *testing.T) {
	threats := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/28")}
	rs := []rec{
		{src: "192.0.2.5", dst: "10.0.0.100", sp: 50000, dp: 443, pk: 10, by: 1500, st: 1, en: 3, act: "ACCEPT", flags: 3},
		{src: "10.0.0.100", dst: "192.0.2.5", sp: 443, dp: 50000, pk: 10, by: 9000, st: 1, en: 3, act: "ACCEPT", flags: 19},
		{src: "10.0.10.4", dst: "192.0.2.9", sp: 40000, dp: 8443, pk: 10, by: 1500, st: 5, en: 9, act: "ACCEPT", flags: 3, dir: "egress"},
		{src: "192.0.2.77", dst: "10.0.0.100", sp: 50000, dp: 443, pk: 10, by: 1500, st: 1, en: 3, act: "ACCEPT", flags: 3}, // not listed
	}
	e := detectRecs(t, Options{Threats: threats}, rs)
	got := only(t, e, TypeMaliciousCaller)
	if len(got) != 2 {
		t.Fatalf("want two threat-list findings, got %d", len(got))
	}
	for _, r := range got {
		switch r.Actor.IP.String() {
		case "192.0.2.5":
			if r.Actor.Direction != finding.Inbound || r.Target.IP.String() != "10.0.0.100" || r.Count != 2 {
				t.Errorf("inbound caller: %+v count %d", r.Actor, r.Count)
			}
		case "192.0.2.9":
			if r.Actor.Direction != finding.Outbound || r.Target.IP.String() != "10.0.10.4" {
				t.Errorf("outbound: %+v %+v", r.Actor, r.Target)
			}
		default:
			t.Errorf("unlisted actor %s", r.Actor.IP)
		}
	}
}

func TestUnexpectedSource(t *testing.T) {
	exp := []ExpectedSource{{Ports: []uint16{22}, Sources: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}}
	rs := []rec{
		{src: "198.51.100.9", dst: "10.0.0.10", sp: 50000, dp: 22, pk: 30, by: 4000, st: 1, en: 9, act: "ACCEPT", flags: 3},
		{src: "203.0.113.5", dst: "10.0.0.10", sp: 50001, dp: 22, pk: 30, by: 4000, st: 1, en: 9, act: "ACCEPT", flags: 3},
		{src: "198.51.100.10", dst: "10.0.0.10", sp: 50002, dp: 22, pk: 2, by: 120, st: 1, en: 2, act: "REJECT", flags: 2},
		{src: "10.0.10.5", dst: "10.0.0.10", sp: 50003, dp: 22, pk: 30, by: 4000, st: 1, en: 9, act: "ACCEPT", flags: 3},
	}
	e := detectRecs(t, Options{Expected: exp}, rs)
	got := only(t, e, TypeUnexpected)
	if len(got) != 1 || got[0].Actor.IP.String() != "198.51.100.9" || got[0].Target.IP.String() != "10.0.0.10" || got[0].Target.Ports[0] != 22 {
		t.Fatalf("want one unexpected source 198.51.100.9, got %+v", got)
	}
}

func TestLatenessAndWatermark(t *testing.T) {
	rs := []rec{
		{src: "198.51.100.1", dst: "10.0.0.10", sp: 1, dp: 22, pk: 1, by: 40, st: 3600, en: 3600, act: "REJECT", flags: 2},
		// 20 minutes older than the newest record: later than the
		// default 15 minutes allowed.
		{src: "198.51.100.2", dst: "10.0.0.10", sp: 1, dp: 22, pk: 1, by: 40, st: 2400, en: 2400, act: "REJECT", flags: 2},
		// 10 minutes older: within the bound.
		{src: "198.51.100.3", dst: "10.0.0.10", sp: 1, dp: 22, pk: 1, by: 40, st: 3000, en: 3000, act: "REJECT", flags: 2},
	}
	e := detectRecs(t, Options{}, rs)
	if m := e.Metrics(); m.TooLate != 1 || m.Records != 2 {
		t.Errorf("metrics %+v: want one record too late and two counted", m)
	}
}

func TestUpdatesOneFinding(t *testing.T) {
	// The same scanner in two windows an hour apart: one finding, counts
	// summed, first and last seen spanning both.
	var rs []rec
	for _, base := range []int{0, 3600} {
		for p := 1; p <= 20; p++ {
			rs = append(rs, rec{src: "198.51.100.23", dst: "10.0.1.10", sp: 40000, dp: base/100 + p, pk: 1, by: 44, st: base + p, en: base + p, act: "REJECT", flags: 2})
		}
	}
	e := detectRecs(t, Options{}, rs)
	got := only(t, e, TypePortscan)
	if len(got) != 1 {
		t.Fatalf("want one finding updated, got %d", len(got))
	}
	r := got[0]
	if r.Count != 40 || r.FirstSeen.Unix() != t0+1 || r.LastSeen.Unix() != t0+3620 || r.ID != finding.ID(TypePortscan, netip.MustParseAddr("198.51.100.23"), "10.0.1.10") {
		t.Errorf("count %d first %v last %v id %s", r.Count, r.FirstSeen, r.LastSeen, r.ID)
	}
}

// TestOutboundClientBehindStatelessACL: one of our instances calls 30 HTTPS
// servers; they all answer, but a stateless network ACL rejects the
// answers, so the instance retries. That is a misconfiguration (a Policy
// finding), not an outbound scan. A real scan whose few answering targets
// are rejected the same way is still a scan.
func TestOutboundClientBehindStatelessACL(t *testing.T) {
	var rs []rec
	for i := 0; i < 30; i++ {
		dst := fmt.Sprintf("203.0.113.%d", 10+i)
		for try := 0; try < 2; try++ {
			sp := 40000 + 2*i + try
			rs = append(rs, rec{src: "10.0.1.55", dst: dst, sp: sp, dp: 443, pk: 1, by: 60, st: i, en: i + 1, act: "ACCEPT", flags: 2, dir: "egress"})
			rs = append(rs, rec{src: dst, dst: "10.0.1.55", sp: 443, dp: sp, pk: 1, by: 60, st: i, en: i + 1, act: "REJECT", flags: 18, dir: "ingress"})
		}
	}
	// A scan of 3389 on 100 hosts, 5 of which answer (and are rejected).
	for i := 0; i < 100; i++ {
		dst := fmt.Sprintf("198.18.0.%d", 1+i)
		rs = append(rs, rec{src: "10.0.1.66", dst: dst, sp: 50000 + i, dp: 3389, pk: 1, by: 60, st: i % 60, en: i%60 + 1, act: "ACCEPT", flags: 2, dir: "egress"})
		if i < 5 {
			rs = append(rs, rec{src: dst, dst: "10.0.1.66", sp: 3389, dp: 50000 + i, pk: 1, by: 60, st: i, en: i + 1, act: "REJECT", flags: 18, dir: "ingress"})
		}
	}
	e := detectRecs(t, Options{}, rs)
	scans := only(t, e, TypePortscan)
	if len(scans) != 1 || scans[0].Actor.IP.String() != "10.0.1.66" {
		for _, s := range scans {
			t.Logf("scan: %s", s.Title)
		}
		t.Fatalf("want only the scan by 10.0.1.66, got %d scans", len(scans))
	}
	policy := only(t, e, TypeReturnRejected)
	found := false
	for _, p := range policy {
		found = found || p.Actor.IP.String() == "10.0.1.55"
	}
	if !found {
		t.Errorf("no policy finding for 10.0.1.55's rejected return traffic")
	}
}

// TestDistributedFloodNamesNoInnocent: a busy API client talks to a web
// server all day; then about 800 unrelated addresses flood it with a few
// hundred packets each. The flood is found, nobody is named as its actor
// (the client is the heaviest single source, and steady against its own
// history), and the evidence lists the flood's heaviest sources with their
// share of its packets.
func TestDistributedFloodNamesNoInnocent(t *testing.T) {
	const client = "192.0.2.44"
	var rs []rec
	// The client: 2,000 packets a minute for three hours.
	for m := 0; m < 180; m++ {
		rs = append(rs, rec{src: client, dst: "10.0.1.10", sp: 40000 + m, dp: 443, pk: 2000, by: 2000 * 400, st: m * 60, en: m*60 + 59, act: "ACCEPT", flags: 3})
	}
	// The flood, from 90 to 100 minutes: 800 sources, 200 to 500 packets
	// each in each of two records.
	for s := 0; s < 800; s++ {
		src := fmt.Sprintf("%d.%d.%d.%d", 11+s%90, (s*37)%250, (s*101)%250, 1+s%250)
		for k := 0; k < 2; k++ {
			st := 90*60 + k*240 + s%60
			rs = append(rs, rec{src: src, dst: "10.0.1.10", sp: 1024 + s, dp: 443, pk: 200 + (s*7)%300, by: 60 * (200 + (s*7)%300), st: st, en: st + 50, act: "ACCEPT", flags: 2})
		}
	}
	slices.SortStableFunc(rs, func(a, b rec) int { return a.st - b.st })
	set := DefaultSettings()
	set.LearningPeriod = Duration(60 * time.Minute)
	e := detectRecs(t, Options{Settings: set}, rs)
	fl := only(t, e, TypeInboundFlood)
	if len(fl) != 1 {
		t.Fatalf("want one flood, got %d", len(fl))
	}
	f := fl[0]
	if f.Actor.IP.IsValid() || f.Evidence["sources_prefix"] != nil {
		t.Errorf("a distributed flood was given an actor: %v (evidence %v)", f.Actor.IP, f.Evidence)
	}
	if f.Target.IP.String() != "10.0.1.10" {
		t.Errorf("target %v", f.Target.IP)
	}
	top, _ := f.Evidence["top_sources"].([]TopSource)
	if len(top) == 0 || top[0].Share <= 0 || top[0].Share > 0.01 {
		t.Errorf("top sources %+v: want the heaviest flood sources, each a small share", top)
	}
	for _, s := range top {
		if s.IP.String() == client {
			t.Errorf("the steady client is listed among the flood's sources: %+v", top)
		}
	}
	if n, _ := f.Evidence["steady_sources"].(int64); n < 1 {
		t.Errorf("steady_sources = %v, want the client left out", f.Evidence["steady_sources"])
	}
	for _, r := range e.Results() {
		if r.Actor.IP.String() == client {
			t.Errorf("the client is named: %s %s", r.Type, r.Title)
		}
	}
}

// TestSlowProber: one source rejected six times over two hours on one
// host's telnet port, among 5,000 one-off probes, is found by the long
// horizon; the one-off probes raise nothing and keep no per-source state.
func TestSlowProber(t *testing.T) {
	const prober = "198.51.100.77"
	var rs []rec
	for i := 0; i < 6; i++ {
		st := i * 24 * 60
		rs = append(rs, rec{src: prober, dst: "10.0.1.10", sp: 40000 + i, dp: 23, pk: 1, by: 44, st: st, en: st, act: "REJECT", flags: 2})
	}
	for i := 0; i < 5000; i++ {
		st := (i * 7200) / 5000
		src := fmt.Sprintf("%d.%d.%d.%d", 11+i%90, (i/90)%250, (i*13)%250, 1+i%199)
		rs = append(rs, rec{src: src, dst: "10.0.1.10", sp: 50000, dp: 1 + i%1000, pk: 1, by: 44, st: st, en: st, act: "REJECT", flags: 2})
	}
	slices.SortStableFunc(rs, func(a, b rec) int { return a.st - b.st })
	e := detectRecs(t, Options{}, rs)
	rr := only(t, e, TypeRepeatedReject)
	if len(rr) != 1 {
		for _, r := range rr {
			t.Logf("%s", r.Title)
		}
		t.Fatalf("want one repeated-reject finding, got %d", len(rr))
	}
	f := rr[0]
	if f.Actor.IP.String() != prober || f.Target.IP.String() != "10.0.1.10" || !slices.Equal(f.Target.Ports, []uint16{23}) ||
		f.Count != 6 || f.Severity != finding.Low || f.Evidence["distinct_windows"] != int64(6) {
		t.Errorf("slow prober finding: actor %v target %v ports %v count %d severity %v evidence %v",
			f.Actor.IP, f.Target.IP, f.Target.Ports, f.Count, f.Severity, f.Evidence)
	}
	if n := len(e.Results()); n != 1 {
		t.Errorf("%d findings, want only the prober's", n)
	}
	for _, d := range e.detectors {
		if sr, ok := d.(*slowReject); ok && len(sr.srcs) > 5000/50 {
			t.Errorf("%d returning sources tracked; one-off probes should cost a filter bit, not state", len(sr.srcs))
		}
	}
	// The fast rule alone (the previous behaviour) misses it.
	set := DefaultSettings()
	set.SlowReject.Enabled = false
	if n := len(only(t, detectRecs(t, Options{Settings: set}, rs), TypeRepeatedReject)); n != 0 {
		t.Errorf("the fast rule found %d", n)
	}
	// Five over two hours at min_rejects 6: nothing.
	set = DefaultSettings()
	set.SlowReject.MinRejects = 7
	if n := len(only(t, detectRecs(t, Options{Settings: set}, rs), TypeRepeatedReject)); n != 0 {
		t.Errorf("min_rejects 7: %d findings", n)
	}
}

// TestPeekFiresEarly: a scan that crosses its threshold inside a window
// still open is reported by Peek, with the id the closed window's finding
// gets; Peek changes nothing.
func TestPeekFiresEarly(t *testing.T) {
	e, err := New(Options{Settings: DefaultSettings(), Home: home})
	if err != nil {
		t.Fatal(err)
	}
	var rs []rec
	for p := 1; p <= 20; p++ {
		rs = append(rs, rec{src: "198.51.100.23", dst: "10.0.1.10", sp: 40000, dp: p, pk: 1, by: 44, st: p, en: p, act: "REJECT", flags: 2})
	}
	s := &flowlog.Scanner{Workers: 1}
	if err := e.Run(context.Background(), s, []flowlog.Input{input("a.log", records(rs))}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.Results()); n != 0 {
		t.Fatalf("%d findings before the window closed", n)
	}
	early := e.Peek()
	if len(early) != 1 || early[0].Type != TypePortscan || early[0].Count != 20 {
		t.Fatalf("Peek: %+v", early)
	}
	if again := e.Peek(); len(again) != 1 || again[0].Count != 20 {
		t.Errorf("a second Peek differs: %+v", again)
	}
	e.Flush()
	rs2 := e.Results()
	if len(rs2) != 1 || rs2[0].ID != early[0].ID || rs2[0].Count != 20 {
		t.Errorf("after Flush: %+v, want the peeked finding", rs2)
	}
}

// TestSeenFilter: a key set is remembered through one rotation and
// forgotten after two; an idle filter is small; filled, it never holds more
// than two generations at its maximum, and at about one key per 8 bits few
// unseen keys are reported seen.
func TestSeenFilter(t *testing.T) {
	f := newSeenFilter(1 << 17) // at most 2^20 bits a generation
	f.rotate(0, 100)
	if f.testAndSet(mix64(7)) || !f.testAndSet(mix64(7)) {
		t.Error("a new key is reported seen, or a key just set unseen")
	}
	if f.bytes() > 16<<10 {
		t.Errorf("an idle filter holds %d bytes", f.bytes())
	}
	if f.rotate(50, 100) {
		t.Error("rotated before a generation passed")
	}
	if !f.rotate(100, 100) || !f.testAndSet(mix64(7)) {
		t.Error("a key of the previous generation is forgotten")
	}
	f.rotate(200, 100)
	f.rotate(300, 100)
	if f.testAndSet(mix64(7)) {
		t.Error("a key two generations old is still remembered")
	}
	// A flood of one-off keys: generations fill, end early and double, up
	// to the maximum.
	n := (1 << 20) / 8
	for i := 0; i < n; i++ {
		f.testAndSet(mix64(uint64(1000 + i)))
	}
	if got, limit := f.bytes(), 2*(1<<20)/8; got > limit {
		t.Errorf("filter holds %d bytes, more than two generations at the maximum (%d)", got, limit)
	}
	fp, m := 0, n/20
	for i := 0; i < m; i++ {
		if f.testAndSet(mix64(uint64(1<<40 + i))) {
			fp++
		}
	}
	t.Logf("false positive rate %.3f, %d bytes", float64(fp)/float64(m), f.bytes())
	if rate := float64(fp) / float64(m); rate > 0.08 {
		t.Errorf("false positive rate %.3f at 8 bits per key", rate)
	}
}

// TestFloodMostlyFromOneAddress: when one address carries most of a
// flood's packets, it is the actor (no prefix).
func TestFloodMostlyFromOneAddress(t *testing.T) {
	var rs []rec
	rs = append(rs, rec{src: "198.18.9.9", dst: "10.0.1.10", sp: 30000, dp: 80, pk: 60000, by: 60000 * 60, st: 10, en: 60, act: "ACCEPT", flags: 2})
	for s := 1; s <= 12; s++ {
		rs = append(rs, rec{src: fmt.Sprintf("%d.1.2.3", 20+s), dst: "10.0.1.10", sp: 30000 + s, dp: 80, pk: 1500, by: 1500 * 60, st: 10, en: 60, act: "ACCEPT", flags: 2})
	}
	fl := only(t, detectRecs(t, Options{}, rs), TypeInboundFlood)
	if len(fl) != 1 || fl[0].Actor.IP.String() != "198.18.9.9" || fl[0].Evidence["sources_prefix"] != nil {
		t.Fatalf("flood: %+v", fl)
	}
	if top := fl[0].Evidence["top_sources"].([]TopSource); top[0].IP.String() != "198.18.9.9" || top[0].Share < 0.7 {
		t.Errorf("top sources %+v", top)
	}
}
