package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/server"
	"github.com/flowguard/flowguard/internal/store"
	"github.com/flowguard/flowguard/internal/synth"
)

// runDaemon starts a daemon on dir (config flowguard.yaml, database
// f.db) with the HTTP API on an httptest server; stop stops both.
func runDaemon(t *testing.T, dir string) (d *Daemon, api string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := New(ctx, Options{ConfigPath: filepath.Join(dir, "flowguard.yaml"), DBPath: filepath.Join(dir, "f.db")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(d)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		ts.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		d.Close()
	}
	t.Cleanup(stop)
	return d, ts.URL, stop
}

// recentTraffic is n generated records of the last half hour.
func recentTraffic(t *testing.T, n int, seed uint64) []byte {
	t.Helper()
	var b bytes.Buffer
	start := time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Minute)
	if err := synth.New(synth.Config{Records: n, Seed: seed, Start: start, Duration: 20 * time.Minute,
		AccountID: "123456789012", Region: "us-east-1"}).WriteText(&b, false); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// minuteCounts counts default-format (v2) records by minute and action,
// as the aggregates should: "minute action" → records, bytes.
func minuteCounts(t *testing.T, data []byte) map[string][2]int64 {
	t.Helper()
	out := map[string][2]int64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 14 {
			t.Fatalf("not a v2 record: %q", sc.Text())
		}
		start, _ := strconv.ParseInt(f[10], 10, 64)
		n, _ := strconv.ParseInt(f[9], 10, 64)
		action := strings.TrimPrefix(f[12], "-") // no data: no action
		k := fmt.Sprintf("%d %s", start-start%60, action)
		c := out[k]
		out[k] = [2]int64{c[0] + 1, c[1] + n}
	}
	return out
}

