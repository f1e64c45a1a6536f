package alarm

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func importFile(t *testing.T, path string, params map[string]string) (*Config, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return ImportCloudFormation(f, params)
}

func TestImportCloudFormationYAML(t *testing.T) {
	cfg, err := importFile(t, "testdata/cfn/vpc-reject-alarm.yaml", map[string]string{
		"VpcId": "vpc-0abc", "NotificationEmail": "sec@example.com",
		"AWS::Region": "eu-west-1", "AWS::AccountId": "111122223333",
	})
	if err != nil {
		t.Fatal(err)
	}
	topic := "arn:aws:sns:eu-west-1:111122223333:prod-security-alerts"
	zero := 0.0
	wantFilters := []MetricFilter{
		{
			Name: "prod-rejected-connections", LogGroup: "/vpc/vpc-0abc/flow-logs",
			Pattern:    `[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, windowstart, windowend, action="REJECT", flowlogstatus]`,
			MetricName: "RejectedConnections", Namespace: "VPCFlowLogs/prod", Value: "1", DefaultValue: &zero,
		},
		{
			Name: "SshRejectsBySource", LogGroup: "/vpc/vpc-0abc/flow-logs",
			Pattern:    `[version, account, eni, source, destination, srcport, destport="22", protocol="6", packets, bytes, windowstart, windowend, action="REJECT", flowlogstatus]`,
			MetricName: "SshRejectedBytes", Namespace: "VPCFlowLogs/prod", Value: "$bytes", Unit: "Bytes",
			Dimensions: map[string]string{"Source": "$source"},
		},
	}
	if !reflect.DeepEqual(cfg.MetricFilters, wantFilters) {
		t.Errorf("filters\n got %+v\nwant %+v", cfg.MetricFilters, wantFilters)
	}
	wantAlarms := []Alarm{
		{
			Name: "prod-vpc-rejected-connections", Description: "Many rejected connections in the VPC",
			Namespace: "VPCFlowLogs/prod", MetricName: "RejectedConnections", Statistic: "Sum",
			Period: 300, EvaluationPeriods: 3, DatapointsToAlarm: 2, Threshold: 100,
			ComparisonOperator: GreaterThanOrEqualToThreshold, TreatMissingData: MissingNotBreaching,
			AlarmActions: []string{topic}, OKActions: []string{topic},
		},
		{
			Name: "SshBigRejectsAlarm", Namespace: "VPCFlowLogs/prod", MetricName: "SshRejectedBytes",
			Dimensions: map[string]string{"Source": "198.51.100.7"}, ExtendedStatistic: "p99",
			Period: 60, EvaluationPeriods: 1, Threshold: 1e6, ComparisonOperator: GreaterThanThreshold,
			EvaluateLowSampleCountPercentile: "ignore",
		},
	}
	if !reflect.DeepEqual(cfg.Alarms, wantAlarms) {
		t.Errorf("alarms\n got %+v\nwant %+v", cfg.Alarms, wantAlarms)
	}
	wantTopics := map[string]Topic{topic: {Name: "prod-security-alerts", Subscriptions: []Subscription{
		{Protocol: "email", Endpoint: "sec@example.com"}, {Protocol: "sms", Endpoint: "+15555550100"},
	}}}
	if !reflect.DeepEqual(cfg.Topics, wantTopics) {
		t.Errorf("topics\n got %+v\nwant %+v", cfg.Topics, wantTopics)
	}
	warnings := strings.Join(cfg.Warnings, "\n")
	for _, w := range []string{"CpuAlarm skipped: no metric filter", "DevOnlyAlarm skipped: condition IsDev is false"} {
		if !strings.Contains(warnings, w) {
			t.Errorf("warnings %q lack %q", warnings, w)
		}
	}

	// The section marshals to YAML under `alarms:` and reads back the same.
	out, err := cfg.MarshalSection()
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Alarms Config `yaml:"alarms"`
	}
	if err := yaml.Unmarshal(out, &back); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	back.Alarms.Warnings = cfg.Warnings
	if !reflect.DeepEqual(&back.Alarms, cfg) {
		t.Errorf("round trip differs:\n%s", out)
	}
	if !strings.HasPrefix(string(out), "alarms:\n") {
		t.Errorf("section does not start with alarms:\n%s", out)
	}
}

