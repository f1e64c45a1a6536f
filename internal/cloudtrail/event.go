// Package cloudtrail reads AWS CloudTrail records (S3 delivery files, plain
// files, EventBridge events) and finds in them what flowguard answers:
// console sign-in brute force, root and MFA-less sign-ins, sign-ins from
// unexpected, listed or attacking addresses, changes that open the network
// and changes that blind the account (logging, GuardDuty).
package cloudtrail

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// Event is one CloudTrail record, with the fields the detections read.
// The raw record is kept for the rest.
type Event struct {
	EventVersion        string          `json:"eventVersion"`
	UserIdentity        UserIdentity    `json:"userIdentity"`
	EventTime           time.Time       `json:"eventTime"`
	EventSource         string          `json:"eventSource"`
	EventName           string          `json:"eventName"`
	AWSRegion           string          `json:"awsRegion"`
	SourceIPAddress     string          `json:"sourceIPAddress"`
	UserAgent           string          `json:"userAgent"`
	ErrorCode           string          `json:"errorCode"`
	ErrorMessage        string          `json:"errorMessage"`
	RequestParameters   json.RawMessage `json:"requestParameters"`
	ResponseElements    json.RawMessage `json:"responseElements"`
	AdditionalEventData json.RawMessage `json:"additionalEventData"`
	EventID             string          `json:"eventID"`
	EventType           string          `json:"eventType"`
	RecipientAccountID  string          `json:"recipientAccountId"`

	// Source and Line say where the record was read (file, 1-based line
	// of its first byte).
	Source string `json:"-"`
	Line   int    `json:"-"`
	// Raw is the record as it was read (Flatten gives its fields).
	Raw json.RawMessage `json:"-"`
}

// UserIdentity is CloudTrail's userIdentity element.
type UserIdentity struct {
	Type           string          `json:"type"` // Root, IAMUser, AssumedRole, FederatedUser, AWSService, …
	PrincipalID    string          `json:"principalId"`
	ARN            string          `json:"arn"`
	AccountID      string          `json:"accountId"`
	AccessKeyID    string          `json:"accessKeyId"`
	UserName       string          `json:"userName"`
	InvokedBy      string          `json:"invokedBy"`
	SessionContext *SessionContext `json:"sessionContext"`
}

// SessionContext is the session of temporary credentials.
type SessionContext struct {
	SessionIssuer struct {
		Type     string `json:"type"`
		ARN      string `json:"arn"`
		UserName string `json:"userName"`
	} `json:"sessionIssuer"`
	Attributes struct {
		MFAAuthenticated string `json:"mfaAuthenticated"`
	} `json:"attributes"`
}

// IP is the caller's address; invalid when sourceIPAddress is a service
// name ("ec2.amazonaws.com", "AWS Internal").
func (e *Event) IP() netip.Addr {
	a, err := netip.ParseAddr(e.SourceIPAddress)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// User names the caller as a finding's actor does: the ARN when the
// record has one, else the user name, else the principal id.
func (e *Event) User() string {
	u := e.UserIdentity
	switch {
	case u.ARN != "":
		return u.ARN
	case u.UserName != "":
		return u.UserName
	}
	return u.PrincipalID
}

// Failed reports whether the call or sign-in failed.
func (e *Event) Failed() bool {
	if e.ErrorCode != "" {
		return true
	}
	if e.EventName == "ConsoleLogin" {
		var r struct{ ConsoleLogin string }
		_ = json.Unmarshal(e.ResponseElements, &r)
		return r.ConsoleLogin == "Failure" || e.ErrorMessage != ""
	}
	return false
}

// MFAUsed returns the additionalEventData.MFAUsed of a sign-in ("Yes",
// "No" or "" when absent).
func (e *Event) MFAUsed() string {
	var a struct{ MFAUsed string }
	_ = json.Unmarshal(e.AdditionalEventData, &a)
	return a.MFAUsed
}

// Envelope is an EventBridge event of another kind than a CloudTrail
// one (a "GuardDuty Finding"), handed to Reader.Other.
type Envelope struct {
	DetailType string
	Raw        json.RawMessage // the whole event
	Source     string
	Line       int
}

// Reader reads CloudTrail documents: S3 delivery files
// ({"Records": […]}, plain or gzip), single records, EventBridge events
// ("AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail"),
// and several of these one after another (JSON lines).
type Reader struct {
	// Event receives every record; an error stops the reading.
	Event func(Event) error
	// Other receives EventBridge events of other kinds; nil skips them
	// as malformed input.
	Other func(Envelope) error
	// Errors receives every skipped record, with file, line and column.
	Errors flowlog.ErrorSink
}

// maxDocument bounds one input: CloudTrail delivery files are a few MB.
const maxDocument = 512 << 20

// ReadInput reads one input.
func (r *Reader) ReadInput(ctx context.Context, in flowlog.Input) error {
	rc, err := in.Open(ctx)
	if err != nil {
		r.skip(&flowlog.LineError{Source: in.Name, Msg: err.Error()})
		return nil
	}
	defer rc.Close()
	data, err := readAll(rc)
	if err != nil {
		r.skip(&flowlog.LineError{Source: in.Name, Msg: err.Error()})
		return nil
	}
	return r.Read(in.Name, data)
}

// readAll reads a plain or gzip stream whole.
func readAll(rd io.Reader) ([]byte, error) {
	br := bufio.NewReader(rd)
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		rd = zr
	} else {
		rd = br
	}
	data, err := io.ReadAll(io.LimitReader(rd, maxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	if len(data) > maxDocument {
		return nil, fmt.Errorf("larger than %d MiB: not a CloudTrail file", maxDocument>>20)
	}
	return data, nil
}

func (r *Reader) skip(e *flowlog.LineError) {
	if r.Errors != nil {
		r.Errors.Skip(e)
	}
}

// Read reads the documents of one input already in memory; name is used
// in messages.
func (r *Reader) Read(name string, data []byte) error {
	d := &doc{data: data, lines: newLines(data)}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		off := skipSpace(data, int(dec.InputOffset()))
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			r.skip(syntaxError(name, d, off, err))
			return nil // the rest of the input cannot be framed
		}
		if err := r.document(name, d, off, raw); err != nil {
			return err
		}
	}
}

