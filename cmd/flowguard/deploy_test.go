package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/respond/notify"
)

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
	// The statements, evaluated for a deployment, are what iam-policy
	// prints for it: Sids, actions and resources.
	sameStatements(t, "deploy/terraform", terraformStatements(t, fs), iamPolicyStatements(t))

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
			Default     string `yaml:"Default"`
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
	// The role's statements, rendered for a deployment, are what
	// iam-policy prints for it: Sids, actions and resources.
	params := map[string]string{"FunctionName": deployName, "FlowLogBucket": deployBucket, "FlowLogGroup": deployScan,
		"ScanTargets": "logs:" + deployScan, "ScanLogGroup": deployScan}
	for name, p := range tpl.Parameters {
		if _, set := params[name]; !set {
			params[name] = p.Default
		}
	}
	sameStatements(t, "deploy/cloudformation/flowguard.yaml", cfnStatements(t, params, tpl.Resources), iamPolicyStatements(t))

	// The responders' statements (iam-policy --config) reach the role as
	// a managed policy named by a parameter.
	role := tpl.Resources[first(byType["AWS::IAM::Role"])].Properties
	if m, _ := role["ManagedPolicyArns"].(map[string]any); fmt.Sprint(m["Fn::If"]) != "[HasResponderPolicy [map[Ref:ResponderPolicyArn]] map[Ref:AWS::NoValue]]" {
		t.Errorf("the role does not take the responders' policy (parameter ResponderPolicyArn): ManagedPolicyArns %v", role["ManagedPolicyArns"])
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

// The deployment the IAM checks render the deploy files for: every
// trigger on, so that every statement is granted.
const (
	deployAccount = "123456789012"
	deployRegion  = "us-east-1"
	deployName    = "flowguard"
	deployBucket  = "flowlogs-bucket"
	deployScan    = "/vpc/flow-logs"
)

// iamPolicyStatements runs "flowguard iam-policy" for that deployment
// (the function's statements only: no --config) and returns what it
// prints, by Sid.
func iamPolicyStatements(t *testing.T) map[string]respond.PolicyStatement {
	t.Helper()
	cmd := newIAMPolicyCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--account", deployAccount, "--lambda-region", deployRegion, "--lambda-table", deployName,
		"--lambda-function", deployName, "--lambda-bucket", deployBucket,
		"--lambda-queue", "arn:aws:sqs:" + deployRegion + ":" + deployAccount + ":" + deployName + "-events",
		"--lambda-scan-log-group", deployScan, "--lambda-config-parameter", "/" + deployName + "/config"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("iam-policy: %v", err)
	}
	var doc respond.PolicyDocument
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("iam-policy printed %s: %v", out.Bytes(), err)
	}
	bySid := map[string]respond.PolicyStatement{}
	for _, s := range doc.Statement {
		bySid[s.Sid] = s
	}
	return bySid
}

// sameStatements reports each difference between the statements a deploy
// file grants and those iam-policy prints: Sid, effect, actions and
// resources.
func sameStatements(t *testing.T, file string, got, want map[string]respond.PolicyStatement) {
	t.Helper()
	for sid, w := range want {
		g, ok := got[sid]
		switch {
		case !ok:
			t.Errorf("%s: the role lacks statement %s (%v on %v)", file, sid, w.Action, w.Resource)
		case g.Effect != w.Effect || !slices.Equal(g.Action, w.Action) || !slices.Equal(g.Resource, w.Resource):
			t.Errorf("%s: statement %s:\n  %s %v on %v\niam-policy prints\n  %s %v on %v", file, sid, g.Effect, g.Action, g.Resource, w.Effect, w.Action, w.Resource)
		}
	}
	for sid := range got {
		if _, ok := want[sid]; !ok {
			t.Errorf("%s: the role has statement %s, which iam-policy does not print", file, sid)
		}
	}
}

