package source

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// kafkaEnv starts an in-process Kafka cluster (kfake: the real protocol)
// with a two-partition topic, and returns a producer and the source's
// configuration.
func kafkaEnv(t *testing.T) (*kgo.Client, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "flowlogs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	prod, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return prod, "name: k\ntype: kafka\ntopics: [flowlogs]\ngroup: fg\nbrokers: [" + strings.Join(addrs, ", ") + "]\n"
}

// produce writes each value to partition i%2.
func produce(t *testing.T, prod *kgo.Client, values ...[]byte) {
	t.Helper()
	for i, v := range values {
		if err := prod.ProduceSync(context.Background(), &kgo.Record{Topic: "flowlogs", Partition: int32(i % 2), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func newKafka(t *testing.T, cfg string) Live {
	t.Helper()
	l, err := NewLive(liveConfig(t, cfg), LiveDeps{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func lines(prefix string, n int) []string {
	var ls []string
	for i := range n {
		ls = append(ls, flowLine(prefix, 1000+i, i+1))
	}
	return ls
}

func bytesOf(ls []string) [][]byte {
	var bs [][]byte
	for _, l := range ls {
		bs = append(bs, []byte(l))
	}
	return bs
}

func TestKafkaRestartFromCheckpoint(t *testing.T) {
	prod, cfg := kafkaEnv(t)
	first := lines("198.51.100.1", 4)
	produce(t, prod, bytesOf(first)...)
	// A subscription payload and a control message, as a CloudWatch Logs
	// to Kafka bridge forwards them.
	sub := lines("198.51.100.2", 2)
	produce(t, prod, subscription(t, "DATA_MESSAGE", time.Now().UnixMilli(), sub...), subscription(t, "CONTROL_MESSAGE", 0))
	d := startDaemon(t, newKafka(t, cfg), nil)
	got := d.waitRecords(6, 20*time.Second)
	if want := append(slices.Clone(first), sub...); !sameSet(got, want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	// The last records are saved but the process dies before committing
	// them to Kafka: the group's offsets lag behind the store's.
	d.mu.Lock()
	d.hold = true
	d.mu.Unlock()
	held := lines("198.51.100.3", 2)
	produce(t, prod, bytesOf(held)...)
	d.waitRecords(8, 20*time.Second)
	saved := d.positions()
	d.stop()

	more := lines("198.51.100.4", 3)
	produce(t, prod, bytesOf(more)...)
	d2 := startDaemon(t, newKafka(t, cfg), saved)
	got = d2.waitRecords(3, 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	if got = d2.got(); !sameSet(got, more) {
		t.Errorf("records after restart %q, want only %q", got, more)
	}
	if st := d2.live.Status(); len(st.Positions) != 2 || !st.Connected {
		t.Errorf("status %+v", st)
	}
}

func TestKafkaGroupSharesPartitions(t *testing.T) {
	prod, cfg := kafkaEnv(t)
	d1 := startDaemon(t, newKafka(t, cfg), nil)
	d2 := startDaemon(t, newKafka(t, cfg), nil)
	deadline := time.Now().Add(20 * time.Second)
	for len(d1.live.Status().Positions) == 0 && !(d1.live.Status().Connected && d2.live.Status().Connected) {
		if time.Now().After(deadline) {
			t.Fatal("the members did not join")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // both members in the group
	all := lines("198.51.100.5", 20)
	produce(t, prod, bytesOf(all)...)
	for time.Now().Before(deadline) && len(d1.got())+len(d2.got()) < len(all) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	g1, g2 := d1.got(), d2.got()
	if !sameSet(append(g1, g2...), all) {
		t.Errorf("the two members read %d + %d records, want each of the %d once", len(g1), len(g2), len(all))
	}
	if len(g1) == 0 || len(g2) == 0 {
		t.Errorf("one member read everything (%d, %d): partitions not shared", len(g1), len(g2))
	}
}

// sameSet reports whether a and b hold the same strings the same number
// of times, in any order.
func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

func TestKafkaSASL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "flowlogs"), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "flowguard", "pa55"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	prod, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.SASL(scram.Auth{User: "flowguard", Pass: "pa55"}.AsSha256Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	a := flowLine("198.51.100.11", 22, 1)
	if err := prod.ProduceSync(t.Context(), &kgo.Record{Topic: "flowlogs", Value: []byte(a)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "good"), []byte("pa55\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "bad"), []byte("nope\n"), 0o600)
	cfg := "name: k\ntype: kafka\ntopics: [flowlogs]\nbrokers: [" + strings.Join(addrs, ", ") + "]\nsasl_mechanism: SCRAM-SHA-256\nsasl_username: flowguard\nsasl_password_file: "
	bad, err := NewLive(liveConfig(t, cfg+"bad\n"), LiveDeps{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	db := startDaemon(t, bad, nil)
	time.Sleep(time.Second)
	if st := bad.Status(); len(db.got()) != 0 || st.LastError == "" {
		t.Errorf("wrong password: %d records, status %+v; want none and the error shown", len(db.got()), st)
	}
	db.stop()
	good, err := NewLive(liveConfig(t, cfg+"good\n"), LiveDeps{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, good, nil)
	if got := d.waitRecords(1, 20*time.Second); got[0] != a {
		t.Errorf("records %q", got)
	}
}
