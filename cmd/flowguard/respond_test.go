package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/awstest"
)

// TestDetectRespondEC2Down: with EC2 failing, `detect --respond` still
// records the findings, blocks through WAFv2, notifies (the findings and
// the failure), and exits with 3.
func TestDetectRespondEC2Down(t *testing.T) {
	dir := t.TempDir()
	ec2 := awstest.NewEC2(t)
	acl := ec2.AddNetworkACL("vpc-0123456789abcdef0", "subnet-0aaaaaaaaaaaaaaa1")
	ec2.SetUnavailable(true)
	waf := awstest.NewWAFv2(t)
	setID := waf.CreateIPSet("REGIONAL", "flowguard-v4", "IPV4")
	awstest.SetEnv(t, "AWS_REGION="+awstest.Region, "AWS_ENDPOINT_URL_EC2="+ec2.URL, "AWS_ENDPOINT_URL_WAFV2="+waf.URL)

	hook := newSlackHook(t)

	logs, scanner := scanFlows(t, 30000, 5)
	writeIPRanges(t, dir)
	conf := writeConfig(t, dir, `home_networks: [10.0.0.0/16, 2600:1f18:abc::/56]
response:
  mode: enforce
  aws_ip_ranges: ip-ranges.json
  min_severity: 4
  retry: {max_attempts: 2, initial: 10ms}
  nacl:
    network_acls: [`+acl+`]
  wafv2:
    scope: REGIONAL
    ipv4_set: {name: flowguard-v4, id: `+setID+`}
  routes:
    - name: scans
      types: ["Recon:EC2/Portscan"]
      block: [nacl, wafv2]
      notify: [oncall-slack]
`+slackNotify(hook.URL))
	db := filepath.Join(dir, "flowguard.db")

	_, stderr, code := execute(t, "", "detect", "--config", conf, "--db", db, "--respond", "-o", "json", logs)
	if code != exitResponderFailed {
		t.Fatalf("exit %d, want %d\n%s", code, exitResponderFailed, stderr)
	}
	if !strings.Contains(stderr, "responder nacl failed") {
		t.Errorf("stderr does not say the nacl responder failed:\n%s", stderr)
	}
	if got := waf.Addresses("REGIONAL", setID); !contains(got, scanner+"/32") {
		t.Errorf("the WAFv2 block was not made: %v\n%s", got, stderr)
	}
	msgs := hook.joined()
	if !strings.Contains(msgs, scanner) {
		t.Errorf("no message names the scanner %s:\n%.800s", scanner, msgs)
	}
	if !strings.Contains(msgs, "flowguard-responder:nacl") {
		t.Errorf("the failure was not notified:\n%.800s", msgs)
	}
	// The findings are recorded, and the audit trail says what failed.
	out, stderr, code := execute(t, "", "findings", "list", "--db", db, "--output", "json")
	if code != 0 || !strings.Contains(out, scanner) {
		t.Errorf("findings list: exit %d, scanner missing\n%s", code, stderr)
	}
	out, stderr, code = execute(t, "", "audit", "--db", db, "--action", "responder-failed", "--output", "json")
	if code != 0 || !strings.Contains(out, "nacl") {
		t.Errorf("audit: exit %d %s\n%s", code, out, stderr)
	}
}
