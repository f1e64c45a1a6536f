package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/respond"
)

// Webhook headers.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the
	// body, keyed with the configured secret.
	SignatureHeader = "X-Flowguard-Signature"
	// TimestampHeader carries the send time in Unix seconds; the body's
	// sent_at is the same instant, so the signature covers it.
	TimestampHeader = "X-Flowguard-Timestamp"
	// DeliveryHeader is a unique id per delivery attempt's payload, for
	// receivers that drop replays they have already seen.
	DeliveryHeader = "X-Flowguard-Delivery"
)

// WebhookPayload is the JSON body of a webhook: findings in the shape of
// DESIGN.md (as `flowguard detect --output json` prints them) and alarm
// state changes.
type WebhookPayload struct {
	Version  string              `json:"version"` // "1"
	Delivery string              `json:"delivery"`
	SentAt   time.Time           `json:"sent_at"`
	Subject  string              `json:"subject"`
	Text     string              `json:"text"`
	Link     string              `json:"link,omitempty"`
	Findings []finding.Finding   `json:"findings"`
	Updated  []string            `json:"updated"` // ids of findings that existed before
	Alarms   []alarm.StateChange `json:"alarms"`
}

// Webhook posts signed JSON to an HTTP endpoint.
type Webhook struct {
	name    string
	url     string
	secret  []byte
	headers map[string]string
	client  *http.Client
	scrub   scrubber
	opts    Options
}

// NewWebhook returns a generic webhook notifier.
func NewWebhook(c WebhookConfig, opts Options) (*Webhook, error) {
	if c.URL == "" || c.Secret == "" {
		return nil, fmt.Errorf("notify: webhook %q: url and secret are required (call Config.Resolve to read the *_file settings)", c.Name)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("notify: webhook %q: %w", c.Name, err)
	}
	return &Webhook{
		name: c.Name, url: string(c.URL), secret: []byte(c.Secret), headers: c.Headers,
		client: opts.httpClient(c.Timeout),
		scrub:  newScrubber(string(c.URL), string(c.Secret)),
		opts:   opts,
	}, nil
}

// Name is the notifier's name from the config.
func (w *Webhook) Name() string { return w.name }

// Sign returns the X-Flowguard-Signature value for body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a webhook request as a receiver should: the signature
// over the body, and that the timestamp (header and body agree) is within
// maxSkew of now. It returns the decoded payload.
func Verify(secret []byte, header http.Header, body []byte, maxSkew time.Duration, now time.Time) (*WebhookPayload, error) {
	sig := header.Get(SignatureHeader)
	if !hmac.Equal([]byte(sig), []byte(Sign(secret, body))) {
		return nil, errors.New("webhook: bad signature")
	}
	var p WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("webhook: cannot decode body: %w", err)
	}
	ts, err := strconv.ParseInt(header.Get(TimestampHeader), 10, 64)
	if err != nil || ts != p.SentAt.Unix() {
		return nil, errors.New("webhook: timestamp header missing or not the body's sent_at")
	}
	if d := now.Sub(p.SentAt); d > maxSkew || d < -maxSkew {
		return nil, fmt.Errorf("webhook: sent %s from now, more than %s: a replay?", d.Round(time.Second), maxSkew)
	}
	return &p, nil
}

// Notify posts the payload; 429, 408 and 5xx are retryable.
func (w *Webhook) Notify(ctx context.Context, msg respond.Message) (bool, error) {
	log := w.opts.logger().With("notifier", w.name, "kind", "webhook")
	p := WebhookPayload{
		Version: "1", Delivery: newID(), SentAt: w.opts.now().UTC().Truncate(time.Second),
		Subject: msg.Subject, Text: msg.Text, Link: msg.Link,
		Findings: []finding.Finding{}, Updated: []string{}, Alarms: []alarm.StateChange{},
	}
	for _, e := range msg.Events {
		if e.Finding != nil {
			p.Findings = append(p.Findings, *e.Finding)
			if e.Updated {
				p.Updated = append(p.Updated, e.Finding.ID)
			}
		}
		if e.Alarm != nil {
			p.Alarms = append(p.Alarms, *e.Alarm)
		}
	}
	body, err := json.Marshal(p)
	if err != nil {
		return false, fmt.Errorf("webhook %s: cannot encode the payload: %w", w.name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return false, w.scrub.fail("webhook "+w.name+": cannot build the request", err)
	}
	for k, v := range w.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "flowguard")
	req.Header.Set(SignatureHeader, Sign(w.secret, body))
	req.Header.Set(TimestampHeader, strconv.FormatInt(p.SentAt.Unix(), 10))
	req.Header.Set(DeliveryHeader, p.Delivery)
	resp, err := w.client.Do(req)
	if err != nil {
		retry := transient(err)
		e := w.scrub.fail("webhook "+w.name+": post failed", err)
		log.Warn("notification failed", "error", e.Error(), "retry", retry)
		return retry, e
	}
	defer resp.Body.Close()
	snippet := readSnippet(resp.Body)
	if resp.StatusCode/100 == 2 {
		log.Info("notification sent", "delivery", p.Delivery, "events", len(msg.Events))
		return false, nil
	}
	e := &notifyError{msg: w.scrub.clean(fmt.Sprintf("webhook %s: HTTP %d: %s", w.name, resp.StatusCode, snippet))}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), w.opts.now())
	}
	retry := httpStatusRetryable(resp.StatusCode)
	log.Warn("notification failed", "error", e.Error(), "retry", retry)
	return retry, e
}

// newID returns 16 random bytes in hex.
func newID() string {
	var b [16]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return strings.ToLower(hex.EncodeToString(b[:]))
}
