package notify

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Secret is a credential: a webhook URL, an HMAC key, a password. It
// prints, marshals and logs as "<redacted>"; only the notifier that needs
// it reads the value.
type Secret string

const redacted = "<redacted>"

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString hides the value from %#v.
func (s Secret) GoString() string { return s.String() }

// MarshalJSON hides the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalYAML hides the value.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// LogValue hides the value from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// scrubber removes secrets from error text.
type scrubber []string

// newScrubber collects the secrets and the forms they take in URLs and
// error messages (escaped, path and query parts of a secret URL).
func newScrubber(secrets ...string) scrubber {
	var s scrubber
	add := func(v string) {
		if len(v) >= 4 {
			s = append(s, v)
		}
	}
	for _, v := range secrets {
		if v == "" {
			continue
		}
		add(v)
		add(url.QueryEscape(v))
		add(url.PathEscape(v))
		if u, err := url.Parse(v); err == nil && u.Host != "" {
			// The path and query of a webhook URL carry the token.
			add(u.EscapedPath())
			add(u.RawQuery)
			if u.User != nil {
				add(u.User.String())
			}
		}
	}
	return s
}

func (s scrubber) clean(msg string) string {
	for _, v := range s {
		msg = strings.ReplaceAll(msg, v, redacted)
	}
	return msg
}

// notifyError is what notifiers return: its text has been scrubbed, and
// the classification survives the scrubbing.
type notifyError struct {
	msg        string
	retryAfter time.Duration
	cause      error // only for errors.Is on context errors; text not used
}

func (e *notifyError) Error() string { return e.msg }

func (e *notifyError) Unwrap() error {
	if errors.Is(e.cause, context.Canceled) {
		return context.Canceled
	}
	if errors.Is(e.cause, context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return nil
}

// RetryAfter is how long the receiver asked to wait (Slack's 429
// Retry-After), or 0.
func (e *notifyError) RetryAfter() time.Duration { return e.retryAfter }

// RetryAfter returns the delay a notifier was asked to wait before
// retrying (an HTTP 429's Retry-After), if the error carries one. The
// pipeline should wait at least that long.
func RetryAfter(err error) (time.Duration, bool) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && ra.RetryAfter() > 0 {
		return ra.RetryAfter(), true
	}
	return 0, false
}

// fail builds a scrubbed error.
func (s scrubber) fail(prefix string, err error) error {
	msg := prefix
	if err != nil {
		msg += ": " + err.Error()
	}
	return &notifyError{msg: s.clean(msg), cause: err}
}

// transient says whether a transport error is worth retrying: timeouts,
// refused or reset connections. Cancellation by the caller is not.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// truncateBytes cuts s to at most n bytes at a rune boundary.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// truncateRunes cuts s to at most n runes, ending in an ellipsis when cut.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	if n == 1 {
		return "…"
	}
	i, count := 0, 0
	for i = range s {
		if count == n-1 {
			break
		}
		count++
	}
	return strings.TrimRight(s[:i], " ") + "…"
}
