package main

import (
	"strings"

	"github.com/flowguard/flowguard/internal/config"
	fglambda "github.com/flowguard/flowguard/internal/lambda"
	"github.com/flowguard/flowguard/internal/respond"
	"github.com/flowguard/flowguard/internal/respond/notify"
	"github.com/spf13/cobra"
)

// iamPolicy builds the policy for the configured blockers and AWS
// notifiers (SNS, EventBridge); Slack, webhooks and e-mail need no AWS
// permission.
func iamPolicy(resp *respond.Config, n *notify.Config, account string) respond.PolicyDocument {
	doc := respond.PolicyDocument{Version: "2012-10-17", Statement: respond.IAMStatements(resp, account)}
	acct := account
	if acct == "" {
		acct = "*"
	}
	var topics []string
	for _, s := range n.SNS {
		topics = append(topics, s.TopicARN)
	}
	if len(topics) > 0 {
		doc.Statement = append(doc.Statement, respond.PolicyStatement{Sid: "FlowguardSNSPublish", Effect: "Allow", Action: []string{"sns:Publish"}, Resource: topics})
	}
	var buses []string
	for _, e := range n.EventBridge {
		bus := e.EventBus
		if strings.HasPrefix(bus, "arn:") {
			buses = append(buses, bus)
			continue
		}
		if bus == "" {
			bus = "default"
		}
		a := acct
		if e.AccountID != "" {
			a = e.AccountID
		}
		region := e.Region
		if region == "" {
			region = "*"
		}
		buses = append(buses, "arn:aws:events:"+region+":"+a+":event-bus/"+bus)
	}
	if len(buses) > 0 {
		doc.Statement = append(doc.Statement, respond.PolicyStatement{Sid: "FlowguardEventBridgePutEvents", Effect: "Allow", Action: []string{"events:PutEvents"}, Resource: buses})
	}
	if doc.Statement == nil {
		doc.Statement = []respond.PolicyStatement{}
	}
	return doc
}

func newIAMPolicyCmd() *cobra.Command {
	var cfgPath, account string
	var lambdaOpts fglambda.PolicyOptions
	cmd := &cobra.Command{
		Use:   "iam-policy [--config FILE] [--account ID] [--lambda-table TABLE ...]",
		Short: "Print the least-privilege IAM policy the configured responders need",
		Long: `Print, as JSON, the IAM policy flowguard needs for the blockers and
notifiers the configuration enables, and nothing more:

  network ACLs  ec2:DescribeNetworkAcls (and ec2:DescribeNetworkInterfaces
                when the ACL is found from the attacked interface), on "*";
                ec2:CreateNetworkAclEntry and ec2:DeleteNetworkAclEntry on
                the configured ACLs (or any ACL of the account)
  WAFv2         wafv2:GetIPSet and wafv2:UpdateIPSet on the two IP sets
  SNS           sns:Publish on the topics
  EventBridge   events:PutEvents on the event buses

Security groups are never used to block (they cannot deny), so no
ec2:AuthorizeSecurityGroupIngress is asked for.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, n := &respond.Config{}, &notify.Config{}
			if cfgPath != "" {
				cfg, err := config.Load(cfgPath)
				if err != nil {
					return err
				}
				if cfg.Response != nil {
					resp = cfg.Response
				}
				if cfg.Notify != nil {
					n = cfg.Notify
				}
			}
			doc := iamPolicy(resp, n, account)
			if lambdaOpts.Table != "" {
				lambdaOpts.Account = account
				doc.Statement = append(doc.Statement, fglambda.Statements(lambdaOpts)...)
			}
			return writeJSON(cmd.OutOrStdout(), doc)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file (its response: and notify: sections)")
	cmd.Flags().StringVar(&account, "account", "", "AWS account id for the resource ARNs (default: any)")
	addLambdaPolicyFlags(cmd, &lambdaOpts)
	return cmd
}