func TestImportCloudFormationDevEnvironment(t *testing.T) {
	cfg, err := importFile(t, "testdata/cfn/vpc-reject-alarm.yaml", map[string]string{
		"VpcId": "vpc-0abc", "NotificationEmail": "sec@example.com", "Environment": "dev", "RejectThreshold": "7",
	})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Alarm{}
	for _, a := range cfg.Alarms {
		byName[a.Name] = a
	}
	a, ok := byName["dev-vpc-rejected-connections"]
	if !ok {
		t.Fatalf("alarms %+v", cfg.Alarms)
	}
	// dev: Period 60 (Fn::If), 1 of 1 (FindInMap), threshold from the
	// parameter, and the Fn::If in OKActions now adds the topic a second time.
	// Without region and account the topic is named by its logical id.
	if a.Period != 60 || a.EvaluationPeriods != 1 || a.DatapointsToAlarm != 1 || a.Threshold != 7 {
		t.Errorf("dev alarm %+v", a)
	}
	if !reflect.DeepEqual(a.OKActions, []string{"cfn:SecurityAlertsTopic", "cfn:SecurityAlertsTopic"}) {
		t.Errorf("OKActions %v", a.OKActions)
	}
	if _, ok := byName["DevOnlyAlarm"]; !ok {
		t.Error("the IsDev alarm was not imported")
	}
}

func TestImportCloudFormationJSON(t *testing.T) {
	cfg, err := importFile(t, "testdata/cfn/vpc-reject-alarm.json", map[string]string{"Threshold": "5"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.MetricFilters) != 1 || cfg.MetricFilters[0].Name != "RejectFilter" || cfg.MetricFilters[0].LogGroup != "vpc-flow-logs" ||
		cfg.MetricFilters[0].DefaultValue == nil || *cfg.MetricFilters[0].DefaultValue != 0 {
		t.Errorf("filters %+v", cfg.MetricFilters)
	}
	if len(cfg.Alarms) != 1 {
		t.Fatalf("alarms %+v", cfg.Alarms)
	}
	a := cfg.Alarms[0]
	if a.Name != "vpc-flow-logs-rejects" || a.Period != 60 || a.Threshold != 5 ||
		!reflect.DeepEqual(a.AlarmActions, []string{"cfn:Topic", "cfn:Topic"}) {
		t.Errorf("alarm %+v", a)
	}

	// The imported configuration runs: seven rejects in a minute alarm.
	eng, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 7; i++ {
		eng.Observe(t0.Add(time.Duration(i)*time.Second), []byte(rejectLine))
	}
	changes := eng.Evaluate(t0.Add(time.Minute))
	if len(changes) != 1 || changes[0].To != StateAlarm || !reflect.DeepEqual(changes[0].Actions, []string{"cfn:Topic", "cfn:Topic"}) {
		t.Errorf("changes %+v", changes)
	}
}

func TestImportCloudFormationErrors(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		params map[string]string
		src    string
		want   []string
	}{
		{name: "parameter without value", path: "testdata/cfn/vpc-reject-alarm.json",
			want: []string{"resource RejectAlarm property Threshold", "!Ref Threshold", "no Default"}},
		{name: "missing email", path: "testdata/cfn/vpc-reject-alarm.yaml", params: map[string]string{"VpcId": "v"},
			want: []string{"resource SecurityAlertsTopic property Subscription", "!Ref NotificationEmail"}},
		{name: "unknown ref", src: "Resources:\n  A:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n      Threshold: !Ref Nope\n",
			want: []string{"resource A property Threshold", "no such parameter or resource"}},
		{name: "not a number", src: "Resources:\n  A:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n      Namespace: N\n      MetricName: M\n      Period: !GetAtt B.Arn\n      Threshold: 1\n  B:\n    Type: AWS::SNS::Topic\n",
			want: []string{"resource A property Period", "cfn:B.Arn is not an integer"}},
		{name: "bad pattern", src: "Resources:\n  F:\n    Type: AWS::Logs::MetricFilter\n    Properties:\n      FilterPattern: '[a, b'\n      LogGroupName: g\n      MetricTransformations:\n        - {MetricName: m, MetricNamespace: n, MetricValue: '1'}\n",
			want: []string{"resource F", "column 6"}},
		{name: "anomaly band", src: "Resources:\n  F:\n    Type: AWS::Logs::MetricFilter\n    Properties:\n      FilterPattern: ''\n      LogGroupName: g\n      MetricTransformations:\n        - {MetricName: m, MetricNamespace: n, MetricValue: '1'}\n  A:\n    Type: AWS::CloudWatch::Alarm\n    Properties: {Namespace: n, MetricName: m, Statistic: Sum, Period: 60, EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: GreaterThanUpperThreshold}\n",
			want: []string{"resource A", "anomaly detection band"}},
		{name: "import value", src: "Resources:\n  A:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n      Threshold: !ImportValue x\n",
			want: []string{"resource A property Threshold", "Fn::ImportValue cannot be resolved"}},
		{name: "no resources", src: "Parameters: {}\n", want: []string{"no Resources"}},
		{name: "not yaml", src: "Resources: [\n", want: []string{"cannot parse template"}},
		{name: "billion laughs", src: "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\nResources: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n", want: []string{"more than"}},
		{name: "duplicate key", src: "Resources:\n  A: {}\n  A: {}\n", want: []string{"given twice"}},
	}
	for _, tt := range tests {
		var err error
		if tt.path != "" {
			_, err = importFile(t, tt.path, tt.params)
		} else {
			_, err = ImportCloudFormation(strings.NewReader(tt.src), tt.params)
		}
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tt.name, err, w)
			}
		}
	}
}

