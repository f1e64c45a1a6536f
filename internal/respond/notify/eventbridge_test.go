package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/respond"
)

func newTestEventBridge(t *testing.T, srv *awstest.EventBridge, c EventBridgeConfig) *EventBridge {
	t.Helper()
	if c.Name == "" {
		c.Name = "bus"
	}
	n, err := NewEventBridge(c, srv.Config(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.backoff = time.Millisecond
	return n
}

func manyFindings(n int) []respond.Event {
	evs := make([]respond.Event, n)
	for i := range evs {
		f := *scanFinding()
		f.ID = fmt.Sprintf("finding-%03d", i)
		evs[i] = respond.Event{Finding: &f}
	}
	return evs
}

func TestEventBridgeGuardDutyShape(t *testing.T) {
	srv := awstest.NewEventBridge(t)
	n := newTestEventBridge(t, srv, EventBridgeConfig{DetailType: DetailTypeGuardDuty, AccountID: "123456789012"})
	f, dos := sshFinding(), dosFinding()
	if _, err := n.Notify(context.Background(), respond.Message{Events: []respond.Event{{Finding: f}, {Finding: dos}, {Alarm: alarmChange()}}}); err != nil {
		t.Fatal(err)
	}
	got := srv.Entries()
	if len(got) != 3 {
		t.Fatalf("%d entries, want 3", len(got))
	}
	e := got[0]
	if e.Source != "flowguard" || e.DetailType != "GuardDuty Finding" || !e.Time.Equal(f.LastSeen) {
		t.Errorf("entry source=%q detail-type=%q time=%v", e.Source, e.DetailType, e.Time)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(e.Detail), &d); err != nil {
		t.Fatal(err)
	}
	get := func(path string) any {
		var v any = d
		for _, k := range strings.Split(path, ".") {
			switch x := v.(type) {
			case map[string]any:
				v = x[k]
			case []any:
				var i int
				fmt.Sscan(k, &i)
				v = x[i]
			default:
				return nil
			}
		}
		return v
	}
	for path, want := range map[string]any{
		"id": f.ID, "type": "UnauthorizedAccess:EC2/SSHBruteForce", "severity": 2.0, "title": f.Title,
		"accountId": "123456789012", "region": "us-east-1",
		"createdAt": "2026-11-22T10:00:00.000Z", "updatedAt": "2026-11-22T10:02:30.000Z",
		"resource.resourceType":                                           "Instance",
		"resource.instanceDetails.instanceId":                             "i-0123456789abcdef0",
		"resource.instanceDetails.networkInterfaces.0.networkInterfaceId": "eni-0a1b2c3d4e5f60718",
		"resource.instanceDetails.networkInterfaces.0.privateIpAddress":   "10.0.1.10",
		"service.count": 1042.0, "service.archived": false, "service.resourceRole": "TARGET",
		"service.eventFirstSeen": "2026-11-22T10:00:00.000Z", "service.eventLastSeen": "2026-11-22T10:02:30.000Z",
		"service.action.actionType":                                          "NETWORK_CONNECTION",
		"service.action.networkConnectionAction.connectionDirection":         "INBOUND",
		"service.action.networkConnectionAction.protocol":                    "TCP",
		"service.action.networkConnectionAction.localPortDetails.port":       22.0,
		"service.action.networkConnectionAction.localPortDetails.portName":   "SSH",
		"service.action.networkConnectionAction.remoteIpDetails.ipAddressV4": "198.51.100.23",
		"service.action.networkConnectionAction.localIpDetails.ipAddressV4":  "10.0.1.10",
	} {
		if got := get(path); got != want {
			t.Errorf("detail.%s = %v, want %v", path, got, want)
		}
	}
	// Outbound: our instance is the actor.
	if err := json.Unmarshal([]byte(got[1].Detail), &d); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]any{
		"service.resourceRole": "ACTOR", "resource.instanceDetails.instanceId": "i-0fedcba9876543210",
		"service.action.networkConnectionAction.connectionDirection":         "OUTBOUND",
		"service.action.networkConnectionAction.protocol":                    "UDP",
		"service.action.networkConnectionAction.remoteIpDetails.ipAddressV4": "192.0.2.80",
		"service.action.networkConnectionAction.remotePortDetails.port":      53.0,
	} {
		if got := get(path); got != want {
			t.Errorf("outbound detail.%s = %v, want %v", path, got, want)
		}
	}
	if got[2].DetailType != DetailTypeAlarm || !strings.Contains(got[2].Detail, `"alarmName":"vpc-reject-burst"`) {
		t.Errorf("alarm entry: %+v", got[2])
	}
}

func TestEventBridgeBatches(t *testing.T) {
	srv := awstest.NewEventBridge(t)
	n := newTestEventBridge(t, srv, EventBridgeConfig{Source: "custom.flowguard", EventBus: "security"})
	if _, err := n.Notify(context.Background(), respond.Message{Events: manyFindings(25)}); err != nil {
		t.Fatal(err)
	}
	if srv.Calls() != 3 {
		t.Errorf("%d calls for 25 entries, want 3 (10 per call)", srv.Calls())
	}
	got := srv.Entries()
	if len(got) != 25 || got[0].Source != "custom.flowguard" || got[0].EventBusName != "security" || got[0].DetailType != "Flowguard Finding" {
		t.Errorf("%d entries, first %+v", len(got), got[0])
	}

	// Big entries: the server refuses a call of 256 KB or more, so the
	// notifier must split by size too.
	srv2 := awstest.NewEventBridge(t)
	n2 := newTestEventBridge(t, srv2, EventBridgeConfig{})
	evs := manyFindings(5)
	for _, e := range evs {
		e.Finding.Description = strings.Repeat("d", 60_000)
	}
	if _, err := n2.Notify(context.Background(), respond.Message{Events: evs}); err != nil {
		t.Fatal(err)
	}
	if len(srv2.Entries()) != 5 || srv2.Calls() != 2 {
		t.Errorf("%d entries in %d calls; want 5 in 2 (4 × 60 KB fit under 256 KB, 5 do not)", len(srv2.Entries()), srv2.Calls())
	}

	// An entry over the limit on its own loses its description.
	srv3 := awstest.NewEventBridge(t)
	n3 := newTestEventBridge(t, srv3, EventBridgeConfig{})
	huge := manyFindings(1)
	huge[0].Finding.Description = strings.Repeat("x", 300_000)
	if _, err := n3.Notify(context.Background(), respond.Message{Events: huge}); err != nil {
		t.Fatal(err)
	}
	if e := srv3.Entries(); len(e) != 1 || len(e[0].Detail) > 10_000 || strings.Contains(e[0].Detail, "xxx") {
		t.Errorf("oversized entry not shortened: %d entries", len(e))
	}
}

func TestEventBridgePartialFailures(t *testing.T) {
	t.Run("only failed entries are retried", func(t *testing.T) {
		srv := awstest.NewEventBridge(t)
		n := newTestEventBridge(t, srv, EventBridgeConfig{})
		srv.FailEntries("", "ThrottlingException", "", "MalformedDetail")
		retry, err := n.Notify(context.Background(), respond.Message{Events: manyFindings(4)})
		if err == nil || retry || !strings.Contains(err.Error(), "MalformedDetail") {
			t.Errorf("retry=%v err=%v; want a final error naming MalformedDetail", retry, err)
		}
		ids := entryIDs(t, srv.Entries())
		if strings.Join(ids, ",") != "finding-000,finding-002,finding-001" || srv.Calls() != 2 {
			t.Errorf("entries %v in %d calls; want 000 and 002, then 001 alone in a second call", ids, srv.Calls())
		}
	})
	t.Run("whole call throttled", func(t *testing.T) {
		srv := awstest.NewEventBridge(t)
		n := newTestEventBridge(t, srv, EventBridgeConfig{})
		srv.Throttle(1)
		if retry, err := n.Notify(context.Background(), respond.Message{Events: manyFindings(3)}); err != nil {
			t.Fatalf("retry=%v err=%v", retry, err)
		}
		if len(srv.Entries()) != 3 || srv.Calls() != 2 {
			t.Errorf("%d entries in %d calls, want 3 in 2", len(srv.Entries()), srv.Calls())
		}
	})
	t.Run("pipeline retry does not put twice", func(t *testing.T) {
		srv := awstest.NewEventBridge(t)
		n := newTestEventBridge(t, srv, EventBridgeConfig{})
		srv.FailEntries("", "InternalFailure", "InternalFailure", "InternalFailure")
		msg := respond.Message{Events: manyFindings(2)}
		retry, err := n.Notify(context.Background(), msg)
		if err == nil || !retry {
			t.Fatalf("retry=%v err=%v; want a retryable error after 3 failed attempts", retry, err)
		}
		if retry, err := n.Notify(context.Background(), msg); err != nil {
			t.Fatalf("second Notify: retry=%v err=%v", retry, err)
		}
		ids := entryIDs(t, srv.Entries())
		if strings.Join(ids, ",") != "finding-000,finding-001" {
			t.Errorf("entries %v; want each finding exactly once", ids)
		}
	})
	t.Run("server errors", func(t *testing.T) {
		srv := awstest.NewEventBridge(t)
		n := newTestEventBridge(t, srv, EventBridgeConfig{})
		srv.FailCalls(5)
		retry, err := n.Notify(context.Background(), respond.Message{Events: manyFindings(1)})
		if err == nil || !retry || len(srv.Entries()) != 0 {
			t.Errorf("retry=%v err=%v entries=%d", retry, err, len(srv.Entries()))
		}
	})
}

func entryIDs(t *testing.T, es []awstest.EventBridgeEntry) []string {
	t.Helper()
	var ids []string
	for _, e := range es {
		var d struct{ ID string }
		if err := json.Unmarshal([]byte(e.Detail), &d); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	return ids
}

func TestEventBridgeLeaksNoSecret(t *testing.T) {
	const key, secret = "AKIAEVENTBRIDGELEAK", "eb/Secret+Key/ThatMustNotLeak0123"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"__type": "AccessDeniedException",
			"message": "denied for " + r.Header.Get("Authorization") + " secret " + secret})
	}))
	defer srv.Close()
	var logs bytes.Buffer
	n, err := NewEventBridge(EventBridgeConfig{Name: "b", Endpoint: srv.URL, Region: "us-east-1"}, testAWSConfig(key, secret),
		Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := n.Notify(context.Background(), respond.Message{Events: []respond.Event{{Finding: &finding.Finding{ID: "x", Type: "t"}}}})
	if err == nil || retry {
		t.Fatalf("retry=%v err=%v; want a final error", retry, err)
	}
	assertNoSecret(t, err, &logs, key, secret)
}
