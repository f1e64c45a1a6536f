package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	gdsdk "github.com/aws/aws-sdk-go-v2/service/guardduty"
	dto "github.com/prometheus/client_model/go"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/cloudtrail"
	"github.com/flowguard/flowguard/internal/finding"
)

// TestServeGuardDutyAndCloudTrail: the daemon follows a guardduty source
// (ListFindings/GetFindings through the SDK against the GuardDuty server)
// and a files source carrying flow logs and CloudTrail records (JSON
// lines); the GuardDuty finding is stored as GuardDuty named it, archive
// given in flowguard reaches GuardDuty and feedback given in GuardDuty
// reaches the store (the source's sync), the
// sign-in from the scanning address is one joined finding, and the
// GuardDuty checkpoint is saved.
func TestServeGuardDutyAndCloudTrail(t *testing.T) {
	gd := awstest.NewGuardDuty(t)
	var ev struct{ Detail json.RawMessage }
	raw, err := os.ReadFile(filepath.Join("..", "guardduty", "testdata", "portprobe.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(raw, &ev)
	if err := gd.PutFinding(ev.Detail); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_REGION", "us-east-1")
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-aws-credentials"))
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	os.MkdirAll(filepath.Join(dir, "trail"), 0o755)
	cfgPath := filepath.Join(dir, "flowguard.yaml")
	os.WriteFile(cfgPath, fmt.Appendf(nil, `home_networks: [10.0.0.0/16]
detectors:
  allowed_lateness: 0s
sources:
  - name: flows
    type: files
    paths: [logs/]
    poll_interval: 10ms
  - name: trail
    type: files
    paths: [trail/]
    poll_interval: 10ms
  - name: gd
    type: guardduty
    detector_id: 12abc34d567e8fa901bc2d34e56789f0
    endpoint_url: %s
    poll_interval: 10ms
    start: 87600h
    sync: true
`, gd.URL), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := New(ctx, Options{ConfigPath: cfgPath, DBPath: filepath.Join(dir, "f.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	var b strings.Builder
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).Unix()
	for port := 1; port <= 40; port++ {
		fmt.Fprintf(&b, "2 123456789012 eni-0a1b2c3d4e5f60001 198.51.100.23 10.0.1.10 40000 %d 6 1 40 %d %d REJECT OK\n", port, start+int64(port), start+int64(port)+5)
	}
	fmt.Fprintf(&b, "2 123456789012 eni-0a1b2c3d4e5f60001 10.0.1.10 10.0.2.20 40000 443 6 1 40 %d %d ACCEPT OK\n", start+3600, start+3605)
	os.WriteFile(filepath.Join(dir, "logs", "flows.log"), []byte(b.String()), 0o644)

	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	byType := func(typ string) []finding.Finding {
		fs, _ := d.Store().ListFindings(ctx, finding.Filter{Types: []string{typ}, Archived: finding.AnyArchived})
		return fs
	}
	wait("the GuardDuty finding stored", func() bool { return len(byType("Recon:EC2/PortProbeUnprotectedPort")) == 1 })
	wait("the port scan stored", func() bool { return len(byType("Recon:EC2/Portscan")) == 1 })
	g := byType("Recon:EC2/PortProbeUnprotectedPort")[0]
	if g.ID != "16afba5c5c43e07c9e3e5e2e544e95df" || g.Target.InstanceID != "i-0abcdef1234567890" || g.Count != 14 {
		t.Errorf("GuardDuty finding %+v", g)
	}
	// Archive and feedback, both ways, through the source's sync.
	if _, err := d.Store().Archive(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	wait("the archive given in flowguard sent to GuardDuty", func() bool { a, _, _ := gd.Finding("12abc34d567e8fa901bc2d34e56789f0", g.ID); return a })
	client := gdsdk.NewFromConfig(awstest.ClientConfig(gd.URL))
	if _, err := client.UpdateFindingsFeedback(ctx, &gdsdk.UpdateFindingsFeedbackInput{DetectorId: aws.String("12abc34d567e8fa901bc2d34e56789f0"),
		FindingIds: []string{g.ID}, Feedback: "USEFUL"}); err != nil {
		t.Fatal(err)
	}
	wait("the feedback given in GuardDuty in the store", func() bool {
		f, _ := d.Store().GetFinding(ctx, g.ID)
		return f.Feedback == finding.Useful && f.Archived
	})
	// A console sign-in from the scanner arrives in CloudTrail.
	rec, _ := os.ReadFile(filepath.Join("..", "cloudtrail", "testdata", "signin-iamuser-nomfa.json"))
	rec = []byte(strings.ReplaceAll(strings.TrimSpace(string(rec)), "203.0.113.12", "198.51.100.23") + "\n")
	os.WriteFile(filepath.Join(dir, "trail", "events.jsonl"), rec, 0o644)
	wait("the joined sign-in finding", func() bool { return len(byType(cloudtrail.TypeFromAttacker)) == 1 })
	j := byType(cloudtrail.TypeFromAttacker)[0]
	scan := byType("Recon:EC2/Portscan")[0]
	if ids, _ := j.Evidence["flow_findings"].([]any); len(ids) != 1 || ids[0] != scan.ID {
		t.Errorf("joined evidence %v, want the scan %s", j.Evidence["flow_findings"], scan.ID)
	}
	if j.Actor.User != "arn:aws:iam::111122223333:user/JohnDoe" {
		t.Errorf("actor %+v", j.Actor)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ps, err := d.Store().LoadPositions(context.Background(), "gd")
	// The checkpoint is the newest updatedAt: the feedback's.
	if len(ps) != 1 || ps[0].Object != "guardduty:12abc34d567e8fa901bc2d34e56789f0" || ps[0].Token <= fmt.Sprint(time.Date(2026, 11, 22, 10, 14, 0, 0, time.UTC).UnixMilli()) {
		t.Errorf("guardduty position %+v, %v", ps, err)
	}
}

// TestServeSignInMemoryBounded: under serve, a flood of failed console
// sign-ins from distinct addresses against distinct users (CloudTrail
// JSON lines through a files source) stays within
// cloudtrail.max_tracked_sign_ins; the evictions are counted in
// flowguard_cloudtrail_sign_ins_evicted_total, and a brute force inside
// the flood is still found.
func TestServeSignInMemoryBounded(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "trail"), 0o755)
	cfgPath := filepath.Join(dir, "flowguard.yaml")
	os.WriteFile(cfgPath, []byte(`home_networks: [10.0.0.0/16]
cloudtrail:
  max_tracked_sign_ins: 200
sources:
  - name: trail
    type: files
    paths: [trail/]
    poll_interval: 10ms
`), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := New(ctx, Options{ConfigPath: cfgPath, DBPath: filepath.Join(dir, "f.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var b strings.Builder
	const flood = 5000
	for i := range flood {
		ip, user := fmt.Sprintf("100.64.%d.%d", i>>8, i&255), fmt.Sprintf("user%d", i)
		if i%20 == 0 {
			ip, user = "198.51.100.23", "JohnDoe"
		}
		fmt.Fprintf(&b, `{"eventVersion":"1.08","eventTime":"2026-11-22T10:%02d:%02dZ","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","sourceIPAddress":%q,"userIdentity":{"type":"IAMUser","userName":%q},"responseElements":{"ConsoleLogin":"Failure"},"errorMessage":"Failed authentication"}`+"\n",
			i/600, (i/10)%60, ip, user)
	}
	os.WriteFile(filepath.Join(dir, "trail", "signins.jsonl"), []byte(b.String()), 0o644)
	deadline := time.Now().Add(20 * time.Second)
	var bf []finding.Finding
	for {
		bf, _ = d.Store().ListFindings(ctx, finding.Filter{Types: []string{cloudtrail.TypeBruteForceSource}})
		if len(bf) == 1 && bf[0].Count == flood/20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(bf) != 1 || bf[0].Actor.IP.String() != "198.51.100.23" || bf[0].Count != flood/20 {
		t.Errorf("brute force inside the flood: %+v", bf)
	}
	var m dto.Metric
	if err := d.Metrics.SignInsEvicted.Write(&m); err != nil {
		t.Fatal(err)
	}
	if v := m.GetCounter().GetValue(); v < flood {
		t.Errorf("flowguard_cloudtrail_sign_ins_evicted_total %v, want most of the %d sign-ins (by address and by user)", v, 2*flood)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := d.proc.trail.det.Tracked(); n > 200 {
		t.Errorf("holds %d sign-ins and keys, more than max_tracked_sign_ins 200", n)
	}
}
