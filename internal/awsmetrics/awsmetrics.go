// Package awsmetrics counts the errors of AWS API calls, by service and
// operation, in flowguard_aws_api_errors_total: one SDK middleware that
// every AWS client flowguard builds carries (the response pipeline's
// blockers and notifiers, the live sources).
package awsmetrics

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors is flowguard_aws_api_errors_total: AWS API calls that failed
// (after the SDK's retries), by service ("EC2", "WAFV2", "S3"…) and
// operation ("CreateNetworkAclEntry"…). Calls given up because their
// context ended are not counted. Register it with the registry that
// serves /metrics (a collector may be registered with several).
var Errors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowguard_aws_api_errors_total",
	Help: "AWS API calls that failed after the SDK's retries, by service and operation."}, []string{"service", "operation"})

// Attach makes every client built from cfg count its failed calls in
// Errors.
func Attach(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, addCounter)
}

// middlewareID names the middleware in the SDK's stack.
const middlewareID = "flowguard.APIErrors"

// addCounter adds the counting middleware at the end of the initialize
// step: the service and operation are in the context by then, and the
// error it sees is the call's, after every retry.
func addCounter(s *middleware.Stack) error {
	if _, ok := s.Initialize.Get(middlewareID); ok {
		return nil // attached twice: count once
	}
	return s.Initialize.Add(middleware.InitializeMiddlewareFunc(middlewareID, func(ctx context.Context, in middleware.InitializeInput,
		next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleInitialize(ctx, in)
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			Errors.WithLabelValues(awsmw.GetServiceID(ctx), awsmw.GetOperationName(ctx)).Inc()
		}
		return out, md, err
	}), middleware.After)
}
