package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/awstest"
)

const sgFixture = "../../internal/sgaudit/testdata/account/"

func sgFiles(extra ...string) []string {
	args := []string{"sg-audit", "--groups", sgFixture + "groups.json", "--interfaces", sgFixture + "interfaces.json",
		"--prefix-lists", sgFixture + "prefix-lists.json"}
	args = append(args, extra...)
	return append(args, sgFixture+"flows-v5.log", sgFixture+"flows-v2.log")
}

// TestSGAuditOutputs: the JSON array has the contract's keys, the CSV the
// same rows, the summary goes to standard error, and the remediation
// files are written.
func TestSGAuditOutputs(t *testing.T) {
	out, errOut, code := execute(t, "", sgFiles("--output", "json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 18 {
		t.Fatalf("%d rules, want 18", len(rows))
	}
	for _, k := range []string{"group_id", "direction", "protocol", "from_port", "to_port", "source", "hits",
		"distinct_sources", "first_seen", "last_seen", "verdict", "suggestion"} {
		if _, ok := rows[0][k]; !ok {
			t.Errorf("JSON rule without %q", k)
		}
	}
	if !strings.Contains(errOut, "evidence: 2026-11-01T00:00:00Z to 2026-11-09T08:00:00Z (8d8h)") {
		t.Errorf("no evidence period on stderr: %s", errOut)
	}

	out, _, code = execute(t, "", sgFiles("--output", "csv")...)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(recs) != 19 || recs[0][0] != "group_id" {
		t.Fatalf("csv: exit %d, %v, %d lines", code, err, len(recs))
	}

	dir := t.TempDir()
	sh, tf := filepath.Join(dir, "fix.sh"), filepath.Join(dir, "fix.tf")
	out, errOut, code = execute(t, "", sgFiles("--remediation", sh, "--terraform", tf)...)
	if code != 0 || !strings.Contains(out, "VERDICT") || !strings.Contains(out, "rejected traffic that looks wanted") {
		t.Fatalf("table: exit %d\n%s%s", code, out, errOut)
	}
	for _, f := range []struct{ path, want string }{
		{sh, "aws ec2 revoke-security-group-ingress --group-id sg-2app"},
		{tf, `resource "aws_vpc_security_group_ingress_rule"`},
	} {
		b, err := os.ReadFile(f.path)
		if err != nil || !strings.Contains(string(b), f.want) {
			t.Errorf("%s: %v, want %q in:\n%s", f.path, err, f.want, b)
		}
	}
}

// TestSGAuditBadInput: a broken groups file names the file, line and
// column; a malformed flow log line is skipped, counted, and the exit code
// says so.
func TestSGAuditBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "groups.json")
	os.WriteFile(bad, []byte("{\"SecurityGroups\": [\n  {\"GroupId\": \"sg-1\",,}\n]}\n"), 0o644)
	_, errOut, code := execute(t, "", "sg-audit", "--groups", bad, "--interfaces", sgFixture+"interfaces.json", sgFixture+"flows-v5.log")
	if code != 1 || !strings.Contains(errOut, bad+":2:") {
		t.Errorf("exit %d, %q: want the file, line and column", code, errOut)
	}
	logs := filepath.Join(dir, "flows.log")
	os.WriteFile(logs, []byte("2 123456789012 eni-app 10.0.0.10 10.0.1.20 50001 8080 6 10 2000 1793491200 1793491260 ACCEPT OK\n"+
		"2 123456789012 eni-app 10.0.0.10 not-an-ip 50001 8080 6 10 2000 1793491200 1793491260 ACCEPT OK\n"), 0o644)
	out, errOut, code := execute(t, "", "sg-audit", "--groups", sgFixture+"groups.json", "--interfaces", sgFixture+"interfaces.json",
		"--prefix-lists", sgFixture+"prefix-lists.json", logs)
	if code != 2 || !strings.Contains(errOut, logs+":2") {
		t.Errorf("exit %d, %q: want 2 and the skipped line", code, errOut)
	}
	if !strings.Contains(out, "too short to call a rule unused") {
		t.Errorf("one minute of logs without the short-period warning:\n%s", out)
	}
	_, errOut, code = execute(t, "", "sg-audit", "--groups", sgFixture+"groups.json", logs)
	if code != 1 || !strings.Contains(errOut, "--interfaces") {
		t.Errorf("exit %d, %q", code, errOut)
	}
}

