package awsmetrics

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flowguard/flowguard/internal/awstest"
)

// TestErrorsCounted: calls to a service that is down are counted by
// service and operation, once each even when attached twice; calls that
// succeed are not.
func TestErrorsCounted(t *testing.T) {
	ctx := context.Background()
	srv := awstest.NewEC2(t)
	cfg := awstest.ClientConfig(srv.URL)
	Attach(&cfg)
	Attach(&cfg)
	c := ec2.NewFromConfig(cfg)

	logs := awstest.NewLogs(t)
	lcfg := awstest.ClientConfig(logs.URL)
	Attach(&lcfg)
	lc := cloudwatchlogs.NewFromConfig(lcfg)

	acls := Errors.WithLabelValues("EC2", "DescribeNetworkAcls")
	groups := Errors.WithLabelValues("CloudWatch Logs", "DescribeLogGroups")
	before, beforeLogs := value(acls), value(groups)

	if _, err := c.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{}); err != nil {
		t.Fatalf("with the server up: %v", err)
	}
	if got := value(acls) - before; got != 0 {
		t.Errorf("a call that succeeded counted %v errors", got)
	}
	srv.SetUnavailable(true)
	logs.SetUnavailable(true)
	for range 3 {
		if _, err := c.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{}); err == nil {
			t.Fatal("no error from a service that is down")
		}
	}
	if _, err := lc.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{}); err == nil {
		t.Fatal("no error from a service that is down")
	}
	if got := value(acls) - before; got != 3 {
		t.Errorf("EC2 DescribeNetworkAcls errors: %v, want 3", got)
	}
	if got := value(groups) - beforeLogs; got != 1 {
		t.Errorf("CloudWatch Logs DescribeLogGroups errors: %v, want 1", got)
	}
}

func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
