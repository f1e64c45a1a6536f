package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/internal/config"
	fglambda "github.com/flowguard/flowguard/internal/lambda"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/respond/notify"
)

// allLambdaStatements are the function's statements with every trigger
// on: the deploy files must grant these, by Sid, with these actions.
func allLambdaStatements() map[string]respond.PolicyStatement {
	out := map[string]respond.PolicyStatement{}
	for _, s := range fglambda.Statements(fglambda.PolicyOptions{Table: "t", Buckets: []string{"b"},
		Queue: "arn:aws:sqs:us-east-1:1:q", ScanLogGroups: []string{"g"}, ConfigParameter: "/flowguard/config"}) {
		out[s.Sid] = s
	}
	return out
}

// tfFile is one parsed .tf file.
type tfFile struct {
	name string
	body *hclsyntax.Body
	src  []byte
}

func parseTerraform(t *testing.T, dir string) []tfFile {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.tf"))
	if len(paths) == 0 {
		t.Fatalf("no .tf files in %s", dir)
	}
	p := hclparse.NewParser()
	var out []tfFile
	for _, path := range paths {
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", path, diags.Error())
		}
		out = append(out, tfFile{name: path, body: f.Body.(*hclsyntax.Body), src: f.Bytes})
	}
	return out
}

// blocks returns the blocks of a type (and first label) across files.
func blocks(fs []tfFile, typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, f := range fs {
		for _, b := range f.body.Blocks {
			if b.Type == typ && (len(labels) == 0 || slices.Equal(b.Labels[:min(len(labels), len(b.Labels))], labels)) {
				out = append(out, b)
			}
		}
	}
	return out
}

// literal evaluates an attribute without variables (a literal string or
// list), or returns "" and nil.
func literal(b *hclsyntax.Body, name string) (string, []string) {
	a, ok := b.Attributes[name]
	if !ok {
		return "", nil
	}
	v, diags := a.Expr.Value(&hcl.EvalContext{})
	if diags.HasErrors() {
		return "", nil
	}
	if v.Type().IsPrimitiveType() {
		return v.AsString(), nil
	}
	var list []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		list = append(list, e.AsString())
	}
	return "", list
}

// exprText is an attribute's source text.
func exprText(f []byte, b *hclsyntax.Body, name string) string {
	a, ok := b.Attributes[name]
	if !ok {
		return ""
	}
	r := a.Expr.Range()
	return string(f[r.Start.Byte:r.End.Byte])
}

