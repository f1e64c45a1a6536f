package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/awstest"
)

// TestAWSAPIErrorsMetric: a live source whose AWS service is down shows
// in flowguard_aws_api_errors_total by service and operation.
func TestAWSAPIErrorsMetric(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	logs := awstest.NewLogs(t)
	logs.SetUnavailable(true)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "flowguard.yaml")
	conf := "sources:\n  - name: cw\n    type: cloudwatch\n    log_groups: [/vpc/flowlogs]\n    region: us-east-1\n    endpoint_url: " + logs.URL +
		"\n    poll_interval: 20ms\n    latency: 1ms\n    start: 1h\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := New(ctx, Options{ConfigPath: cfg, DBPath: filepath.Join(dir, "f.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	c := d.Metrics.AWSAPIErrors.WithLabelValues("CloudWatch Logs", "FilterLogEvents")
	before := counterValue(c)
	deadline := time.Now().Add(10 * time.Second)
	for counterValue(c) < before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("flowguard_aws_api_errors_total{service=\"CloudWatch Logs\",operation=\"FilterLogEvents\"} = %v, want at least 2 more than %v", counterValue(c), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
