// Package notify delivers flowguard's notifications: SNS topics, Slack
// incoming webhooks, generic HMAC-signed webhooks, EventBridge events shaped
// like GuardDuty's, and e-mail over SMTP. Each notifier implements
// respond.Notifier; the messages come from text/template templates, embedded
// in English and Japanese and overridable by files named in the config.
//
// Secrets (webhook URLs, HMAC keys, SMTP passwords, AWS credentials) are
// held in Secret values, which print, marshal and log as "<redacted>", and
// every error a notifier returns has them scrubbed out.
package notify

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is the notifiers part of flowguard's configuration file:
//
//	notify:
//	  language: ja                 # en (default) or ja
//	  timezone: Asia/Tokyo         # times in messages; default UTC
//	  dashboard_url: https://flowguard.example.com/
//	  templates: [my-subject.tmpl] # files whose {{define}}s replace the defaults
//	  sns:
//	    - name: oncall-mail
//	      topic_arn: arn:aws:sns:ap-northeast-1:123456789012:flowguard
//	  slack:
//	    - name: sec-channel
//	      webhook_url_file: /run/secrets/slack-url
//	  webhook:
//	    - name: siem
//	      url: https://siem.example.com/hooks/flowguard
//	      secret_file: /run/secrets/flowguard-hmac
//	  eventbridge:
//	    - name: bus
//	      detail_type: guardduty   # "GuardDuty Finding", so existing rules match
//	  email:
//	    - name: oncall
//	      host: smtp.example.com
//	      port: 587
//	      from: flowguard@example.com
//	      to: [oncall@example.com]
//	      username: flowguard
//	      password_file: /run/secrets/smtp-password
//
// Paths are relative to the configuration file (see Resolve).
type Config struct {
	Language     string   `yaml:"language,omitempty" json:"language,omitempty"`
	Timezone     string   `yaml:"timezone,omitempty" json:"timezone,omitempty"`
	DashboardURL string   `yaml:"dashboard_url,omitempty" json:"dashboard_url,omitempty"`
	Templates    []string `yaml:"templates,omitempty" json:"templates,omitempty"`

	SNS         []SNSConfig         `yaml:"sns,omitempty" json:"sns,omitempty"`
	Slack       []SlackConfig       `yaml:"slack,omitempty" json:"slack,omitempty"`
	Webhook     []WebhookConfig     `yaml:"webhook,omitempty" json:"webhook,omitempty"`
	EventBridge []EventBridgeConfig `yaml:"eventbridge,omitempty" json:"eventbridge,omitempty"`
	Email       []EmailConfig       `yaml:"email,omitempty" json:"email,omitempty"`
}

// Languages the embedded templates are written in.
const (
	English  = "en"
	Japanese = "ja"
)

// Validate checks every notifier's settings and that names are unique.
func (c *Config) Validate() error {
	switch c.Language {
	case "", English, Japanese:
	default:
		return fmt.Errorf("notify: language %q: want en or ja", c.Language)
	}
	if c.Timezone != "" {
		if _, err := time.LoadLocation(c.Timezone); err != nil {
			return fmt.Errorf("notify: timezone %q: %w", c.Timezone, err)
		}
	}
	if c.DashboardURL != "" {
		if err := checkURL(c.DashboardURL, false); err != nil {
			return fmt.Errorf("notify: dashboard_url: %w", err)
		}
	}
	names := map[string]bool{}
	check := func(kind, name string, err error) error {
		if name == "" {
			return fmt.Errorf("notify: %s notifier without a name", kind)
		}
		if names[name] {
			return fmt.Errorf("notify: two notifiers named %q", name)
		}
		names[name] = true
		if err != nil {
			return fmt.Errorf("notify: %s %q: %w", kind, name, err)
		}
		return nil
	}
	for i := range c.SNS {
		if err := check("sns", c.SNS[i].Name, c.SNS[i].Validate()); err != nil {
			return err
		}
	}
	for i := range c.Slack {
		if err := check("slack", c.Slack[i].Name, c.Slack[i].Validate()); err != nil {
			return err
		}
	}
	for i := range c.Webhook {
		if err := check("webhook", c.Webhook[i].Name, c.Webhook[i].Validate()); err != nil {
			return err
		}
	}
	for i := range c.EventBridge {
		if err := check("eventbridge", c.EventBridge[i].Name, c.EventBridge[i].Validate()); err != nil {
			return err
		}
	}
	for i := range c.Email {
		if err := check("email", c.Email[i].Name, c.Email[i].Validate()); err != nil {
			return err
		}
	}
	return nil
}

