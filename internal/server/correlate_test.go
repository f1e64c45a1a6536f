package server

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/guardduty"
)

// TestCorrelateEndpoint: GET /api/v1/correlate?ip= joins a flow finding
// and GuardDuty's finding (from its EventBridge event) about the same
// address, and says where they disagree; resource= works for an
// instance; a bad address or no subject is a 400.
func TestCorrelateEndpoint(t *testing.T) {
	ts, b, _ := newTestServer(t)
	ev, err := os.ReadFile(filepath.Join("..", "guardduty", "testdata", "portprobe.json"))
	if err != nil {
		t.Fatal(err)
	}
	gd, err := guardduty.ParseEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("198.51.100.23")
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	flow := finding.Finding{ID: finding.ID("Recon:EC2/PortProbeUnprotectedPort", ip, "10.0.1.10"), Type: "Recon:EC2/PortProbeUnprotectedPort",
		Severity: finding.High, Actor: finding.Actor{IP: ip, Direction: finding.Inbound}, Target: finding.Target{IP: netip.MustParseAddr("10.0.1.10")},
		Count: 9, FirstSeen: t0, LastSeen: t0.Add(time.Minute)}
	if _, _, err := b.st.UpsertFindings(context.Background(), []finding.Finding{flow, gd}); err != nil {
		t.Fatal(err)
	}
	code, body := do(t, "GET", ts.URL+"/api/v1/correlate?ip=::ffff:198.51.100.23", "", "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var c guardduty.Correlation
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	if c.Subject != "198.51.100.23" || len(c.Flow) != 1 || len(c.GuardDuty) != 1 || len(c.CloudTrail) != 0 || !c.GuardDutyInUse ||
		len(c.Disagreements) != 1 || c.Disagreements[0].Kind != guardduty.SeverityDiffers || c.Disagreements[0].GuardDuty != "Low" || c.Disagreements[0].Flowguard != "High" {
		t.Errorf("view %s", body)
	}
	code, body = do(t, "GET", ts.URL+"/api/v1/correlate?resource=i-0abcdef1234567890", "", "")
	if code != 200 || json.Unmarshal([]byte(body), &c) != nil || len(c.GuardDuty) != 1 || len(c.Flow) != 0 {
		t.Errorf("resource: %d %s", code, body)
	}
	for _, q := range []string{"", "?ip=nope", "?ip=1.2.3.4&resource=x", "?ip=1.2.3.4&since=yesterday"} {
		if code, body := do(t, "GET", ts.URL+"/api/v1/correlate"+q, "", ""); code != 400 {
			t.Errorf("%q: %d %s, want 400", q, code, body)
		}
	}
}
