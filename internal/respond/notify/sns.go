package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/flowguard/flowguard/internal/respond"
)

// SNS limits: the subject is under 100 characters with no line breaks or
// control characters; the message is at most 256 KB.
const (
	snsMaxSubject = 99
	snsMaxMessage = 256 * 1024
)

// SNS publishes messages to a topic. E-mail subscribers read them, so the
// message is the plain text rendering.
type SNS struct {
	name   string
	topic  string
	fifo   bool
	client *sns.Client
	creds  *capturingProvider
	opts   Options
}

// NewSNS returns an SNS notifier. awsCfg supplies credentials (and the
// region when the config and ARN give none). The SDK's own retries are
// off: the pipeline retries, with backoff, when Notify says so.
func NewSNS(c SNSConfig, awsCfg aws.Config, opts Options) (*SNS, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("notify: sns %q: %w", c.Name, err)
	}
	creds := &capturingProvider{inner: awsCfg.Credentials}
	cfg := awsCfg.Copy()
	cfg.Credentials = creds
	client := sns.NewFromConfig(cfg, func(o *sns.Options) {
		if r := c.region(); r != "" {
			o.Region = r
		}
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.Retryer = aws.NopRetryer{}
		if opts.HTTPClient != nil {
			o.HTTPClient = opts.HTTPClient
		}
	})
	return &SNS{
		name: c.Name, topic: c.TopicARN, fifo: strings.HasSuffix(c.TopicARN, ".fifo"),
		client: client, creds: creds, opts: opts,
	}, nil
}

// Name is the notifier's name from the config.
func (s *SNS) Name() string { return s.name }

// Notify publishes msg.Subject (shortened to SNS's limit) and msg.Text
// (cut at 256 KB with a note).
func (s *SNS) Notify(ctx context.Context, msg respond.Message) (bool, error) {
	subject := snsSubject(msg.Subject)
	body := msg.Text
	if body == "" {
		body = subject
	}
	body = truncateWithNote(body, snsMaxMessage, s.opts.Language, "SNS 256 KB")
	in := &sns.PublishInput{
		TopicArn: aws.String(s.topic),
		Subject:  aws.String(subject),
		Message:  aws.String(body),
	}
	if s.fifo {
		sum := sha256.Sum256([]byte(subject + "\x00" + body))
		in.MessageGroupId = aws.String("flowguard")
		in.MessageDeduplicationId = aws.String(hex.EncodeToString(sum[:16]))
	}
	log := s.opts.logger().With("notifier", s.name, "kind", "sns")
	out, err := s.client.Publish(ctx, in)
	if err != nil {
		retry := awsRetryable(err)
		e := newScrubber(s.creds.secrets()...).fail("sns publish to "+s.topic, err)
		log.Warn("notification failed", "error", e.Error(), "retry", retry)
		return retry, e
	}
	log.Info("notification sent", "message_id", aws.ToString(out.MessageId), "events", len(msg.Events))
	return false, nil
}

// snsSubject makes a subject SNS accepts: one line, no control
// characters, under 100 characters, starting with a letter, number or
// punctuation mark.
func snsSubject(s string) string {
	s = oneLine(s)
	s = strings.TrimLeftFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r) && !unicode.IsPunct(r)
	})
	if s == "" || !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
		if s == "" {
			return "flowguard"
		}
	}
	return truncateRunes(s, snsMaxSubject)
}

// capturingProvider passes credentials through and remembers them, so
// that error text can be scrubbed of them.
type capturingProvider struct {
	inner aws.CredentialsProvider
	mu    sync.Mutex
	seen  []string
}

// Retrieve returns the inner provider's credentials.
func (p *capturingProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	if p.inner == nil {
		return aws.Credentials{}, fmt.Errorf("no AWS credentials configured")
	}
	c, err := p.inner.Retrieve(ctx)
	if err != nil {
		return c, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range []string{c.AccessKeyID, c.SecretAccessKey, c.SessionToken} {
		if v == "" {
			continue
		}
		known := false
		for _, s := range p.seen {
			known = known || s == v
		}
		if !known {
			if len(p.seen) > 64 { // rotated session credentials
				p.seen = p.seen[3:]
			}
			p.seen = append(p.seen, v)
		}
	}
	return c, nil
}

func (p *capturingProvider) secrets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}
