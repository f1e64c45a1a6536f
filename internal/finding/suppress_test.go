package finding

import (
	"math"
	"net/netip"
	"strings"
	"testing"
)

func mk(typ, actor, target string, sev float64, ports ...uint16) Finding {
	f := Finding{Type: typ, Severity: sev, Actor: Actor{IP: netip.MustParseAddr(actor)}, Target: Target{Ports: ports}}
	if target != "" {
		f.Target.IP = netip.MustParseAddr(target)
	}
	return f
}

func TestSuppressionRuleMatch(t *testing.T) {
	scan := mk("Recon:EC2/Portscan", "198.51.100.5", "10.0.1.10", 5, 22, 80)
	sweep := mk("Recon:EC2/Portscan", "198.51.100.5", "", 5, 22)
	brute := mk("UnauthorizedAccess:EC2/SSHBruteForce", "203.0.113.9", "10.0.2.7", 2, 22)
	v6 := mk("Recon:EC2/Portscan", "2001:db8::5", "2600:1f18::10", 5, 443)
	mapped := mk("Recon:EC2/Portscan", "::ffff:198.51.100.5", "10.0.1.10", 5, 22)
	for _, tc := range []struct {
		name string
		rule SuppressionRule
		f    Finding
		want bool
	}{
		{"exact type", SuppressionRule{Types: []string{"Recon:EC2/Portscan"}}, scan, true},
		{"exact type other", SuppressionRule{Types: []string{"Recon:EC2/Portscan"}}, brute, false},
		{"type prefix", SuppressionRule{Types: []string{"Recon:*"}}, scan, true},
		{"type prefix other", SuppressionRule{Types: []string{"Recon:*"}}, brute, false},
		{"type prefix with resource", SuppressionRule{Types: []string{"UnauthorizedAccess:EC2/*"}}, brute, true},
		{"exact type is not a prefix", SuppressionRule{Types: []string{"Recon:EC2/Port"}}, scan, false},
		{"actor cidr", SuppressionRule{Actors: []string{"198.51.100.0/24"}}, scan, true},
		{"actor cidr miss", SuppressionRule{Actors: []string{"198.51.101.0/24"}}, scan, false},
		{"actor ip", SuppressionRule{Actors: []string{"198.51.100.5"}}, scan, true},
		{"actor v4-mapped", SuppressionRule{Actors: []string{"198.51.100.0/24"}}, mapped, true},
		{"actor rule v4-mapped", SuppressionRule{Actors: []string{"::ffff:198.51.100.0/120"}}, scan, true},
		{"actor rule v4-mapped address", SuppressionRule{Actors: []string{"::ffff:198.51.100.5"}}, mapped, true},
		{"target v4-mapped", SuppressionRule{Targets: []string{"::ffff:10.0.1.0/120"}}, scan, true},
		{"actor v6", SuppressionRule{Actors: []string{"2001:db8::/32"}}, v6, true},
		{"v4 rule vs v6 actor", SuppressionRule{Actors: []string{"0.0.0.0/0"}}, v6, false},
		{"target cidr", SuppressionRule{Targets: []string{"10.0.1.0/24"}}, scan, true},
		{"target on a sweep", SuppressionRule{Targets: []string{"10.0.0.0/8"}}, sweep, false},
		{"port any of", SuppressionRule{Ports: []uint16{80, 8080}}, scan, true},
		{"port miss", SuppressionRule{Ports: []uint16{3389}}, scan, false},
		{"severity below", SuppressionRule{SeverityBelow: 3}, brute, true},
		{"severity not below", SuppressionRule{SeverityBelow: 5}, scan, false}, // 5 is not below 5
		{"all criteria", SuppressionRule{Types: []string{"Recon:*"}, Actors: []string{"198.51.100.0/24"}, Ports: []uint16{22}}, scan, true},
		{"all criteria, one misses", SuppressionRule{Types: []string{"Recon:*"}, Actors: []string{"198.51.100.0/24"}, Ports: []uint16{25}}, scan, false},
		{"alternatives in one criterion", SuppressionRule{Types: []string{"Impact:*", "UnauthorizedAccess:*"}}, brute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.rule.Name = "r"
			m, err := tc.rule.Compile()
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Match(&tc.f); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSuppressionRuleValidate(t *testing.T) {
	for _, tc := range []struct {
		rule SuppressionRule
		want string // part of the error; "" for valid
	}{
		{SuppressionRule{Name: "ok", Types: []string{"Recon:*"}}, ""},
		{SuppressionRule{Name: "ok2", SeverityBelow: 4, Action: "archive"}, ""},
		{SuppressionRule{Types: []string{"Recon:*"}}, "name is required"},
		{SuppressionRule{Name: "empty"}, "no criteria"},
		{SuppressionRule{Name: "star", Types: []string{"*"}}, "prefix"},
		{SuppressionRule{Name: "mid", Types: []string{"Recon:*/Portscan"}}, "'*' may only end"},
		{SuppressionRule{Name: "ip", Actors: []string{"300.1.2.3"}}, "not an IP address"},
		{SuppressionRule{Name: "tgt", Targets: []string{"10.0.0.0/33"}}, "not an IP address"},
		{SuppressionRule{Name: "sev", SeverityBelow: 11}, "0 to 10"},
		{SuppressionRule{Name: "nan", SeverityBelow: math.NaN()}, "0 to 10"},
		{SuppressionRule{Name: "inf", SeverityBelow: math.Inf(1)}, "0 to 10"},
		{SuppressionRule{Name: "port", Ports: []uint16{0}}, "port 0"},
		{SuppressionRule{Name: "act", Types: []string{"Recon:*"}, Action: "DELETE"}, "only action"},
	} {
		err := tc.rule.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tc.rule, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one containing %q", tc.rule, err, tc.want)
		}
	}
}

func TestPolicyApply(t *testing.T) {
	p, err := NewPolicy([]SuppressionRule{{Name: "scanner", Types: []string{"Recon:*"}, Actors: []string{"198.51.100.0/28"}}},
		[]string{"203.0.113.7", "192.0.2.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	fs := []Finding{
		mk("Recon:EC2/Portscan", "198.51.100.5", "10.0.0.1", 5),    // suppressed
		mk("Recon:EC2/Portscan", "198.51.100.200", "10.0.0.1", 5),  // kept
		mk("Recon:EC2/Portscan", "203.0.113.7", "10.0.0.1", 5),     // trusted: dropped
		mk("Impact:EC2/InboundFlood", "192.0.2.99", "10.0.0.1", 8), // trusted: dropped
		mk("UnauthorizedAccess:EC2/SSHBruteForce", "198.51.100.5", "10.0.0.1", 5),
	}
	out := p.Apply(fs)
	if len(out) != 3 {
		t.Fatalf("kept %d findings, want 3: %+v", len(out), out)
	}
	wantArchived := []bool{true, false, false}
	wantActor := []string{"198.51.100.5", "198.51.100.200", "198.51.100.5"}
	for i, f := range out {
		if f.Archived != wantArchived[i] || f.Actor.IP.String() != wantActor[i] {
			t.Errorf("finding %d: actor %s archived %v, want %s %v", i, f.Actor.IP, f.Archived, wantActor[i], wantArchived[i])
		}
	}
	var nilPolicy *Policy
	if got := nilPolicy.Apply(fs[:1]); len(got) != 1 {
		t.Errorf("nil policy dropped findings")
	}
}

func TestNewPolicyErrors(t *testing.T) {
	_, err := NewPolicy([]SuppressionRule{
		{Name: "a", Types: []string{"Recon:*"}},
		{Name: "a", SeverityBelow: 2},
		{Name: "b"},
	}, []string{"not-an-ip"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`"a" is defined twice`, `"b": no criteria`, "trusted_ips", "not-an-ip"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestParseFeedback(t *testing.T) {
	for in, want := range map[string]string{"useful": Useful, "USEFUL": Useful, "not-useful": NotUseful, "Not_Useful": NotUseful, "not useful": NotUseful} {
		if got, err := ParseFeedback(in); err != nil || got != want {
			t.Errorf("ParseFeedback(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseFeedback("meh"); err == nil {
		t.Error("ParseFeedback(meh): no error")
	}
}
