package source

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flowguard/flowguard/internal/awstest"
)

const flowHeader = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"

// flowLogObject is an S3 flow log file as AWS writes it: gzip text with
// a header line, holding n records from src.
func flowLogObject(t *testing.T, src string, n int) ([]byte, []string) {
	t.Helper()
	recs := lines(src, n)
	return gz(t, flowHeader+"\n"+strings.Join(recs, "\n")+"\n"), recs
}

// flowLogKey is the key AWS gives a flow log file delivered on day.
func flowLogKey(account, region string, day time.Time, flowLogID, hash string) string {
	return fmt.Sprintf("AWSLogs/%s/vpcflowlogs/%s/%s/%s_vpcflowlogs_%s_%s_%sZ_%s.log.gz",
		account, region, day.Format("2006/01/02"), account, region, flowLogID, day.Format("20060102T1504"), hash)
}

func newS3Live(t *testing.T, cfg string) Live {
	t.Helper()
	l, err := NewLive(liveConfig(t, cfg), LiveDeps{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestS3ListingRestartFromCheckpoint(t *testing.T) {
	url, c, _ := fakeS3(t)
	const bucket = "flow-logs"
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	putLog := func(key, src string, n int) []string {
		body, recs := flowLogObject(t, src, n)
		put(t, c, bucket, key, body)
		return recs
	}
	putLog(flowLogKey("111111111111", "us-east-1", now.Add(-10*24*time.Hour), "fl-bbb", "old"), "192.0.2.1", 2) // before start
	var want []string
	want = append(want, putLog(flowLogKey("111111111111", "us-east-1", now.Add(-24*time.Hour), "fl-bbb", "x"), "198.51.100.1", 2)...)
	want = append(want, putLog(flowLogKey("111111111111", "us-east-1", now, "fl-bbb", "y"), "198.51.100.2", 2)...)
	want = append(want, putLog(flowLogKey("222222222222", "eu-west-1", now, "fl-ccc", "z"), "198.51.100.3", 2)...)
	cfg := "name: b\ntype: s3\nurl: s3://flow-logs/AWSLogs/\nendpoint_url: " + url + "\nregion: us-east-1\npoll_interval: 50ms\nlookback: 1m\nstart: 48h\n"
	src := newS3Live(t, cfg)
	d := startDaemon(t, src, nil)
	d.waitRecords(6, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if got := d.got(); !sameSet(got, want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	saved := d.positions()
	if len(saved) != 2 || saved[0].Object != "AWSLogs/111111111111/vpcflowlogs/us-east-1/" || saved[1].Object != "AWSLogs/222222222222/vpcflowlogs/eu-west-1/" {
		t.Fatalf("positions %+v, want one per account and region", saved)
	}
	var tok listToken
	if err := json.Unmarshal([]byte(saved[0].Token), &tok); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tok.After, "fl-bbb_") || !strings.Contains(tok.After, now.Add(-24*time.Hour).Format("/2006/01/02/")) || len(tok.Done) != 1 {
		t.Errorf("token %+v: want yesterday's file folded into the mark and today's kept", tok)
	}
	if st := src.Status(); !st.Connected || st.Objects != 2 || st.LastError != "" {
		t.Errorf("status %+v", st)
	}
	d.stop()

	// While flowguard is down, a second flow log delivers a file that
	// sorts before today's file already read, and another prefix grows.
	more := putLog(flowLogKey("111111111111", "us-east-1", now, "fl-aaa", "w"), "198.51.100.4", 2)
	more = append(more, putLog(flowLogKey("222222222222", "eu-west-1", now, "fl-ccc", "zz"), "198.51.100.5", 2)...)
	d2 := startDaemon(t, newS3Live(t, cfg), saved)
	d2.waitRecords(4, 10*time.Second)
	// And one arrives while it runs.
	more = append(more, putLog(flowLogKey("111111111111", "us-east-1", now, "fl-aab", "v"), "198.51.100.6", 2)...)
	d2.waitRecords(6, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if got := d2.got(); !sameSet(got, more) {
		t.Errorf("records after restart %q, want only the new %q", got, more)
	}
}

func TestS3KeyTimeAndMarks(t *testing.T) {
	mod := time.Date(2026, 5, 5, 5, 5, 5, 0, time.UTC)
	for _, tc := range []struct {
		key  string
		hive bool
		want time.Time
	}{
		{"AWSLogs/1/vpcflowlogs/us-east-1/2026/11/30/f.log.gz", false, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{"AWSLogs/1/vpcflowlogs/us-east-1/2026/12/31/23/f.log.gz", false, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"p/aws-account-id=1/aws-service=vpcflowlogs/aws-region=us-east-1/year=2026/month=02/day=28/f.parquet", true, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"p/year=2026/month=02/day=28/hour=07/f.parquet", true, time.Date(2026, 2, 28, 8, 0, 0, 0, time.UTC)},
		{"flat/f.log.gz", false, mod},
	} {
		if got := keyTime(tc.key, mod, tc.hive); !got.Equal(tc.want) {
			t.Errorf("keyTime(%s) = %v, want %v", tc.key, got, tc.want)
		}
	}
	day := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	r := listRoot{prefix: "AWSLogs/1/vpcflowlogs/us-east-1/"}
	if m := r.startAfter(day); m != "AWSLogs/1/vpcflowlogs/us-east-1/2026/12/01" || !(m < r.prefix+"2026/12/01/a") || !(m > r.prefix+"2026/11/30/z") {
		t.Errorf("startAfter = %q", m)
	}
	h := listRoot{prefix: "p/", hive: true}
	if m := h.startAfter(day); m != "p/year=2026/month=12/day=01" {
		t.Errorf("hive startAfter = %q", m)
	}
}

// sqsEnv starts fauxqs and creates a queue; it returns the queue's URL and
// a client.
func sqsEnv(t *testing.T) (*sqs.Client, string, string) {
	t.Helper()
	ep := awstest.StartFauxqs(t)
	c := sqs.NewFromConfig(awstest.ClientConfig(ep))
	out, err := c.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String("flowlogs-events")})
	if err != nil {
		t.Fatal(err)
	}
	return c, aws.ToString(out.QueueUrl), ep
}

// notify sends the notification S3 sends when key is created.
func notify(t *testing.T, c *sqs.Client, queue, event, bucket, key string, size int) {
	t.Helper()
	body := fmt.Sprintf(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"%s","eventName":"%s","s3":{"s3SchemaVersion":"1.0","configurationId":"flowlogs","bucket":{"name":"%s","arn":"arn:aws:s3:::%s"},"object":{"key":"%s","size":%d,"eTag":"0123456789abcdef","sequencer":"%016X"}}}]}`,
		time.Now().UTC().Format(time.RFC3339), event, bucket, bucket, strings.ReplaceAll(key, " ", "+"), size, time.Now().UnixNano())
	sendRaw(t, c, queue, body)
}

func sendRaw(t *testing.T, c *sqs.Client, queue, body string) {
	t.Helper()
	if _, err := c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String(body)}); err != nil {
		t.Fatal(err)
	}
}

// queueCounts returns the messages visible and in flight.
func queueCounts(t *testing.T, c *sqs.Client, queue string) (visible, inflight string) {
	t.Helper()
	out, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queue), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes["ApproximateNumberOfMessages"], out.Attributes["ApproximateNumberOfMessagesNotVisible"]
}

func waitQueue(t *testing.T, c *sqs.Client, queue, visible, inflight string) {
	t.Helper()
	var v, f string
	for range 200 {
		if v, f = queueCounts(t, c, queue); v == visible && f == inflight {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("queue: %s visible, %s in flight; want %s and %s", v, f, visible, inflight)
}

func TestS3NotificationsDeleteAfterCommitAndRestart(t *testing.T) {
	url, s3c, _ := fakeS3(t)
	q, queue, ep := sqsEnv(t)
	const bucket = "flow-logs"
	if _, err := s3c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	putLog := func(key, src string, n int) []string {
		body, recs := flowLogObject(t, src, n)
		put(t, s3c, bucket, key, body)
		return recs
	}
	k1 := flowLogKey("111111111111", "us-east-1", now, "fl-aaa", "one")
	k2 := "AWSLogs/111111111111/vpcflowlogs/us-east-1/extra dir/two.log.gz" // a space: '+' in the notification
	want := append(putLog(k1, "198.51.100.1", 2), putLog(k2, "198.51.100.2", 3)...)
	putLog("elsewhere/three.log.gz", "198.51.100.3", 1)
	sendRaw(t, q, queue, `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-12-01T22:00:00.000Z","Bucket":"flow-logs","RequestId":"R","HostId":"H"}`)
	notify(t, q, queue, "ObjectRemoved:Delete", bucket, k1, 0)
	notify(t, q, queue, "ObjectCreated:Put", bucket, k1, 100)
	notify(t, q, queue, "ObjectCreated:CompleteMultipartUpload", bucket, k2, 100)
	notify(t, q, queue, "ObjectCreated:Put", bucket, "elsewhere/three.log.gz", 100)
	sendRaw(t, q, queue, `not json`)

	cfg := "name: b\ntype: s3\nurl: s3://flow-logs/AWSLogs/\nendpoint_url: " + url + "\nregion: us-east-1\nsqs_queue_url: " + queue + "\nsqs_endpoint_url: " + ep + "\nwait_time: 1s\nvisibility_timeout: 2s\n"
	src := newS3Live(t, cfg)
	d := startDaemon(t, src, nil)
	d.mu.Lock()
	d.hold = true // saved, not committed: nothing may be deleted
	d.mu.Unlock()
	got := d.waitRecords(5, 20*time.Second)
	if !sameSet(got, want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	// The messages with objects wait for Commit, the others (test event,
	// delete event, other prefix) are gone, the bad one stays for the
	// dead-letter queue.
	time.Sleep(300 * time.Millisecond)
	if _, inflight := queueCounts(t, q, queue); inflight != "3" {
		t.Errorf("%s messages in flight before Commit, want 3 (two objects, one unreadable)", inflight)
	}
	if st := src.Status(); !strings.Contains(st.LastError, "not an S3 event notification") {
		t.Errorf("status %+v: want the unreadable message reported", st)
	}
	// Visibility is extended while uncommitted: for three times the
	// timeout, no message about our objects was delivered again.
	time.Sleep(3 * time.Second)
	saved := d.positions()
	d.stop() // the crash: saved, never committed, never deleted
	time.Sleep(2500 * time.Millisecond)
	back := 0
	for deadline := time.Now().Add(5 * time.Second); back < 2 && time.Now().Before(deadline); {
		out, err := q.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			// Hand it back at once, for the restart below.
			if _, err := q.ChangeMessageVisibility(t.Context(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(queue), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(aws.ToString(m.Body), "ObjectCreated") {
				continue
			}
			back++
			if n := m.Attributes["ApproximateReceiveCount"]; n != "2" {
				t.Errorf("message received %s times (flowguard's, then this check's): its visibility was not extended while in flight", n)
			}
		}
	}
	if back != 2 {
		t.Errorf("%d object messages back after the crash, want 2: not deleted, since never committed", back)
	}

	// Restart: the redelivered messages are recognised and deleted, no
	// record is counted twice; a new object goes through, and its message
	// is deleted after Commit.
	k4 := flowLogKey("111111111111", "us-east-1", now, "fl-aaa", "four")
	more := putLog(k4, "198.51.100.4", 2)
	notify(t, q, queue, "ObjectCreated:Put", bucket, k4, 100)
	src2 := newS3Live(t, cfg)
	d2 := startDaemon(t, src2, saved)
	d2.waitRecords(2, 20*time.Second)
	time.Sleep(3 * time.Second) // the old messages become visible and come back
	if got := d2.got(); !sameSet(got, more) {
		t.Errorf("records after restart %q, want only %q", got, more)
	}
	if _, inflight := queueCounts(t, q, queue); inflight != "1" && inflight != "0" {
		t.Errorf("%s messages in flight after restart, want at most the unreadable one", inflight)
	}
	if st := src2.Status(); len(st.Positions) != 1 || st.Positions[0].Object != "sqs" {
		t.Errorf("status %+v", st)
	}
}

func TestS3ListingRoots(t *testing.T) {
	url, c, _ := fakeS3(t)
	const bucket = "flow-logs"
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{
		"AWSLogs/111111111111/vpcflowlogs/us-east-1/2026/12/01/a.log.gz",
		"AWSLogs/111111111111/vpcflowlogs/eu-west-1/2026/12/01/b.log.gz",
		"AWSLogs/111111111111/CloudTrail/us-east-1/2026/12/01/c.json.gz",
		"hive/AWSLogs/aws-account-id=111111111111/aws-service=vpcflowlogs/aws-region=us-east-1/year=2026/month=12/day=01/hour=22/d.parquet",
		"flat/e.log.gz",
		"flat/sub/f.log.gz",
	} {
		put(t, c, bucket, k, []byte("x"))
	}
	l := newS3Live(t, "name: b\ntype: s3\nurl: s3://flow-logs/\nendpoint_url: "+url+"\nregion: us-east-1\n").(*s3Live)
	l.s3 = c
	roots, err := l.roots(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []listRoot{
		{prefix: "AWSLogs/111111111111/CloudTrail/us-east-1/", dated: true},
		{prefix: "AWSLogs/111111111111/vpcflowlogs/eu-west-1/", dated: true},
		{prefix: "AWSLogs/111111111111/vpcflowlogs/us-east-1/", dated: true},
		{prefix: "flat/"},
		{prefix: "hive/AWSLogs/aws-account-id=111111111111/aws-service=vpcflowlogs/aws-region=us-east-1/", dated: true, hive: true},
	}
	if fmt.Sprint(roots) != fmt.Sprint(want) {
		t.Errorf("roots\n%v\nwant\n%v", roots, want)
	}
	// A prefix without its slash is the folder.
	roots, err = l.roots(t.Context(), "AWSLogs/111111111111/vpcflowlogs", 0)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(roots) != fmt.Sprint(want[1:3]) {
		t.Errorf("roots under a prefix without a slash\n%v\nwant\n%v", roots, want[1:3])
	}
}
