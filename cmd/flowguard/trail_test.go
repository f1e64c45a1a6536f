package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/cloudtrail"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

func copyFixture(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(to, ".gz") {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		b = buf.Bytes()
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDetectCloudTrailJoin: flow logs of a port scan, a CloudTrail
// delivery file (gzip, recognised by content, not by name) with a
// sign-in from the scanning address, and a GuardDuty finding event, in
// one directory: one run gives the flow finding, the CloudTrail findings
// joined to it, and GuardDuty's finding as GuardDuty named it; all are
// recorded; an ArchiveFindings call in CloudTrail archives the GuardDuty
// finding in the store.
func TestDetectCloudTrailJoin(t *testing.T) {
	dir := t.TempDir()
	var flows strings.Builder
	flows.WriteString("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n")
	for p := 1; p <= 40; p++ {
		fmt.Fprintf(&flows, "2 111122223333 eni-0a1b2c3d4e5f60718 198.51.100.23 10.0.1.10 40000 %d 6 1 40 1795341600 1795341660 REJECT OK\n", p)
	}
	os.WriteFile(filepath.Join(dir, "flows.log"), []byte(flows.String()), 0o644)
	ct := filepath.Join("..", "..", "internal", "cloudtrail", "testdata")
	// The failure and the no-MFA sign-in, moved to the scanner's address.
	rec, _ := os.ReadFile(filepath.Join(ct, "signin-iamuser-nomfa.json"))
	rec = bytes.ReplaceAll(rec, []byte("203.0.113.12"), []byte("198.51.100.23"))
	fail, _ := os.ReadFile(filepath.Join(ct, "signin-iamuser-failure.json"))
	delivery := `{"Records":[` + string(bytes.TrimSpace(rec)) + "," + string(bytes.TrimSpace(fail)) + "]}"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(delivery))
	zw.Close()
	os.WriteFile(filepath.Join(dir, "111122223333_CloudTrail_us-east-1_20261122T1005Z_x.gz"), gz.Bytes(), 0o644)
	copyFixture(t, filepath.Join("..", "..", "internal", "guardduty", "testdata", "portprobe.json"), filepath.Join(dir, "gd-event.json"))
	db := filepath.Join(t.TempDir(), "f.db")
	out, stderr, code := execute(t, "", "detect", "--home", "10.0.0.0/16", "--output", "json", "--db", db, dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var fs []finding.Finding
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	byType := map[string]finding.Finding{}
	for _, f := range fs {
		byType[f.Type] = f
	}
	scan, ok := byType["Recon:EC2/Portscan"]
	if !ok {
		t.Fatalf("no port scan among %v", slices.Collect(maps.Keys(byType)))
	}
	join, ok := byType[cloudtrail.TypeFromAttacker]
	if !ok {
		t.Fatalf("no joined sign-in finding among %v", slices.Collect(maps.Keys(byType)))
	}
	if join.Actor.IP.String() != "198.51.100.23" || join.Actor.User != "arn:aws:iam::111122223333:user/JohnDoe" || join.Count != 2 {
		t.Errorf("joined finding %+v", join)
	}
	if ids, _ := join.Evidence["flow_findings"].([]any); len(ids) == 0 || !slices.Contains(ids, any(scan.ID)) {
		t.Errorf("joined finding names flow findings %v, want the scan %s", join.Evidence["flow_findings"], scan.ID)
	}
	if _, ok := byType[cloudtrail.TypeNoMFA]; !ok {
		t.Errorf("no %s", cloudtrail.TypeNoMFA)
	}
	gd, ok := byType["Recon:EC2/PortProbeUnprotectedPort"]
	if !ok || gd.ID != "16afba5c5c43e07c9e3e5e2e544e95df" || gd.Severity != 2 || gd.Target.InstanceID != "i-0abcdef1234567890" || gd.Actor.IP.String() != "198.51.100.23" {
		t.Errorf("GuardDuty finding %+v", gd)
	}
	// Archived in GuardDuty, as CloudTrail records it: archived here.
	archive := `{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/JaneDoe","userName":"JaneDoe"},"eventTime":"2026-11-22T11:00:00Z","eventSource":"guardduty.amazonaws.com","eventName":"ArchiveFindings","sourceIPAddress":"203.0.113.10","requestParameters":{"detectorId":"12abc34d567e8fa901bc2d34e56789f0","findingIds":["16afba5c5c43e07c9e3e5e2e544e95df"]},"recipientAccountId":"111122223333"}`
	p := filepath.Join(t.TempDir(), "archive.json")
	os.WriteFile(p, []byte(archive), 0o644)
	if _, stderr, code := execute(t, "", "detect", "--output", "json", "--db", db, p); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.GetFinding(context.Background(), gd.ID)
	if err != nil || !got.Archived {
		t.Errorf("GuardDuty finding after ArchiveFindings in CloudTrail: archived %v, %v", got.Archived, err)
	}
	if j, err := st.GetFinding(context.Background(), join.ID); err != nil || j.Actor.User != join.Actor.User {
		t.Errorf("stored joined finding %+v %v", j, err)
	}
	checkCorrelateView(t, db, scan, join, gd)
}

// TestDetectCloudTrailMalformed: a broken CloudTrail file is named with
// its line and column, the rest is read, and the exit code says so.
func TestDetectCloudTrailMalformed(t *testing.T) {
	out, stderr, code := execute(t, "", "detect", "--no-db", "--output", "json", filepath.Join("..", "..", "internal", "cloudtrail", "testdata", "malformed.json"))
	if code != 2 {
		t.Fatalf("exit %d, want 2: %s", code, stderr)
	}
	if !strings.Contains(stderr, "malformed.json:3:1: record skipped: eventTime") || !strings.Contains(stderr, "malformed.json:6:") {
		t.Errorf("stderr %q", stderr)
	}
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("out %q", out)
	}
}

// TestDetectRespondGuardDutyEvent: a GuardDuty finding event goes
// through the same route, guard, blocker and notifier as flowguard's own
// findings, and is answered once: a second run over the same event blocks
// and notifies nothing more.
func TestDetectRespondGuardDutyEvent(t *testing.T) {
	dir := t.TempDir()
	waf := awstest.NewWAFv2(t)
	setID := waf.CreateIPSet("REGIONAL", "flowguard-v4", "IPV4")
	awstest.SetEnv(t, "AWS_REGION="+awstest.Region, "AWS_ENDPOINT_URL_WAFV2="+waf.URL)
	hook := newSlackHook(t)
	ev := filepath.Join(dir, "gd.json")
	copyFixture(t, filepath.Join("..", "..", "internal", "guardduty", "testdata", "portprobe.json"), ev)
	// GuardDuty's finding on an allow-listed caller is routed but never blocked.
	api := filepath.Join(dir, "gd-api.json")
	copyFixture(t, filepath.Join("..", "..", "internal", "guardduty", "testdata", "apicall.json"), api)
	writeIPRanges(t, dir)
	conf := writeConfig(t, dir, `home_networks: [10.0.0.0/16]
allowlist: [192.0.2.0/24]
response:
  mode: enforce
  aws_ip_ranges: ip-ranges.json
  min_severity: 1
  wafv2:
    scope: REGIONAL
    ipv4_set: {name: flowguard-v4, id: `+setID+`}
  routes:
    - name: guardduty-probes
      types: ["Recon:EC2/PortProbeUnprotectedPort", "UnauthorizedAccess:IAMUser/*"]
      block: [wafv2]
      notify: [oncall-slack]
`+slackNotify(hook.URL))
	db := filepath.Join(dir, "flowguard.db")
	for run := 1; run <= 2; run++ {
		_, stderr, code := execute(t, "", "detect", "--config", conf, "--db", db, "--respond", "-o", "json", ev, api)
		if code != 0 {
			t.Fatalf("run %d: exit %d\n%s", run, code, stderr)
		}
		if got := waf.Addresses("REGIONAL", setID); !slices.Equal(got, []string{"198.51.100.23/32"}) {
			t.Errorf("run %d: WAFv2 set %v, want the GuardDuty finding's actor only (the other is allow-listed)", run, got)
		}
		msgs := hook.messages()
		n, all := len(msgs), strings.Join(msgs, "\n")
		if n != 1 || !strings.Contains(all, "PortProbeUnprotectedPort") {
			t.Errorf("run %d: %d Slack message(s): %s", run, n, all)
		}
	}
}

// TestQueryCloudTrail: flowguard query over CloudTrail files (a gzip
// delivery file and a JSON-lines file, recognised by content) takes the
// dotted field names Logs Insights gives CloudTrail, @timestamp is the
// eventTime and @message the record; flow logs among them are skipped
// input with a clear message (exit 2), and the flow log warning about
// unknown field names is not printed.
func TestQueryCloudTrail(t *testing.T) {
	dir := t.TempDir()
	ct := filepath.Join("..", "..", "internal", "cloudtrail", "testdata")
	copyFixture(t, filepath.Join(ct, "signin-iamuser-failure.json"), filepath.Join(dir, "a.json.gz"))
	copyFixture(t, filepath.Join(ct, "signin-iamuser-nomfa.json"), filepath.Join(dir, "b.log"))
	out, stderr, code := execute(t, "", "query", "--output", "json",
		`filter eventName = "ConsoleLogin" | fields @timestamp, userIdentity.userName as user, responseElements.ConsoleLogin as result, strcontains(@message, '"MFAUsed"') as mfa | sort @timestamp asc`, dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr, "not a flow log field") {
		t.Errorf("flow log warning over CloudTrail: %s", stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rows) != 2 || rows[1]["result"] != "Failure" || rows[1]["user"] != "JohnDoe" || rows[1]["@timestamp"] != "2026-11-22 10:07:00.000" ||
		rows[0]["result"] != "Success" || rows[0]["mfa"] != true {
		t.Errorf("rows %v", rows)
	}

	os.WriteFile(filepath.Join(dir, "c.log"), []byte("2 111122223333 eni-1 198.51.100.23 10.0.1.10 40000 22 6 1 40 1795341600 1795341660 REJECT OK\n"), 0o644)
	out, stderr, code = execute(t, "", "query", "--output", "json", `stats count(*) as n`, dir)
	if code != 2 || !strings.Contains(stderr, "c.log") || !strings.Contains(stderr, "query the two kinds of logs in separate runs") || !strings.Contains(out, `"n": 2`) {
		t.Errorf("exit %d, out %s, stderr %s", code, out, stderr)
	}
}