// terraformStatements evaluates the module's aws_iam_policy_document
// "flowguard" for the deployment: the variables set as a root module
// would, the other variables' defaults, the data sources' answers, the
// locals, and the resources' names and ARNs in the provider's documented
// formats.
func terraformStatements(t *testing.T, fs []tfFile) map[string]respond.PolicyStatement {
	t.Helper()
	vars := map[string]cty.Value{
		"name": cty.StringVal(deployName), "flow_log_bucket": cty.StringVal(deployBucket), "flow_log_group": cty.StringVal(deployScan),
		"scan_targets":    cty.ListVal([]cty.Value{cty.StringVal("logs:" + deployScan)}),
		"scan_log_groups": cty.ListVal([]cty.Value{cty.StringVal(deployScan)}),
	}
	for _, b := range blocks(fs, "variable") {
		if _, set := vars[b.Labels[0]]; set {
			continue
		}
		vars[b.Labels[0]] = cty.DynamicVal
		if a, ok := b.Body.Attributes["default"]; ok {
			if v, diags := a.Expr.Value(nil); !diags.HasErrors() {
				vars[b.Labels[0]] = v
			}
		}
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var": cty.ObjectVal(vars),
			"data": cty.ObjectVal(map[string]cty.Value{
				"aws_region":          cty.ObjectVal(map[string]cty.Value{"current": cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(deployRegion)})}),
				"aws_caller_identity": cty.ObjectVal(map[string]cty.Value{"current": cty.ObjectVal(map[string]cty.Value{"account_id": cty.StringVal(deployAccount)})}),
				"aws_partition":       cty.ObjectVal(map[string]cty.Value{"current": cty.ObjectVal(map[string]cty.Value{"partition": cty.StringVal("aws")})}),
			}),
		},
		Functions: map[string]function.Function{"distinct": stdlib.DistinctFunc, "compact": stdlib.CompactFunc,
			"concat": stdlib.ConcatFunc, "length": stdlib.LengthFunc},
	}
	eval := func(e hcl.Expression) cty.Value {
		t.Helper()
		v, diags := e.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("terraform: %s", diags.Error())
		}
		return v
	}
	locals := map[string]cty.Value{}
	for range 2 { // locals may use locals
		for _, b := range blocks(fs, "locals") {
			for name, a := range b.Body.Attributes {
				if v, diags := a.Expr.Value(ctx); !diags.HasErrors() {
					locals[name] = v
				}
			}
		}
		ctx.Variables["local"] = cty.ObjectVal(locals)
	}
	// The resources the statements name: their name attribute as the
	// module sets it, and the ARN the provider gives for that name.
	arns := map[string]func(name string) string{
		"aws_cloudwatch_log_group": func(n string) string { // the provider drops the API's ":*"
			return "arn:aws:logs:" + deployRegion + ":" + deployAccount + ":log-group:" + n
		},
		"aws_dynamodb_table": func(n string) string { return "arn:aws:dynamodb:" + deployRegion + ":" + deployAccount + ":table/" + n },
		"aws_sqs_queue":      func(n string) string { return "arn:aws:sqs:" + deployRegion + ":" + deployAccount + ":" + n },
		"aws_ssm_parameter": func(n string) string {
			return "arn:aws:ssm:" + deployRegion + ":" + deployAccount + ":parameter/" + strings.TrimPrefix(n, "/")
		},
	}
	for typ, arn := range arns {
		objs := map[string]cty.Value{}
		for _, b := range blocks(fs, "resource", typ) {
			name := eval(b.Body.Attributes["name"].Expr).AsString()
			obj := cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name), "arn": cty.StringVal(arn(name))})
			if _, counted := b.Body.Attributes["count"]; counted {
				obj = cty.TupleVal([]cty.Value{obj})
			}
			objs[b.Labels[1]] = obj
		}
		ctx.Variables[typ] = cty.ObjectVal(objs)
	}
	doc := blocks(fs, "data", "aws_iam_policy_document", "flowguard")
	if len(doc) != 1 {
		t.Fatal("no aws_iam_policy_document.flowguard")
	}
	out := map[string]respond.PolicyStatement{}
	for _, b := range doc[0].Body.Blocks {
		body := b.Body
		if b.Type == "dynamic" {
			if eval(b.Body.Attributes["for_each"].Expr).LengthInt() == 0 {
				continue
			}
			for _, c := range b.Body.Blocks {
				if c.Type == "content" {
					body = c.Body
				}
			}
		}
		var st respond.PolicyStatement
		st.Sid = eval(body.Attributes["sid"].Expr).AsString()
		st.Effect = eval(body.Attributes["effect"].Expr).AsString()
		for _, f := range []struct {
			name string
			dst  *[]string
		}{{"actions", &st.Action}, {"resources", &st.Resource}} {
			for it := eval(body.Attributes[f.name].Expr).ElementIterator(); it.Next(); {
				_, e := it.Element()
				*f.dst = append(*f.dst, e.AsString())
			}
		}
		out[st.Sid] = st
	}
	return out
}

