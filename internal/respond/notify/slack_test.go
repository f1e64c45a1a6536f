package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flowguard/flowguard/internal/respond"
)

// slackRecorder is a fake incoming webhook that validates what it gets
// against Block Kit's limits.
type slackRecorder struct {
	t        *testing.T
	mu       sync.Mutex
	got      []map[string]any
	statuses []int // answered in order; 200 when exhausted
	header   http.Header
}

func (r *slackRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if ct := req.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		r.t.Errorf("Content-Type = %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		r.t.Errorf("body is not JSON: %v", err)
	}
	validateBlockKit(r.t, m)
	r.got = append(r.got, m)
	status := http.StatusOK
	if len(r.statuses) > 0 {
		status, r.statuses = r.statuses[0], r.statuses[1:]
	}
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	if status == http.StatusOK {
		io.WriteString(w, "ok")
	} else {
		io.WriteString(w, "no_service: "+req.URL.Path)
	}
}

func validateBlockKit(t *testing.T, m map[string]any) {
	t.Helper()
	blocks, _ := m["blocks"].([]any)
	if len(blocks) == 0 || len(blocks) > 50 {
		t.Errorf("%d blocks; Slack wants 1 to 50", len(blocks))
	}
	if s, _ := m["text"].(string); s == "" {
		t.Error("no fallback text")
	}
	for i, b := range blocks {
		b := b.(map[string]any)
		text, _ := b["text"].(map[string]any)
		s, _ := text["text"].(string)
		switch b["type"] {
		case "header":
			if text["type"] != "plain_text" || utf8.RuneCountInString(s) > 150 || s == "" {
				t.Errorf("block %d: bad header %v", i, text)
			}
		case "section":
			if utf8.RuneCountInString(s) > 3000 {
				t.Errorf("block %d: section text has %d characters", i, utf8.RuneCountInString(s))
			}
			fields, _ := b["fields"].([]any)
			if len(fields) > 10 {
				t.Errorf("block %d: %d fields", i, len(fields))
			}
			for _, f := range fields {
				if n := utf8.RuneCountInString(f.(map[string]any)["text"].(string)); n > 2000 {
					t.Errorf("block %d: field of %d characters", i, n)
				}
			}
			if s == "" && len(fields) == 0 {
				t.Errorf("block %d: empty section", i)
			}
		case "divider", "context", "actions":
		default:
			t.Errorf("block %d: unknown type %v", i, b["type"])
		}
	}
}

