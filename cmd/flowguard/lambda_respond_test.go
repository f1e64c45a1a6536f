package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/klauspost/compress/gzip"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/store"
	"github.com/flowguard/flowguard/internal/store/dynamo"
	"github.com/flowguard/flowguard/internal/synth"
)

// lambdaRespondConfig routes port scans to a network ACL block and a
// webhook; %s is the mode line.
const lambdaRespondConfig = `home_networks: [10.0.0.0/16, 2600:1f18:abc::/56]
detectors:
  allowed_lateness: 2m
response:
%s  aws_ip_ranges: %s
  min_severity: 4
  nacl:
    network_acls: [%s]
  routes:
    - name: scans
      types: ["Recon:EC2/Portscan"]
      block: [nacl]
      notify: [hook]
notify:
  language: en
  webhook:
    - name: hook
      url: %s/hook
      secret: not-a-real-secret
`

// TestLambdaResponds runs the built bootstrap binary with a response
// section, state in dynalite: two invocations at once, in two processes,
// commit the same port scan (each brings an object holding it to the same
// window). In dry-run mode (the default) nothing reaches the network ACL,
// the audit trail says what would be blocked, and the webhook hears of
// the scan; in enforce mode the network ACL gets one deny entry for the
// scanner, the store one block row and one block audit entry, and the
// webhook one message — also after a third invocation delivers an object
// again.
func TestLambdaResponds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	ctx := context.Background()
	dynURL := awstest.StartDynalite(t)
	ddb := dynamodb.NewFromConfig(awstest.ClientConfig(dynURL))
	s3URL, s3c := startS3(t, gofakes3.New(s3mem.New(), gofakes3.WithTimeSkewLimit(0)), "flowlogs")
	ec2 := awstest.NewEC2(t)
	acl := ec2.AddNetworkACL("vpc-0123456789abcdef0", "subnet-0aaaaaaaaaaaaaaa1")
	hook := newWebhook(t)

	// Two sets of labelled traffic with the same scanner, one object
	// each: each invocation's object holds a scan, so both commit the
	// scanner's finding, and the second to commit changes it.
	keys := []string{"AWSLogs/a.log.gz", "AWSLogs/b.log.gz"}
	actors := map[string]int{}
	for i, seed := range []uint64{5, 6} {
		cfg := synth.DefaultConfig()
		cfg.Records, cfg.Seed = 30000, seed
		gen := synth.New(cfg)
		var raw bytes.Buffer
		if err := gen.WriteText(&raw, false); err != nil {
			t.Fatal(err)
		}
		for _, a := range inboundScanners(gen) {
			actors[a] |= 1 << i
		}
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(raw.Bytes())
		zw.Close()
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("flowlogs"), Key: aws.String(keys[i]), Body: bytes.NewReader(z.Bytes())}); err != nil {
			t.Fatal(err)
		}
	}
	var scanner string
	for a, in := range actors {
		if in == 3 {
			scanner = a
		}
	}
	if scanner == "" {
		t.Fatalf("no inbound port scanner in both sets: %v", actors)
	}
	s3Event := func(key string) map[string]any {
		return map[string]any{"Records": []any{map[string]any{
			"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": synth.DefaultStart.Format("2006-01-02T15:04:05.000Z"),
			"s3": map[string]any{"bucket": map[string]any{"name": "flowlogs"}, "object": map[string]any{"key": url.QueryEscape(key)}}}}}
	}

	dir := t.TempDir()
	ranges := writeIPRanges(t, dir)
	bootstrap := bootstrapBinary(t, dir)
	env := func(table, mode string) *lambdaEnv {
		if err := dynamo.CreateTable(ctx, ddb, table); err != nil {
			t.Fatal(err)
		}
		config := fmt.Sprintf(lambdaRespondConfig, mode, ranges, acl, hook.URL)
		return &lambdaEnv{t: t, bootstrap: bootstrap, config: config, dir: dir, env: awstest.Env(
			"PATH="+os.Getenv("PATH"), "HOME="+dir, "AWS_REGION="+awstest.Region,
			"AWS_ENDPOINT_URL_DYNAMODB="+dynURL, "AWS_ENDPOINT_URL_S3="+s3URL, "AWS_ENDPOINT_URL_EC2="+ec2.URL,
			"FLOWGUARD_S3_PATH_STYLE=true", "FLOWGUARD_TABLE="+table, "FLOWGUARD_CONFIG_YAML="+config, "FLOWGUARD_WINDOW=24h",
		)}
	}
	// concurrently invokes two new processes at once, one object each.
	concurrently := func(e *lambdaEnv) []*syncBuffer {
		rtA, logA, _ := e.start()
		rtB, logB, _ := e.start()
		a, b := rtA.send(s3Event(keys[0])), rtB.send(s3Event(keys[1]))
		responded := 0
		for _, r := range []fakeResult{rtA.wait(a, logA), rtB.wait(b, logB)} {
			var sum struct {
				Responded int `json:"responded"`
			}
			if r.error || json.Unmarshal(r.body, &sum) != nil {
				t.Fatalf("an invocation failed: %s\n%s\n%s", r.body, logA, logB)
			}
			responded += sum.Responded
		}
		// Each commit that creates or changes findings hands them to the
		// pipeline; which of the two does depends on the race (the
		// second to read the window may read it whole, and the first's
		// commit then changes nothing).
		if responded == 0 {
			t.Errorf("no invocation responded to a finding\n%s\n%s", logA, logB)
		}
		return []*syncBuffer{logA, logB}
	}
	scan := netip.PrefixFrom(netip.MustParseAddr(scanner), 32)
	denies := func() []string {
		var out []string
		for _, en := range ec2.Entries(acl) {
			if en.Action == "deny" && !en.Egress && en.CIDR == scan.String() {
				out = append(out, fmt.Sprintf("rule %d", en.RuleNumber))
			}
		}
		return out
	}
	audits := func(st *dynamo.Store, action string) int {
		es, err := st.ListAudit(ctx, store.AuditFilter{Action: action})
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, e := range es {
			k += strings.Count(e.Subject, scanner)
		}
		return k
	}

	t.Run("DryRun", func(t *testing.T) {
		logs := concurrently(env("dry", ""))
		st := dynamo.New(ddb, "dry")
		if d := denies(); len(d) != 0 {
			t.Errorf("a dry run wrote deny entries %v", d)
		}
		if k := audits(st, "block-dry-run"); k == 0 {
			t.Errorf("no block-dry-run audit entry for %s\n%s\n%s", scanner, logs[0], logs[1])
		}
		if rows, err := st.ListBlocks(ctx, store.BlockFilter{}); err != nil || len(rows) != 0 {
			t.Errorf("a dry run recorded blocks: %v %+v", err, rows)
		}
		if hook.count(scanner) == 0 {
			t.Errorf("the webhook did not hear of %s\n%s\n%s", scanner, logs[0], logs[1])
		}
	})
	hook.reset()

	t.Run("Enforce", func(t *testing.T) {
		e := env("enforce", "  mode: enforce\n")
		logs := concurrently(e)
		// The first object delivered again, to a third process.
		rt, logC, _ := e.start()
		rt.invoke(map[string]any{"Records": []any{map[string]any{"eventSource": "aws:sqs", "messageId": "m1", "body": mustJSON(t, s3Event(keys[0]))}}}, logC)
		logs = append(logs, logC)
		st := dynamo.New(ddb, "enforce")
		if d := denies(); len(d) != 1 {
			t.Errorf("deny entries for %s in %s: %v, want one", scanner, acl, d)
		}
		rows, err := st.ListBlocks(ctx, store.BlockFilter{Prefix: scan})
		if err != nil || len(rows) != 1 || rows[0].State != store.BlockActive || rows[0].Target != "nacl:"+acl {
			t.Errorf("block rows of %s: %v %+v, want one active on nacl:%s", scanner, err, rows, acl)
		}
		if k := audits(st, "block"); k != 1 {
			t.Errorf("%d block audit entries for %s, want 1", k, scanner)
		}
		if k := hook.count(scanner); k != 1 {
			t.Errorf("%d webhook messages about %s, want 1", k, scanner)
		}
		if t.Failed() {
			for i, l := range logs {
				t.Logf("process %d:\n%s", i+1, l)
			}
		}
	})
}

