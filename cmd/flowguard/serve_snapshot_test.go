package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowguard/flowguard/internal/store"
)

// streamConfig is serveConfig (the same detectors and alarm) reading a
// Kafka topic instead of files: a source that acknowledges and forgets
// (offsets committed to the group), so that only the engine snapshot
// carries the open windows across a crash. %s are the brokers and the
// consumer group.
const streamConfig = `detectors:
  allowed_lateness: 2m
server:
  snapshot_interval: 300ms
` + rejectAlarm + `sources:
  - name: stream
    type: kafka
    brokers: [%s]
    topics: [flowlogs]
    group: %s
`

// kafkaRun is a daemon run reading a topic of an in-process Kafka
// cluster (kfake, the real protocol).
type kafkaRun struct {
	*daemonRun
	brokers string
	prod    *kgo.Client
	records int // produced so far
	starts  int
}

func newKafkaRun(t *testing.T) *kafkaRun {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "flowlogs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("flowlogs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	r := &kafkaRun{brokers: strings.Join(c.ListenAddrs(), ", "), prod: prod}
	r.daemonRun = newDaemonRunWith(t, "", nil)
	return r
}

// start writes the configuration and starts serve. Each start joins a
// new consumer group: a process killed with SIGKILL stays a member of its
// group until the broker's session timeout (45 s), which would hold up
// the next one's partitions; a new group has no committed offsets, so the
// partition resumes from the position saved with the engine snapshot —
// the position the daemon itself commits to the group, at the same time.
func (r *kafkaRun) start() {
	r.t.Helper()
	r.starts++
	cfg := fmt.Sprintf(streamConfig, r.brokers, "fg-"+strconv.Itoa(r.starts))
	if err := os.WriteFile(filepath.Join(r.dir, "flowguard.yaml"), []byte(cfg), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.daemonRun.start()
}

// startReady starts serve and waits until it answers /readyz.
func (r *kafkaRun) startReady() {
	r.t.Helper()
	r.start()
	r.waitReady()
}

// produce writes a piece of flow log text as records of at most 50 lines.
func (r *kafkaRun) produce(p []byte) {
	r.t.Helper()
	lines := bytes.SplitAfter(p, []byte("\n"))
	for len(lines) > 0 {
		n := min(len(lines), 50)
		v := bytes.Join(lines[:n], nil)
		lines = lines[n:]
		if len(bytes.TrimSpace(v)) == 0 {
			continue
		}
		if err := r.prod.ProduceSync(context.Background(), &kgo.Record{Value: v}).FirstErr(); err != nil {
			r.t.Fatal(err)
		}
		r.records++
	}
}

// waitCommitted waits until the position saved for the partition (with
// a snapshot) is past every record produced.
func (r *kafkaRun) waitCommitted() {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	want := strconv.Itoa(r.records)
	for time.Now().Before(deadline) {
		if st, err := store.Open(context.Background(), r.db); err == nil {
			ps, err := st.LoadPositions(context.Background(), "stream")
			st.Close()
			if err == nil && len(ps) == 1 && ps[0].Token == want {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("the daemon did not commit up to offset %d in 60s\n%s", r.records, r.errb)
}

// wholeLines cuts generated pieces at line ends (records are whole lines).
func wholeLines(pieces [][]byte) [][]byte {
	var out [][]byte
	var carry []byte
	for _, p := range pieces {
		p = append(carry, p...)
		i := bytes.LastIndexByte(p, '\n')
		carry = bytes.Clone(p[i+1:])
		if i >= 0 {
			out = append(out, p[:i+1])
		}
	}
	if len(carry) > 0 {
		out = append(out, append(carry, '\n'))
	}
	return out
}

// TestServeStreamExactlyOnceAcrossKill9 is TestServeExactlyOnceAcrossKill9
// for a source that cannot replay: flowguard serve reads a Kafka topic
// that the test produces to, is killed with SIGKILL at random moments many
// times and restarted, and the store at the end — findings' ids, counts,
// first and last seen, and alarm states — must equal a run never killed.
// Offsets reach Kafka and the store only with an engine snapshot, so what
// a killed process read after its last snapshot is read again and fed to
// the restored state.
func TestServeStreamExactlyOnceAcrossKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	pieces := wholeLines(generated(t, 60000, 24, 7))

	clean := newKafkaRun(t)
	clean.startReady()
	for _, p := range pieces {
		clean.produce(p)
		time.Sleep(10 * time.Millisecond)
	}
	clean.waitCommitted()
	clean.stop(syscall.SIGTERM)
	wantF, wantA := clean.storeState()
	if len(wantF) < 10 {
		t.Fatalf("the uninterrupted run found only %d findings: the test data is too small", len(wantF))
	}

	killed := newKafkaRun(t)
	rng := rand.New(rand.NewPCG(43, 43))
	next, kills := 0, 0
	for next < len(pieces) || kills < 12 {
		killed.start()
		for k := rng.IntN(3); k > 0 && next < len(pieces); k-- {
			killed.produce(pieces[next])
			next++
		}
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
		killed.stop(syscall.SIGKILL)
		kills++
	}
	killed.startReady()
	killed.waitCommitted()
	killed.stop(syscall.SIGTERM)
	gotF, gotA := killed.storeState()
	t.Logf("%d kills; %d findings, %d alarms", kills, len(gotF), len(gotA))
	diffLines(t, "findings", gotF, wantF)
	diffLines(t, "alarm states", gotA, wantA)
}
