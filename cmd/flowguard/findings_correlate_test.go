package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/guardduty"
)

// checkCorrelateView: after TestDetectCloudTrailJoin's run (a port scan in
// the flow logs, sign-ins from the scanning address in CloudTrail,
// GuardDuty's port probe finding about it), flowguard findings correlate
// ADDRESS is one view of the three, and says where GuardDuty and
// flowguard disagree: GuardDuty's probe class flowguard did not raise,
// flowguard's scan and sign-in classes GuardDuty did not.
func checkCorrelateView(t *testing.T, db string, scan, join, gd finding.Finding) {
	t.Helper()
	out, stderr, code := execute(t, "", "findings", "--db", db, "correlate", "198.51.100.23", "--output", "json")
	if code != 0 {
		t.Fatalf("correlate: exit %d: %s", code, stderr)
	}
	var c guardduty.Correlation
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	ids := func(fs []finding.Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.ID)
		}
		return out
	}
	if !slices.Contains(ids(c.Flow), scan.ID) || !slices.Contains(ids(c.CloudTrail), join.ID) || !slices.Equal(ids(c.GuardDuty), []string{gd.ID}) {
		t.Errorf("view: flow %v cloudtrail %v guardduty %v", ids(c.Flow), ids(c.CloudTrail), ids(c.GuardDuty))
	}
	if !c.GuardDuty[0].Archived {
		t.Error("the GuardDuty finding archived through CloudTrail is not shown archived")
	}
	kinds := map[string]bool{}
	for _, d := range c.Disagreements {
		kinds[d.Kind+" "+d.Class] = true
	}
	for _, want := range []string{"guardduty_only Recon:EC2/PortProbeUnprotectedPort", "flowguard_only Recon:EC2/Portscan",
		"flowguard_only UnauthorizedAccess:IAMUser/ConsoleLoginFromAttacker"} {
		if !kinds[want] {
			t.Errorf("no disagreement %q among %v", want, c.Disagreements)
		}
	}
	out, _, code = execute(t, "", "findings", "--db", db, "correlate", "198.51.100.23")
	if code != 0 || !strings.Contains(out, "flow logs (flowguard):") || !strings.Contains(out, "CloudTrail (flowguard):") ||
		!strings.Contains(out, "where GuardDuty and flowguard disagree:") || !strings.Contains(out, "GuardDuty raised Recon:EC2/PortProbeUnprotectedPort (Low 2.0) about 198.51.100.23") || strings.Contains(out, "%!") {
		t.Errorf("table: exit %d\n%s", code, out)
	}
	if _, stderr, code := execute(t, "", "findings", "--db", db, "correlate", "198.51.100.23", "--since", "nope"); code == 0 {
		t.Errorf("a bad --since accepted: %s", stderr)
	}
}
