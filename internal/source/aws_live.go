package source

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go"

	"github.com/flowguard/flowguard/internal/awsmetrics"
)

// AWSKeys are the keys every AWS-backed live source takes (s3,
// cloudwatch, kinesis, guardduty): each source's configuration embeds
// them inline, and loads its SDK configuration with loadAWS.
type AWSKeys struct {
	// Region is the AWS region; "" is the SDK's (AWS_REGION, the
	// profile), else us-east-1.
	Region string `yaml:"region"`
	// Profile is a named profile of the shared configuration files.
	Profile string `yaml:"profile"`
	// EndpointURL sends the source's requests to another endpoint (an
	// emulator, a VPC endpoint).
	EndpointURL string `yaml:"endpoint_url"`
}

// loadAWS loads the SDK's configuration (environment, shared files,
// instance role) with the source's region, profile and endpoint.
func loadAWS(ctx context.Context, k AWSKeys) (aws.Config, error) {
	var loads []func(*config.LoadOptions) error
	if k.Region != "" {
		loads = append(loads, config.WithRegion(k.Region))
	}
	if k.Profile != "" {
		loads = append(loads, config.WithSharedConfigProfile(k.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		return cfg, fmt.Errorf("cannot load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	awsmetrics.Attach(&cfg)
	if k.EndpointURL != "" {
		cfg.BaseEndpoint = aws.String(k.EndpointURL)
	}
	return cfg, nil
}

// apiCode returns the AWS error code of err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
