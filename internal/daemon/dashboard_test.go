package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
// does (protocol 1.0) and returns the status, which comes once the
// records are committed.
func post(t *testing.T, url, id string, data []byte) int {
	t.Helper()
	type rec struct {
		Data string `json:"data"`
	}
	body := struct {
		RequestID string `json:"requestId"`
		Timestamp int64  `json:"timestamp"`
		Records   []rec  `json:"records"`
	}{RequestID: id, Timestamp: time.Now().UnixMilli()}
	for len(data) > 0 { // records of about 64 KiB, cut at a line's end
		n := bytes.LastIndexByte(data[:min(len(data), 64<<10)], '\n') + 1
		body.Records = append(body.Records, rec{base64.StdEncoding.EncodeToString(data[:n])})
		data = data[n:]
	}
	js, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(js))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amz-Firehose-Request-Id", id)
	req.Header.Set("X-Amz-Firehose-Access-Key", "s3cret")
	for range 100 { // the endpoint starts with the daemon
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return resp.StatusCode
		}
		time.Sleep(20 * time.Millisecond)
		req.Body, _ = req.GetBody()
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
	cfg := fmt.Sprintf("sources:\n  - name: fh\n    type: firehose\n    listen: %s\n    access_key_file: key\n", listen)
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

// TestSpaceSavingKeepsTheHeavyKeys: below its capacity the sketch is
// exact; above it the heavy keys stay, their counts overestimated by at
// most the lightest kept weight.
func TestSpaceSavingKeepsTheHeavyKeys(t *testing.T) {
	s := newSpaceSaving[uint16](8)
	for k := range 8 {
		for range k + 1 {
			s.add(uint16(k), 1, 10, 1)
		}
	}
	got := map[uint16]int64{}
	s.each(func(k uint16, e *ssEntry[uint16]) { got[k] = e.count })
	for k := range 8 {
		if got[uint16(k)] != int64(k+1) {
			t.Errorf("below capacity: key %d counted %d, want %d", k, got[uint16(k)], k+1)
		}
	}
	// 1,000 keys seen once each and one seen 500 times.
	s = newSpaceSaving[uint16](8)
	for i := range 1500 {
		k := uint16(1000 + i)
		if i%3 == 0 {
			k = 7
		}
		s.add(k, 1, 1, 1)
	}
	var heavy *ssEntry[uint16]
	s.each(func(k uint16, e *ssEntry[uint16]) {
		if k == 7 {
			heavy = e
		}
	})
	if heavy == nil || heavy.weight < 500 || heavy.weight > 500+1000/8+1 {
		t.Fatalf("the heavy key: %+v, want weight 500 to %d", heavy, 500+1000/8+1)
	}
	if len(s.heap) != 8 || len(s.idx) != 8 {
		t.Errorf("sketch holds %d/%d entries, want its capacity 8", len(s.heap), len(s.idx))
	}
}

// BenchmarkDashboardObserve measures what the aggregation adds to the
// processor: scanning 100,000 records and converting the columns it reads
// (the engine converts them anyway), alone and with the dashboard's
// per-minute counts and top tables.
func BenchmarkDashboardObserve(b *testing.B) {
	var buf bytes.Buffer
	if err := synth.New(synth.Config{Records: 100000, Seed: 3, AccountID: "123456789012", Region: "us-east-1"}).WriteText(&buf, false); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	in := flowlog.Input{Name: "bench", Size: int64(len(data)), Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
	for _, observe := range []bool{false, true} {
		b.Run(map[bool]string{false: "scan", true: "scan+observe"}[observe], func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				h := &dashHook{now: time.Now, bySource: map[string]map[int64]*minuteAgg{}}
				sc := &flowlog.Scanner{Workers: 1}
				err := sc.Scan(context.Background(), []flowlog.Input{in}, func(_ int, bt *flowlog.Batch) error {
					for _, f := range []flowlog.Field{flowlog.FieldStart, flowlog.FieldBytes, flowlog.FieldDstPort} {
						bt.Uints(bt.Format.Index(f), nil)
					}
					bt.Addrs(bt.Format.Index(flowlog.FieldSrcAddr), nil)
					bt.Addrs(bt.Format.Index(flowlog.FieldDstAddr), nil)
					bt.Actions(bt.Format.Index(flowlog.FieldAction), nil)
					if observe {
						h.observe("local", bt, time.Time{}, 0)
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
