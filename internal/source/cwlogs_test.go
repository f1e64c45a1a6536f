package source

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// subscription returns a CloudWatch Logs subscription payload as AWS
// delivers it: gzip-compressed JSON, one log event per message.
func subscription(t testing.TB, messageType string, ts int64, msgs ...string) []byte {
	t.Helper()
	type event struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	}
	p := struct {
		MessageType         string   `json:"messageType"`
		Owner               string   `json:"owner"`
		LogGroup            string   `json:"logGroup"`
		LogStream           string   `json:"logStream"`
		SubscriptionFilters []string `json:"subscriptionFilters"`
		LogEvents           []event  `json:"logEvents"`
	}{MessageType: messageType, Owner: "123456789012", LogGroup: "/vpc/flowlogs", LogStream: "eni-0a1b2c3d-all", SubscriptionFilters: []string{"all"}}
	if messageType == "CONTROL_MESSAGE" {
		p.Owner, p.LogGroup, p.LogStream = "CloudwatchLogs", "", ""
		msgs = []string{"CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}
	}
	for i, m := range msgs {
		p.LogEvents = append(p.LogEvents, event{ID: strings.Repeat("3", 50) + string(rune('0'+i%10)), Timestamp: ts, Message: m})
	}
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(js)
	zw.Close()
	return buf.Bytes()
}

func TestAppendRecordLines(t *testing.T) {
	a, b := flowLine("198.51.100.1", 22, 1), flowLine("198.51.100.2", 23, 2)
	tests := []struct {
		name    string
		data    []byte
		want    string
		newest  int64
		wantErr string
	}{
		{"data message", subscription(t, "DATA_MESSAGE", 1700000000000, a, b), a + "\n" + b + "\n", 1700000000000, ""},
		{"control message", subscription(t, "CONTROL_MESSAGE", 1700000000000), "", 0, ""},
		{"plain line", []byte(a), a + "\n", 0, ""},
		{"plain lines", []byte(a + "\n" + b + "\n"), a + "\n" + b + "\n", 0, ""},
		{"message with a line break", subscription(t, "DATA_MESSAGE", 5, "x\ny"), "x y\n", 5, ""},
		{"empty", nil, "", 0, ""},
		{"truncated gzip", subscription(t, "DATA_MESSAGE", 5, a)[:20], "", 0, "not a CloudWatch Logs subscription payload"},
		{"gzip of something else", gz(t, `{"hello":1}`), "", 0, `messageType ""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, newest, err := appendRecordLines(nil, tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want || newest != tc.newest {
				t.Errorf("got %q (newest %d), want %q (%d)", got, newest, tc.want, tc.newest)
			}
		})
	}
}

func gz(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s))
	zw.Close()
	return buf.Bytes()
}

func TestRecentIDs(t *testing.T) {
	r := newRecentIDs(3)
	for _, id := range []string{"a", "b", "a", "c", "d"} {
		r.add(id)
	}
	if r.has("a") || !r.has("b") || !r.has("d") {
		t.Errorf("recent = %v, want b c d", r.ids)
	}
	tok, err := parseAckToken(r.token(7))
	if err != nil || tok.Seq != 7 || strings.Join(tok.Recent, ",") != "b,c,d" {
		t.Errorf("token = %+v, %v", tok, err)
	}
	if _, err := parseAckToken("{bad"); err == nil {
		t.Error("a bad token was accepted")
	}
}

// BenchmarkAppendRecordLines decodes a CloudWatch Logs subscription
// payload of 1,000 flow log events, the shape Kinesis and Firehose carry.
func BenchmarkAppendRecordLines(b *testing.B) {
	msgs := lines("198.51.100.7", 1000)
	payload := subscription(b, "DATA_MESSAGE", 1700000000000, msgs...)
	raw := 0
	for _, m := range msgs {
		raw += len(m) + 1
	}
	b.SetBytes(int64(raw))
	b.ReportAllocs()
	var dst []byte
	for b.Loop() {
		var err error
		dst, _, err = appendRecordLines(dst[:0], payload)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzScanSubscription holds the hand-written payload reader to
// encoding/json's answers: whenever encoding/json reads a payload as a
// DATA_MESSAGE, the reader yields the same lines and newest time.
func FuzzScanSubscription(f *testing.F) {
	f.Add(`{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["a"],"logEvents":[{"id":"1","timestamp":5,"message":"a b"},{"id":"2","timestamp":7,"message":"c\nd"}]}`)
	f.Add(`{"messageType":"CONTROL_MESSAGE","logEvents":[{"id":"","timestamp":0,"message":"CWL CONTROL MESSAGE"}]}`)
	f.Add(`{"logEvents":[{"message":"x\u00e9\ud83d\ude00\ud800y","timestamp":-3},null,{}],"messageType":"DATA_MESSAGE","extra":{"a":[1,2.5e3,true,false,null]}}`)
	f.Add(`{"MessageType":"DATA_MESSAGE","LOGEVENTS":[{"Message":"k","message":"last"}]} trailing`)
	f.Add(`{"messageType":"DATA_MESSAGE","logEvents":[{"message":"bad \x01"}]}`)
	f.Fuzz(func(t *testing.T, payload string) {
		var s Subscription
		jerr := json.NewDecoder(strings.NewReader(payload)).Decode(&s)
		got, typ, newest, err := scanSubscription(nil, []byte(payload))
		if jerr != nil || s.MessageType != "DATA_MESSAGE" {
			return // the reader may be more lenient with fields it skips
		}
		if err != nil {
			t.Fatalf("encoding/json reads %q, the scanner fails: %v", payload, err)
		}
		var want []byte
		var wantNewest int64
		for _, e := range s.LogEvents {
			if e.Message != "" {
				want = appendLine(want, e.Message)
			}
			wantNewest = max(wantNewest, e.Timestamp)
		}
		if typ != "DATA_MESSAGE" || !bytes.Equal(got, want) || newest != wantNewest {
			t.Fatalf("%q:\nscanner %q %q %d\njson    %q %d", payload, typ, got, newest, want, wantNewest)
		}
	})
}