// TestTerraformModule checks deploy/terraform offline: it parses, holds
// the resources of a Lambda deployment, documents its variables and
// outputs, and its role grants exactly the statements flowguard iam-policy
// prints for the function (and the responders' from iam-policy --config).
func TestTerraformModule(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy", "terraform")
	fs := parseTerraform(t, dir)
	resource := func(typ, name string) *hclsyntax.Body {
		t.Helper()
		bs := blocks(fs, "resource", typ, name)
		if len(bs) != 1 {
			t.Fatalf("resource %s.%s: %d, want 1", typ, name, len(bs))
		}
		return bs[0].Body
	}
	fn := resource("aws_lambda_function", "flowguard")
	if rt, _ := literal(fn, "runtime"); rt != "provided.al2023" {
		t.Errorf("runtime %q", rt)
	}
	if h, _ := literal(fn, "handler"); h != "bootstrap" {
		t.Errorf("handler %q", h)
	}
	table := resource("aws_dynamodb_table", "state")
	ttl := false
	for _, b := range table.Blocks {
		if b.Type == "ttl" {
			n, _ := literal(b.Body, "attribute_name")
			ttl = n == "ttl" && exprText(srcOf(fs, "main.tf"), b.Body, "enabled") == "true"
		}
	}
	if !ttl {
		t.Error("the DynamoDB table has no TTL on the attribute ttl")
	}
	if _, types := literal(resource("aws_lambda_event_source_mapping", "events"), "function_response_types"); !slices.Contains(types, "ReportBatchItemFailures") {
		t.Error("the SQS mapping does not report partial batch failures")
	}
	if !strings.Contains(exprText(srcOf(fs, "main.tf"), resource("aws_sqs_queue", "events"), "redrive_policy"), "dead_letters") {
		t.Error("the queue has no dead-letter queue")
	}
	if p, _ := literal(resource("aws_sns_topic_subscription", "email"), "protocol"); p != "email" {
		t.Error("no e-mail subscription")
	}
	if m, _ := literal(resource("aws_cloudwatch_metric_alarm", "errors"), "metric_name"); m != "Errors" {
		t.Error("no alarm on the function's errors")
	}
	for _, r := range [][2]string{{"aws_cloudwatch_log_subscription_filter", "flow_logs"}, {"aws_s3_bucket_notification", "flow_logs"},
		{"aws_sqs_queue", "dead_letters"}, {"aws_cloudwatch_event_rule", "schedule"}, {"aws_ssm_parameter", "config"},
		{"aws_iam_role", "flowguard"}, {"aws_iam_role_policy", "flowguard"}, {"aws_sns_topic", "alerts"}} {
		resource(r[0], r[1])
	}
	for _, kind := range []string{"variable", "output"} {
		for _, b := range blocks(fs, kind) {
			if d, _ := literal(b.Body, "description"); d == "" {
				t.Errorf("%s %q has no description", kind, b.Labels[0])
			}
		}
	}

	// The role's statements.
	doc := blocks(fs, "data", "aws_iam_policy_document", "flowguard")
	if len(doc) != 1 {
		t.Fatal("no aws_iam_policy_document.flowguard")
	}
	if !strings.Contains(exprText(srcOf(fs, "iam.tf"), doc[0].Body, "source_policy_documents"), "var.responder_policy_json") {
		t.Error("the role does not take the responders' statements of iam-policy --config")
	}
	got := map[string]respond.PolicyStatement{}
	var resources = map[string]string{}
	for _, b := range doc[0].Body.Blocks {
		body := b.Body
		if b.Type == "dynamic" {
			for _, c := range b.Body.Blocks {
				if c.Type == "content" {
					body = c.Body
				}
			}
		}
		sid, _ := literal(body, "sid")
		effect, _ := literal(body, "effect")
		_, actions := literal(body, "actions")
		got[sid] = respond.PolicyStatement{Sid: sid, Effect: effect, Action: actions}
		resources[sid] = exprText(srcOf(fs, "iam.tf"), body, "resources")
	}
	want := allLambdaStatements()
	for sid, w := range want {
		g, ok := got[sid]
		if !ok {
			t.Errorf("the role lacks statement %s (%v)", sid, w.Action)
			continue
		}
		if g.Effect != w.Effect || !slices.Equal(g.Action, w.Action) {
			t.Errorf("statement %s: %s %v, iam-policy prints %s %v", sid, g.Effect, g.Action, w.Effect, w.Action)
		}
	}
	for sid := range got {
		if _, ok := want[sid]; !ok {
			t.Errorf("the role has statement %s, which iam-policy does not print", sid)
		}
	}
	for sid, ref := range map[string]string{"FlowguardState": "aws_dynamodb_table.state.arn", "FlowguardConsumeQueue": "aws_sqs_queue.events[0].arn",
		"FlowguardReadConfig": "aws_ssm_parameter.config.arn", "FlowguardFunctionLogs": "aws_cloudwatch_log_group.function.arn"} {
		if !strings.Contains(resources[sid], ref) {
			t.Errorf("statement %s is on %s, want %s", sid, resources[sid], ref)
		}
	}

	// The example root module passes iam-policy's output for its
	// configuration.
	ex := parseTerraform(t, filepath.Join(dir, "example"))
	mod := blocks(ex, "module", "flowguard")
	if len(mod) != 1 {
		t.Fatal("the example has no module flowguard")
	}
	if s, _ := literal(mod[0].Body, "source"); s != "../" {
		t.Errorf("the example's module source %q", s)
	}
	checkResponderPolicy(t, filepath.Join(dir, "example", "flowguard.yaml"), filepath.Join(dir, "example", "iam-policy.json"))
}

func srcOf(fs []tfFile, base string) []byte {
	for _, f := range fs {
		if filepath.Base(f.name) == base {
			return f.src
		}
	}
	return nil
}

