package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Options are what every notifier takes besides its own config.
type Options struct {
	// Logger receives one line per delivery and per failure; nil means
	// slog.Default(). Secrets never reach it.
	Logger *slog.Logger
	// HTTPClient for Slack and webhooks; nil means one with the
	// notifier's timeout.
	HTTPClient *http.Client
	// Language of the few words notifiers add themselves (Slack field
	// labels, truncation notes): "en" or "ja".
	Language string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) httpClient(timeout time.Duration) *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	return &http.Client{
		Timeout: timeout,
		// A redirect would repeat the (secret) URL in errors and could
		// send the signed body elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// words are the few phrases notifiers add to messages themselves.
var words = map[string]map[string]string{
	English: {
		"truncated": "\n\n[flowguard: this message was cut to fit the %s limit; %d bytes were left out. The dashboard and `flowguard findings list` have everything.]\n",
		"severity":  "Severity", "type": "Type", "actor": "Actor", "target": "Target",
		"ports": "Ports", "count": "Count", "first": "First seen", "last": "Last seen",
		"dashboard": "Open the dashboard", "more": "… and %d more: see the dashboard.",
		"findings": "%d findings, highest: %s", "alarm": "Alarm", "state": "State", "time": "Time",
		"many": "many addresses", "updated": " (update)", "cut": "\n[cut here; the full text is in the e-mail and on the dashboard]",
	},
	Japanese: {
		"truncated": "\n\n[flowguard: %s の上限に合わせて本文を切り詰めました（%d バイト省略）。全文はダッシュボードか `flowguard findings list` で確認してください。]\n",
		"severity":  "重要度", "type": "種類", "actor": "攻撃元", "target": "対象",
		"ports": "ポート", "count": "回数", "first": "初回", "last": "最終",
		"dashboard": "ダッシュボードを開く", "more": "…ほか %d 件。ダッシュボードで確認してください。",
		"findings": "検知 %d 件（最高重要度: %s）", "alarm": "アラーム", "state": "状態", "time": "時刻",
		"many": "複数のアドレス", "updated": "（更新）", "cut": "\n[ここで切り詰めました。全文はメールかダッシュボードで確認してください]",
	},
}

func word(lang, key string) string {
	if m, ok := words[lang]; ok {
		if w, ok := m[key]; ok {
			return w
		}
	}
	return words[English][key]
}

// truncateWithNote cuts text to at most limit bytes, at a rune boundary,
// ending with a note saying how much was left out.
func truncateWithNote(text string, limit int, lang, what string) string {
	if len(text) <= limit {
		return text
	}
	// The note's length depends on the number it carries; reserve for
	// the longest.
	reserve := len(fmt.Sprintf(word(lang, "truncated"), what, len(text)))
	kept := truncateBytes(text, limit-reserve)
	return kept + fmt.Sprintf(word(lang, "truncated"), what, len(text)-len(kept))
}

// awsRetryable classifies an AWS SDK error: throttling, 5xx, timeouts and
// broken connections are worth retrying; 4xx (bad parameters, missing
// topics, denied access) are not.
func awsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "Throttling", "ThrottlingException", "Throttled", "ThrottledException",
			"RequestLimitExceeded", "TooManyRequestsException", "KMSThrottling",
			"RequestThrottled", "RequestThrottledException", "SlowDown",
			"InternalError", "InternalFailure", "InternalErrorException",
			"ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout":
			return true
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		s := re.HTTPStatusCode()
		return s == http.StatusTooManyRequests || s >= 500
	}
	var ce *aws.RequestCanceledError
	if errors.As(err, &ce) {
		return errors.Is(err, context.DeadlineExceeded)
	}
	return transient(err) || strings.Contains(err.Error(), "connection reset")
}

// pacer keeps at least min between two sends and honours a receiver's
// Retry-After.
type pacer struct {
	mu       sync.Mutex
	min      time.Duration
	next     time.Time // earliest next send
	notUntil time.Time // from a Retry-After
}

// wait blocks until a send is allowed, or returns the remaining time if
// the receiver asked us to wait longer than the context allows.
func (p *pacer) wait(ctx context.Context, now func() time.Time) (time.Duration, error) {
	p.mu.Lock()
	t := p.next
	if p.notUntil.After(t) {
		t = p.notUntil
	}
	start := t
	if n := now(); start.Before(n) {
		start = n
	}
	p.next = start.Add(p.min)
	p.mu.Unlock()
	d := time.Until(start)
	if d <= 0 {
		return 0, nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return d, context.DeadlineExceeded
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return d, ctx.Err()
	case <-tm.C:
		return 0, nil
	}
}

func (p *pacer) backoff(until time.Time) {
	p.mu.Lock()
	if until.After(p.notUntil) {
		p.notUntil = until
	}
	p.mu.Unlock()
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// httpStatusRetryable says whether an HTTP status is worth retrying.
func httpStatusRetryable(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500
}

// readSnippet reads the start of a response body for an error message,
// and drains the rest so the connection can be reused.
func readSnippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 1<<20))
	return strings.TrimSpace(string(b))
}
