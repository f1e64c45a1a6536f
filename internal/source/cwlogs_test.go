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