// TestSGAuditApply: --apply without --yes revokes nothing; with --yes the
// unused rules are revoked by rule id and the audit trail shows them;
// with logs shorter than --min-period it refuses.
func TestSGAuditApply(t *testing.T) {
	dir := t.TempDir()
	srv := awstest.NewEC2(t)
	srv.AddSecurityGroup(awstest.SecurityGroup{ID: "sg-2app", Name: "app", VPC: "vpc-0123456789abcdef0", Rules: []awstest.SecurityGroupRule{
		{Protocol: "tcp", FromPort: 8080, ToPort: 8080, RefGrp: "sg-0web"},
		{Protocol: "tcp", FromPort: 9090, ToPort: 9090, CIDRv4: "10.0.0.0/16"},
		{Egress: true, Protocol: "tcp", FromPort: 5432, ToPort: 5432, RefGrp: "sg-3db"},
	}})
	srv.AddSecurityGroup(awstest.SecurityGroup{ID: "sg-5orphan", Name: "ftp-old", VPC: "vpc-0123456789abcdef0", Rules: []awstest.SecurityGroupRule{
		{Protocol: "tcp", FromPort: 21, ToPort: 21, CIDRv4: "0.0.0.0/0"},
	}})
	awstest.SetEnv(t, "AWS_REGION="+awstest.Region, "AWS_ENDPOINT_URL_EC2="+srv.URL)
	db := filepath.Join(dir, "flowguard.db")

	// without --groups the inventory comes from the EC2 API
	out, errOut, code := execute(t, "", "sg-audit", "--output", "json", sgFixture+"flows-v5.log")
	var rules []map[string]any
	if err := json.Unmarshal([]byte(out), &rules); code != 0 || err != nil || len(rules) != 4 {
		t.Fatalf("from the API: exit %d, %v, %d rules\n%s", code, err, len(rules), errOut)
	}

	_, errOut, code = execute(t, "", sgFiles("--db", db, "--apply", "--min-period", "30d")...)
	if code == 0 || !strings.Contains(errOut, "too short") || len(srv.SecurityGroupRules("sg-2app")) != 3 {
		t.Fatalf("short period: exit %d, %s", code, errOut)
	}
	_, errOut, code = execute(t, "", sgFiles("--db", db, "--apply")...)
	if code != 0 || !strings.Contains(errOut, "dry run") || len(srv.SecurityGroupRules("sg-2app")) != 3 {
		t.Fatalf("dry run: exit %d, %d rules left\n%s", code, len(srv.SecurityGroupRules("sg-2app")), errOut)
	}
	_, errOut, code = execute(t, "", sgFiles("--db", db, "--apply", "--yes")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	left := srv.SecurityGroupRules("sg-2app")
	if len(left) != 2 || left[0].FromPort != 8080 || left[1].FromPort != 5432 || len(srv.SecurityGroupRules("sg-5orphan")) != 0 {
		t.Errorf("rules left: %+v, orphan %+v", left, srv.SecurityGroupRules("sg-5orphan"))
	}
	out, _, _ = execute(t, "", "audit", "--db", db, "--action", "sg-revoke", "--output", "json")
	var entries []struct {
		Subject string          `json:"subject"`
		Detail  json.RawMessage `json:"detail"`
	}
	json.Unmarshal([]byte(out), &entries)
	if len(entries) != 2 || !strings.Contains(out, "sgr-") || !strings.Contains(out, `\"user\"`) && !strings.Contains(out, `"user"`) {
		t.Errorf("audit trail: %s", out)
	}
	// the other unused rules of the fixture are not on this server: gone
	out, _, _ = execute(t, "", "audit", "--db", db, "--action", "sg-revoke-gone", "--output", "json")
	if !strings.Contains(out, "sg-0web") {
		t.Errorf("rules missing from EC2 not recorded as gone: %s", out)
	}
}
