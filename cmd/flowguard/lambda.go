package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/spf13/cobra"

	"github.com/flowguard/flowguard/internal/config"
	fglambda "github.com/flowguard/flowguard/internal/lambda"
	"github.com/flowguard/flowguard/internal/store/dynamo"
)

// The Lambda function's settings, from its environment (Terraform and
// CloudFormation set them; see deploy/ and docs/deploy.md).
const (
	envTable      = "FLOWGUARD_TABLE"       // the DynamoDB table (required)
	envConfigSSM  = "FLOWGUARD_CONFIG_SSM"  // an SSM parameter holding the configuration YAML
	envConfigYAML = "FLOWGUARD_CONFIG_YAML" // the configuration YAML itself
	envConfigFile = "FLOWGUARD_CONFIG"      // a configuration file in the package
	envWindow     = "FLOWGUARD_WINDOW"      // detection window (default 10m)
	envScan       = "FLOWGUARD_SCAN"        // scheduled scan targets, comma-separated: s3://bucket/prefix, logs:GROUP
	envScanLast   = "FLOWGUARD_SCAN_LAST"   // how far back a scheduled scan looks (default 15m)
	// envPathStyle addresses S3 path-style, for S3-compatible servers
	// (the SDK's AWS_ENDPOINT_URL_S3 names them).
	envPathStyle = "FLOWGUARD_S3_PATH_STYLE"
)

// bootstrapArgs turns the arguments of a binary named bootstrap (the
// provided.al2023 runtime's entry point, run without arguments) into
// "lambda".
func bootstrapArgs(argv0 string, args []string) []string {
	if filepath.Base(argv0) == "bootstrap" && len(args) == 0 {
		return []string{"lambda"}
	}
	return args
}

func newLambdaCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "lambda",
		Short: "Run as an AWS Lambda function (the provided.al2023 runtime's bootstrap)",
		Long: `Serve the Lambda Runtime API ($AWS_LAMBDA_RUNTIME_API): take S3
ObjectCreated events (direct, or in SQS or SNS messages), CloudWatch Logs
subscription events, Kinesis and Firehose transformation batches, and
scheduled events that scan the last minutes of S3 prefixes and log groups,
and keep the findings in DynamoDB. With an alarms: section, evaluate its
metric filters and alarms on the records' time, as alarms run and serve
do, the alarms' state in the same table. With a response: section in the
configuration, run the findings each invocation creates or changes, and
the alarm state changes, through its routes (blocks, notifications),
state in the same table.

Settings come from the environment:
  FLOWGUARD_TABLE         the DynamoDB table (required)
  FLOWGUARD_CONFIG_SSM    an SSM parameter holding the configuration, or
  FLOWGUARD_CONFIG_YAML   the configuration itself, or
  FLOWGUARD_CONFIG        a configuration file in the function's package
  FLOWGUARD_WINDOW        the detection window (default 10m)
  FLOWGUARD_SCAN          what a scheduled event scans, comma-separated:
                          s3://bucket/prefix, logs:LOG-GROUP
  FLOWGUARD_SCAN_LAST     how far back it looks (default 15m)
A binary named bootstrap run without arguments runs this command.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Getenv("AWS_LAMBDA_RUNTIME_API") == "" {
				return fmt.Errorf("not in a Lambda function: AWS_LAMBDA_RUNTIME_API is not set")
			}
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			h, err := lambdaHandler(cmd.Context(), log)
			if err != nil {
				return err
			}
			lambda.StartWithOptions(h.Invoke, lambda.WithContext(cmd.Context()))
			return nil
		},
	}
}

// lambdaHandler builds the handler from the environment. With a
// response: section in the configuration it runs the response pipeline
// (its routes, guards, blockers and notifiers; a dry run unless the mode
// says enforce), its state in the same DynamoDB table.
func lambdaHandler(ctx context.Context, log *slog.Logger) (*fglambda.Handler, error) {
	table := os.Getenv(envTable)
	if table == "" {
		return nil, fmt.Errorf("%s is not set: name the DynamoDB table", envTable)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot load the AWS configuration: %w", err)
	}
	cfg, err := lambdaConfig(ctx, awsCfg)
	if err != nil {
		return nil, err
	}
	st := dynamo.New(dynamodb.NewFromConfig(awsCfg), table)
	h := &fglambda.Handler{
		Store:  st,
		Log:    log,
		S3:     s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.UsePathStyle = os.Getenv(envPathStyle) == "true" }),
		Logs:   cloudwatchlogs.NewFromConfig(awsCfg),
		Config: cfg,
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{envWindow, &h.Window}, {envScanLast, &h.ScanLast}} {
		if v := os.Getenv(d.env); v != "" {
			if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst <= 0 {
				return nil, fmt.Errorf("%s=%q: not a positive duration (like 10m)", d.env, v)
			}
		}
	}
	if cfg.Response != nil {
		pl, err := buildPipelineWith(ctx, cfg, st, log.With("component", "respond"), responseBlockers)
		if err != nil {
			return nil, err
		}
		h.Respond = pl
	}
	for _, t := range strings.Split(os.Getenv(envScan), ",") {
		if t = strings.TrimSpace(t); t != "" {
			if !strings.HasPrefix(t, "s3://") && !strings.HasPrefix(t, "logs:") {
				return nil, fmt.Errorf("%s: %q is not s3://bucket/prefix nor logs:LOG-GROUP", envScan, t)
			}
			h.Scan = append(h.Scan, t)
		}
	}
	return h, nil
}

// lambdaConfig reads the configuration from SSM, the environment or a
// file, in that order; none means the defaults.
func lambdaConfig(ctx context.Context, awsCfg aws.Config) (*config.Config, error) {
	if name := os.Getenv(envConfigSSM); name != "" {
		out, err := ssm.NewFromConfig(awsCfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("cannot read the configuration from SSM parameter %s: %w", name, err)
		}
		return config.Parse([]byte(aws.ToString(out.Parameter.Value)), "ssm:"+name)
	}
	if y := os.Getenv(envConfigYAML); y != "" {
		return config.Parse([]byte(y), "$"+envConfigYAML)
	}
	if p := os.Getenv(envConfigFile); p != "" {
		return config.Load(p)
	}
	cfg := config.DefaultConfig()
	return &cfg, nil
}

// addLambdaPolicyFlags adds to iam-policy the flags that describe a Lambda
// deployment: with --lambda-table, the function's own statements follow
// the responders'.
func addLambdaPolicyFlags(cmd *cobra.Command, o *fglambda.PolicyOptions) {
	f := cmd.Flags()
	f.StringVar(&o.Table, "lambda-table", "", "add the Lambda function's statements: its DynamoDB table")
	f.StringVar(&o.Function, "lambda-function", "flowguard", "the Lambda function's name (its log group)")
	f.StringVar(&o.Region, "lambda-region", "", "the function's region (default: any)")
	f.StringSliceVar(&o.Buckets, "lambda-bucket", nil, "a bucket the function reads flow logs from (repeatable)")
	f.StringVar(&o.Queue, "lambda-queue", "", "the ARN of the SQS queue of S3 notifications")
	f.StringSliceVar(&o.ScanLogGroups, "lambda-scan-log-group", nil, "a log group the schedule scans (repeatable)")
	f.StringVar(&o.ConfigParameter, "lambda-config-parameter", "", "the SSM parameter holding the configuration")
}
