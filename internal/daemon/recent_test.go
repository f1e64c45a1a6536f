package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/source"
)

// TestRecentRingDropsTheOldest: the ring keeps at most its bound in
// bytes, dropping the oldest chunks first; a chunk larger than the bound
// is not kept; since filters by arrival.
func TestRecentRingDropsTheOldest(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	chunk := func(i int, n int) source.Chunk {
		return source.Chunk{Name: fmt.Sprintf("c%d", i), Data: bytes.Repeat([]byte{'a' + byte(i)}, n), Arrived: t0.Add(time.Duration(i) * time.Minute)}
	}
	names := func(r *recentRing, since time.Time) string {
		var out []string
		for _, e := range r.since(since) {
			out = append(out, e.Name)
		}
		return strings.Join(out, " ")
	}
	r := newRecentRing(100)
	for i := range 5 {
		r.add("fh", chunk(i, 30))
	}
	if got, want := names(r, time.Time{}), "c2 c3 c4"; got != want {
		t.Errorf("after 5 chunks of 30 bytes under 100: %q, want %q", got, want)
	}
	if r.bytes() != 90 {
		t.Errorf("%d bytes kept, want 90", r.bytes())
	}
	r.add("fh", chunk(5, 101))
	if got, want := names(r, time.Time{}), "c2 c3 c4"; got != want {
		t.Errorf("a chunk over the bound changed the ring: %q, want %q", got, want)
	}
	r.add("fh", source.Chunk{Name: "whole", Open: func(context.Context) (io.ReadCloser, error) { return nil, nil }})
	hdr := chunk(6, 20)
	hdr.Header = []byte("version srcaddr dstaddr\n")
	r.add("fh", hdr) // 20 + 24 bytes: c2 and c3 go
	if got, want := names(r, time.Time{}), "c4 c6"; got != want {
		t.Errorf("with a header: %q, want %q", got, want)
	}
	if got, want := names(r, t0.Add(5*time.Minute)), "c6"; got != want {
		t.Errorf("since minute 5: %q, want %q", got, want)
	}
	r.setLimit(50)
	if got, want := names(r, time.Time{}), "c6"; got != want || r.bytes() != 44 {
		t.Errorf("after lowering the bound: %q (%d bytes), want %q (44 bytes)", got, r.bytes(), want)
	}
	data := []byte("x\n")
	c := source.Chunk{Name: "own", Data: data, Arrived: t0}
	r.add("fh", c)
	data[0] = 'y' // the source's buffer: the ring holds its own copy
	if e := r.since(time.Time{}); string(e[len(e)-1].Data) != "x\n" {
		t.Errorf("the ring shares the chunk's buffer: %q", e[len(e)-1].Data)
	}
}

// firehoseDaemon starts a daemon whose only source is a firehose
// endpoint and returns the daemon, the API, the endpoint and the API
// token.
func firehoseDaemon(t *testing.T) (d *Daemon, api, url, token string) {
	t.Helper()
	dir := t.TempDir()
	listen := freePort(t)
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("server:\n  snapshot_interval: 300ms\nsources:\n  - name: fh\n    type: firehose\n    listen: %s\n    access_key_file: key\n", listen)
	if err := os.WriteFile(filepath.Join(dir, "flowguard.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d, api, _ = runDaemon(t, dir)
	tok, err := os.ReadFile(d.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	return d, api, "http://" + listen + "/", strings.TrimSpace(string(tok))
}

// v2Records calls fn with the fields of each default-format record.
func v2Records(t *testing.T, data []byte, fn func(f []string)) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 14 {
			t.Fatalf("not a v2 record: %q", sc.Text())
		}
		fn(f)
	}
}

// apiDo sends a request to the API and decodes a 200 answer into out.
func apiDo(t *testing.T, method, url, token, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %s", method, url, resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: %v in %s", method, url, err, b)
	}
}

// TestQueryOverFirehose: records delivered to a firehose source (no
// file holds them) are what POST /api/v1/query reads: the dashboard's
// seed query counts the rejected records per source address exactly as
// the delivered records hold them.
func TestQueryOverFirehose(t *testing.T) {
	_, api, url, tok := firehoseDaemon(t)
	data := recentTraffic(t, 20000, 7)
	cut := bytes.IndexByte(data[len(data)/2:], '\n') + len(data)/2 + 1
	for i, part := range [][]byte{data[:cut], data[cut:]} {
		if code := post(t, url, fmt.Sprintf("req-%d", i), part); code != 200 {
			t.Fatalf("delivery %d: %d", i, code)
		}
	}
	want := map[string]int{}
	v2Records(t, data, func(f []string) {
		if f[12] == "REJECT" {
			want[f[3]]++
		}
	})
	for k, n := range want {
		if n < 2 {
			delete(want, k)
		}
	}
	if len(want) == 0 {
		t.Fatal("the generated traffic has no source with 2 rejected records: nothing to check")
	}
	q := `filter action = "REJECT" | stats count() by srcAddr | filter count >= 2 | sort count desc`
	body, _ := json.Marshal(map[string]string{"query": q, "since": "1h"})
	var rows []map[string]any
	apiDo(t, "POST", api+"/api/v1/query", tok, string(body), &rows)
	got := map[string]int{}
	last := -1.0
	for _, r := range rows {
		c, _ := r["count()"].(float64)
		if last >= 0 && c > last {
			t.Errorf("not sorted by count, descending: %v after %v", c, last)
		}
		last = c
		got[fmt.Sprint(r["srcAddr"])] = int(c)
	}
	if len(got) != len(want) {
		t.Errorf("%d source addresses, the records hold %d", len(got), len(want))
	}
	bad := 0
	for k, n := range want {
		if got[k] != n && bad < 5 {
			t.Errorf("%s: %d rejected records in the answer, %d delivered", k, got[k], n)
			bad++
		}
	}
}

