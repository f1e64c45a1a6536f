package guardduty

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

// flowFinding is a flowguard finding about actor.
func flowFinding(typ string, sev float64, actor, target string) finding.Finding {
	a, t := netip.MustParseAddr(actor), netip.MustParseAddr(target)
	t0 := time.Date(2026, 11, 22, 10, 1, 0, 0, time.UTC)
	return finding.Finding{ID: finding.ID(typ, a, target), Type: typ, Severity: sev, Title: typ,
		Actor: finding.Actor{IP: a, Direction: finding.Inbound}, Target: finding.Target{IP: t, InstanceID: "i-0abcdef1234567890"},
		Count: 3, FirstSeen: t0, LastSeen: t0.Add(time.Minute)}
}

// TestCorrelate: one address that flowguard saw probing and scanning
// (flow logs) and signing in (CloudTrail), and that GuardDuty saw probing
// at another severity, is one view with the three sides and the
// disagreements: the class both raised at different levels, the classes
// only flowguard raised; an address only GuardDuty named is a
// guardduty_only view; an instance is correlated by its id; without any
// GuardDuty finding in the store there is nothing to disagree with.
func TestCorrelate(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	probe := flowFinding("Recon:EC2/PortProbeUnprotectedPort", finding.Medium, "198.51.100.23", "10.0.1.10")
	scan := flowFinding("Recon:EC2/Portscan", finding.Medium, "198.51.100.23", "10.0.1.10")
	other := flowFinding("Recon:EC2/Portscan", finding.Medium, "203.0.113.99", "10.0.1.11")
	other.Target.InstanceID = ""
	signIn := finding.Finding{ID: finding.ID("UnauthorizedAccess:IAMUser/ConsoleLoginFromAttacker", netip.MustParseAddr("198.51.100.23"), ""),
		Type: "UnauthorizedAccess:IAMUser/ConsoleLoginFromAttacker", Severity: finding.High, Title: "sign-in",
		Actor: finding.Actor{IP: netip.MustParseAddr("198.51.100.23"), Direction: finding.Inbound, User: "JohnDoe"}, Count: 1,
		FirstSeen: time.Date(2026, 11, 22, 10, 7, 0, 0, time.UTC), LastSeen: time.Date(2026, 11, 22, 10, 7, 0, 0, time.UTC)}
	if _, _, err := st.UpsertFindings(ctx, []finding.Finding{probe, scan, other, signIn}); err != nil {
		t.Fatal(err)
	}

	// No GuardDuty finding yet: the view, without disagreements.
	c, err := Correlate(ctx, st, "198.51.100.23", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if c.GuardDutyInUse || len(c.Disagreements) != 0 || len(c.Flow) != 2 || len(c.CloudTrail) != 1 {
		t.Fatalf("without GuardDuty: %+v", c)
	}

	var gds []finding.Finding
	for _, name := range []string{"portprobe.json", "apicall.json"} {
		f, err := ParseEvent(fixture(t, name))
		if err != nil {
			t.Fatal(err)
		}
		gds = append(gds, f)
	}
	if _, _, err := st.UpsertFindings(ctx, gds); err != nil {
		t.Fatal(err)
	}
	c, err = Correlate(ctx, st, "198.51.100.23", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(fs []finding.Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.ID)
		}
		return out
	}
	if !c.GuardDutyInUse || !slices.Equal(ids(c.Flow), []string{probe.ID, scan.ID}) && !slices.Equal(ids(c.Flow), []string{scan.ID, probe.ID}) ||
		!slices.Equal(ids(c.CloudTrail), []string{signIn.ID}) || !slices.Equal(ids(c.GuardDuty), []string{gds[0].ID}) {
		t.Fatalf("sides: flow %v cloudtrail %v guardduty %v", ids(c.Flow), ids(c.CloudTrail), ids(c.GuardDuty))
	}
	kinds := map[string]Disagreement{}
	for _, d := range c.Disagreements {
		kinds[d.Kind+" "+d.Class] = d
	}
	if d, ok := kinds["severity Recon:EC2/PortProbeUnprotectedPort"]; !ok || d.GuardDuty != "Low" || d.Flowguard != "Medium" ||
		!strings.Contains(d.Detail, "GuardDuty says Low 2.0, flowguard Medium 5.0") {
		t.Errorf("severity disagreement: %+v", c.Disagreements)
	}
	if _, ok := kinds["flowguard_only Recon:EC2/Portscan"]; !ok {
		t.Errorf("no flowguard_only for the scan: %+v", c.Disagreements)
	}
	if _, ok := kinds["flowguard_only UnauthorizedAccess:IAMUser/ConsoleLoginFromAttacker"]; !ok {
		t.Errorf("no flowguard_only for the sign-in: %+v", c.Disagreements)
	}
	if len(c.Disagreements) != 3 {
		t.Errorf("%d disagreements, want 3: %+v", len(c.Disagreements), c.Disagreements)
	}
	if !c.FirstSeen.Equal(gds[0].FirstSeen) {
		t.Errorf("first seen %v, want GuardDuty's %v", c.FirstSeen, gds[0].FirstSeen)
	}

	// The API caller only GuardDuty named.
	c, err = Correlate(ctx, st, "192.0.2.5", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Disagreements) != 1 || c.Disagreements[0].Kind != GuardDutyOnly || !strings.Contains(c.Disagreements[0].Detail, "flowguard has no finding about it at all") {
		t.Errorf("GuardDuty only: %+v", c.Disagreements)
	}

	// The instance, by id: GuardDuty's probe and flowguard's two.
	c, err = Correlate(ctx, st, "i-0abcdef1234567890", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Flow) != 2 || len(c.GuardDuty) != 1 || len(c.CloudTrail) != 0 {
		t.Errorf("instance view: flow %v guardduty %v cloudtrail %v", ids(c.Flow), ids(c.GuardDuty), ids(c.CloudTrail))
	}
	if _, err := Correlate(ctx, st, " ", time.Time{}); err == nil {
		t.Error("an empty subject accepted")
	}
}

func TestClass(t *testing.T) {
	for typ, want := range map[string]string{
		"Backdoor:EC2/DenialOfService.Tcp":                     "Backdoor:EC2/DenialOfService",
		"UnauthorizedAccess:EC2/MaliciousIPCaller.Custom":      "UnauthorizedAccess:EC2/MaliciousIPCaller",
		"Recon:EC2/Portscan":                                   "Recon:EC2/Portscan",
		"CredentialAccess:IAMUser/ConsoleLoginBruteForce.User": "CredentialAccess:IAMUser/ConsoleLoginBruteForce",
		"Weird": "Weird",
	} {
		if got := Class(typ); got != want {
			t.Errorf("Class(%q) = %q, want %q", typ, got, want)
		}
	}
}
