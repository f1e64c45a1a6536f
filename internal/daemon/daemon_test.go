package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/synth"
)

type testDaemon struct {
	t      *testing.T
	d      *Daemon
	cfg    string
	file   string
	size   int
	cancel context.CancelFunc
	done   chan error
}

func startDaemon(t *testing.T, config string) *testDaemon {
	t.Helper()
	return startDaemonLog(t, config, nil)
}

func startDaemonLog(t *testing.T, config string, log *slog.Logger) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "flowguard.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := New(ctx, Options{ConfigPath: cfg, DBPath: filepath.Join(dir, "f.db"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	td := &testDaemon{t: t, d: d, cfg: cfg, file: filepath.Join(logs, "flows.log"), cancel: cancel, done: make(chan error, 1)}
	go func() { td.done <- d.Run(ctx) }()
	t.Cleanup(func() { td.stop(); d.Close() })
	return td
}

func (td *testDaemon) stop() {
	if td.cancel == nil {
		return
	}
	td.cancel()
	td.cancel = nil
	if err := <-td.done; err != nil {
		td.t.Errorf("Run: %v", err)
	}
}

// appendAndWait appends p and waits until the store's position covers it.
func (td *testDaemon) appendAndWait(p []byte) {
	td.t.Helper()
	f, err := os.OpenFile(td.file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		td.t.Fatal(err)
	}
	f.Write(p)
	f.Close()
	td.size += len(p)
	want := strconv.Itoa(td.size)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ps, _ := td.d.Store().LoadPositions(context.Background(), "local")
		if len(ps) == 1 && ps[0].Token == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	td.t.Fatalf("not committed up to %d", td.size)
}

func genHalves(t *testing.T) ([]byte, []byte) {
	t.Helper()
	var b bytes.Buffer
	if err := synth.New(synth.Config{Records: 60000, Seed: 9, AccountID: "123456789012", Region: "us-east-1"}).WriteText(&b, false); err != nil {
		t.Fatal(err)
	}
	all := b.Bytes()
	mid := bytes.IndexByte(all[len(all)/2:], '\n') + len(all)/2 + 1
	return all[:mid], all[mid:]
}

const daemonConfig = `detectors:
  allowed_lateness: 2m
sources:
  - name: local
    type: files
    paths: [logs/]
    poll_interval: 10ms
`

