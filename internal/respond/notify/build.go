package notify

import (
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flowguard/flowguard/internal/respond"
)

// Build validates the config and returns its notifiers (in the order
// sns, slack, webhook, eventbridge, email) and the templates to render
// their messages with. Call Resolve first when the config came from a
// file. awsCfg is used by the SNS and EventBridge notifiers.
func Build(c *Config, awsCfg aws.Config, opts Options) ([]respond.Notifier, *Templates, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	tm, err := FromConfig(c)
	if err != nil {
		return nil, nil, err
	}
	if opts.Language == "" {
		opts.Language = tm.Language()
	}
	var out []respond.Notifier
	for _, s := range c.SNS {
		n, err := NewSNS(s, awsCfg, opts)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, n)
	}
	for _, s := range c.Slack {
		n, err := NewSlack(s, opts)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, n)
	}
	for _, w := range c.Webhook {
		n, err := NewWebhook(w, opts)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, n)
	}
	for _, e := range c.EventBridge {
		n, err := NewEventBridge(e, awsCfg, opts)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, n)
	}
	for _, e := range c.Email {
		n, err := NewEmail(e, opts)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, n)
	}
	return out, tm, nil
}
