package awstest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/smithy-go"
)

func logsClient(t *testing.T) (*Logs, *cloudwatchlogs.Client) {
	s := NewLogs(t)
	return s, cloudwatchlogs.NewFromConfig(ClientConfig(s.URL))
}

func apiErr(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestLogsFilterLogEvents(t *testing.T) {
	s, c := logsClient(t)
	ctx := context.Background()
	if _, err := c.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("g")}); apiErr(err) != "ResourceAlreadyExistsException" {
		t.Errorf("second CreateLogGroup: %v", err)
	}
	base := time.Now().Add(-time.Hour).UnixMilli()
	for i, stream := range []string{"eni-a", "eni-b"} {
		if _, err := c.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("g"), LogStreamName: aws.String(stream)}); err != nil {
			t.Fatal(err)
		}
		var evs []types.InputLogEvent
		for j := range 5 { // interleaved times: a0 b0 a1 b1 …
			evs = append(evs, types.InputLogEvent{Timestamp: aws.Int64(base + int64(2*j+i)), Message: aws.String(stream + "-" + string(rune('0'+j)))})
		}
		if _, err := c.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String(stream), LogEvents: evs}); err != nil {
			t.Fatal(err)
		}
	}
	// Pages of 3, in event-time order across streams, then no token.
	var got []string
	var token *string
	pages := 0
	for {
		out, err := c.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("g"), Limit: aws.Int32(3), NextToken: token, StartTime: aws.Int64(base + 1), EndTime: aws.Int64(base + 8)})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range out.Events {
			got = append(got, aws.ToString(e.Message))
			if aws.ToString(e.EventId) == "" || aws.ToInt64(e.IngestionTime) == 0 {
				t.Errorf("event %+v lacks an id or ingestion time", e)
			}
		}
		if token = out.NextToken; token == nil {
			break
		}
	}
	if want := "eni-b-0 eni-a-1 eni-b-1 eni-a-2 eni-b-2 eni-a-3 eni-b-3 eni-a-4"; strings.Join(got, " ") != want || pages != 3 {
		t.Errorf("%d pages: %s, want 3 pages: %s", pages, strings.Join(got, " "), want)
	}
	for _, tc := range []struct {
		name string
		in   *cloudwatchlogs.FilterLogEventsInput
		code string
	}{
		{"no such group", &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("nope")}, "ResourceNotFoundException"},
		{"bad token", &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("g"), NextToken: aws.String("garbage")}, "InvalidParameterException"},
		{"limit too high", &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("g"), Limit: aws.Int32(10001)}, "InvalidParameterException"},
		{"names and prefix", &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("g"), LogStreamNames: []string{"eni-a"}, LogStreamNamePrefix: aws.String("eni")}, "InvalidParameterException"},
	} {
		if _, err := c.FilterLogEvents(ctx, tc.in); apiErr(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	s.Throttle(1)
	if _, err := c.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("g")}); apiErr(err) != "ThrottlingException" {
		t.Errorf("throttled: %v", err)
	}
	// Empty pages keep a token to go on with.
	s.EmptyPages(1)
	out, err := c.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("g")})
	if err != nil || len(out.Events) != 0 || out.NextToken == nil {
		t.Fatalf("empty page: %+v, %v", out, err)
	}
	out, err = c.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("g"), NextToken: out.NextToken, LogStreamNames: []string{"eni-a"}})
	if err != nil || len(out.Events) != 5 {
		t.Errorf("after the empty page, stream eni-a: %d events, %v", len(out.Events), err)
	}
}

func TestLogsPutLogEventsLimits(t *testing.T) {
	_, c := logsClient(t)
	ctx := context.Background()
	c.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("g")})
	c.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s")})
	now := time.Now()
	ev := func(t time.Time, m string) types.InputLogEvent {
		return types.InputLogEvent{Timestamp: aws.Int64(t.UnixMilli()), Message: aws.String(m)}
	}
	_, err := c.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s"), LogEvents: []types.InputLogEvent{ev(now, "b"), ev(now.Add(-time.Second), "a")}})
	if apiErr(err) != "InvalidParameterException" {
		t.Errorf("out of order: %v", err)
	}
	out, err := c.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s"), LogEvents: []types.InputLogEvent{ev(now.Add(-15*24*time.Hour), "old"), ev(now, "ok"), ev(now.Add(3*time.Hour), "new")}})
	if err != nil || out.RejectedLogEventsInfo == nil || aws.ToInt32(out.RejectedLogEventsInfo.TooOldLogEventEndIndex) != 0 || aws.ToInt32(out.RejectedLogEventsInfo.TooNewLogEventStartIndex) != 2 {
		t.Errorf("too old and too new: %+v, %v", out, err)
	}
	big := strings.Repeat("x", 600_000)
	_, err = c.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s"), LogEvents: []types.InputLogEvent{ev(now, big), ev(now, big)}})
	if apiErr(err) != "InvalidParameterException" {
		t.Errorf("batch over 1 MB: %v", err)
	}
	if _, err := c.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("nope"), LogEvents: []types.InputLogEvent{ev(now, "x")}}); apiErr(err) != "ResourceNotFoundException" {
		t.Errorf("no such stream: %v", err)
	}
	f, err := c.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("g")})
	if err != nil || len(f.Events) != 1 || aws.ToString(f.Events[0].Message) != "ok" {
		t.Errorf("stored events: %+v, %v", f, err)
	}
}
