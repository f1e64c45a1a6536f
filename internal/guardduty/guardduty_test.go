package guardduty

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	gd "github.com/aws/aws-sdk-go-v2/service/guardduty"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/cloudtrail"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

const detector = "12abc34d567e8fa901bc2d34e56789f0"

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseEvent(t *testing.T) {
	f, err := ParseEvent(fixture(t, "portprobe.json"))
	if err != nil {
		t.Fatal(err)
	}
	if f.ID != "16afba5c5c43e07c9e3e5e2e544e95df" || f.Type != "Recon:EC2/PortProbeUnprotectedPort" || f.Severity != 2 || f.Count != 14 {
		t.Errorf("identity %+v", f)
	}
	if f.Actor.IP.String() != "198.51.100.23" || f.Actor.Direction != finding.Inbound {
		t.Errorf("actor %+v", f.Actor)
	}
	if f.Target.InstanceID != "i-0abcdef1234567890" || f.Target.IP.String() != "10.0.1.10" || !slices.Equal(f.Target.Ports, []uint16{22, 3389}) {
		t.Errorf("target %+v", f.Target)
	}
	if !f.FirstSeen.Equal(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)) || !f.LastSeen.Equal(time.Date(2026, 11, 22, 10, 12, 0, 0, time.UTC)) {
		t.Errorf("seen %v %v", f.FirstSeen, f.LastSeen)
	}
	if d, ok := IsGuardDuty(f); !ok || d != detector {
		t.Errorf("IsGuardDuty %q %v", d, ok)
	}
	a, err := ParseEvent(fixture(t, "apicall.json"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Actor.IP.String() != "192.0.2.5" || a.Actor.User != "JohnDoe" || a.Target.Resource != "AKIAIOSFODNN7EXAMPLE" || a.Evidence["api"] != "DescribeInstances" {
		t.Errorf("API call finding %+v", a)
	}
	if _, err := ParseEvent([]byte(`{"detail-type":"AWS API Call via CloudTrail","detail":{}}`)); err == nil {
		t.Error("a CloudTrail event taken for a GuardDuty finding")
	}
	if _, err := ParseEvent([]byte(`{"detail-type":"GuardDuty Finding","detail":{"type":"X"}}`)); err == nil {
		t.Error("a finding without id accepted")
	}
}

// detail returns the GuardDuty finding JSON of an event fixture, with id
// and updatedAt replaced when given.
func detail(t *testing.T, name, id string, updated time.Time) []byte {
	var ev struct{ Detail map[string]any }
	if err := json.Unmarshal(fixture(t, name), &ev); err != nil {
		t.Fatal(err)
	}
	if id != "" {
		ev.Detail["id"] = id
	}
	if !updated.IsZero() {
		ev.Detail["updatedAt"] = updated.Format("2006-01-02T15:04:05.000Z")
	}
	b, _ := json.Marshal(ev.Detail)
	return b
}

func newServer(t *testing.T, n int) (*awstest.GuardDuty, *gd.Client) {
	srv := awstest.NewGuardDuty(t)
	srv.AddDetector(detector)
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := range n {
		if err := srv.PutFinding(detail(t, "portprobe.json", fmt.Sprintf("%032x", i+1), t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.PutFinding(detail(t, "apicall.json", "", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	return srv, gd.NewFromConfig(awstest.ClientConfig(srv.URL))
}

// TestPollThroughSDK reads 61 findings through ListFindings (pages of 50)
// and GetFindings (50 ids a call) and resumes from the checkpoint.
func TestPollThroughSDK(t *testing.T) {
	srv, client := newServer(t, 60)
	ctx := context.Background()
	fs, next, err := Poll(ctx, client, detector, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 61 || fs[60].Type != "UnauthorizedAccess:IAMUser/MaliciousIPCaller" {
		t.Fatalf("polled %d findings", len(fs))
	}
	if want := time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC).UnixMilli(); next != want {
		t.Errorf("checkpoint %d, want %d", next, want)
	}
	if srv.Calls("ListFindings") != 2 || srv.Calls("GetFindings") != 2 {
		t.Errorf("calls: list %d get %d", srv.Calls("ListFindings"), srv.Calls("GetFindings"))
	}
	for _, f := range fs {
		c, err := f.Convert()
		if err != nil || c.Actor.IP.String() == "invalid IP" {
			t.Fatalf("convert %s: %+v %v", f.ID, c, err)
		}
	}
	again, next2, err := Poll(ctx, client, detector, next)
	if err != nil || len(again) != 1 || next2 != next {
		t.Errorf("resumed poll: %d findings, checkpoint %d, %v", len(again), next2, err)
	}
	// An event made of an API finding reads as the EventBridge one does.
	ev, err := Event(fs[0])
	if err != nil {
		t.Fatal(err)
	}
	f1, err := ParseEvent(ev)
	if err != nil || f1.ID != fs[0].ID || !slices.Equal(f1.Target.Ports, []uint16{22, 3389}) {
		t.Errorf("event round trip %+v %v", f1, err)
	}
	srv.Throttle(1)
	if _, _, err := Poll(ctx, client, detector, 0); err == nil {
		t.Error("throttled poll: no error")
	}
}

// TestSyncRoundTrip: archive and feedback given in flowguard reach
// GuardDuty; those given in GuardDuty reach the store; CloudTrail's
// record of them too.
func TestSyncRoundTrip(t *testing.T) {
	srv, client := newServer(t, 4)
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	polled, _, err := Poll(ctx, client, detector, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fs []finding.Finding
	for _, p := range polled {
		f, _ := p.Convert()
		fs = append(fs, f)
	}
	if _, _, err := st.UpsertFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	sy := &Syncer{API: client, DetectorID: detector, Store: st}
	if r, err := sy.Sync(ctx); err != nil || r != (SyncResult{}) {
		t.Fatalf("first sync %+v %v", r, err)
	}
	id := func(i int) string { return fmt.Sprintf("%032x", i) }
	// Given in flowguard.
	st.Archive(ctx, id(1))
	st.SetFeedback(ctx, id(2), finding.Useful)
	// Given in GuardDuty (the console calls the same API).
	client.ArchiveFindings(ctx, &gd.ArchiveFindingsInput{DetectorId: aws.String(detector), FindingIds: []string{id(3)}})
	client.UpdateFindingsFeedback(ctx, &gd.UpdateFindingsFeedbackInput{DetectorId: aws.String(detector), FindingIds: []string{id(4)}, Feedback: "NOT_USEFUL"})
	r, err := sy.Sync(ctx)
	if err != nil || r.Pushed != 2 || r.Pulled != 2 {
		t.Fatalf("sync %+v %v", r, err)
	}
	if a, _, _ := srv.Finding(detector, id(1)); !a {
		t.Error("archive in flowguard did not reach GuardDuty")
	}
	if _, fb, _ := srv.Finding(detector, id(2)); fb != "USEFUL" {
		t.Errorf("feedback in GuardDuty %q", fb)
	}
	if f, _ := st.GetFinding(ctx, id(3)); !f.Archived {
		t.Error("archive in GuardDuty did not reach the store")
	}
	if f, _ := st.GetFinding(ctx, id(4)); f.Feedback != finding.NotUseful {
		t.Errorf("feedback in the store %q", f.Feedback)
	}
	if r, err := sy.Sync(ctx); err != nil || r != (SyncResult{}) {
		t.Errorf("settled sync %+v %v", r, err)
	}
	// Unarchived in flowguard: unarchived in GuardDuty.
	st.Unarchive(ctx, id(1))
	if r, err := sy.Sync(ctx); err != nil || r.Pushed != 1 {
		t.Errorf("unarchive sync %+v %v", r, err)
	}
	if a, _, _ := srv.Finding(detector, id(1)); a {
		t.Error("unarchive in flowguard did not reach GuardDuty")
	}
	// GuardDuty failing: the sync says so and keeps the agreed state.
	st.Archive(ctx, id(2))
	srv.FailBefore("ArchiveFindings", 1)
	if _, err := sy.Sync(ctx); err == nil {
		t.Error("failed ArchiveFindings: no error")
	}
	if r, err := sy.Sync(ctx); err != nil || r.Pushed != 1 {
		t.Errorf("retried sync %+v %v", r, err)
	}
	// Archived in GuardDuty as CloudTrail recorded it.
	n, err := ApplyChanges(ctx, st, []cloudtrail.GuardDutyChange{
		{Action: "archive", DetectorID: detector, FindingIDs: []string{id(4), "ffffffffffffffffffffffffffffffff"}, User: "arn:aws:iam::111122223333:user/JaneDoe"},
		{Action: "feedback", DetectorID: detector, FindingIDs: []string{id(3)}, Feedback: "USEFUL"},
	})
	if err != nil || n != 2 {
		t.Errorf("ApplyChanges %d %v", n, err)
	}
	if f, _ := st.GetFinding(ctx, id(4)); !f.Archived {
		t.Error("CloudTrail ArchiveFindings not applied")
	}
}
