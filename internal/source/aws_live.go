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

// AWSKeys are the keys every AWS-backed live source takes. Each source's
// configuration repeats them (Decode reads one level).
type AWSKeys struct {
	Region      string
	Profile     string
	EndpointURL string
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
