package notify

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/internal/respond"
)

func TestConfigFromYAML(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("slack-url", "https://hooks.slack.com/services/T0/B0/SLACKTOKEN123\n")
	write("hmac", "hmac-from-file\n")
	write("smtp-pass", "smtp-from-file\n")
	write("subject.tmpl", `{{define "subject"}}ALERT {{len .Events}}{{end}}`)
	src := `
language: ja
timezone: Asia/Tokyo
dashboard_url: https://fg.example.com/
templates: [subject.tmpl]
sns:
  - {name: mail, topic_arn: "arn:aws:sns:ap-northeast-1:123456789012:fg"}
slack:
  - {name: chan, webhook_url_file: slack-url}
webhook:
  - {name: siem, url: "https://siem.example.com/h", secret_file: hmac}
eventbridge:
  - {name: bus, detail_type: guardduty}
email:
  - {name: oncall, host: smtp.example.com, from: fg@example.com, to: [a@example.com], username: u, password_file: smtp-pass}
`
	var c Config
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(dir); err != nil {
		t.Fatal(err)
	}
	if string(c.Slack[0].WebhookURL) != "https://hooks.slack.com/services/T0/B0/SLACKTOKEN123" || c.Webhook[0].Secret != "hmac-from-file" || c.Email[0].Password != "smtp-from-file" {
		t.Errorf("secret files not read: %+v", c)
	}
	ns, tm, err := Build(&c, testAWSConfig("k", "s"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range ns {
		names = append(names, n.Name())
	}
	if strings.Join(names, ",") != "mail,chan,siem,bus,oncall" || tm.Language() != Japanese {
		t.Errorf("notifiers %v, language %s", names, tm.Language())
	}
	msg, err := tm.Render(Data{Events: []respond.Event{{Finding: sshFinding()}}})
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "ALERT 1" || !strings.Contains(msg.Text, "■ 何が起きたか") || !strings.Contains(msg.Text, "JST") || msg.Link != "https://fg.example.com/" {
		t.Errorf("override or defaults lost: subject %q, text:\n%s", msg.Subject, msg.Text)
	}
	// Marshalling the config back (as `flowguard config show` might) hides every secret.
	for _, marshal := range []func(any) ([]byte, error){json.Marshal, yaml.Marshal} {
		b, err := marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"SLACKTOKEN123", "hmac-from-file", "smtp-from-file"} {
			if strings.Contains(string(b), s) {
				t.Errorf("marshalled config shows %q", s)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := func() Config {
		return Config{
			SNS:   []SNSConfig{{Name: "a", TopicARN: "arn:aws:sns:us-east-1:1:t"}},
			Slack: []SlackConfig{{Name: "b", WebhookURL: "https://hooks.slack.com/services/x"}},
		}
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"valid", func(*Config) {}, ""},
		{"bad language", func(c *Config) { c.Language = "fr" }, "language"},
		{"bad timezone", func(c *Config) { c.Timezone = "Mars/Olympus" }, "timezone"},
		{"duplicate names", func(c *Config) { c.Slack[0].Name = "a" }, "two notifiers"},
		{"no name", func(c *Config) { c.SNS[0].Name = "" }, "without a name"},
		{"bad ARN", func(c *Config) { c.SNS[0].TopicARN = "arn:aws:sqs:us-east-1:1:q" }, "topic_arn"},
		{"slack without url", func(c *Config) { c.Slack[0].WebhookURL = "" }, "webhook_url"},
		{"webhook without secret", func(c *Config) {
			c.Webhook = []WebhookConfig{{Name: "w", URL: "https://x.example/h"}}
		}, "secret"},
		{"header injection", func(c *Config) {
			c.Webhook = []WebhookConfig{{Name: "w", URL: "https://x.example/h", Secret: "k", Headers: map[string]string{"X-A": "b\r\nEvil: 1"}}}
		}, "header"},
		{"aws. source", func(c *Config) { c.EventBridge = []EventBridgeConfig{{Name: "e", Source: "aws.guardduty"}} }, "reserved"},
		{"bad detail type", func(c *Config) { c.EventBridge = []EventBridgeConfig{{Name: "e", DetailType: "x"}} }, "detail_type"},
		{"email newline in address", func(c *Config) {
			c.Email = []EmailConfig{{Name: "m", Host: "h", From: "a@b.c\r\nBcc: x@y.z", To: []string{"a@b.c"}}}
		}, "from"},
		{"email no recipients", func(c *Config) { c.Email = []EmailConfig{{Name: "m", Host: "h", From: "a@b.c"}} }, "recipient"},
		{"email bad starttls", func(c *Config) {
			c.Email = []EmailConfig{{Name: "m", Host: "h", From: "a@b.c", To: []string{"a@b.c"}, StartTLS: "maybe"}}
		}, "starttls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.mod(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestTemplatesErrors(t *testing.T) {
	if _, err := NewTemplates("de", nil); err == nil {
		t.Error("language de accepted")
	}
	bad := filepath.Join(t.TempDir(), "bad.tmpl")
	os.WriteFile(bad, []byte(`{{define "subject"}}{{.Nope`), 0o600)
	if _, err := NewTemplates(English, nil, bad); err == nil || !strings.Contains(err.Error(), "bad.tmpl") {
		t.Errorf("broken override: %v", err)
	}
	tm, _ := NewTemplates(English, nil)
	if _, err := tm.Render(Data{}); err == nil {
		t.Error("rendered a message about nothing")
	}
	if _, err := tm.Render(Data{Events: []respond.Event{{}}}); err == nil {
		t.Error("rendered an empty event")
	}
	unknown := filepath.Join(t.TempDir(), "unknown.tmpl")
	os.WriteFile(unknown, []byte(`{{define "subject"}}{{.NoSuchField}}{{end}}`), 0o600)
	tm, err := NewTemplates(English, nil, unknown)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tm.Render(Data{Events: []respond.Event{{Finding: sshFinding()}}}); err == nil {
		t.Error("a template naming a missing field rendered without error")
	}
}

func TestHelpers(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1042: "1,042", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", n, got, want)
		}
	}
	for typ, want := range map[string]string{
		"Recon:EC2/Portscan": "scan", "Recon:EC2/PortProbeUnprotectedPort": "probe",
		"UnauthorizedAccess:EC2/RDPBruteForce": "bruteforce", "Backdoor:EC2/DenialOfService.Dns": "dos",
		"Exfiltration:EC2/UnusualOutboundVolume": "volume", "Policy:EC2/UnexpectedSource": "policy",
		"UnauthorizedAccess:EC2/MaliciousIPCaller.Custom": "threat", "Something:Else/New": "other",
	} {
		if got := kind(typ); got != want {
			t.Errorf("kind(%s) = %s, want %s", typ, got, want)
		}
	}
	if got := truncateRunes("日本語のテキスト", 4); got != "日本語…" {
		t.Errorf("truncateRunes = %q", got)
	}
	if got := truncateBytes("日本", 4); got != "日" {
		t.Errorf("truncateBytes = %q", got)
	}
}
