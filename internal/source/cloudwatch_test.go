package source

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/flowguard/flowguard/internal/awstest"
)

// cloudWatchEnv starts the CloudWatch Logs test server and returns it
// with a source configuration reading /vpc/flowlogs in pages of 10.
func cloudWatchEnv(t *testing.T) (*awstest.Logs, string) {
	t.Helper()
	setTestCredentials(t)
	t.Setenv("AWS_MAX_ATTEMPTS", "1") // the source's own back-off is under test
	s := awstest.NewLogs(t)
	return s, "name: cw\ntype: cloudwatch\nlog_groups: [/vpc/flowlogs]\nregion: us-east-1\nendpoint_url: " + s.URL +
		"\npoll_interval: 50ms\nlatency: 1ms\nstart: 1h\npage_size: 10\n"
}

// putFlowLogs publishes n flow log records as the flow log service does,
// through the SDK's PutLogEvents, one stream per interface, event time =
// the record's start, at.
func putFlowLogs(t *testing.T, s *awstest.Logs, prefix string, n int, at time.Time) []string {
	t.Helper()
	c := cloudwatchlogs.NewFromConfig(awstest.ClientConfig(s.URL))
	ctx := t.Context()
	_, err := c.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/vpc/flowlogs")})
	if err != nil && !strings.Contains(err.Error(), "ResourceAlreadyExistsException") {
		t.Fatal(err)
	}
	recs := lines(prefix, n)
	for _, stream := range []string{"eni-0a1b2c3d-all", "eni-0e0f0a0b-all"} {
		_, err := c.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("/vpc/flowlogs"), LogStreamName: aws.String(stream)})
		if err != nil && !strings.Contains(err.Error(), "ResourceAlreadyExistsException") {
			t.Fatal(err)
		}
	}
	var evs [2][]cwtypes.InputLogEvent
	for i, r := range recs {
		evs[i%2] = append(evs[i%2], cwtypes.InputLogEvent{Timestamp: aws.Int64(at.Add(time.Duration(i) * time.Millisecond).UnixMilli()), Message: aws.String(r)})
	}
	for i, stream := range []string{"eni-0a1b2c3d-all", "eni-0e0f0a0b-all"} {
		if len(evs[i]) == 0 {
			continue
		}
		if _, err := c.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("/vpc/flowlogs"), LogStreamName: aws.String(stream), LogEvents: evs[i]}); err != nil {
			t.Fatal(err)
		}
	}
	return recs
}

func newCloudWatch(t *testing.T, cfg string) Live {
	t.Helper()
	l, err := NewLive(liveConfig(t, cfg), LiveDeps{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestCloudWatchPagesThrottlingAndRestart(t *testing.T) {
	s, cfg := cloudWatchEnv(t)
	base := time.Now().Add(-30 * time.Minute)
	want := putFlowLogs(t, s, "198.51.100.1", 25, base)
	s.Throttle(3)
	s.EmptyPages(2)
	src := newCloudWatch(t, cfg)
	d := startDaemon(t, src, nil)
	got := d.waitRecords(25, 10*time.Second)
	if !sameSet(got, want) {
		t.Fatalf("%d records, want each of the %d once", len(got), len(want))
	}
	if got[0] != want[0] || got[24] != want[24] {
		t.Errorf("records out of event-time order: first %q, last %q", got[0], got[24])
	}
	st := src.Status()
	if !strings.Contains(st.LastError, "ThrottlingException") || !st.Connected || len(st.Positions) != 1 || st.Positions[0].Object != "/vpc/flowlogs" {
		t.Errorf("status %+v, want the throttling reported", st)
	}
	if calls := s.Calls("FilterLogEvents"); calls < 3+2+3 {
		t.Errorf("%d FilterLogEvents calls, want at least 8 (3 throttled, 2 empty pages, 3 pages)", calls)
	}
	saved := d.positions()
	d.stop()

	// While flowguard is down, more events arrive; the restart reads
	// those and nothing twice.
	more := putFlowLogs(t, s, "198.51.100.2", 7, time.Now())
	d2 := startDaemon(t, newCloudWatch(t, cfg), saved)
	d2.waitRecords(7, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if got := d2.got(); !sameSet(got, more) {
		t.Errorf("%d records after restart, want the %d new ones once", len(got), len(more))
	}
}

// TestCloudWatchRestartInsideAWindow stops the daemon after the first page
// of a window and checks the restart goes on with the saved nextToken.
func TestCloudWatchRestartInsideAWindow(t *testing.T) {
	s, cfg := cloudWatchEnv(t)
	want := putFlowLogs(t, s, "198.51.100.3", 25, time.Now().Add(-10*time.Minute))
	d := startDaemon(t, newCloudWatch(t, cfg), nil)
	d.block = make(chan struct{}, 1)
	d.block <- struct{}{} // one chunk, then the daemon is stuck
	first := d.waitRecords(10, 10*time.Second)
	saved := d.positions()
	d.stop()
	if len(first) != 10 || !strings.Contains(saved[0].Token, `"next"`) {
		t.Fatalf("first run: %d records, position %+v; want one page of 10 and a nextToken", len(first), saved)
	}
	d2 := startDaemon(t, newCloudWatch(t, cfg), saved)
	d2.waitRecords(15, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if got := append(first, d2.got()...); !sameSet(got, want) {
		t.Errorf("%d records over both runs, want each of %d once", len(got), len(want))
	}
}

func TestCloudWatchConfig(t *testing.T) {
	for _, tc := range []struct{ cfg, want string }{
		{"name: cw\ntype: cloudwatch\n", "needs log_groups"},
		{"name: cw\ntype: cloudwatch\nlog_groups: [a]\nlatency: -1s\n", "latency must not be negative"},
		{"name: cw\ntype: cloudwatch\nlog_groups: [a]\nformat: ${srcaddr} ${srcaddr}\n", "format"},
		{"name: cw\ntype: cloudwatch\nlog_groups: [a]\nlog_group: b\n", `line 4, column 1: sources.cw: unknown key "log_group"`},
	} {
		_, err := NewLive(liveConfig(t, tc.cfg), LiveDeps{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestCloudWatchGroupARNAndStreamPrefix reads a log group named by its
// ARN, keeping one interface's stream.
func TestCloudWatchGroupARNAndStreamPrefix(t *testing.T) {
	s, cfg := cloudWatchEnv(t)
	all := putFlowLogs(t, s, "198.51.100.6", 6, time.Now().Add(-5*time.Minute))
	cfg = strings.Replace(cfg, "log_groups: [/vpc/flowlogs]", "log_groups: [\"arn:aws:logs:us-east-1:123456789012:log-group:/vpc/flowlogs:*\"]\nlog_stream_prefix: eni-0e0f", 1)
	d := startDaemon(t, newCloudWatch(t, cfg), nil)
	d.waitRecords(3, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	// putFlowLogs puts records 1, 3, 5 in the second stream.
	if got, want := d.got(), []string{all[1], all[3], all[5]}; !sameSet(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
}
