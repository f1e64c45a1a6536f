package awstest

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CloudWatch Logs limits, as AWS documents them: a FilterLogEvents page
// holds at most 10,000 events or 1 MB; a PutLogEvents batch at most
// 10,000 events and 1,048,576 bytes, each event counted as its message's
// UTF-8 length plus 26 bytes; events more than 2 hours ahead or older than
// 14 days are rejected.
const (
	LogsMaxPageEvents  = 10000
	LogsMaxPageBytes   = 1 << 20
	LogsMaxBatchEvents = 10000
	LogsMaxBatchBytes  = 1048576
	LogsEventOverhead  = 26
)

// Logs is a CloudWatch Logs test server speaking the service's JSON 1.1
// protocol (X-Amz-Target: Logs_20140328.*): CreateLogGroup,
// CreateLogStream, PutLogEvents and FilterLogEvents, with AWS's ordering
// (event time, then ingestion time, then the PutLogEvents request),
// pagination by nextToken, page limits and error codes, and the fault
// hooks common to the servers (Throttle answers ThrottlingException).
type Logs struct {
	faults
	// URL is the endpoint to give the SDK as BaseEndpoint.
	URL string

	mu         sync.Mutex
	groups     map[string]*logGroup
	seq        int64 // PutLogEvents requests and events, in arrival order
	emptyPages int
	now        func() time.Time
}

type logGroup struct {
	streams map[string]bool
	events  []logEvent
}

type logEvent struct {
	stream     string
	timestamp  int64
	ingestion  int64
	put, index int64 // request and position within it: the tie-breakers
	message    string
}

func (e logEvent) id() string { return fmt.Sprintf("%020d%020d%016d", e.timestamp, e.put, e.index) }

func (e logEvent) compare(f logEvent) int {
	return cmp.Or(cmp.Compare(e.timestamp, f.timestamp), cmp.Compare(e.ingestion, f.ingestion), cmp.Compare(e.put, f.put), cmp.Compare(e.index, f.index))
}