func skipSpace(data []byte, off int) int {
	for off < len(data) && (data[off] == ' ' || data[off] == '\n' || data[off] == '\r' || data[off] == '\t') {
		off++
	}
	return off
}

// document dispatches one top-level JSON value starting at off.
func (r *Reader) document(name string, data *doc, off int, raw json.RawMessage) error {
	if done, err := r.delivery(name, data, off, raw); done {
		return err
	}
	var head struct {
		Records    json.RawMessage `json:"Records"`
		DetailType *string         `json:"detail-type"`
		Detail     json.RawMessage `json:"detail"`
		EventName  *string         `json:"eventName"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		r.skip(at(name, data, off, "not a JSON object: a CloudTrail file holds {\"Records\": […]}, one record, or EventBridge events"))
		return nil
	}
	switch {
	case head.Records != nil:
		return r.records(name, data, off+bytes.Index(raw, head.Records), head.Records)
	case head.DetailType != nil:
		dt := *head.DetailType
		if strings.HasSuffix(dt, "via CloudTrail") {
			return r.record(name, data, off+bytes.Index(raw, head.Detail), head.Detail)
		}
		if r.Other != nil {
			line, _ := data.lines.position(off)
			return r.Other(Envelope{DetailType: dt, Raw: raw, Source: name, Line: line})
		}
		r.skip(at(name, data, off, fmt.Sprintf("EventBridge event %q is not a CloudTrail event", dt)))
		return nil
	case head.EventName != nil:
		return r.record(name, data, off, raw)
	}
	r.skip(at(name, data, off, "neither a CloudTrail record (no eventName), a {\"Records\": […]} file nor an EventBridge event"))
	return nil
}

// delivery reads an S3 delivery file, {"Records": [ … ]} with Records as
// its first key, in one pass: each record is decoded from the stream, not
// from a copy of the whole array. It reports false for other documents.
func (r *Reader) delivery(name string, data *doc, off int, raw json.RawMessage) (bool, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false, nil
	}
	if t, err := dec.Token(); err != nil || t != "Records" {
		return false, nil
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return false, nil
	}
	for dec.More() {
		start := off + skipSep(raw, int(dec.InputOffset()))
		var it json.RawMessage
		if err := dec.Decode(&it); err != nil {
			r.skip(syntaxError(name, data, start, err))
			return true, nil
		}
		if err := r.record(name, data, start, it); err != nil {
			return true, err
		}
	}
	return true, nil
}

// skipSep skips the spaces and the comma between array elements.
func skipSep(data []byte, off int) int {
	for off < len(data) && (data[off] == ',' || data[off] == ' ' || data[off] == '\n' || data[off] == '\r' || data[off] == '\t') {
		off++
	}
	return off
}

// records reads the array of an S3 delivery file; arr starts at off.
func (r *Reader) records(name string, data *doc, off int, arr json.RawMessage) error {
	var items []json.RawMessage
	if err := json.Unmarshal(arr, &items); err != nil {
		r.skip(at(name, data, off, "Records is not an array"))
		return nil
	}
	pos := 0
	for _, it := range items {
		i := bytes.Index(arr[pos:], it)
		if i >= 0 {
			pos += i
		}
		if err := r.record(name, data, off+pos, it); err != nil {
			return err
		}
		pos += len(it)
	}
	return nil
}

// record decodes one record that starts at off.
func (r *Reader) record(name string, data *doc, off int, raw json.RawMessage) error {
	var e Event
	if err := json.Unmarshal(raw, &e); err != nil {
		var te *json.UnmarshalTypeError
		msg := err.Error()
		if errors.As(err, &te) {
			msg = fmt.Sprintf("%s: %s is not a %s", te.Field, te.Value, te.Type)
		}
		var pe *time.ParseError
		if errors.As(err, &pe) {
			msg = "eventTime: " + pe.Error()
		}
		r.skip(at(name, data, off, "record skipped: "+msg))
		return nil
	}
	if e.EventName == "" || e.EventTime.IsZero() {
		r.skip(at(name, data, off, "record skipped: no eventName or eventTime"))
		return nil
	}
	e.Source = name
	e.Line, _ = data.lines.position(off)
	e.Raw = raw
	if r.Event == nil {
		return nil
	}
	return r.Event(e)
}

// syntaxError places a JSON error of the value that starts at off.
func syntaxError(name string, data *doc, off int, err error) *flowlog.LineError {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return at(name, data, int(se.Offset), "malformed JSON: "+se.Error())
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return at(name, data, len(data.data), "malformed JSON: the document ends early")
	}
	return at(name, data, off, "malformed JSON: "+err.Error())
}

func at(name string, data *doc, off int, msg string) *flowlog.LineError {
	line, col := data.lines.position(off)
	return &flowlog.LineError{Source: name, Line: line, Column: col, Msg: msg}
}

// doc is one input being read, with its newlines indexed.
type doc struct {
	data  []byte
	lines *lines
}

// lines indexes the newlines of a document once, so that placing each of
// its records costs a binary search, not a scan of what precedes it.
type lines struct {
	nl  []int // offsets of the newlines
	len int
}

func newLines(data []byte) *lines {
	l := &lines{len: len(data)}
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			break
		}
		l.nl = append(l.nl, i+j)
		i += j + 1
	}
	return l
}

// position turns a byte offset into a 1-based line and column.
func (l *lines) position(off int) (line, col int) {
	off = min(max(off, 0), l.len)
	n := sort.SearchInts(l.nl, off) // newlines before off
	start := 0
	if n > 0 {
		start = l.nl[n-1] + 1
	}
	return n + 1, off - start + 1
}

// Sniff reports whether the first bytes of a (decompressed) input look
// like CloudTrail or EventBridge JSON rather than flow logs.
func Sniff(head []byte) bool {
	head = bytes.TrimLeft(head, " \t\r\n\ufeff")
	if len(head) == 0 || head[0] != '{' {
		return false
	}
	for _, k := range []string{`"Records"`, `"eventVersion"`, `"eventName"`, `"detail-type"`} {
		if bytes.Contains(head, []byte(k)) {
			return true
		}
	}
	return false
}

// sniffRaw is how many bytes of a gzip stream SniffReader looks at to
// find the first 4 KiB of its content.
const sniffRaw = 64 << 10

// SniffReader reports whether the stream br reads (plain or gzip) holds
// CloudTrail or EventBridge JSON, looking at its first bytes without
// consuming them: br then reads the stream from its start. Give it a
// reader of at least 64 KiB (bufio.NewReaderSize).
func SniffReader(br *bufio.Reader) bool {
	head, _ := br.Peek(4096)
	if len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		head, _ = br.Peek(min(sniffRaw, br.Size()))
	}
	return SniffHead(head)
}

// SniffHead is Sniff for the first bytes of an input as stored: plain, or
// gzip (the first 64 KiB of which are enough).
func SniffHead(raw []byte) bool {
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return false // not ours: the flow log reader reports it
		}
		buf := make([]byte, 4096)
		n, _ := io.ReadFull(zr, buf)
		raw = buf[:n]
	}
	return Sniff(raw)
}

// SniffInput opens in and reports whether it holds CloudTrail or
// EventBridge JSON (plain or gzip).
func SniffInput(ctx context.Context, in flowlog.Input) (bool, error) {
	rc, err := in.Open(ctx)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	return SniffReader(bufio.NewReaderSize(rc, sniffRaw)), nil
}
