package detect

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowguard/flowguard/internal/finding"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "lookalikes", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

var vpc = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}

func attacks(rs []*Result) []*Result {
	var out []*Result
	for _, r := range rs {
		if IsAttack(r.Type) {
			out = append(out, r)
		}
	}
	return out
}

// TestLookalikes checks that innocent traffic that naive rules mistake
// for attacks raises no attack finding.
func TestLookalikes(t *testing.T) {
	office := netip.MustParsePrefix("203.0.113.0/24")
	tests := []struct {
		file  string
		allow []netip.Prefix
		// policy is the Policy: finding expected, if any: type and actor.
		policyType, policyActor string
		policyCount             int64
	}{
		{file: "return-traffic.log", policyType: TypeReturnRejected, policyActor: "10.0.1.30", policyCount: 80},
		{file: "blocked-egress.log"},
		{file: "allowlisted-admins.log", allow: []netip.Prefix{office}},
		{file: "busy-client.log"},
		{file: "health-checks.log"},
		{file: "single-probes.log"},
		{file: "two-interfaces.log"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			o := Options{Settings: DefaultSettings(), Home: vpc, Allow: tt.allow}
			// Also with every rule at its most sensitive sensible setting
			// where the look-alike is the naive rule's favourite.
			e := runEngine(t, o, 0, 1, input(tt.file, fixture(t, tt.file)))
			rs := e.Results()
			for _, r := range attacks(rs) {
				t.Errorf("attack finding on innocent traffic: %s %s → %s: %s", r.Type, r.Actor.IP, r.Target.IP, r.Title)
			}
			var policies []*Result
			for _, r := range rs {
				if !IsAttack(r.Type) {
					policies = append(policies, r)
				}
			}
			if tt.policyType == "" {
				for _, r := range policies {
					t.Errorf("unexpected finding: %s: %s", r.Type, r.Title)
				}
				return
			}
			if len(policies) != 1 || policies[0].Type != tt.policyType || policies[0].Actor.IP.String() != tt.policyActor || policies[0].Count != tt.policyCount {
				for _, r := range policies {
					t.Logf("got %s %s count %d", r.Type, r.Actor.IP, r.Count)
				}
				t.Fatalf("want one %s for %s with count %d", tt.policyType, tt.policyActor, tt.policyCount)
			}
		})
	}
}

// TestLookalikesNaive shows that the fixtures are not trivially empty: the
// classic rule (count REJECT by srcaddr ≥ 2) would name an innocent host in
// each of the reject fixtures, and without the allow list the
// administrator does look like a brute force.
func TestLookalikesNaive(t *testing.T) {
	for _, file := range []string{"return-traffic.log", "blocked-egress.log", "allowlisted-admins.log"} {
		data := fixture(t, file)
		counts := map[string]int{}
		for _, line := range splitLines(data)[1:] {
			f := fields(line)
			if len(f) == 14 && f[12] == "REJECT" {
				counts[f[3]]++
			}
		}
		named := 0
		for _, n := range counts {
			if n >= 2 {
				named++
			}
		}
		if named == 0 {
			t.Errorf("%s: the naive rule names nobody; the fixture tests nothing", file)
		}
	}
	o := Options{Settings: DefaultSettings(), Home: vpc}
	e := runEngine(t, o, 0, 1, input("admins", fixture(t, "allowlisted-admins.log")))
	found := false
	for _, r := range e.Results() {
		if r.Type == TypeSSHBruteForce && r.Actor.IP.String() == "203.0.113.10" {
			found = true
		}
	}
	if !found {
		t.Error("without the allow list the administrator's 45 sessions should look like a brute force")
	}
}

// TestTwoInterfaces checks that a connection logged on both interfaces
// counts once, and that NODATA and SKIPDATA records are skipped.
func TestTwoInterfaces(t *testing.T) {
	data := fixture(t, "two-interfaces.log")
	for _, tt := range []struct {
		min  int
		want int64 // attempts in the finding; 0: no finding
	}{{12, 12}, {13, 0}} {
		set := DefaultSettings()
		set.BruteForce.MinAttempts = tt.min
		e := runEngine(t, Options{Settings: set, Home: vpc}, 0, 1, input("two", data))
		var got int64
		for _, r := range e.Results() {
			if r.Type == TypeSSHBruteForce {
				got = r.Evidence["attempts"].(int64)
				if r.Actor.IP.String() != "10.0.10.5" || r.Actor.Direction != finding.Lateral || r.Target.IP.String() != "10.0.20.7" {
					t.Errorf("wrong actor or target: %+v %+v", r.Actor, r.Target)
				}
			}
		}
		if got != tt.want {
			t.Errorf("min_attempts %d: attempts %d, want %d", tt.min, got, tt.want)
		}
		m := e.Metrics()
		if m.NoData != 12 || m.SkipData != 1 || m.Records != 48 {
			t.Errorf("metrics %+v: want 12 NODATA, 1 SKIPDATA, 48 records", m)
		}
	}
}