// NewLogs starts the server on 127.0.0.1; it stops when the test ends.
func NewLogs(t TB) *Logs {
	t.Helper()
	s := &Logs{groups: map[string]*logGroup{}, now: time.Now}
	s.init()
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// EmptyPages makes the next n FilterLogEvents calls answer a page with no
// events and a nextToken to go on from where the call began, as AWS may
// ("this operation can return empty results while there are more log
// events available through the token").
func (s *Logs) EmptyPages(n int) {
	s.mu.Lock()
	s.emptyPages = n
	s.mu.Unlock()
}

// Put adds events to a stream, creating the group and the stream, as a
// PutLogEvents call would; the events' ingestion time is now.
func (s *Logs) Put(group, stream string, timestamps []int64, messages []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[group]
	if g == nil {
		g = &logGroup{streams: map[string]bool{}}
		s.groups[group] = g
	}
	g.streams[stream] = true
	s.put(g, stream, timestamps, messages)
}

func (s *Logs) put(g *logGroup, stream string, timestamps []int64, messages []string) {
	s.seq++
	now := s.now().UnixMilli()
	for i := range messages {
		g.events = append(g.events, logEvent{stream: stream, timestamp: timestamps[i], ingestion: now, put: s.seq, index: int64(i), message: messages[i]})
	}
}

type logsErr struct {
	status    int
	typ, text string
}

func (s *Logs) serve(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "Logs_20140328.")
	if r.Method != http.MethodPost || !ok {
		ebError(w, 400, "UnknownOperationException", "unknown target "+target)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		ebError(w, 400, "SerializationException", "Content-Type must be application/x-amz-json-1.1, not "+ct)
		return
	}
	if !signed(r) {
		ebError(w, 403, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	var handler func(*json.Decoder) (any, *logsErr)
	switch op {
	case "CreateLogGroup":
		handler = s.createLogGroup
	case "CreateLogStream":
		handler = s.createLogStream
	case "PutLogEvents":
		handler = s.putLogEvents
	case "FilterLogEvents":
		handler = s.filterLogEvents
	default:
		ebError(w, 400, "UnknownOperationException", "unsupported operation "+op)
		return
	}
	switch s.enter(r.Context(), op) {
	case faultThrottle:
		ebError(w, 400, "ThrottlingException", "Rate exceeded")
		return
	case faultBefore, faultAfter:
		ebError(w, 500, "ServiceUnavailableException", "The service cannot complete the request.")
		return
	}
	out, e := handler(json.NewDecoder(r.Body))
	if e != nil {
		ebError(w, e.status, e.typ, e.text)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func badParam(format string, args ...any) *logsErr {
	return &logsErr{400, "InvalidParameterException", fmt.Sprintf(format, args...)}
}

func decodeInto(d *json.Decoder, v any) *logsErr {
	if err := d.Decode(v); err != nil {
		return &logsErr{400, "SerializationException", err.Error()}
	}
	return nil
}

// group returns the group a request names, by name or by identifier (a
// name or an ARN ending in log-group:NAME).
func (s *Logs) group(name, ident string) (*logGroup, *logsErr) {
	if name != "" && ident != "" {
		return nil, badParam("LogGroup name and LogGroup identifier are mutually exclusive parameters.")
	}
	if ident != "" {
		name = ident
		if i := strings.Index(ident, ":log-group:"); i >= 0 {
			name = strings.TrimSuffix(ident[i+len(":log-group:"):], ":*")
		}
	}
	if name == "" {
		return nil, badParam("Either LogGroup name or LogGroup identifier is required.")
	}
	g := s.groups[name]
	if g == nil {
		return nil, &logsErr{400, "ResourceNotFoundException", "The specified log group does not exist."}
	}
	return g, nil
}

func (s *Logs) createLogGroup(d *json.Decoder) (any, *logsErr) {
	var in struct {
		LogGroupName string `json:"logGroupName"`
	}
	if e := decodeInto(d, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.LogGroupName == "" {
		return nil, badParam("1 validation error detected: Value null at 'logGroupName' failed to satisfy constraint: Member must not be null")
	}
	if s.groups[in.LogGroupName] != nil {
		return nil, &logsErr{400, "ResourceAlreadyExistsException", "The specified log group already exists"}
	}
	s.groups[in.LogGroupName] = &logGroup{streams: map[string]bool{}}
	return struct{}{}, nil
}

func (s *Logs) createLogStream(d *json.Decoder) (any, *logsErr) {
	var in struct {
		LogGroupName  string `json:"logGroupName"`
		LogStreamName string `json:"logStreamName"`
	}
	if e := decodeInto(d, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.group(in.LogGroupName, "")
	if e != nil {
		return nil, e
	}
	if g.streams[in.LogStreamName] {
		return nil, &logsErr{400, "ResourceAlreadyExistsException", "The specified log stream already exists"}
	}
	g.streams[in.LogStreamName] = true
	return struct{}{}, nil
}

func (s *Logs) putLogEvents(d *json.Decoder) (any, *logsErr) {
	var in struct {
		LogGroupName  string `json:"logGroupName"`
		LogStreamName string `json:"logStreamName"`
		LogEvents     []struct {
			Timestamp *int64  `json:"timestamp"`
			Message   *string `json:"message"`
		} `json:"logEvents"`
	}
	if e := decodeInto(d, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.group(in.LogGroupName, "")
	if e != nil {
		return nil, e
	}
	if !g.streams[in.LogStreamName] {
		return nil, &logsErr{400, "ResourceNotFoundException", "The specified log stream does not exist."}
	}
	if n := len(in.LogEvents); n == 0 || n > LogsMaxBatchEvents {
		return nil, badParam("1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length between 1 and 10000")
	}
	size := 0
	for i, ev := range in.LogEvents {
		if ev.Timestamp == nil || ev.Message == nil || *ev.Message == "" {
			return nil, badParam("Log event %d needs a timestamp and a non-empty message", i)
		}
		if i > 0 && *ev.Timestamp < *in.LogEvents[i-1].Timestamp {
			return nil, badParam("Log events in a single PutLogEvents request must be in chronological order.")
		}
		size += len(*ev.Message) + LogsEventOverhead
	}
	if size > LogsMaxBatchBytes {
		return nil, &logsErr{400, "InvalidParameterException", "Upload too large: " + strconv.Itoa(size) + " bytes exceeds limit of 1048576"}
	}
	now := s.now()
	tooNew, tooOld := -1, -1
	var ts []int64
	var msgs []string
	for i, ev := range in.LogEvents {
		t := time.UnixMilli(*ev.Timestamp)
		switch {
		case t.After(now.Add(2 * time.Hour)):
			if tooNew < 0 {
				tooNew = i
			}
		case t.Before(now.Add(-14 * 24 * time.Hour)):
			tooOld = i
		default:
			ts, msgs = append(ts, *ev.Timestamp), append(msgs, *ev.Message)
		}
	}
	s.put(g, in.LogStreamName, ts, msgs)
	out := map[string]any{}
	if tooNew >= 0 || tooOld >= 0 {
		info := map[string]int{}
		if tooNew >= 0 {
			info["tooNewLogEventStartIndex"] = tooNew
		}
		if tooOld >= 0 {
			info["tooOldLogEventEndIndex"] = tooOld
		}
		out["rejectedLogEventsInfo"] = info
	}
	return out, nil
}

// logsToken is what a nextToken carries: the last event returned, so a
// page goes on after it even when events arrive between calls.
type logsToken struct {
	Group     string `json:"g"`
	Timestamp int64  `json:"t"`
	Ingestion int64  `json:"i"`
	Put       int64  `json:"p"`
	Index     int64  `json:"x"`
	Start     bool   `json:"s,omitempty"` // before the first event
}

func (s *Logs) filterLogEvents(d *json.Decoder) (any, *logsErr) {
	var in struct {
		LogGroupName        string   `json:"logGroupName"`
		LogGroupIdentifier  string   `json:"logGroupIdentifier"`
		LogStreamNames      []string `json:"logStreamNames"`
		LogStreamNamePrefix string   `json:"logStreamNamePrefix"`
		StartTime           *int64   `json:"startTime"`
		EndTime             *int64   `json:"endTime"`
		FilterPattern       string   `json:"filterPattern"`
		NextToken           string   `json:"nextToken"`
		Limit               *int     `json:"limit"`
	}
	if e := decodeInto(d, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.group(in.LogGroupName, in.LogGroupIdentifier)
	if e != nil {
		return nil, e
	}
	if len(in.LogStreamNames) > 0 && in.LogStreamNamePrefix != "" {
		return nil, badParam("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
	}
	if in.StartTime != nil && in.EndTime != nil && *in.EndTime < *in.StartTime {
		return nil, badParam("End time must be greater than or equal to start time.")
	}
	limit := LogsMaxPageEvents
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > LogsMaxPageEvents {
			return nil, badParam("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000", *in.Limit)
		}
		limit = *in.Limit
	}
	after := logsToken{Start: true}
	if in.NextToken != "" {
		after = logsToken{}
		raw, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		if err != nil || json.Unmarshal(raw, &after) != nil || after.Group == "" || s.groups[after.Group] != g {
			return nil, badParam("The specified nextToken is invalid.")
		}
	}
	var streams map[string]bool
	if len(in.LogStreamNames) > 0 {
		streams = map[string]bool{}
		for _, n := range in.LogStreamNames {
			streams[n] = true
		}
	}
	terms := strings.Fields(strings.ReplaceAll(in.FilterPattern, `"`, ""))
	evs := slices.Clone(g.events)
	slices.SortFunc(evs, logEvent.compare)
	groupName := in.LogGroupName
	if groupName == "" {
		for n, gg := range s.groups {
			if gg == g {
				groupName = n
			}
		}
	}
	var out []map[string]any
	size := 0
	var last *logEvent
	empty := s.emptyPages > 0
	if empty {
		s.emptyPages--
	}
	more := false
	for i := range evs {
		ev := evs[i]
		if !after.Start && ev.compare(logEvent{timestamp: after.Timestamp, ingestion: after.Ingestion, put: after.Put, index: after.Index}) <= 0 {
			continue
		}
		if in.StartTime != nil && ev.timestamp < *in.StartTime || in.EndTime != nil && ev.timestamp > *in.EndTime {
			continue
		}
		if streams != nil && !streams[ev.stream] || !strings.HasPrefix(ev.stream, in.LogStreamNamePrefix) {
			continue
		}
		if !matchTerms(ev.message, terms) {
			continue
		}
		if empty || len(out) == limit || size+len(ev.message)+LogsEventOverhead > LogsMaxPageBytes {
			more = true
			break
		}
		size += len(ev.message) + LogsEventOverhead
		out = append(out, map[string]any{
			"logStreamName": ev.stream,
			"timestamp":     ev.timestamp,
			"message":       ev.message,
			"ingestionTime": ev.ingestion,
			"eventId":       ev.id(),
		})
		last = &evs[i]
	}
	resp := map[string]any{"events": out, "searchedLogStreams": []any{}}
	if out == nil {
		resp["events"] = []any{}
	}
	if more {
		tok := after
		tok.Group = groupName
		if last != nil {
			tok = logsToken{Group: groupName, Timestamp: last.timestamp, Ingestion: last.ingestion, Put: last.put, Index: last.index}
		}
		raw, _ := json.Marshal(tok)
		resp["nextToken"] = base64.RawURLEncoding.EncodeToString(raw)
	}
	return resp, nil
}

// matchTerms is the term form of filter patterns: every term must occur
// in the message ("" matches everything).
func matchTerms(msg string, terms []string) bool {
	for _, t := range terms {
		if !strings.Contains(msg, t) {
			return false
		}
	}
	return true
}