// cfnStatements renders the template's role policy for the deployment:
// Ref of a parameter is its value, Fn::Sub replaces ${Param},
// ${AWS::Partition|Region|AccountId}, ${Resource} (its Ref) and
// ${Resource.Arn}, and Fn::GetAtt [R, Arn] is the ARN CloudFormation
// documents for R's type. Fn::If takes the true branch: every trigger is
// on.
func cfnStatements(t *testing.T, params map[string]string, resources map[string]struct {
	Type       string         `yaml:"Type"`
	Properties map[string]any `yaml:"Properties"`
}) map[string]respond.PolicyStatement {
	t.Helper()
	pseudo := map[string]string{"AWS::Partition": "aws", "AWS::Region": deployRegion, "AWS::AccountId": deployAccount}
	var render func(v any) any
	ref := func(name string) string {
		if v, ok := pseudo[name]; ok {
			return v
		}
		if v, ok := params[name]; ok {
			return v
		}
		r, ok := resources[name]
		if !ok {
			t.Fatalf("cloudformation: Ref to %s, which is neither a parameter nor a resource", name)
		}
		for _, p := range []string{"LogGroupName", "TableName", "QueueName", "Name"} {
			if v, ok := r.Properties[p]; ok {
				s, _ := render(v).(string)
				if r.Type == "AWS::SQS::Queue" { // Ref of a queue is its URL
					return "https://sqs." + deployRegion + ".amazonaws.com/" + deployAccount + "/" + s
				}
				return s
			}
		}
		t.Fatalf("cloudformation: Ref to resource %s (%s), whose name the test does not know", name, r.Type)
		return ""
	}
	getAtt := func(name, attr string) string {
		r, ok := resources[name]
		if !ok || attr != "Arn" {
			t.Fatalf("cloudformation: Fn::GetAtt %s.%s", name, attr)
		}
		switch r.Type {
		case "AWS::Logs::LogGroup": // documented with the ":*" suffix
			return "arn:aws:logs:" + deployRegion + ":" + deployAccount + ":log-group:" + ref(name) + ":*"
		case "AWS::DynamoDB::Table":
			return "arn:aws:dynamodb:" + deployRegion + ":" + deployAccount + ":table/" + ref(name)
		case "AWS::SQS::Queue":
			s, _ := render(r.Properties["QueueName"]).(string)
			return "arn:aws:sqs:" + deployRegion + ":" + deployAccount + ":" + s
		}
		t.Fatalf("cloudformation: Fn::GetAtt %s.Arn of a %s", name, r.Type)
		return ""
	}
	sub := regexp.MustCompile(`\$\{([^}]+)\}`)
	render = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 1 {
				for k, arg := range x {
					switch k {
					case "Ref":
						return ref(arg.(string))
					case "Fn::GetAtt":
						a := asStrings(arg)
						return getAtt(a[0], a[1])
					case "Fn::Sub":
						return sub.ReplaceAllStringFunc(arg.(string), func(m string) string {
							name := m[2 : len(m)-1]
							if r, attr, ok := strings.Cut(name, "."); ok {
								return getAtt(r, attr)
							}
							return ref(name)
						})
					case "Fn::If":
						return render(arg.([]any)[1])
					}
				}
			}
			out := map[string]any{}
			for k, e := range x {
				out[k] = render(e)
			}
			return out
		case []any:
			var out []any
			for _, e := range x {
				out = append(out, render(e))
			}
			return out
		}
		return v
	}
	var role map[string]any
	for _, r := range resources {
		if r.Type == "AWS::IAM::Role" {
			role = r.Properties
		}
	}
	out := map[string]respond.PolicyStatement{}
	for _, p := range role["Policies"].([]any) {
		doc := render(p.(map[string]any)["PolicyDocument"]).(map[string]any)
		for _, s := range doc["Statement"].([]any) {
			st := s.(map[string]any)
			sid, _ := st["Sid"].(string)
			effect, _ := st["Effect"].(string)
			out[sid] = respond.PolicyStatement{Sid: sid, Effect: effect, Action: asStrings(st["Action"]), Resource: asStrings(st["Resource"])}
		}
	}
	return out
}