// TestActorTimelineOverFirehose: a finding found in records delivered to
// a firehose source has its actor's flows on the finding page (GET
// /api/v1/findings/{id}/flows), as many as the delivered records hold.
func TestActorTimelineOverFirehose(t *testing.T) {
	d, api, url, _ := firehoseDaemon(t)
	// A port scan of 10.0.0.5 by 198.51.100.7 in background traffic.
	// It comes first: the background starts half an hour ago, and records
	// far behind the ones before them would be late.
	var b bytes.Buffer
	t0 := time.Now().UTC().Add(-31 * time.Minute).Truncate(time.Minute)
	for i := range 200 {
		fmt.Fprintf(&b, "2 123456789012 eni-0a1b2c3d 198.51.100.7 10.0.0.5 40000 %d 6 1 40 %d %d REJECT OK\n", 1000+i, t0.Unix()+int64(i/10), t0.Unix()+int64(i/10)+5)
	}
	b.Write(recentTraffic(t, 5000, 11))
	data := b.Bytes()
	if code := post(t, url, "req-1", data); code != 200 {
		t.Fatalf("delivery: %d", code)
	}
	var f finding.Finding
	deadline := time.Now().Add(20 * time.Second)
	for f.ID == "" {
		fs, err := d.Store().ListFindings(context.Background(), finding.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range fs {
			if x.Actor.IP.String() == "198.51.100.7" {
				f = x
			}
		}
		if f.ID == "" {
			if time.Now().After(deadline) {
				for _, x := range fs {
					t.Logf("finding %s %s", x.Type, x.Title)
				}
				t.Fatalf("no finding about 198.51.100.7 among %d", len(fs))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	since, until := f.FirstSeen.Add(-2*time.Minute).Unix(), f.LastSeen.Add(2*time.Minute).Unix()
	want := 0
	v2Records(t, data, func(fl []string) {
		start, _ := strconv.ParseInt(fl[10], 10, 64)
		if (fl[3] == "198.51.100.7" || fl[4] == "198.51.100.7") && start >= since && start <= until {
			want++
		}
	})
	var out struct {
		Timeline []map[string]any `json:"timeline"`
		Samples  []map[string]any `json:"samples"`
	}
	apiDo(t, "GET", api+"/api/v1/findings/"+f.ID+"/flows", "", "", &out)
	got := 0.0
	for _, p := range out.Timeline {
		got += p["flows"].(float64)
	}
	if int(got) != want || want == 0 {
		t.Errorf("the timeline holds %v flows, the delivered records %d", got, want)
	}
	if len(out.Samples) == 0 {
		t.Error("no sample record")
	}
}

// BenchmarkRecentRingAdd: the cost the processor pays per 1 MiB chunk
// kept (a copy, and dropping the oldest once the ring is full).
func BenchmarkRecentRingAdd(b *testing.B) {
	r := newRecentRing(64 << 20)
	c := source.Chunk{Name: "x", Data: bytes.Repeat([]byte("2 123456789012 eni-1 198.51.100.7 10.0.0.5 4444 22 6 1 40 1700000000 1700000060 REJECT OK\n"), (1<<20)/93), Arrived: time.Now()}
	b.SetBytes(int64(len(c.Data)))
	for b.Loop() {
		r.add("fh", c)
	}
}

// TestRecentRingKeepsObjectsByReference: an object read whole (an S3
// object) is kept as a way to read it again, counted against the bound by
// its size; one larger than the bound is not kept.
func TestRecentRingKeepsObjectsByReference(t *testing.T) {
	open := func(context.Context) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x\n")), nil }
	r := newRecentRing(10 << 10)
	r.add("bucket", source.Chunk{Name: "s3://b/k1.gz", Open: open, Size: 4 << 10})
	r.add("bucket", source.Chunk{Name: "s3://b/k2.gz", Open: open, Size: 4 << 10})
	if got := r.bytes(); got != 2*(4<<10+objectRef) {
		t.Fatalf("%d bytes counted for two objects of 4 KiB", got)
	}
	r.add("bucket", source.Chunk{Name: "s3://b/big.gz", Open: open, Size: 20 << 10})
	r.add("bucket", source.Chunk{Name: "s3://b/k3.gz", Open: open, Size: 4 << 10}) // k1 goes
	var names []string
	for _, e := range r.since(time.Time{}) {
		if e.Open == nil || e.Size != 4<<10 {
			t.Errorf("%s kept without its reference or size: %+v", e.Name, e)
		}
		names = append(names, e.Name)
	}
	if got := strings.Join(names, " "); got != "s3://b/k2.gz s3://b/k3.gz" {
		t.Errorf("kept %q", got)
	}
}