// storedCounts reads the aggregates back in the same shape.
func storedCounts(t *testing.T, st *store.Store) map[string][2]int64 {
	t.Helper()
	bins, err := st.TrafficSeries(context.Background(), time.Unix(0, 0), time.Now().Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int64{}
	for _, b := range bins {
		out[fmt.Sprintf("%d %s", b.Time.Unix(), b.Action)] = [2]int64{b.Records, b.Bytes}
	}
	return out
}

func diffCounts(t *testing.T, what string, got, want map[string][2]int64) {
	t.Helper()
	bad := 0
	for k, w := range want {
		if got[k] != w && bad < 5 {
			t.Errorf("%s: minute/action %s: stored %v, the records hold %v", what, k, got[k], w)
			bad++
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d minute/action rows stored, the records make %d", what, len(got), len(want))
	}
}

// freePort returns an address on 127.0.0.1 nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// post delivers records to a firehose source as Amazon Data Firehose
// does and returns the status, which comes once the records are
// committed.
func post(t *testing.T, url, id string, data []byte) int {
	t.Helper()
	for range 100 { // the endpoint starts with the daemon
		resp, err := http.DefaultClient.Do(awstest.FirehoseRequest(url, "s3cret", id, data))
		if err == nil {
			resp.Body.Close()
			return resp.StatusCode
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("cannot deliver to %s", url)
	return 0
}

// tables reads GET /api/v1/tables.
func tables(t *testing.T, api, query string) map[string][]map[string]any {
	t.Helper()
	resp, err := http.Get(api + "/api/v1/tables?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Tables map[string][]map[string]any `json:"tables"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/tables?%s: %s", query, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Tables
}

// TestDashboardTrafficFromFirehose: records delivered to a firehose
// source (a stream the files never see) are in GET /api/v1/tables, per
// minute and action exactly, with their top tables; after a restart, a
// retried delivery and a new one, every record is counted once.
func TestDashboardTrafficFromFirehose(t *testing.T) {
	dir := t.TempDir()
	listen := freePort(t)
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("server:\n  snapshot_interval: 500ms\nsources:\n  - name: fh\n    type: firehose\n    listen: %s\n    access_key_file: key\n", listen)
	if err := os.WriteFile(filepath.Join(dir, "flowguard.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	data := recentTraffic(t, 30000, 5)
	cut := bytes.IndexByte(data[len(data)/3:], '\n') + len(data)/3 + 1
	cut2 := bytes.IndexByte(data[2*len(data)/3:], '\n') + 2*len(data)/3 + 1
	url := "http://" + listen + "/"

	d, api, stop := runDaemon(t, dir)
	if code := post(t, url, "req-1", data[:cut]); code != 200 {
		t.Fatalf("delivery 1: %d", code)
	}
	if code := post(t, url, "req-2", data[cut:cut2]); code != 200 {
		t.Fatalf("delivery 2: %d", code)
	}
	diffCounts(t, "before the restart", storedCounts(t, d.Store()), minuteCounts(t, data[:cut2]))
	tabs := tables(t, api, "since=1h&bin=1m")
	var total float64
	for _, r := range tabs["traffic"] {
		total += r["records"].(float64)
	}
	if want := float64(bytes.Count(data[:cut2], []byte{'\n'})); total != want {
		t.Errorf("GET /api/v1/tables: %v records in traffic, want %v", total, want)
	}
	if len(tabs["source_records"]) != 1 || tabs["source_records"][0]["source"] != "fh" || tabs["source_records"][0]["records"].(float64) != total {
		t.Errorf("source_records %v, want all from fh", tabs["source_records"])
	}
	if len(tabs["top_talkers"]) == 0 || len(tabs["dst_ports"]) == 0 || len(tabs["rejected_sources"]) == 0 {
		t.Errorf("empty top tables: %v", tabs)
	}
	stop()

	d, api, _ = runDaemon(t, dir)
	if code := post(t, url, "req-2", data[cut:cut2]); code != 200 { // Firehose retrying a delivery already committed
		t.Fatalf("retry of delivery 2: %d", code)
	}
	if code := post(t, url, "req-3", data[cut2:]); code != 200 {
		t.Fatalf("delivery 3: %d", code)
	}
	diffCounts(t, "after the restart", storedCounts(t, d.Store()), minuteCounts(t, data))
	total = 0
	for _, r := range tables(t, api, "since=1h&bin=5m&name=traffic")["traffic"] {
		total += r["records"].(float64)
	}
	if want := float64(bytes.Count(data, []byte{'\n'})); total != want {
		t.Errorf("after the restart: %v records in traffic, want %v", total, want)
	}
}

// TestDashboardTrafficNotDoubledByReplay: a files source is read again
// from the start after a restart (to rebuild the detection state); the
// records committed before are not added again, not even those of a
// chunk that straddles the committed offset (the file grew while the
// daemon was down, so the replay cuts its chunks elsewhere).
func TestDashboardTrafficNotDoubledByReplay(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := "sources:\n  - name: local\n    type: files\n    paths: [logs/]\n    poll_interval: 10ms\n    chunk_bytes: 100000\n"
	if err := os.WriteFile(filepath.Join(dir, "flowguard.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	data := recentTraffic(t, 20000, 6)
	file := filepath.Join(dir, "logs", "flows.log")
	cut := bytes.IndexByte(data[len(data)/2+33333:], '\n') + len(data)/2 + 33333 + 1 // not on a chunk boundary
	waitFor := func(d *Daemon, size int) {
		t.Helper()
		for range 2000 {
			ps, _ := d.Store().LoadPositions(context.Background(), "local")
			if len(ps) == 1 && ps[0].Token == strconv.Itoa(size) {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("not committed up to %d", size)
	}
	if err := os.WriteFile(file, data[:cut], 0o644); err != nil {
		t.Fatal(err)
	}
	d, _, stop := runDaemon(t, dir)
	waitFor(d, cut)
	diffCounts(t, "first run", storedCounts(t, d.Store()), minuteCounts(t, data[:cut]))
	stop()

	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data[cut:])
	f.Close()
	d, _, _ = runDaemon(t, dir)
	waitFor(d, len(data))
	diffCounts(t, "after the replay", storedCounts(t, d.Store()), minuteCounts(t, data))
}

// TestTopCounterKeepsTheHeavyKeys: below 4×keep keys the counts are
// exact; past it the heavy keys stay with their exact counts and the
// counter stays bounded.
func TestTopCounterKeepsTheHeavyKeys(t *testing.T) {
	c := newTopCounter(8, false)
	for k := range 32 {
		for range k + 1 {
			c.add(uint64(k), [16]byte{}, [16]byte{}, 1, 10, 1)
		}
	}
	got := map[uint64]int64{}
	c.each(func(e *topEntry, _ *store.PortSet) { got[e.key] = e.count })
	for k := range 32 {
		if got[uint64(k)] != int64(k+1) {
			t.Errorf("below 4×keep: key %d counted %d, want %d", k, got[uint64(k)], k+1)
		}
	}
	// 1,000 keys seen once each and one seen 500 times.
	c = newTopCounter(8, false)
	for i := range 1500 {
		k := uint16(1000 + i)
		if i%3 == 0 {
			k = 7
		}
		c.add(uint64(k), [16]byte{}, [16]byte{}, 1, 1, 1)
	}
	var heavy int64
	c.each(func(e *topEntry, _ *store.PortSet) {
		if e.key == 7 {
			heavy = e.count
		}
	})
	if heavy != 500 {
		t.Errorf("the heavy key counted %d, want 500", heavy)
	}
	if len(c.ents) > 32 || len(c.idx) != len(c.ents) {
		t.Errorf("the counter holds %d entries (%d indexed), want at most 32", len(c.ents), len(c.idx))
	}
}

// BenchmarkDashboardObserve measures what the aggregation adds to the
// processor per record: 100,000 generated records in typed batches of
// 8,192 (the columns converted, as the engine leaves them), observed,
// then taken by a commit (fill: the store's rows made, not written).
func BenchmarkDashboardObserve(b *testing.B) {
	var buf bytes.Buffer
	if err := synth.New(synth.Config{Records: 100000, Seed: 3, AccountID: "123456789012", Region: "us-east-1"}).WriteText(&buf, false); err != nil {
		b.Fatal(err)
	}
	f, err := flowlog.ParseFormat("srcaddr dstaddr dstport bytes start action")
	if err != nil {
		b.Fatal(err)
	}
	var lines [][]string
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		lines = append(lines, strings.Fields(sc.Text()))
	}
	var batches []*flowlog.Batch
	for len(lines) > 0 {
		n := min(len(lines), 8192)
		bt := &flowlog.Batch{}
		bt.ResetColumns(f, "bench", len(batches), n)
		src, dst := bt.FillAddrs(0), bt.FillAddrs(1)
		port, hasPort := bt.FillUints(2)
		byts, hasBytes := bt.FillUints(3)
		start, hasStart := bt.FillUints(4)
		act := bt.FillEnums(5)
		for i, l := range lines[:n] {
			src[i], _ = netip.ParseAddr(l[3])
			dst[i], _ = netip.ParseAddr(l[4])
			p, err1 := strconv.ParseUint(l[6], 10, 16)
			port[i], hasPort[i] = p, err1 == nil
			v, err2 := strconv.ParseUint(l[9], 10, 64)
			byts[i], hasBytes[i] = v, err2 == nil
			t, err3 := strconv.ParseUint(l[10], 10, 64)
			start[i], hasStart[i] = t, err3 == nil
			switch l[12] {
			case "ACCEPT":
				act[i] = uint8(flowlog.ActionAccept)
			case "REJECT":
				act[i] = uint8(flowlog.ActionReject)
			}
		}
		batches = append(batches, bt)
		lines = lines[n:]
	}
	b.ReportAllocs()
	var records int
	for _, bt := range batches {
		records += bt.N
	}
	start := time.Now()
	h := &dashHook{now: time.Now, bySource: map[string]map[int64]*minuteAgg{}}
	for b.Loop() {
		for _, bt := range batches {
			h.observe("local", bt, time.Time{}, 0)
		}
		// A commit takes the aggregates (and frees the counters).
		if err := h.fill(&store.StreamCommit{Positions: []store.Position{{Source: "local"}}}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*records), "ns/record")
}
