package awstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// EventBridgeMaxEntries and EventBridgeMaxRequestSize are PutEvents'
// limits: 10 entries per call, entries under 256 KB in total, sizes
// counted as AWS documents (Time 14 bytes; Source, DetailType, Detail and
// each resource by their UTF-8 length).
const (
	EventBridgeMaxEntries     = 10
	EventBridgeMaxRequestSize = 256 * 1024
)

// EventBridgeEntry is one event the server accepted.
type EventBridgeEntry struct {
	EventID      string
	EventBusName string
	Source       string
	DetailType   string
	Detail       string
	Resources    []string
	Time         time.Time
}

// EventBridge is a test server for EventBridge's PutEvents (JSON 1.1,
// X-Amz-Target: AWSEvents.PutEvents) that records accepted entries and
// can throttle calls or fail single entries.
type EventBridge struct {
	// URL is the endpoint to give the SDK as BaseEndpoint.
	URL string

	mu          sync.Mutex
	entries     []EventBridgeEntry
	calls       int
	throttle    int
	serverError int
	failCodes   []string
	seq         int
}

// NewEventBridge starts the server on 127.0.0.1; it stops when the test
// ends.
func NewEventBridge(t testing.TB) *EventBridge {
	t.Helper()
	s := &EventBridge{}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Config returns an aws.Config that reaches the server with static
// credentials and no SDK retries.
func (s *EventBridge) Config() aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEVENTBRIDGETEST", "eventbridge-test-secret", ""),
		BaseEndpoint: aws.String(s.URL),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
}

// Entries returns the accepted entries in the order they arrived.
func (s *EventBridge) Entries() []EventBridgeEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]EventBridgeEntry(nil), s.entries...)
}

// Calls is the number of PutEvents calls received, failed ones included.
func (s *EventBridge) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Throttle makes the next n calls fail whole with ThrottlingException.
func (s *EventBridge) Throttle(n int) {
	s.mu.Lock()
	s.throttle = n
	s.mu.Unlock()
}

// FailCalls makes the next n calls fail whole with HTTP 500
// InternalException.
func (s *EventBridge) FailCalls(n int) {
	s.mu.Lock()
	s.serverError = n
	s.mu.Unlock()
}

// FailEntries gives the next entries received these per-entry error codes
// in order ("" accepts the entry): a partial failure, FailedEntryCount > 0.
// Typical codes: ThrottlingException, InternalFailure (worth retrying),
// MalformedDetail, InvalidArgument, AccessDeniedException.
func (s *EventBridge) FailEntries(codes ...string) {
	s.mu.Lock()
	s.failCodes = append(s.failCodes, codes...)
	s.mu.Unlock()
}

type ebRequestEntry struct {
	Detail       *string  `json:"Detail"`
	DetailType   *string  `json:"DetailType"`
	EventBusName string   `json:"EventBusName"`
	Resources    []string `json:"Resources"`
	Source       *string  `json:"Source"`
	Time         *float64 `json:"Time"`
}

type ebResultEntry struct {
	EventID      string `json:"EventId,omitempty"`
	ErrorCode    string `json:"ErrorCode,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
}

func ebError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

func (s *EventBridge) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if r.Method != http.MethodPost {
		ebError(w, http.StatusMethodNotAllowed, "UnknownOperationException", "POST only")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		ebError(w, http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	if tgt := r.Header.Get("X-Amz-Target"); tgt != "AWSEvents.PutEvents" {
		ebError(w, http.StatusBadRequest, "UnknownOperationException", fmt.Sprintf("unsupported target %q", tgt))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		ebError(w, http.StatusBadRequest, "SerializationException", fmt.Sprintf("unexpected content type %q", ct))
		return
	}
	if s.throttle > 0 {
		s.throttle--
		ebError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	}
	if s.serverError > 0 {
		s.serverError--
		ebError(w, http.StatusInternalServerError, "InternalException", "internal error")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		ebError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	var req struct {
		Entries []ebRequestEntry `json:"Entries"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		ebError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	if n := len(req.Entries); n < 1 || n > EventBridgeMaxEntries {
		ebError(w, http.StatusBadRequest, "ValidationException",
			fmt.Sprintf("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and %d (got %d)", EventBridgeMaxEntries, n))
		return
	}
	total := 0
	for _, e := range req.Entries {
		total += EventBridgeEntrySize(deref(e.Source), deref(e.DetailType), deref(e.Detail), e.Resources, e.Time != nil)
	}
	if total >= EventBridgeMaxRequestSize {
		ebError(w, http.StatusBadRequest, "ValidationException", "Total size of the entries in the request is over the limit.")
		return
	}
	out := struct {
		FailedEntryCount int             `json:"FailedEntryCount"`
		Entries          []ebResultEntry `json:"Entries"`
	}{}
	for _, e := range req.Entries {
		res := ebResultEntry{}
		switch {
		case len(s.failCodes) > 0 && s.failCodes[0] != "":
			res.ErrorCode, res.ErrorMessage = s.failCodes[0], "injected failure"
		case deref(e.Source) == "" || deref(e.DetailType) == "" || e.Detail == nil:
			res.ErrorCode, res.ErrorMessage = "InvalidArgument", "Parameter(s) Source, DetailType and Detail are required."
		case !isJSONObject(*e.Detail):
			res.ErrorCode, res.ErrorMessage = "MalformedDetail", "Detail is malformed."
		}
		if len(s.failCodes) > 0 {
			s.failCodes = s.failCodes[1:]
		}
		if res.ErrorCode != "" {
			out.FailedEntryCount++
		} else {
			s.seq++
			res.EventID = fmt.Sprintf("11111111-2222-3333-4444-%012d", s.seq)
			acc := EventBridgeEntry{EventID: res.EventID, EventBusName: e.EventBusName, Source: *e.Source,
				DetailType: *e.DetailType, Detail: *e.Detail, Resources: e.Resources}
			if e.Time != nil {
				acc.Time = time.Unix(0, int64(*e.Time*1e9)).UTC()
			}
			s.entries = append(s.entries, acc)
		}
		out.Entries = append(out.Entries, res)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// EventBridgeEntrySize computes an entry's size as AWS documents it.
func EventBridgeEntrySize(source, detailType, detail string, resources []string, hasTime bool) int {
	n := len(source) + len(detailType) + len(detail)
	if hasTime {
		n += 14
	}
	for _, r := range resources {
		n += len(r)
	}
	return n
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func isJSONObject(s string) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal([]byte(s), &m) == nil
}
