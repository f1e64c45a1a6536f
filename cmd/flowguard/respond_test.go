package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/synth"
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
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL_EC2", ec2.URL)
	t.Setenv("AWS_ENDPOINT_URL_WAFV2", waf.URL)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-aws-credentials"))

	var mu sync.Mutex
	var slack []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		slack = append(slack, string(b))
		mu.Unlock()
		w.Write([]byte("ok"))
	}))
	defer hook.Close()

	cfg := synth.DefaultConfig()
	cfg.Records, cfg.Seed = 30000, 5
	logs := filepath.Join(dir, "flows.log")
	f, _ := os.Create(logs)
	gen := synth.New(cfg)
	if err := gen.WriteText(f, false); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var scanner string
	for _, l := range gen.Labels() {
		if l.Type == "Recon:EC2/Portscan" && l.Direction == "inbound" && l.Target != "" {
			scanner = l.Actor
		}
	}
	if scanner == "" {
		t.Fatal("the generator made no inbound port scan")
	}
	os.WriteFile(filepath.Join(dir, "ip-ranges.json"), []byte(`{"syncToken":"1","createDate":"2026-11-20-00-00-00","prefixes":[{"ip_prefix":"52.94.76.0/22","region":"us-west-2","service":"AMAZON","network_border_group":"us-west-2"}],"ipv6_prefixes":[{"ipv6_prefix":"2600:1f14::/35","region":"us-west-2","service":"AMAZON","network_border_group":"us-west-2"}]}`), 0o644)
	conf := filepath.Join(dir, "flowguard.yaml")
	os.WriteFile(conf, []byte(`home_networks: [10.0.0.0/16, 2600:1f18:abc::/56]
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
notify:
  language: en
  slack:
    - name: oncall-slack
      webhook_url: `+hook.URL+`/services/T000/B000/XXXX
`), 0o644)
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
	mu.Lock()
	msgs := strings.Join(slack, "\n")
	mu.Unlock()
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
