package lambda

import (
	"strings"

	"github.com/flowguard/flowguard/internal/respond"
)

// PolicyOptions describe a deployment of the function, for the IAM
// statements its role needs (flowguard iam-policy --lambda-table …). The
// Terraform module and the CloudFormation template in deploy/ grant
// exactly these; a test checks it.
type PolicyOptions struct {
	Account, Region string // "" means any ("*")
	// Function names the function: its own log group is
	// /aws/lambda/<Function>.
	Function string
	Table    string // the DynamoDB table
	// Buckets are the buckets the function reads flow log objects from
	// (S3 events, scheduled scans).
	Buckets []string
	// Queue is the ARN of the SQS queue of S3 notifications, if any.
	Queue string
	// ScanLogGroups are the log groups a scheduled event scans
	// (FilterLogEvents); a subscription filter needs no permission of
	// the function.
	ScanLogGroups []string
	// ConfigParameter is the SSM parameter holding the configuration.
	ConfigParameter string
}

// Statements returns the IAM statements the function needs, with Sids the
// deploy files use too.
func Statements(o PolicyOptions) []respond.PolicyStatement {
	acct, region := o.Account, o.Region
	if acct == "" {
		acct = "*"
	}
	if region == "" {
		region = "*"
	}
	arn := func(service, resource string) string {
		return "arn:aws:" + service + ":" + region + ":" + acct + ":" + resource
	}
	fn := o.Function
	if fn == "" {
		fn = "flowguard"
	}
	st := []respond.PolicyStatement{
		{Sid: "FlowguardFunctionLogs", Effect: "Allow", Action: []string{"logs:CreateLogStream", "logs:PutLogEvents"},
			Resource: []string{arn("logs", "log-group:/aws/lambda/"+fn+":*")}},
		{Sid: "FlowguardState", Effect: "Allow",
			Action:   []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem"},
			Resource: []string{arn("dynamodb", "table/"+o.Table)}},
	}
	if len(o.Buckets) > 0 {
		var objects, buckets []string
		for _, b := range o.Buckets {
			objects = append(objects, "arn:aws:s3:::"+b+"/*")
			buckets = append(buckets, "arn:aws:s3:::"+b)
		}
		st = append(st,
			respond.PolicyStatement{Sid: "FlowguardReadFlowLogs", Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: objects},
			respond.PolicyStatement{Sid: "FlowguardListFlowLogs", Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: buckets})
	}
	if o.Queue != "" {
		st = append(st, respond.PolicyStatement{Sid: "FlowguardConsumeQueue", Effect: "Allow",
			Action: []string{"sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"}, Resource: []string{o.Queue}})
	}
	if len(o.ScanLogGroups) > 0 {
		var groups []string
		for _, g := range o.ScanLogGroups {
			groups = append(groups, arn("logs", "log-group:"+g+":*"))
		}
		st = append(st, respond.PolicyStatement{Sid: "FlowguardScanLogGroups", Effect: "Allow", Action: []string{"logs:FilterLogEvents"}, Resource: groups})
	}
	if o.ConfigParameter != "" {
		st = append(st, respond.PolicyStatement{Sid: "FlowguardReadConfig", Effect: "Allow", Action: []string{"ssm:GetParameter"},
			Resource: []string{arn("ssm", "parameter/"+strings.TrimPrefix(o.ConfigParameter, "/"))}})
	}
	return st
}