// TestLambdaPipelinesRace: four response pipelines (four concurrent
// invocations), their state in one DynamoDB table, handle the same port
// scans at once: each scanner gets one deny entry in the network ACL, one
// block row, one block audit entry and one webhook message.
func TestLambdaPipelinesRace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dynalite")
	}
	ctx := context.Background()
	ddb := dynamodb.NewFromConfig(awstest.ClientConfig(awstest.StartDynalite(t)))
	if err := dynamo.CreateTable(ctx, ddb, "race"); err != nil {
		t.Fatal(err)
	}
	ec2 := awstest.NewEC2(t)
	acl := ec2.AddNetworkACL("vpc-0123456789abcdef0", "subnet-0aaaaaaaaaaaaaaa1")
	hook := newWebhook(t)
	ranges := writeIPRanges(t, t.TempDir())
	awstest.SetEnv(t, "AWS_REGION="+awstest.Region, "AWS_ENDPOINT_URL_EC2="+ec2.URL)
	cfg, err := config.Parse([]byte(fmt.Sprintf(lambdaRespondConfig, "  mode: enforce\n", ranges, acl, hook.URL)), "race.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const invocations = 4
	var pls []*respond.Pipeline
	for range invocations {
		pl, err := buildPipelineWith(ctx, cfg, dynamo.New(ddb, "race"), slog.New(slog.DiscardHandler), responseBlockers)
		if err != nil {
			t.Fatal(err)
		}
		pls = append(pls, pl)
	}
	scanners := []string{"198.51.100.7", "198.51.100.8", "203.0.113.9"}
	var events []respond.Event
	for _, a := range scanners {
		ip := netip.MustParseAddr(a)
		f := finding.Finding{ID: finding.ID("Recon:EC2/Portscan", ip, ""), Type: "Recon:EC2/Portscan", Severity: 8, Title: "port scan",
			Actor: finding.Actor{IP: ip}, Count: 40, FirstSeen: synth.DefaultStart, LastSeen: synth.DefaultStart.Add(time.Minute),
			Target: finding.Target{IP: netip.MustParseAddr("10.0.1.10"), Ports: []uint16{22, 23, 80}}}
		events = append(events, respond.Event{Finding: &f})
	}
	var wg sync.WaitGroup
	for _, pl := range pls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := pl.Handle(ctx, slices.Clone(events)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st := dynamo.New(ddb, "race")
	audit, err := st.ListAudit(ctx, store.AuditFilter{Action: "block"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range scanners {
		cidr := a + "/32"
		var denies []int32
		for _, en := range ec2.Entries(acl) {
			if en.Action == "deny" && en.CIDR == cidr {
				denies = append(denies, en.RuleNumber)
			}
		}
		if len(denies) != 1 {
			t.Errorf("%s: deny entries %v, want one", a, denies)
		}
		rows, err := st.ListBlocks(ctx, store.BlockFilter{Prefix: netip.MustParsePrefix(cidr)})
		if err != nil || len(rows) != 1 || rows[0].State != store.BlockActive {
			t.Errorf("%s: block rows %v %+v, want one active", a, err, rows)
		}
		k := 0
		for _, e := range audit {
			k += strings.Count(e.Subject, cidr)
		}
		if k != 1 {
			t.Errorf("%s: %d block audit entries, want 1", a, k)
		}
		if m := hook.count(a); m != 1 {
			t.Errorf("%s: named in %d webhook messages, want 1", a, m)
		}
	}
}