// TestReload: a configuration that does not load is refused and the one
// in force kept; a good one changes the suppression rules at once, while
// the detection state goes on (the findings keep counting).
func TestReload(t *testing.T) {
	first, second := genHalves(t)
	td := startDaemon(t, daemonConfig)
	td.appendAndWait(first)
	before, err := td.d.Store().ListFindings(context.Background(), finding.Filter{Archived: finding.AnyArchived})
	if err != nil || len(before) == 0 {
		t.Fatalf("findings before the reload: %d, %v", len(before), err)
	}

	if err := os.WriteFile(td.cfg, []byte("detectors:\n  window: -1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := td.d.Reload(context.Background()); err == nil {
		t.Fatal("a bad configuration was accepted")
	}
	if td.d.Config().Sources[0].Name != "local" {
		t.Fatal("the configuration in force was replaced by a bad one")
	}

	good := daemonConfig + "suppression_rules:\n  - name: all-recon\n    types: [\"Recon:*\"]\n"
	if err := os.WriteFile(td.cfg, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := td.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	td.appendAndWait(second)
	after, err := td.d.Store().ListFindings(context.Background(), finding.Filter{Archived: finding.AnyArchived})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, f := range before {
		counts[f.ID] = f.Count
	}
	grew, suppressed := 0, 0
	for _, f := range after {
		old, seen := counts[f.ID]
		changed := !seen || f.Count != old
		if changed && seen {
			grew++ // counting went on from the state before the reload
		}
		if !changed {
			continue
		}
		if strings.HasPrefix(f.Type, "Recon:") {
			if !f.Archived {
				t.Errorf("%s %s changed after the reload but is not archived by the new rule", f.Type, f.ID)
			}
			suppressed++
		} else if f.Archived {
			t.Errorf("%s %s archived; the rule names Recon only", f.Type, f.ID)
		}
	}
	if grew == 0 || suppressed == 0 {
		t.Errorf("after the reload: %d findings grew, %d suppressed; want both", grew, suppressed)
	}
}

// syncBuf is a log destination safe for concurrent writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBadLinesNamedInTheFile: a malformed line in data appended later is
// skipped, counted in flowguard_parse_errors_total, and logged with its
// line and column in the file (not in the chunk), and the run goes on.
func TestBadLinesNamedInTheFile(t *testing.T) {
	var logs syncBuf
	td := startDaemonLog(t, daemonConfig, slog.New(slog.NewTextHandler(&logs, nil)))
	good := "2 123456789012 eni-1 198.51.100.7 10.0.0.5 4444 22 6 1 40 1700000000 1700000060 REJECT OK\n"
	td.appendAndWait([]byte(strings.Repeat(good, 3)))
	td.appendAndWait([]byte(good + "2 123456789012 eni-1 198.51.100.7 10.0.0.5 4444 22 6 1 forty 1700000000 1700000060 REJECT OK\n" + good))
	if n := counterValue(td.d.Metrics.ParseErrors.WithLabelValues("local")); n != 1 {
		t.Errorf("parse errors: %v, want 1", n)
	}
	if n := counterValue(td.d.Metrics.Records.WithLabelValues("local")); n != 5 {
		t.Errorf("records: %v, want 5", n)
	}
	if !strings.Contains(logs.String(), "flows.log:5:") {
		t.Errorf("the log does not name flows.log line 5:\n%s", logs.String())
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// TestReloadDetectorsReplays: a reload that changes a detector's
// thresholds restarts detection under the new rules, rebuilding the state
// by replay: the findings end as those of a daemon that ran the new
// configuration from the start, none counted twice.
func TestReloadDetectorsReplays(t *testing.T) {
	first, second := genHalves(t)
	strict := strings.Replace(daemonConfig, "  allowed_lateness: 2m\n", "  allowed_lateness: 2m\n  portscan: {min_ports: 500}\n", 1)
	td := startDaemon(t, strict)
	td.appendAndWait(first)
	if err := os.WriteFile(td.cfg, []byte(daemonConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := td.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	td.appendAndWait(second)

	fresh := startDaemon(t, daemonConfig)
	fresh.appendAndWait(append(append([]byte{}, first...), second...))
	want, err := fresh.d.Store().ListFindings(context.Background(), finding.Filter{Archived: finding.AnyArchived})
	if err != nil {
		t.Fatal(err)
	}
	// The reload is asynchronous: the records may all have been committed
	// under the old rules before the restarted processor replays them, so
	// wait (bounded) for the replay's commit to reach the store.
	have := map[string]finding.Finding{}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, err := td.d.Store().ListFindings(context.Background(), finding.Filter{Archived: finding.AnyArchived})
		if err != nil {
			t.Fatal(err)
		}
		clear(have)
		for _, f := range got {
			have[f.ID] = f
		}
		same := true
		for _, w := range want {
			if g, ok := have[w.ID]; !ok || g.Count != w.Count || !g.FirstSeen.Equal(w.FirstSeen) || !g.LastSeen.Equal(w.LastSeen) {
				same = false
			}
		}
		if same || time.Now().After(deadline) {
			break
		}
	}
	scans := 0
	for _, w := range want {
		g, ok := have[w.ID]
		switch {
		case !ok:
			t.Errorf("%s %s (count %d) missing after the reload", w.Type, w.ID, w.Count)
		case g.Count != w.Count || !g.FirstSeen.Equal(w.FirstSeen) || !g.LastSeen.Equal(w.LastSeen):
			t.Errorf("%s %s: count %d %s–%s after the reload, want %d %s–%s", w.Type, w.ID, g.Count, g.FirstSeen, g.LastSeen, w.Count, w.FirstSeen, w.LastSeen)
		}
		if w.Type == "Recon:EC2/Portscan" {
			scans++
		}
	}
	if scans == 0 {
		t.Error("no port scan found: the test data does not exercise the changed threshold")
	}
}

// TestGzipFileReadWhole: a gzip file (S3 delivery: a header line, then
// records) that appears in the directory is read whole once complete,
// and its position saved as done.
func TestGzipFileReadWhole(t *testing.T) {
	var plain bytes.Buffer
	g := synth.New(synth.Config{Records: 5000, Seed: 3, AccountID: "123456789012", Region: "us-east-1"})
	if err := g.WriteGzipText(&plain); err != nil {
		t.Fatal(err)
	}
	td := startDaemon(t, daemonConfig)
	path := filepath.Join(filepath.Dir(td.file), "delivery.log.gz")
	if err := os.WriteFile(path, plain.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for counterValue(td.d.Metrics.Records.WithLabelValues("local")) != 5000 {
		if time.Now().After(deadline) {
			t.Fatalf("records: %v, want 5000", counterValue(td.d.Metrics.Records.WithLabelValues("local")))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		ps, _ := td.d.Store().LoadPositions(context.Background(), "local")
		if len(ps) == 1 && ps[0].Token == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("positions %+v: want the file done", ps)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
