package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"log/slog"

	"github.com/flowguard/flowguard/internal/respond"
)

func TestWebhookSignedPayload(t *testing.T) {
	const secret = "s3cr3t-hmac-key"
	now := time.Date(2026, 11, 22, 10, 10, 0, 0, time.UTC)
	var body []byte
	var hdr http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		hdr = r.Header.Clone()
	}))
	defer srv.Close()
	n, err := NewWebhook(WebhookConfig{Name: "siem", URL: Secret(srv.URL + "/hook"), Secret: secret, Headers: map[string]string{"X-Team": "sec"}},
		Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	f := sshFinding()
	msg := respond.Message{Subject: "subj", Text: "text", Events: []respond.Event{{Finding: f, Updated: true}, {Alarm: alarmChange()}}}
	if retry, err := n.Notify(context.Background(), msg); err != nil {
		t.Fatalf("retry=%v err=%v", retry, err)
	}

	// The signature, computed here on our own.
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); hdr.Get("X-Flowguard-Signature") != want {
		t.Errorf("signature %q, want %q", hdr.Get("X-Flowguard-Signature"), want)
	}
	if got := hdr.Get("X-Flowguard-Timestamp"); got != strconv.FormatInt(now.Unix(), 10) {
		t.Errorf("timestamp header %q, want %d", got, now.Unix())
	}
	if hdr.Get("X-Team") != "sec" || hdr.Get("Content-Type") != "application/json" {
		t.Errorf("headers: %v", hdr)
	}

	// The body: findings in DESIGN.md's shape, alarms, updated ids.
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	fs := p["findings"].([]any)
	if len(fs) != 1 {
		t.Fatalf("%d findings", len(fs))
	}
	got := fs[0].(map[string]any)
	for k, want := range map[string]any{
		"id": f.ID, "type": "UnauthorizedAccess:EC2/SSHBruteForce", "severity": 2.0, "count": 1042.0,
		"first_seen": "2026-11-22T10:00:00Z", "last_seen": "2026-11-22T10:02:30Z", "archived": false,
	} {
		if got[k] != want {
			t.Errorf("finding %s = %v, want %v", k, got[k], want)
		}
	}
	if a := got["actor"].(map[string]any); a["ip"] != "198.51.100.23" || a["direction"] != "inbound" {
		t.Errorf("actor %v", a)
	}
	if tg := got["target"].(map[string]any); tg["ip"] != "10.0.1.10" || tg["interface_id"] != "eni-0a1b2c3d4e5f60718" {
		t.Errorf("target %v", tg)
	}
	if u := p["updated"].([]any); len(u) != 1 || u[0] != f.ID {
		t.Errorf("updated %v", u)
	}
	if al := p["alarms"].([]any); len(al) != 1 || al[0].(map[string]any)["to"] != "ALARM" {
		t.Errorf("alarms %v", al)
	}

	// What a receiver does with it.
	if _, err := Verify([]byte(secret), hdr, body, 5*time.Minute, now.Add(time.Minute)); err != nil {
		t.Errorf("Verify rejected a good delivery: %v", err)
	}
	if _, err := Verify([]byte(secret), hdr, body, 5*time.Minute, now.Add(time.Hour)); err == nil {
		t.Error("Verify accepted a replay an hour later")
	}
	if _, err := Verify([]byte("wrong"), hdr, body, 5*time.Minute, now); err == nil {
		t.Error("Verify accepted a signature made with another key")
	}
	tampered := bytes.Replace(body, []byte("198.51.100.23"), []byte("198.51.100.24"), 1)
	if _, err := Verify([]byte(secret), hdr, tampered, 5*time.Minute, now); err == nil {
		t.Error("Verify accepted a tampered body")
	}
	moved := hdr.Clone()
	moved.Set("X-Flowguard-Timestamp", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
	if _, err := Verify([]byte(secret), moved, body, 5*time.Minute, now.Add(time.Hour)); err == nil {
		t.Error("Verify accepted a timestamp header changed to pass the replay window")
	}
}

func TestWebhookRetries(t *testing.T) {
	for _, tt := range []struct {
		status int
		retry  bool
	}{{500, true}, {503, true}, {429, true}, {408, true}, {400, false}, {401, false}, {404, false}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tt.status) }))
		n, _ := NewWebhook(WebhookConfig{Name: "w", URL: Secret(srv.URL), Secret: "k"}, Options{})
		retry, err := n.Notify(context.Background(), respond.Message{Events: []respond.Event{{Finding: sshFinding()}}})
		if err == nil || retry != tt.retry {
			t.Errorf("HTTP %d: retry=%v err=%v, want retry=%v", tt.status, retry, err, tt.retry)
		}
		srv.Close()
	}
	// A server that never answers: a timeout is retryable.
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	n, _ := NewWebhook(WebhookConfig{Name: "w", URL: Secret(srv.URL), Secret: "k", Timeout: 50 * time.Millisecond}, Options{})
	if retry, err := n.Notify(context.Background(), respond.Message{Events: []respond.Event{{Finding: sshFinding()}}}); err == nil || !retry {
		t.Errorf("timeout: retry=%v err=%v, want a retryable error", retry, err)
	}
}

func TestWebhookLeaksNoSecret(t *testing.T) {
	const token, key = "tok-9f8e7d6c5b4a", "hmac-key-0123456789"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "cannot deliver to "+r.URL.String()+" with key "+key)
	}))
	url := srv.URL + "/hooks?token=" + token
	for _, tc := range []struct {
		name string
		prep func()
	}{{"error body echoes secrets", func() {}}, {"connection refused", srv.Close}} {
		t.Run(tc.name, func(t *testing.T) {
			tc.prep()
			var logs bytes.Buffer
			n, err := NewWebhook(WebhookConfig{Name: "w", URL: Secret(url), Secret: key}, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			_, err = n.Notify(context.Background(), respond.Message{Events: []respond.Event{{Finding: sshFinding()}}})
			if err == nil {
				t.Fatal("want an error")
			}
			assertNoSecret(t, err, &logs, token, key, url)
		})
	}
	// Validation errors do not repeat the URL either.
	c := WebhookConfig{Name: "w", URL: Secret("ftp://x/" + token), Secret: key}
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("Validate: %v", err)
	}
}
