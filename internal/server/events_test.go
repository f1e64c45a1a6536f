package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

// TestFindingExplanation: GET /api/v1/findings/{id} carries the
// explanation the daemon recorded with the finding — the rule, the
// thresholds, the sample records — and the text detect --explain prints
// of it (WriteExplanation), numbers as the CLI writes them.
func TestFindingExplanation(t *testing.T) {
	ts, st, _ := newDashboardServer(t, time.Now(), nil)
	actor := netip.MustParseAddr("198.51.100.23")
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r := &detect.Result{Finding: finding.Finding{ID: finding.ID(detect.TypePortscan, actor, "10.0.1.10"), Type: detect.TypePortscan, Severity: 5,
		Title: "198.51.100.23 scanned 1,200 ports on 10.0.1.10", Actor: finding.Actor{IP: actor, Direction: finding.Inbound},
		Target: finding.Target{IP: netip.MustParseAddr("10.0.1.10")}, Count: 1200, FirstSeen: t0, LastSeen: t0.Add(time.Minute),
		Evidence: map[string]any{"distinct_ports": int64(1200)}},
		Rule:       "distinct destination ports from one source to one host at least min_ports in a 10m window",
		Thresholds: map[string]any{"min_ports": 15, "min_bytes": int64(5000)},
		Samples:    []detect.Sample{{Source: "firehose request 7", Line: 3, Text: "2 123456789012 eni-1 198.51.100.23 10.0.1.10 40000 22 6 1 44 1 2 REJECT OK"}}}
	js, err := json.Marshal(ExplanationOf(r))
	if err != nil {
		t.Fatal(err)
	}
	other := r.Finding
	other.ID, other.Title = finding.ID(detect.TypePortscan, actor, "10.0.1.11"), "an older finding"
	if _, err := st.CommitStream(context.Background(), store.StreamCommit{Stream: "serve", Findings: []finding.Finding{r.Finding, other},
		Explanations: map[string][]byte{r.ID: js, "no-such-finding": js}}); err != nil {
		t.Fatal(err)
	}
	var cli strings.Builder
	if err := WriteExplanation(&cli, &r.Finding, &Explanation{Rule: r.Rule, Thresholds: r.Thresholds, Samples: r.Samples}); err != nil {
		t.Fatal(err)
	}
	code, body := do(t, "GET", ts.URL+"/api/v1/findings/"+r.ID, "", "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var got struct {
		Explanation struct {
			Rule       string          `json:"rule"`
			Thresholds map[string]any  `json:"thresholds"`
			Samples    []detect.Sample `json:"samples"`
			Text       string          `json:"text"`
		} `json:"explanation"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	e := got.Explanation
	if e.Rule != r.Rule || e.Thresholds["min_ports"] != 15.0 || len(e.Samples) != 1 || e.Samples[0] != r.Samples[0] {
		t.Errorf("explanation %+v", e)
	}
	if e.Text != cli.String() {
		t.Errorf("the API's text differs from detect --explain's:\n%s\n---\n%s", e.Text, cli.String())
	}
	for _, want := range []string{"rule:       distinct destination ports", "thresholds: min_bytes=5,000 min_ports=15", "evidence:   distinct_ports=1,200", "firehose request 7:3: 2 123456789012"} {
		if !strings.Contains(e.Text, want) {
			t.Errorf("the text lacks %q:\n%s", want, e.Text)
		}
	}
	// A finding without a recorded explanation still has the text.
	_, body = do(t, "GET", ts.URL+"/api/v1/findings/"+other.ID, "", "")
	if !strings.Contains(body, `"text": "an older finding`) || strings.Contains(body, `"rule": "distinct`) {
		t.Errorf("finding without an explanation: %s", body)
	}
}

// readEvent reads one server-sent event (type and data).
func readEvent(t *testing.T, r *bufio.Reader) (string, string) {
	t.Helper()
	var typ, data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && typ != "":
			return typ, data
		case strings.HasPrefix(line, "event: "):
			typ = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		}
	}
}

// TestEventStream: GET /api/v1/events (no token) sends the sources'
// status at once, then what is published, in order.
func TestEventStream(t *testing.T) {
	ts, _, _, hub := newDashboardServerHub(t, time.Now(), nil)
	resp, err := http.Get(ts.URL + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	if typ, data := readEvent(t, r); typ != EventSources || !strings.Contains(data, `"name":"local"`) {
		t.Fatalf("first event %s %s, want the sources", typ, data)
	}
	hub.Publish(EventFinding, EventFindingData{ID: "abc", Type: "Recon:EC2/Portscan", Count: 3, New: true})
	hub.Publish(EventTraffic, map[string]int64{"records": 42})
	if typ, data := readEvent(t, r); typ != EventFinding || !strings.Contains(data, `"id":"abc"`) || !strings.Contains(data, `"new":true`) {
		t.Errorf("got %s %s, want the finding", typ, data)
	}
	if typ, data := readEvent(t, r); typ != EventTraffic || data != `{"records":42}` {
		t.Errorf("got %s %s, want the traffic", typ, data)
	}
}

// TestSlowClientDropped: a client that does not read is dropped once its
// buffer is full; Publish never waits for it, and a reading client goes
// on receiving everything.
func TestSlowClientDropped(t *testing.T) {
	ts, _, _, hub := newDashboardServerHub(t, time.Now(), nil)
	// The slow client: a raw connection that sends the request and then
	// never reads.
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	fmt.Fprintf(conn, "GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
	// The good client.
	resp, err := http.Get(ts.URL + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	good := bufio.NewReader(resp.Body)
	readEvent(t, good) // sources
	for hub.Clients() < 2 {
		time.Sleep(time.Millisecond)
	}
	big := strings.Repeat("x", 16<<10)
	const n = 2000
	var read atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for read.Load() < n {
			if typ, _ := readEvent(t, good); typ == EventTraffic {
				read.Add(1)
			}
		}
	}()
	for i := range n {
		published := make(chan struct{})
		go func() { hub.Publish(EventTraffic, map[string]any{"i": i, "pad": big}); close(published) }()
		select {
		case <-published:
		case <-time.After(10 * time.Second):
			t.Fatalf("Publish of event %d waited for a client", i)
		}
		// The reading client keeps up: it is never more than a quarter
		// of its buffer behind.
		for deadline := time.Now().Add(10 * time.Second); int64(i)-read.Load() > clientBuffer/4; {
			if time.Now().After(deadline) {
				t.Fatalf("the reading client is stuck at %d of %d", read.Load(), i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	<-done
	if hub.Dropped() != 1 || hub.Clients() != 1 {
		t.Errorf("dropped %d, clients %d: want the slow client dropped and the reading one kept", hub.Dropped(), hub.Clients())
	}
}
