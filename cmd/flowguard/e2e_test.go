package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/flowguard/flowguard/internal/awstest"
)

// TestEndToEndResponse is the whole story of the response issue: flow
// logs with an attack → findings → a network ACL deny entry created
// through the AWS SDK → a Slack message and an SNS message received → the
// ban expires and the entry is removed → a second run over the same logs
// blocks nothing twice.
func TestEndToEndResponse(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()

	// AWS: the EC2 test server for network ACLs, the SNS/SQS emulator.
	ec2 := awstest.NewEC2(t)
	acl := ec2.AddNetworkACL("vpc-0123456789abcdef0", "subnet-0aaaaaaaaaaaaaaa1")
	snsURL := awstest.StartFauxqs(t)
	awstest.SetEnv(t, "AWS_REGION="+awstest.Region, "AWS_ENDPOINT_URL_EC2="+ec2.URL)
	awsCfg := awstest.ClientConfig(snsURL)
	snsc := sns.NewFromConfig(awsCfg)
	sqsc := sqs.NewFromConfig(awsCfg)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("oncall")})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("oncall-mail")})
	if err != nil {
		t.Fatal(err)
	}
	qa, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(qa.Attributes["QueueArn"])}); err != nil {
		t.Fatal(err)
	}

	// Slack: an incoming webhook that keeps what it receives.
	hook := newSlackHook(t)

	// Flow logs with a port scan of one of our hosts.
	logs, scanner := scanFlows(t, 120000, 5)

	writeIPRanges(t, dir)
	conf := writeConfig(t, dir, `home_networks: [10.0.0.0/16, 2600:1f18:abc::/56]
response:
  mode: enforce
  aws_ip_ranges: ip-ranges.json
  min_severity: 4
  ban_time: 3s
  nacl:
    network_acls: [`+acl+`]
  routes:
    - name: scans
      types: ["Recon:EC2/Portscan"]
      block: [nacl]
      notify: [oncall-slack, oncall-sns]
`+slackNotify(hook.URL)+`  sns:
    - name: oncall-sns
      topic_arn: `+aws.ToString(topic.TopicArn)+`
      endpoint: `+snsURL+`
`)
	db := filepath.Join(dir, "flowguard.db")

	// First run: findings, a block, two messages.
	_, stderr, code := execute(t, "", "detect", "--config", conf, "--db", db, "--respond", "-o", "json", logs)
	if code != 0 {
		t.Fatalf("detect --respond: exit %d\n%s", code, stderr)
	}
	denied := func() []string {
		var out []string
		for _, e := range ec2.Entries(acl) {
			if e.Action == "deny" && !e.Egress && e.RuleNumber < 100 {
				out = append(out, e.CIDR+e.IPv6CIDR)
			}
		}
		return out
	}
	if got := denied(); !contains(got, scanner+"/32") {
		t.Fatalf("no deny entry for the scanner %s in %s: %v\n%s", scanner, acl, got, stderr)
	}
	for _, e := range denied() {
		if strings.HasPrefix(e, "10.") || strings.HasPrefix(e, "2600:1f18:abc") {
			t.Errorf("blocked one of our own addresses: %s", e)
		}
	}
	slackMsgs := hook.joined()
	if !strings.Contains(slackMsgs, scanner) {
		t.Errorf("no Slack message names %s:\n%.500s", scanner, slackMsgs)
	}
	if body := receiveSNS(t, sqsc, q.QueueUrl); !strings.Contains(body, scanner) {
		t.Errorf("the SNS message does not name %s:\n%.500s", scanner, body)
	}
	creates := ec2.Calls("CreateNetworkAclEntry")

	// The ban runs out; expiry removes the entry.
	time.Sleep(3500 * time.Millisecond)
	if _, stderr, code := execute(t, "", "blocks", "expire", "--config", conf, "--db", db); code != 0 {
		t.Fatalf("blocks expire: exit %d\n%s", code, stderr)
	}
	if got := denied(); len(got) != 0 {
		t.Errorf("entries left after expiry: %v", got)
	}

	// The same logs again: nothing is blocked twice.
	if _, stderr, code := execute(t, "", "detect", "--config", conf, "--db", db, "--respond", "-o", "json", logs); code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, stderr)
	}
	if n := ec2.Calls("CreateNetworkAclEntry"); n != creates {
		t.Errorf("the second run over the same logs created %d more entries", n-creates)
	}
	if got := denied(); len(got) != 0 {
		t.Errorf("entries after the second run: %v", got)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// receiveSNS waits for a message on the queue subscribed to the topic and
// returns its body.
func receiveSNS(t *testing.T, sqsc *sqs.Client, queue *string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err := sqsc.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: queue, WaitTimeSeconds: 1, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		for _, m := range out.Messages {
			var env struct{ Subject, Message string }
			json.Unmarshal([]byte(aws.ToString(m.Body)), &env)
			all = append(all, env.Subject+"\n"+env.Message)
		}
		if len(all) > 0 {
			return strings.Join(all, "\n")
		}
	}
	t.Fatal("no SNS message arrived")
	return ""
}
