package source

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/flowguard/flowguard/internal/awstest"
)

// kinesisEnv starts kinesalite with a one-shard stream and returns a
// client and the source's configuration.
func kinesisEnv(t *testing.T) (*kinesis.Client, string) {
	t.Helper()
	url := awstest.StartKinesalite(t)
	setTestCredentials(t)
	c := kinesis.NewFromConfig(awstest.ClientConfig(url))
	ctx := t.Context()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("flowlogs"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	waitStreamActive(t, c)
	return c, "name: kin\ntype: kinesis\nstream: flowlogs\nregion: us-east-1\nendpoint_url: " + url + "\npoll_interval: 50ms\nshard_refresh: 200ms\n"
}

// setTestCredentials gives the SDK's default chain static credentials,
// so that the sources load them as they would in production.
func setTestCredentials(t *testing.T) { awstest.SetEnv(t) }

func waitStreamActive(t *testing.T, c *kinesis.Client) {
	t.Helper()
	for range 200 {
		out, err := c.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("flowlogs")})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the stream did not become ACTIVE")
}

func putRecord(t *testing.T, c *kinesis.Client, key string, data []byte) {
	t.Helper()
	if _, err := c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String("flowlogs"), PartitionKey: aws.String(key), Data: data}); err != nil {
		t.Fatal(err)
	}
}

func TestKinesisFollowsAndRestarts(t *testing.T) {
	c, cfg := kinesisEnv(t)
	src := func() Live {
		l, err := NewLive(liveConfig(t, cfg), LiveDeps{})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b, x := flowLine("198.51.100.1", 22, 1), flowLine("198.51.100.2", 23, 2), flowLine("198.51.100.3", 24, 3)
	putRecord(t, c, "k", subscription(t, "CONTROL_MESSAGE", 0))
	putRecord(t, c, "k", subscription(t, "DATA_MESSAGE", time.Now().UnixMilli(), a, b))
	putRecord(t, c, "k", []byte(x))
	putRecord(t, c, "k", []byte{0x1f, 0x8b, 0, 0}) // broken: skipped and reported
	s1 := src()
	d := startDaemon(t, s1, nil)
	got := d.waitRecords(3, 10*time.Second)
	if want := []string{a, b, x}; !slices.Equal(got, want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	st := s1.Status()
	if !st.Connected || len(st.Positions) != 1 || st.Positions[0].Object != "shardId-000000000000" || !strings.Contains(st.LastError, "not a CloudWatch Logs subscription payload") {
		t.Errorf("status %+v", st)
	}
	time.Sleep(200 * time.Millisecond) // let it reach the broken record
	saved := d.positions()
	d.stop()

	// Records put while flowguard was down, then resharding: the closed
	// parent's records come before its children's.
	y := flowLine("198.51.100.4", 25, 4)
	putRecord(t, c, "k", subscription(t, "DATA_MESSAGE", time.Now().UnixMilli(), y))
	if _, err := c.SplitShard(t.Context(), &kinesis.SplitShardInput{StreamName: aws.String("flowlogs"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	waitStreamActive(t, c)
	var after []string
	for i := range 6 {
		l := flowLine("203.0.113.9", 1000+i, 10+i)
		after = append(after, l)
		putRecord(t, c, "key-"+strings.Repeat("z", i), []byte(l)) // spread over both children
	}
	d2 := startDaemon(t, src(), saved)
	got = d2.waitRecords(7, 10*time.Second)
	if got[0] != y {
		t.Errorf("first record after restart %q, want the parent's %q (records %q)", got[0], y, got)
	}
	if rest := slices.Sorted(slices.Values(got[1:])); !slices.Equal(rest, slices.Sorted(slices.Values(after))) {
		t.Errorf("records from the children %q, want %q", got[1:], after)
	}
	for _, r := range got {
		if r == a || r == b || r == x {
			t.Errorf("record %q read again after the restart", r)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(d2.got()); n != 7 {
		t.Errorf("%d records after restart, want 7", n)
	}
	objs := map[string]bool{}
	for _, p := range d2.positions() {
		objs[p.Object] = true
	}
	if len(objs) < 2 {
		t.Errorf("positions %v: want the parent and the children", d2.positions())
	}

	// Merging the two children: the merged shard has two parents, both
	// read to their end first; nothing is read twice after the restart.
	saved = d2.positions()
	d2.stop()
	shards, err := c.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String("flowlogs")})
	if err != nil {
		t.Fatal(err)
	}
	var open []string
	for _, s := range shards.Shards {
		if s.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, aws.ToString(s.ShardId))
		}
	}
	if len(open) != 2 {
		t.Fatalf("open shards %v, want the two children", open)
	}
	late := flowLine("203.0.113.77", 2000, 99)
	putRecord(t, c, "key-z", []byte(late)) // into a child, unread
	if _, err := c.MergeShards(t.Context(), &kinesis.MergeShardsInput{StreamName: aws.String("flowlogs"), ShardToMerge: aws.String(open[0]), AdjacentShardToMerge: aws.String(open[1])}); err != nil {
		t.Fatal(err)
	}
	waitStreamActive(t, c)
	merged := flowLine("203.0.113.78", 2001, 100)
	putRecord(t, c, "k", []byte(merged))
	d3 := startDaemon(t, src(), saved)
	got = d3.waitRecords(2, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	if got = d3.got(); len(got) != 2 || got[0] != late || got[1] != merged {
		t.Errorf("records after the merge %q, want %q then %q", got, late, merged)
	}
}

func TestKinesisStartLatest(t *testing.T) {
	c, cfg := kinesisEnv(t)
	putRecord(t, c, "k", []byte(flowLine("192.0.2.1", 22, 1))) // before the first start: not read
	l, err := NewLive(liveConfig(t, cfg+"start: latest\n"), LiveDeps{})
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, l, nil)
	for deadline := time.Now().Add(10 * time.Second); !l.Status().Connected; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not connected: %+v", l.Status())
		}
	}
	time.Sleep(300 * time.Millisecond) // the iterator is taken
	b := flowLine("198.51.100.8", 23, 2)
	putRecord(t, c, "k", []byte(b))
	if got := d.waitRecords(1, 10*time.Second); len(got) != 1 || got[0] != b {
		t.Errorf("records %q, want only %q", got, b)
	}
}