func TestFnSub(t *testing.T) {
	tpl := &template{
		params:     map[string]string{"Env": "prod", "AWS::Region": "us-east-2"},
		parameters: map[string]any{"Env": map[string]any{"Type": "String"}},
		resources:  map[string]any{"Bucket": map[string]any{"Type": "AWS::S3::Bucket"}},
		conds:      map[string]*bool{}, inCond: map[string]bool{},
	}
	tests := []struct {
		arg  any
		want string
	}{
		{"${Env}-x", "prod-x"},
		{"${!Literal} ${Env}", "${Literal} prod"},
		{"arn:${AWS::Partition}:s3:::${Bucket}/${AWS::Region}", "arn:aws:s3:::cfn:Bucket/us-east-2"},
		{"${Bucket.Arn}", "cfn:Bucket.Arn"},
		{[]any{"${A}-${Env}", map[string]any{"A": map[string]any{"Fn::Join": []any{"+", []any{"a", "b"}}}}}, "a+b-prod"},
	}
	for _, tt := range tests {
		got, err := tpl.sub(site{"R", "P"}, tt.arg, 0)
		if err != nil || got != tt.want {
			t.Errorf("Fn::Sub %v = %v, %v; want %q", tt.arg, got, err, tt.want)
		}
	}
}

func FuzzImportCloudFormation(f *testing.F) {
	for _, p := range []string{"testdata/cfn/vpc-reject-alarm.yaml", "testdata/cfn/vpc-reject-alarm.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("Resources:\n  A: !If [C, !Ref A, !Sub '${A}']\nConditions:\n  C: !Condition C\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := ImportCloudFormation(strings.NewReader(src), map[string]string{"Threshold": "3", "NotificationEmail": "a@b", "VpcId": "v"})
		if err == nil {
			if _, err := NewEngine(cfg); err != nil {
				t.Fatalf("imported configuration does not build: %v", err)
			}
		}
	})
}