// Resolve makes the template paths and the *_file secret paths relative to
// dir (the configuration file's directory) and reads the secret files into
// their Secret fields.
func (c *Config) Resolve(dir string) error {
	for i, p := range c.Templates {
		c.Templates[i] = relTo(dir, p)
	}
	for i := range c.Slack {
		s := &c.Slack[i]
		if err := loadSecret(dir, s.WebhookURLFile, &s.WebhookURL); err != nil {
			return fmt.Errorf("notify: slack %q: webhook_url_file: %w", s.Name, err)
		}
	}
	for i := range c.Webhook {
		w := &c.Webhook[i]
		if err := loadSecret(dir, w.URLFile, &w.URL); err != nil {
			return fmt.Errorf("notify: webhook %q: url_file: %w", w.Name, err)
		}
		if err := loadSecret(dir, w.SecretFile, &w.Secret); err != nil {
			return fmt.Errorf("notify: webhook %q: secret_file: %w", w.Name, err)
		}
	}
	for i := range c.Email {
		e := &c.Email[i]
		if err := loadSecret(dir, e.PasswordFile, &e.Password); err != nil {
			return fmt.Errorf("notify: email %q: password_file: %w", e.Name, err)
		}
	}
	return nil
}

func relTo(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// loadSecret reads a secret file; the error names the file, never its
// content.
func loadSecret(dir, file string, dst *Secret) error {
	if file == "" {
		return nil
	}
	b, err := os.ReadFile(relTo(dir, file))
	if err != nil {
		return fmt.Errorf("cannot read secret file: %w", err)
	}
	*dst = Secret(strings.TrimSpace(string(b)))
	return nil
}

// SNSConfig publishes to an SNS topic. Credentials come from the AWS
// configuration the daemon loads (environment, profile, instance role).
type SNSConfig struct {
	Name     string `yaml:"name" json:"name"`
	TopicARN string `yaml:"topic_arn" json:"topic_arn"`
	// Region defaults to the topic ARN's region.
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// Endpoint overrides the SNS endpoint (tests, VPC endpoints).
	Endpoint string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
}

// Validate checks the topic ARN and endpoint.
func (c *SNSConfig) Validate() error {
	parts := strings.Split(c.TopicARN, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sns" || parts[5] == "" {
		return fmt.Errorf("topic_arn %q is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)", c.TopicARN)
	}
	if c.Region == "" && parts[3] == "" {
		return errors.New("no region: the topic ARN has none and region is not set")
	}
	if c.Endpoint != "" {
		if err := checkURL(c.Endpoint, false); err != nil {
			return fmt.Errorf("endpoint: %w", err)
		}
	}
	return nil
}

func (c *SNSConfig) region() string {
	if c.Region != "" {
		return c.Region
	}
	if parts := strings.Split(c.TopicARN, ":"); len(parts) == 6 {
		return parts[3]
	}
	return ""
}

// SlackConfig posts to a Slack incoming webhook.
type SlackConfig struct {
	Name string `yaml:"name" json:"name"`
	// WebhookURL is the incoming webhook's URL; it is a credential.
	WebhookURL     Secret `yaml:"webhook_url,omitempty" json:"webhook_url,omitempty"`
	WebhookURLFile string `yaml:"webhook_url_file,omitempty" json:"webhook_url_file,omitempty"`
	// MinInterval between two messages; Slack allows about one a second.
	MinInterval time.Duration `yaml:"min_interval,omitempty" json:"min_interval,omitempty"`
	Timeout     time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Validate checks that the URL is set and well-formed.
func (c *SlackConfig) Validate() error {
	if c.WebhookURL == "" && c.WebhookURLFile == "" {
		return errors.New("webhook_url or webhook_url_file is required")
	}
	if c.WebhookURL != "" {
		if err := checkURL(string(c.WebhookURL), true); err != nil {
			return fmt.Errorf("webhook_url: %w", err)
		}
	}
	if c.MinInterval < 0 || c.Timeout < 0 {
		return errors.New("min_interval and timeout cannot be negative")
	}
	return nil
}

// WebhookConfig posts JSON to any HTTP endpoint, signed with HMAC-SHA256.
type WebhookConfig struct {
	Name    string `yaml:"name" json:"name"`
	URL     Secret `yaml:"url,omitempty" json:"url,omitempty"`
	URLFile string `yaml:"url_file,omitempty" json:"url_file,omitempty"`
	// Secret is the HMAC key for X-Flowguard-Signature.
	Secret     Secret            `yaml:"secret,omitempty" json:"secret,omitempty"`
	SecretFile string            `yaml:"secret_file,omitempty" json:"secret_file,omitempty"`
	Headers    map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Timeout    time.Duration     `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Validate checks the URL and that a signing secret is set.
func (c *WebhookConfig) Validate() error {
	if c.URL == "" && c.URLFile == "" {
		return errors.New("url or url_file is required")
	}
	if c.URL != "" {
		if err := checkURL(string(c.URL), true); err != nil {
			return fmt.Errorf("url: %w", err)
		}
	}
	if c.Secret == "" && c.SecretFile == "" {
		return errors.New("secret or secret_file is required: receivers must be able to check the signature")
	}
	for k := range c.Headers {
		if strings.ContainsAny(k, "\r\n: ") || strings.ContainsAny(c.Headers[k], "\r\n") {
			return fmt.Errorf("header %q: invalid name or value", k)
		}
	}
	if c.Timeout < 0 {
		return errors.New("timeout cannot be negative")
	}
	return nil
}

// EventBridge detail-type choices.
const (
	// DetailTypeGuardDuty makes events say "GuardDuty Finding", so rules
	// written for GuardDuty match flowguard's findings too (with the source
	// added to the rule's pattern).
	DetailTypeGuardDuty = "guardduty"
	// DetailTypeFlowguard makes events say "Flowguard Finding".
	DetailTypeFlowguard = "flowguard"
)

// EventBridgeConfig puts events on an event bus.
type EventBridgeConfig struct {
	Name string `yaml:"name" json:"name"`
	// EventBus is the bus name or ARN; default "default".
	EventBus string `yaml:"event_bus,omitempty" json:"event_bus,omitempty"`
	// Source of the events; default "flowguard". ("aws." prefixes are
	// reserved by AWS.)
	Source string `yaml:"source,omitempty" json:"source,omitempty"`
	// DetailType is "flowguard" (default, "Flowguard Finding") or
	// "guardduty" ("GuardDuty Finding").
	DetailType string `yaml:"detail_type,omitempty" json:"detail_type,omitempty"`
	Region     string `yaml:"region,omitempty" json:"region,omitempty"`
	Endpoint   string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
	// AccountID and Region fill the finding's accountId and region.
	AccountID string `yaml:"account_id,omitempty" json:"account_id,omitempty"`
}

// Validate checks the source and detail type.
func (c *EventBridgeConfig) Validate() error {
	if strings.HasPrefix(c.Source, "aws.") {
		return fmt.Errorf("source %q: sources starting with aws. are reserved for AWS services", c.Source)
	}
	switch c.DetailType {
	case "", DetailTypeFlowguard, DetailTypeGuardDuty:
	default:
		return fmt.Errorf("detail_type %q: want flowguard or guardduty", c.DetailType)
	}
	if c.Endpoint != "" {
		if err := checkURL(c.Endpoint, false); err != nil {
			return fmt.Errorf("endpoint: %w", err)
		}
	}
	return nil
}

// STARTTLS policies for e-mail.
const (
	StartTLSAlways        = "always"        // refuse to send without STARTTLS (default)
	StartTLSOpportunistic = "opportunistic" // use it when the server offers it
	StartTLSNever         = "never"         // plain text (a relay on localhost)
)

// EmailConfig sends e-mail through an SMTP server.
type EmailConfig struct {
	Name string   `yaml:"name" json:"name"`
	Host string   `yaml:"host" json:"host"`
	Port int      `yaml:"port,omitempty" json:"port,omitempty"` // default 587
	From string   `yaml:"from" json:"from"`
	To   []string `yaml:"to" json:"to"`
	// StartTLS is always (default), opportunistic or never.
	StartTLS string `yaml:"starttls,omitempty" json:"starttls,omitempty"`
	// InsecureSkipVerify accepts any server certificate (tests only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
	// Username and Password enable AUTH PLAIN, which is only sent over TLS
	// or to localhost.
	Username     string        `yaml:"username,omitempty" json:"username,omitempty"`
	Password     Secret        `yaml:"password,omitempty" json:"password,omitempty"`
	PasswordFile string        `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	Timeout      time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Validate checks host, addresses and the TLS policy.
func (c *EmailConfig) Validate() error {
	if c.Host == "" || strings.ContainsAny(c.Host, "/ \r\n") {
		return fmt.Errorf("host %q is not a host name", c.Host)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port %d out of range", c.Port)
	}
	if _, err := mail.ParseAddress(c.From); err != nil || strings.ContainsAny(c.From, "\r\n") {
		return fmt.Errorf("from %q is not an e-mail address", c.From)
	}
	if len(c.To) == 0 {
		return errors.New("to: at least one recipient is required")
	}
	for _, to := range c.To {
		if _, err := mail.ParseAddress(to); err != nil || strings.ContainsAny(to, "\r\n") {
			return fmt.Errorf("to %q is not an e-mail address", to)
		}
	}
	switch c.StartTLS {
	case "", StartTLSAlways, StartTLSOpportunistic, StartTLSNever:
	default:
		return fmt.Errorf("starttls %q: want always, opportunistic or never", c.StartTLS)
	}
	if (c.Password != "" || c.PasswordFile != "") && c.Username == "" {
		return errors.New("password without username")
	}
	if c.Timeout < 0 {
		return errors.New("timeout cannot be negative")
	}
	return nil
}

// checkURL checks an http(s) URL. For secret URLs the error never repeats
// the URL.
func checkURL(s string, secret bool) error {
	u, err := url.Parse(s)
	if err != nil {
		if secret {
			return errors.New("not a valid URL")
		}
		return err
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return errors.New("want an http or https URL")
	}
	if u.Host == "" {
		return errors.New("URL has no host")
	}
	return nil
}

// Names returns the names of the configured notifiers, in the order of the
// configuration.
func (c *Config) Names() []string {
	var names []string
	for _, n := range c.SNS {
		names = append(names, n.Name)
	}
	for _, n := range c.Slack {
		names = append(names, n.Name)
	}
	for _, n := range c.Webhook {
		names = append(names, n.Name)
	}
	for _, n := range c.EventBridge {
		names = append(names, n.Name)
	}
	for _, n := range c.Email {
		names = append(names, n.Name)
	}
	return names
}