// checkResponderPolicy checks that a deploy's iam-policy.json is what
// flowguard iam-policy --config prints for its configuration.
func checkResponderPolicy(t *testing.T, cfgPath, policyPath string) {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	resp, n := &respond.Config{}, &notify.Config{}
	if cfg.Response != nil {
		resp = cfg.Response
	}
	if cfg.Notify != nil {
		n = cfg.Notify
	}
	want, _ := json.Marshal(iamPolicy(resp, n, ""))
	b, err := os.ReadFile(policyPath)
	if err != nil {
		t.Fatal(err)
	}
	var got respond.PolicyDocument
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", policyPath, err)
	}
	if g, _ := json.Marshal(got); string(g) != string(want) {
		t.Errorf("%s is not what iam-policy --config %s prints:\n%s\nwant\n%s", policyPath, cfgPath, g, want)
	}
}

// TestCloudFormationTemplate checks deploy/cloudformation/flowguard.yaml:
// it parses, holds the same resources as the Terraform module, and its
// role grants exactly the statements iam-policy prints for the function.
func TestCloudFormationTemplate(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "cloudformation", "flowguard.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		Parameters map[string]struct {
			Type        string `yaml:"Type"`
			Description string `yaml:"Description"`
		} `yaml:"Parameters"`
		Resources map[string]struct {
			Type       string         `yaml:"Type"`
			Properties map[string]any `yaml:"Properties"`
		} `yaml:"Resources"`
		Outputs map[string]any `yaml:"Outputs"`
	}
	if err := yaml.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	for name, p := range tpl.Parameters {
		if p.Description == "" || p.Type == "" {
			t.Errorf("parameter %s lacks a type or description", name)
		}
	}
	byType := map[string][]string{}
	for name, r := range tpl.Resources {
		byType[r.Type] = append(byType[r.Type], name)
	}
	for _, typ := range []string{"AWS::Lambda::Function", "AWS::IAM::Role", "AWS::DynamoDB::Table", "AWS::Logs::SubscriptionFilter",
		"AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::Lambda::EventSourceMapping", "AWS::SNS::Topic", "AWS::SNS::Subscription",
		"AWS::Events::Rule", "AWS::SSM::Parameter", "AWS::CloudWatch::Alarm", "AWS::Logs::LogGroup", "AWS::Lambda::Permission"} {
		if len(byType[typ]) == 0 {
			t.Errorf("no %s", typ)
		}
	}
	fn := tpl.Resources[first(byType["AWS::Lambda::Function"])].Properties
	if fn["Runtime"] != "provided.al2023" || fn["Handler"] != "bootstrap" {
		t.Errorf("function runtime %v handler %v", fn["Runtime"], fn["Handler"])
	}
	table := tpl.Resources[first(byType["AWS::DynamoDB::Table"])].Properties
	if ttl, _ := table["TimeToLiveSpecification"].(map[string]any); ttl["AttributeName"] != "ttl" || ttl["Enabled"] != true {
		t.Errorf("table TTL %v", table["TimeToLiveSpecification"])
	}
	esm := tpl.Resources[first(byType["AWS::Lambda::EventSourceMapping"])].Properties
	if !slices.Contains(asStrings(esm["FunctionResponseTypes"]), "ReportBatchItemFailures") {
		t.Error("the SQS mapping does not report partial batch failures")
	}
	role := tpl.Resources[first(byType["AWS::IAM::Role"])].Properties
	got := map[string]respond.PolicyStatement{}
	for _, p := range role["Policies"].([]any) {
		doc := p.(map[string]any)["PolicyDocument"].(map[string]any)
		for _, s := range doc["Statement"].([]any) {
			st := s.(map[string]any)
			if cond, ok := st["Fn::If"].([]any); ok { // a statement of an optional trigger
				st = cond[1].(map[string]any)
			}
			sid, _ := st["Sid"].(string)
			effect, _ := st["Effect"].(string)
			got[sid] = respond.PolicyStatement{Sid: sid, Effect: effect, Action: asStrings(st["Action"])}
		}
	}
	want := allLambdaStatements()
	for sid, w := range want {
		g, ok := got[sid]
		if !ok || g.Effect != w.Effect || !slices.Equal(g.Action, w.Action) {
			t.Errorf("statement %s: %+v, iam-policy prints %+v", sid, g, w)
		}
	}
	for sid := range got {
		if _, ok := want[sid]; !ok {
			t.Errorf("the role has statement %s, which iam-policy does not print", sid)
		}
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func asStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		out = append(out, x)
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
