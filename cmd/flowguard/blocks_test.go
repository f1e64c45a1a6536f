package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/store"
	"github.com/spf13/cobra"
)

// runCmd runs one of the response commands under a bare root.
func runCmd(t *testing.T, cmd *cobra.Command, args ...string) (string, string, error) {
	t.Helper()
	root := &cobra.Command{Use: "flowguard", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(cmd)
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.Execute()
	return out.String(), errb.String(), err
}

func TestIAMPolicy(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `
home_networks: [10.0.0.0/16]
response:
  nacl:
    network_acls: [acl-0123456789abcdef0]
    region: eu-west-1
  wafv2:
    scope: CLOUDFRONT
    ipv4_set: {name: fg-v4, id: 11111111-2222-3333-4444-555555555555}
  routes:
    - types: ["*"]
      block: [nacl, wafv2]
      notify: [mail, bus, chat]
notify:
  sns:
    - name: mail
      topic_arn: arn:aws:sns:eu-west-1:123456789012:flowguard
  eventbridge:
    - name: bus
      region: eu-west-1
  slack:
    - name: chat
      webhook_url: https://hooks.slack.com/services/T000/B000/XXXX
`)
	out, _, err := runCmd(t, newIAMPolicyCmd(), "iam-policy", "--config", cfg, "--account", "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	var got respond.PolicyDocument
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := respond.PolicyDocument{Version: "2012-10-17", Statement: []respond.PolicyStatement{
		{Sid: "FlowguardDescribeNetworkAcls", Effect: "Allow", Action: []string{"ec2:DescribeNetworkAcls"}, Resource: []string{"*"}},
		{Sid: "FlowguardNetworkAclEntries", Effect: "Allow", Action: []string{"ec2:CreateNetworkAclEntry", "ec2:DeleteNetworkAclEntry"},
			Resource: []string{"arn:aws:ec2:eu-west-1:123456789012:network-acl/acl-0123456789abcdef0"}},
		{Sid: "FlowguardWAFv2IPSets", Effect: "Allow", Action: []string{"wafv2:GetIPSet", "wafv2:UpdateIPSet"},
			Resource: []string{"arn:aws:wafv2:us-east-1:123456789012:global/ipset/fg-v4/11111111-2222-3333-4444-555555555555"}},
		{Sid: "FlowguardSNSPublish", Effect: "Allow", Action: []string{"sns:Publish"}, Resource: []string{"arn:aws:sns:eu-west-1:123456789012:flowguard"}},
		{Sid: "FlowguardEventBridgePutEvents", Effect: "Allow", Action: []string{"events:PutEvents"}, Resource: []string{"arn:aws:events:eu-west-1:123456789012:event-bus/default"}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("policy\n%s\nwant %+v", out, want)
	}
	if strings.Contains(out, "SecurityGroup") {
		t.Error("the policy asks for security-group actions")
	}

	// Without a configuration nothing is enabled: an empty policy.
	out, _, err = runCmd(t, newIAMPolicyCmd(), "iam-policy")
	if err != nil || !strings.Contains(out, `"Statement": []`) {
		t.Errorf("no config: %v\n%s", err, out)
	}
}

func TestIAMPolicyInterfaceLookup(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("response:\n  nacl: {}\n"), 0o600)
	out, _, err := runCmd(t, newIAMPolicyCmd(), "iam-policy", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "ec2:DescribeNetworkInterfaces") || !strings.Contains(out, "arn:aws:ec2:*:*:network-acl/*") {
		t.Errorf("policy without named ACLs:\n%s", out)
	}
}

func TestBlocksListUnblockAudit(t *testing.T) {
	db := filepath.Join(t.TempDir(), "fg.db")
	ctx := context.Background()
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for i, ip := range []string{"198.51.100.1/32", "198.51.100.2/32"} {
		if _, err := st.InsertBlock(ctx, store.BlockRecord{Target: "nacl:acl-0123456789abcdef0", Prefix: netip.MustParsePrefix(ip),
			RuleNumber: int32(i + 1), FindingID: "f" + ip, Severity: 8, State: store.BlockActive, Created: now, Expires: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	out, _, err := runCmd(t, newBlocksCmd(), "blocks", "--db", db, "list", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []store.BlockRecord
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("list: %v %s", err, out)
	}
	out, _, err = runCmd(t, newBlocksCmd(), "blocks", "--db", db, "unblock", "198.51.100.1", "--by", "alice", "--reason", "partner")
	if err != nil || !strings.Contains(out, "1 block(s) marked for removal") {
		t.Fatalf("unblock: %v %s", err, out)
	}
	out, _, _ = runCmd(t, newBlocksCmd(), "blocks", "--db", db, "history", "198.51.100.1", "--output", "json")
	rows = nil
	json.Unmarshal([]byte(out), &rows)
	if len(rows) != 1 || rows[0].State != store.BlockRemoving || rows[0].RemovedBy != "unblock" {
		t.Fatalf("history: %s", out)
	}
	out, _, err = runCmd(t, newAuditCmd(), "audit", "--db", db, "--action", "unban", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var es []store.AuditEntry
	if err := json.Unmarshal([]byte(out), &es); err != nil || len(es) != 1 || es[0].Subject != "198.51.100.1/32" {
		t.Fatalf("audit: %v %s", err, out)
	}
	var d struct{ By, Reason string }
	if err := json.Unmarshal(es[0].Detail, &d); err != nil || d.By != "alice" || d.Reason != "partner" {
		t.Errorf("audit detail %s", es[0].Detail)
	}
	out, _, err = runCmd(t, newBlocksCmd(), "blocks", "--db", db, "list")
	if err != nil || !strings.Contains(out, "ADDRESS") || !strings.Contains(out, "198.51.100.2/32") {
		t.Errorf("table: %v\n%s", err, out)
	}
}

func TestBlocksMissingDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "none.db")
	out, errs, err := runCmd(t, newBlocksCmd(), "blocks", "--db", db, "list", "--output", "json")
	if err != nil || strings.TrimSpace(out) != "[]" || !strings.Contains(errs, "no database") {
		t.Errorf("%v %q %q", err, out, errs)
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("listing created a database")
	}
}