func slackFor(t *testing.T, url string, logs *bytes.Buffer) *Slack {
	t.Helper()
	opts := Options{}
	if logs != nil {
		opts.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}
	s, err := NewSlack(SlackConfig{Name: "sec", WebhookURL: Secret(url), MinInterval: time.Millisecond}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSlackMessage(t *testing.T) {
	rec := &slackRecorder{t: t}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	tm, _ := NewTemplates(English, nil)
	f := sshFinding()
	msg, err := tm.Render(Data{Events: []respond.Event{{Finding: f}}, DryRun: true, Now: t0, Link: "https://fg.example.com/f/1"})
	if err != nil {
		t.Fatal(err)
	}
	msg.Text += "\n<script>&" // must be escaped for mrkdwn
	if retry, err := slackFor(t, srv.URL+"/services/T0/B0/tok", nil).Notify(context.Background(), msg); err != nil {
		t.Fatalf("retry=%v err=%v", retry, err)
	}
	if len(rec.got) != 1 {
		t.Fatalf("%d posts, want 1", len(rec.got))
	}
	raw, _ := json.Marshal(rec.got[0])
	s := string(raw)
	blocks := rec.got[0]["blocks"].([]any)
	header := blocks[0].(map[string]any)["text"].(map[string]any)["text"].(string)
	if !strings.Contains(header, "Low") || !strings.Contains(header, "UnauthorizedAccess:EC2/SSHBruteForce") {
		t.Errorf("header %q lacks level and type", header)
	}
	for _, want := range []string{"*Actor*\\n198.51.100.23", "*Target*\\n10.0.1.10 (i-0123456789abcdef0)", "*Ports*\\n22", "*Count*\\n1,042",
		"*First seen*\\n2026-11-22T10:00:00Z", "*Last seen*\\n2026-11-22T10:02:30Z", "https://fg.example.com/f/1", "dry-run mode", "\\u0026lt;script\\u0026gt;\\u0026amp;"} {
		if !strings.Contains(s, want) {
			t.Errorf("payload lacks %q", want)
		}
	}
}

func TestSlackDigestLimits(t *testing.T) {
	rec := &slackRecorder{t: t}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	var evs []respond.Event
	for i := 0; i < 60; i++ {
		f := *scanFinding()
		f.Title = strings.Repeat("very long title ", 300) // 4,800 characters
		evs = append(evs, respond.Event{Finding: &f})
	}
	evs = append(evs, respond.Event{Alarm: alarmChange()})
	tm, _ := NewTemplates(Japanese, nil)
	msg, err := tm.Render(Data{Events: evs, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slackFor(t, srv.URL, nil).Notify(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if len(rec.got) != 1 {
		t.Fatalf("%d posts for one digest, want 1", len(rec.got))
	}
	s, _ := json.Marshal(rec.got[0])
	if !strings.Contains(string(s), "and 41 more") { // 61 events, 20 shown
		t.Errorf("digest does not say how many were left out: %.3000s", s)
	}
}

func TestSlackRetries(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		wantRetry  bool
		wantAfter  time.Duration
	}{
		{"throttled", http.StatusTooManyRequests, "2", true, 2 * time.Second},
		{"server error", http.StatusBadGateway, "", true, 0},
		{"gone", http.StatusGone, "", false, 0},
		{"bad payload", http.StatusBadRequest, "", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &slackRecorder{t: t, statuses: []int{tt.status}, header: http.Header{}}
			if tt.retryAfter != "" {
				rec.header.Set("Retry-After", tt.retryAfter)
			}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			s := slackFor(t, srv.URL, nil)
			retry, err := s.Notify(context.Background(), respond.Message{Subject: "x", Events: []respond.Event{{Finding: sshFinding()}}})
			if err == nil || retry != tt.wantRetry {
				t.Fatalf("retry=%v err=%v, want retry=%v and an error", retry, err, tt.wantRetry)
			}
			after, ok := RetryAfter(err)
			if after != tt.wantAfter || ok != (tt.wantAfter > 0) {
				t.Errorf("RetryAfter = %v %v, want %v", after, ok, tt.wantAfter)
			}
			if tt.wantAfter > 0 {
				// The next message must not be posted before Retry-After.
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				defer cancel()
				retry, err := s.Notify(ctx, respond.Message{Subject: "y", Events: []respond.Event{{Finding: sshFinding()}}})
				if err == nil || !retry {
					t.Errorf("second message during Retry-After: retry=%v err=%v", retry, err)
				}
				if len(rec.got) != 1 {
					t.Errorf("%d posts; the second was sent during Retry-After", len(rec.got))
				}
			}
		})
	}
}

func TestSlackPacing(t *testing.T) {
	rec := &slackRecorder{t: t}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s, err := NewSlack(SlackConfig{Name: "p", WebhookURL: Secret(srv.URL), MinInterval: 100 * time.Millisecond}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < 3; i++ {
		if _, err := s.Notify(context.Background(), respond.Message{Subject: "x", Events: []respond.Event{{Finding: sshFinding()}}}); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("3 messages in %v; want at least 2 intervals of 100ms", el)
	}
}

func TestSlackLeaksNoSecret(t *testing.T) {
	const token = "XoXbSecretWebhookToken42"
	rec := &slackRecorder{t: t, statuses: []int{http.StatusNotFound}}
	srv := httptest.NewServer(rec)
	url := srv.URL + "/services/T000/B000/" + token
	for _, tc := range []struct {
		name string
		prep func()
	}{
		{"error body echoes the URL", func() {}},
		{"connection refused", srv.Close},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.prep()
			var logs bytes.Buffer
			s := slackFor(t, url, &logs)
			_, err := s.Notify(context.Background(), respond.Message{Subject: "x", Events: []respond.Event{{Finding: sshFinding()}}})
			if err == nil {
				t.Fatal("want an error")
			}
			assertNoSecret(t, err, &logs, token, url)
		})
	}
	// The config itself, printed or marshalled, hides the URL.
	c := SlackConfig{Name: "x", WebhookURL: Secret(url)}
	b, _ := json.Marshal(c)
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "slack", c, "url", c.WebhookURL)
	for _, out := range []string{string(b), logs.String(), c.WebhookURL.String()} {
		if strings.Contains(out, token) {
			t.Errorf("secret shown: %s", out)
		}
	}
}
