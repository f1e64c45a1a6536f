package source

import (
	"strings"
	"testing"
)

// TestStreamSourceConfigErrors checks that each source type refuses a bad
// entry with a message naming the source and the key.
func TestStreamSourceConfigErrors(t *testing.T) {
	for _, tc := range []struct{ cfg, want string }{
		{"name: b\ntype: s3\n", "sources.b: an s3 source needs url: s3://bucket/prefix"},
		{"name: b\ntype: s3\nurl: s3://\n", "expected s3://bucket/prefix"},
		{"name: b\ntype: s3\nurl: s3://x/\nstart: yesterday\n", `start is oldest or a duration such as 24h, not "yesterday"`},
		{"name: b\ntype: s3\nurl: s3://x/\nvisibility_timeout: 13h\n", "visibility_timeout is at most 12h"},
		{"name: b\ntype: s3\nurl: s3://x/\nwait_time: 30s\n", "wait_time is at most 20s"},
		{"name: b\ntype: s3\nurl: s3://x/\nsqs_queue: q\n", `line 4, column 1: sources.b: unknown key "sqs_queue"`},
		{"name: k\ntype: kinesis\n", "needs stream"},
		{"name: k\ntype: kinesis\nstream: s\nstart: now\n", `start is oldest or latest, not "now"`},
		{"name: k\ntype: kinesis\nstream: s\npoll_interval: soon\n", "sources.k"},
		{"name: f\ntype: firehose\naccess_key_file: k\n", "needs listen"},
		{"name: f\ntype: firehose\nlisten: :1\n", "needs access_key_file"},
		{"name: f\ntype: firehose\nlisten: :1\naccess_key_file: k\ntls_cert_file: c\n", "tls_cert_file and tls_key_file go together"},
		{"name: f\ntype: firehose\nlisten: :1\naccess_key_file: k\nformat: ${a} ${a}\n", "sources.f: format"},
		{"name: q\ntype: kafka\ntopics: [t]\n", "needs brokers and topics"},
		{"name: q\ntype: kafka\nbrokers: [b:9092]\ntopics: [t]\nstart: middle\n", `start is oldest or latest, not "middle"`},
		{"name: q\ntype: kafka\nbrokers: [b:9092]\ntopics: [t]\nsasl_mechanism: GSSAPI\n", `sasl_mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, not "GSSAPI"`},
		{"name: q\ntype: kafka\nbrokers: [b:9092]\ntopics: [t]\nsasl_mechanism: PLAIN\nsasl_username: u\n", "needs sasl_username and sasl_password_file"},
		{"name: c\ntype: cloudwatch\nlog_groups: g\n", "sources.c"},
	} {
		_, err := NewLive(liveConfig(t, tc.cfg), LiveDeps{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.cfg, err, tc.want)
		}
	}
	for _, ok := range []string{
		"name: b\ntype: s3\nurl: s3://flow-logs/AWSLogs/\nsqs_queue_url: https://sqs.us-east-1.amazonaws.com/1/q\nstart: oldest\n",
		"name: k\ntype: kinesis\nstream: arn:aws:kinesis:us-east-1:123456789012:stream/s\nstart: latest\n",
		"name: f\ntype: firehose\nlisten: 127.0.0.1:8443\naccess_key_file: k\npath: /flowlogs\n",
		"name: q\ntype: kafka\nbrokers: [b:9092]\ntopics: [t]\ntls: true\n",
		"name: c\ntype: cloudwatch\nlog_groups: [/vpc/a, arn:aws:logs:us-east-1:123456789012:log-group:/vpc/b]\nstart: 24h\n",
	} {
		if _, err := NewLive(liveConfig(t, ok), LiveDeps{}); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func TestSQSEndpoint(t *testing.T) {
	for _, tc := range []struct{ url, endpoint, region string }{
		{"https://sqs.eu-west-1.amazonaws.com/123456789012/q", "", "eu-west-1"},
		{"http://127.0.0.1:4566/000000000000/q", "http://127.0.0.1:4566", ""},
		{"https://vpce-1.sqs.us-east-1.vpce.amazonaws.com/1/q", "", ""},
		{"::", "", ""},
	} {
		if e, r := sqsEndpoint(tc.url); e != tc.endpoint || r != tc.region {
			t.Errorf("sqsEndpoint(%q) = %q, %q; want %q, %q", tc.url, e, r, tc.endpoint, tc.region)
		}
	}
}

// TestAWSKeysEverySource: every AWS source reads region, profile and
// endpoint_url the same way, and still refuses a key it does not know,
// with its line and column.
func TestAWSKeysEverySource(t *testing.T) {
	const keys = "region: eu-west-1\nprofile: audit\nendpoint_url: http://127.0.0.1:4566\n"
	want := AWSKeys{Region: "eu-west-1", Profile: "audit", EndpointURL: "http://127.0.0.1:4566"}
	for _, tc := range []struct {
		entry string
		keys  func(Live) AWSKeys
	}{
		{"name: a\ntype: s3\nurl: s3://flow-logs/\n", func(l Live) AWSKeys { return l.(*s3Live).cfg.AWSKeys }},
		{"name: a\ntype: cloudwatch\nlog_groups: [/vpc/a]\n", func(l Live) AWSKeys { return l.(*cloudWatch).cfg.AWSKeys }},
		{"name: a\ntype: kinesis\nstream: s\n", func(l Live) AWSKeys { return l.(*kinesisSource).cfg.AWSKeys }},
		{"name: a\ntype: guardduty\ndetector_id: d\n", func(l Live) AWSKeys { return l.(*guardDutySource).cfg.AWSKeys }},
	} {
		l, err := NewLive(liveConfig(t, tc.entry+keys), LiveDeps{})
		if err != nil {
			t.Errorf("%q: %v", tc.entry, err)
			continue
		}
		if got := tc.keys(l); got != want {
			t.Errorf("%q: keys %+v, want %+v", tc.entry, got, want)
		}
		_, err = NewLive(liveConfig(t, tc.entry+keys+"endpoint: x\n"), LiveDeps{})
		if err == nil || !strings.Contains(err.Error(), `line 7, column 1: sources.a: unknown key "endpoint"`) {
			t.Errorf("%q with endpoint: err %v, want the unknown key named", tc.entry, err)
		}
	}
}
