package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/flowguard/flowguard/internal/awstest"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flowguard/flowguard/internal/respond"
)

// TestSNSThroughFauxqs publishes through the real SDK to the emulator and
// reads the message back from an SQS queue subscribed to the topic.
func TestSNSThroughFauxqs(t *testing.T) {
	endpoint := awstest.StartFauxqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testAWSConfig("AKIDFAUXQSTEST", "fauxqs-secret")
	snsc := sns.NewFromConfig(cfg, func(o *sns.Options) { o.BaseEndpoint = aws.String(endpoint) })
	sqsc := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })

	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("flowguard-alerts")})
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("oncall")})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	attrs, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("queue attributes: %v", err)
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(attrs.Attributes["QueueArn"]),
	}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}

	tm, err := NewTemplates(Japanese, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := sshFinding()
	msg, err := tm.Render(Data{Events: []respond.Event{{Finding: f}}, DryRun: true, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	// A subject far over the limit, with a line break, to see it shortened.
	msg.Subject += "\n" + strings.Repeat("長い件名", 40)

	n, err := NewSNS(SNSConfig{Name: "oncall", TopicARN: aws.ToString(topic.TopicArn), Endpoint: endpoint}, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := n.Notify(ctx, msg)
	if err != nil {
		t.Fatalf("notify: retry=%v err=%v", retry, err)
	}

	var got struct{ Subject, Message, TopicArn string }
	deadline := time.Now().Add(10 * time.Second)
	for got.Message == "" && time.Now().Before(deadline) {
		out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, WaitTimeSeconds: 1, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		for _, m := range out.Messages {
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &got); err != nil {
				t.Fatalf("SNS envelope: %v in %q", err, aws.ToString(m.Body))
			}
		}
	}
	if got.Message == "" {
		t.Fatal("no message arrived on the subscribed queue")
	}
	if got.TopicArn != aws.ToString(topic.TopicArn) {
		t.Errorf("TopicArn = %q", got.TopicArn)
	}
	if got.Message != msg.Text {
		t.Errorf("message body changed on the way:\n got %q\nwant %q", got.Message, msg.Text)
	}
	if n := utf8.RuneCountInString(got.Subject); n >= 100 {
		t.Errorf("subject has %d characters, SNS wants fewer than 100", n)
	}
	if strings.ContainsAny(got.Subject, "\r\n") {
		t.Errorf("subject has a line break: %q", got.Subject)
	}
	if !strings.HasPrefix(got.Subject, "[flowguard][重要度:低] UnauthorizedAccess:EC2/SSHBruteForce 198.51.100.23") || !strings.HasSuffix(got.Subject, "…") {
		t.Errorf("subject %q: want the rendered subject, shortened with an ellipsis", got.Subject)
	}
	for _, want := range []string{"198.51.100.23", "10.0.1.10", "1,042 回", "ドライラン"} {
		if !strings.Contains(got.Message, want) {
			t.Errorf("message lacks %q", want)
		}
	}
}

func TestSNSSubject(t *testing.T) {
	long := strings.Repeat("x", 150)
	tests := []struct {
		in, want string
	}{
		{"[flowguard] High: scan", "[flowguard] High: scan"},
		{"line one\nline two\r\n", "line one line two"},
		{"  \t leading blanks", "leading blanks"},
		{"bell\a and nul\x00", "bell and nul"},
		{"", "flowguard"},
		{long, strings.Repeat("x", 98) + "…"},
		{strings.Repeat("重", 120), strings.Repeat("重", 98) + "…"},
	}
	for _, tt := range tests {
		got := snsSubject(tt.in)
		if got != tt.want {
			t.Errorf("snsSubject(%.20q) = %q, want %q", tt.in, got, tt.want)
		}
		if n := utf8.RuneCountInString(got); n >= 100 {
			t.Errorf("snsSubject(%.20q) has %d characters", tt.in, n)
		}
	}
}

func TestSNSMessageTruncation(t *testing.T) {
	// Three-byte runes so a byte cut would split one.
	text := strings.Repeat("検", 100_000) // 300,000 bytes
	got := truncateWithNote(text, snsMaxMessage, Japanese, "SNS 256 KB")
	if len(got) > snsMaxMessage {
		t.Errorf("truncated message is %d bytes, limit %d", len(got), snsMaxMessage)
	}
	if !utf8.ValidString(got) {
		t.Error("truncated message is not valid UTF-8")
	}
	kept := strings.Count(got, "検")
	omitted := len(text) - kept*3
	if !strings.Contains(got, fmt.Sprintf("%d バイト省略", omitted)) {
		t.Errorf("note does not say %d bytes were left out: %q", omitted, got[len(got)-300:])
	}
	if len(got) < snsMaxMessage-200 {
		t.Errorf("kept only %d bytes of %d allowed", len(got), snsMaxMessage)
	}
	short := "short message"
	if truncateWithNote(short, snsMaxMessage, English, "SNS") != short {
		t.Error("a short message was changed")
	}
}

// TestSNSErrorsLeakNoSecret makes the SNS endpoint answer with an error
// that echoes the request's credentials back, and checks that neither the
// returned error nor the log mentions them.
func TestSNSErrorsLeakNoSecret(t *testing.T) {
	const key, secret = "AKIAFLOWGUARDLEAKTEST", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYLEAKYKEY"
	for _, tc := range []struct {
		status    int
		code      string
		wantRetry bool
	}{
		{http.StatusForbidden, "AuthorizationError", false},
		{http.StatusBadRequest, "Throttling", true},
		{http.StatusInternalServerError, "InternalError", true},
	} {
		t.Run(tc.code, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/xml")
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>request from %s signed with %s</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`,
					tc.code, r.Header.Get("Authorization"), secret)
			}))
			defer srv.Close()
			var logs bytes.Buffer
			n, err := NewSNS(SNSConfig{Name: "s", TopicARN: "arn:aws:sns:us-east-1:123456789012:t", Endpoint: srv.URL},
				testAWSConfig(key, secret), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			retry, err := n.Notify(context.Background(), respond.Message{Subject: "s", Text: "t"})
			if err == nil {
				t.Fatal("want an error")
			}
			if retry != tc.wantRetry {
				t.Errorf("retry = %v, want %v (%v)", retry, tc.wantRetry, err)
			}
			assertNoSecret(t, err, &logs, key, secret)
			if !strings.Contains(err.Error(), tc.code) {
				t.Errorf("error %q should still name the AWS error code", err)
			}
		})
	}
}

// assertNoSecret fails if any secret appears in the error or the logs.
func assertNoSecret(t *testing.T, err error, logs *bytes.Buffer, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error text leaks a secret: %v", err)
		}
		if strings.Contains(logs.String(), s) {
			t.Errorf("log output leaks a secret: %s", logs.String())
		}
	}
	if err != nil && !strings.Contains(err.Error(), redacted) && strings.Contains(err.Error(), "signed with") {
		t.Errorf("error was not scrubbed: %v", err)
	}
}
