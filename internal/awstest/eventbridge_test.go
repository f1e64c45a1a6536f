package awstest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/smithy-go"
)

func ebEntry(detail string) types.PutEventsRequestEntry {
	return types.PutEventsRequestEntry{Source: aws.String("flowguard"), DetailType: aws.String("Flowguard Finding"), Detail: aws.String(detail)}
}

func TestEventBridgeServer(t *testing.T) {
	srv := NewEventBridge(t)
	c := eventbridge.NewFromConfig(srv.Config())
	ctx := context.Background()
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

	good := ebEntry(`{"id":"a"}`)
	good.Time = aws.Time(at)
	good.EventBusName = aws.String("security")
	out, err := c.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{
		good, ebEntry(`not json`), {Source: aws.String("flowguard"), Detail: aws.String(`{}`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if out.FailedEntryCount != 2 || aws.ToString(out.Entries[0].EventId) == "" ||
		aws.ToString(out.Entries[1].ErrorCode) != "MalformedDetail" || aws.ToString(out.Entries[2].ErrorCode) != "InvalidArgument" {
		t.Errorf("result %+v", out.Entries)
	}
	got := srv.Entries()
	if len(got) != 1 || got[0].Detail != `{"id":"a"}` || !got[0].Time.Equal(at) || got[0].EventBusName != "security" {
		t.Errorf("recorded %+v", got)
	}

	apiCode := func(err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		return ""
	}
	eleven := make([]types.PutEventsRequestEntry, 11)
	for i := range eleven {
		eleven[i] = ebEntry(`{}`)
	}
	if _, err := c.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: eleven}); apiCode(err) != "ValidationException" {
		t.Errorf("11 entries: %v, want ValidationException", err)
	}
	big := []types.PutEventsRequestEntry{ebEntry(`{"a":"` + strings.Repeat("x", 200_000) + `"}`), ebEntry(`{"a":"` + strings.Repeat("x", 70_000) + `"}`)}
	if _, err := c.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: big}); apiCode(err) != "ValidationException" {
		t.Errorf("270,000 bytes in one call: %v, want ValidationException", err)
	}

	srv.Throttle(1)
	if _, err := c.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{ebEntry(`{}`)}}); apiCode(err) != "ThrottlingException" {
		t.Errorf("throttled call: %v", err)
	}
	srv.FailCalls(1)
	if _, err := c.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{ebEntry(`{}`)}}); apiCode(err) != "InternalException" {
		t.Errorf("failed call: %v", err)
	}
	srv.FailEntries("", "ThrottlingException")
	out, err = c.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{ebEntry(`{"n":1}`), ebEntry(`{"n":2}`)}})
	if err != nil || out.FailedEntryCount != 1 || aws.ToString(out.Entries[1].ErrorCode) != "ThrottlingException" {
		t.Errorf("partial failure: %v %+v", err, out)
	}
	if n := len(srv.Entries()); n != 2 {
		t.Errorf("%d entries recorded, want 2", n)
	}
	if srv.Calls() != 6 {
		t.Errorf("Calls() = %d, want 6", srv.Calls())
	}
}
