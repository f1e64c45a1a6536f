package daemon

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/flowguard/flowguard/internal/store"
)

// TestSnapshotInterval: server.snapshot_interval's default and bounds,
// the shorter default and the tighter bound with a firehose source (each
// delivery waits for its answer until the next snapshot; Firehose waits 3
// minutes for an answer).
func TestSnapshotInterval(t *testing.T) {
	for _, tc := range []struct {
		interval string
		firehose bool
		want     time.Duration
		err      string
	}{
		{"", false, DefaultSnapshotInterval, ""},
		{"", true, DefaultSnapshotIntervalFirehose, ""},
		{"5m", false, 5 * time.Minute, ""},
		{"2m", true, 2 * time.Minute, ""},
		{"3m", true, 0, "too long for firehose source"},
		{"10ms", false, 0, "out of range"},
		{"2h", false, 0, "out of range"},
	} {
		cfg := &config.Config{Path: "f.yaml", Sources: []source.LiveConfig{{Name: "local", Type: "files"}}}
		if tc.firehose {
			cfg.Sources = append(cfg.Sources, source.LiveConfig{Name: "fh", Type: "firehose"})
		}
		if tc.interval != "" {
			d, _ := time.ParseDuration(tc.interval)
			cfg.Server = &config.Server{SnapshotInterval: detect.Duration(d)}
		}
		got, err := snapshotInterval(cfg)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s (firehose %v): err %v, want %q", tc.interval, tc.firehose, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%s (firehose %v): %v, %v; want %v", tc.interval, tc.firehose, got, err, tc.want)
		}
	}
}

// firehosePost delivers lines as Amazon Data Firehose does and returns
// the status, or an error when no answer came.
func firehosePost(url, id string, lines []string) (int, error) {
	type rec struct {
		Data string `json:"data"`
	}
	body := struct {
		RequestID string `json:"requestId"`
		Timestamp int64  `json:"timestamp"`
		Records   []rec  `json:"records"`
	}{RequestID: id, Timestamp: time.Now().UnixMilli()}
	for _, l := range lines {
		body.Records = append(body.Records, rec{base64.StdEncoding.EncodeToString([]byte(l + "\n"))})
	}
	js, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(js))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amz-Firehose-Protocol-Version", "1.0")
	req.Header.Set("X-Amz-Firehose-Request-Id", id)
	req.Header.Set("X-Amz-Firehose-Access-Key", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestStreamAcknowledgedAtSnapshot: with a source that cannot replay
// (firehose), a delivery's finding is stored at once (early firing is
// unchanged) while the delivery is answered, and its position saved, only
// with the next engine snapshot; a daemon started again on the store
// restores the snapshot and, fed the rest of the scan, counts it as one
// run would.
func TestStreamAcknowledgedAtSnapshot(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fh.key"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cfgText := fmt.Sprintf(`detectors:
  allowed_lateness: 2m
server:
  snapshot_interval: 2s
sources:
  - name: fh
    type: firehose
    listen: %s
    access_key_file: fh.key
`, addr)
	cfgPath := filepath.Join(dir, "flowguard.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func() (*Daemon, func()) {
		d, _, stop := runDaemon(t, dir)
		return d, stop
	}
	url := "http://" + addr + "/"
	post := func(id string, lines []string) (int, time.Duration) {
		t.Helper()
		began := time.Now()
		deadline := began.Add(10 * time.Second)
		for {
			code, err := firehosePost(url, id, lines)
			if err == nil {
				return code, time.Since(began)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no answer to %s: %v", id, err)
			}
			time.Sleep(20 * time.Millisecond) // not listening yet
		}
	}
	const t0 = 1700000000
	scan := func(from, to int) []string { return strings.Split(strings.TrimSpace(scanLines(t0, from, to)), "\n") }
	minPorts := detect.DefaultSettings().Portscan.MinPorts

	d, stop := start()
	// Warm up: the first delivery is answered at the first snapshot.
	if code, _ := post("warm", scan(1, 2)); code != 200 {
		t.Fatalf("warm-up delivery: %d", code)
	}
	// The delivery that crosses the threshold: its finding is in the
	// store long before the answer, which waits for a snapshot.
	type answer struct {
		code int
		took time.Duration
	}
	answered := make(chan answer, 1)
	go func() {
		code, took := post("cross", scan(3, minPorts))
		answered <- answer{code, took}
	}()
	var early *finding.Finding
	for deadline := time.Now().Add(5 * time.Second); early == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		fs, _ := d.Store().ListFindings(context.Background(), finding.Filter{Types: []string{detect.TypePortscan}})
		if len(fs) > 0 {
			early = &fs[0]
		}
	}
	if early == nil {
		t.Fatal("no early finding while the delivery waits")
	}
	select {
	case a := <-answered:
		t.Fatalf("the delivery was answered (%d after %s) before its snapshot; the finding was stored meanwhile", a.code, a.took)
	default:
	}
	if ps, _ := d.Store().LoadPositions(context.Background(), "fh"); len(ps) != 1 || !strings.Contains(ps[0].Token, "warm") || strings.Contains(ps[0].Token, "cross") {
		t.Errorf("positions before the snapshot: %+v, want the warm-up request's only", ps)
	}
	a := <-answered
	if a.code != 200 || a.took > 5*time.Second {
		t.Fatalf("answer %d after %s, want 200 within about the interval (2s)", a.code, a.took)
	}
	snap, err := d.Store().LoadSnapshot(context.Background(), Stream)
	if err != nil || snap == nil {
		t.Fatalf("no snapshot after the answer: %v", err)
	}
	stop()

	// A new daemon restores the state: the rest of the scan adds to the
	// ports counted before the restart.
	d, stop = start()
	defer stop()
	if code, _ := post("rest", scan(minPorts+1, minPorts+10)); code != 200 {
		t.Fatalf("delivery after the restart: %d", code)
	}
	fs, err := d.Store().ListFindings(context.Background(), finding.Filter{Types: []string{detect.TypePortscan}})
	if err != nil || len(fs) != 1 {
		t.Fatalf("findings after the restart: %v, %v", fs, err)
	}
	if fs[0].ID != early.ID || fs[0].Count != int64(minPorts+10) {
		t.Errorf("after the restart: %s count %d, want %s count %d (the state before the restart restored)", fs[0].ID, fs[0].Count, early.ID, minPorts+10)
	}
}

// TestRestoreDoesNotLowerCounts: after a crash, the restored state lags
// what was stored until the records handed over since the snapshot are
// delivered again; meanwhile no finding is written with a lower count
// than it had (its history never goes down), and the end value is the
// uninterrupted one.
func TestRestoreDoesNotLowerCounts(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fh.key"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cfgPath := filepath.Join(dir, "flowguard.yaml")
	cfgText := fmt.Sprintf("detectors:\n  allowed_lateness: 2m\nserver:\n  snapshot_interval: 300ms\nsources:\n  - name: fh\n    type: firehose\n    listen: %s\n    access_key_file: fh.key\n", addr)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "f.db")
	run := func(fn func(d *Daemon)) {
		d, _, stop := runDaemon(t, dir)
		fn(d)
		stop()
	}
	url := "http://" + addr + "/"
	post := func(id string, lines []string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			code, err := firehosePost(url, id, lines)
			if err == nil && code == 200 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("delivery %s: %d, %v", id, code, err)
			}
		}
	}
	const t0 = 1700000000
	scan := func(from, to int) []string { return strings.Split(strings.TrimSpace(scanLines(t0, from, to)), "\n") }
	var old *store.EngineSnapshot
	var oldPos []store.Position
	run(func(d *Daemon) {
		post("a", scan(1, 5))
		var err error
		if old, err = d.Store().LoadSnapshot(context.Background(), Stream); err != nil || old == nil {
			t.Fatalf("no snapshot after the first delivery: %v", err)
		}
		oldPos, _ = d.Store().LoadPositions(context.Background(), "fh")
		post("b", scan(6, 30))
	})
	// A crash after the first snapshot: the store as that snapshot left
	// it, but the findings as written since.
	func() {
		s, err := store.Open(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.CommitStream(context.Background(), store.StreamCommit{Stream: Stream, Positions: oldPos, Snapshot: old}); err != nil {
			t.Fatal(err)
		}
	}()
	var id string
	run(func(d *Daemon) {
		fs, _ := d.Store().ListFindings(context.Background(), finding.Filter{Types: []string{detect.TypePortscan}})
		if len(fs) != 1 || fs[0].Count != 30 {
			t.Fatalf("before the redelivery: %+v", fs)
		}
		id = fs[0].ID
		// Firehose delivers again what was not answered before the
		// crash; here in two requests, the first leaving the state short.
		post("b1", scan(6, 20))
		post("b2", scan(21, 30))
	})
	s, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := s.GetFinding(context.Background(), id)
	if err != nil || f.Count != 30 {
		t.Fatalf("after the redelivery: %+v, %v", f, err)
	}
	hist, err := s.FindingHistory(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(hist); i++ {
		if hist[i].Count < hist[i-1].Count {
			t.Errorf("the count went down from %d to %d (history %+v)", hist[i-1].Count, hist[i].Count, hist)
		}
	}
}

// scanFrom is scanLines for another actor.
func scanFrom(actor string, start int64, from, to int) []string {
	var out []string
	for p := from; p <= to; p++ {
		t := start + int64(p)
		out = append(out, fmt.Sprintf("2 123456789012 eni-1 %s 10.0.1.10 40000 %d 6 1 44 %d %d REJECT OK", actor, p, t, t))
	}
	return out
}

// rejectsFrom returns rejected attempts on one port, numbered from to to
// by their second: a repeated-reject count adds every record.
func rejectsFrom(actor string, start int64, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		t := start + int64(i)
		out = append(out, fmt.Sprintf("2 123456789012 eni-1 %s 10.0.1.10 %d 23 6 1 44 %d %d REJECT OK", actor, 40000+i, t, t))
	}
	return out
}

// TestMixedSourcesResumeFromSnapshot: with a files source next to a
// stream source, a restart from a snapshot older than the file's
// committed position resumes the file from its position in the snapshot
// and replays the rest up to the committed position without writing it:
// no record of the file is counted twice (rejects add up) or lost, and
// the stream's findings are kept.
func TestMixedSourcesResumeFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fh.key"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cfgPath := filepath.Join(dir, "flowguard.yaml")
	cfgText := fmt.Sprintf(`detectors:
  allowed_lateness: 2m
server:
  snapshot_interval: 300ms
sources:
  - name: local
    type: files
    paths: [logs/]
    poll_interval: 10ms
  - name: fh
    type: firehose
    listen: %s
    access_key_file: fh.key
`, addr)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "f.db")
	file := filepath.Join(dir, "logs", "flows.log")
	size := 0
	run := func(fn func(d *Daemon)) {
		d, _, stop := runDaemon(t, dir)
		fn(d)
		stop()
	}
	appendWait := func(d *Daemon, lines []string) {
		t.Helper()
		p := strings.Join(lines, "\n") + "\n"
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(p)
		f.Close()
		size += len(p)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			ps, _ := d.Store().LoadPositions(context.Background(), "local")
			if len(ps) == 1 && ps[0].Token == fmt.Sprint(size) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the file was not committed up to %d: %+v", size, ps)
			}
		}
	}
	url := "http://" + addr + "/"
	post := func(id string, lines []string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			code, err := firehosePost(url, id, lines)
			if err == nil && code == 200 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("delivery %s: %d, %v", id, code, err)
			}
		}
	}
	const t0 = 1700000000
	fileActor, streamActor := "198.51.100.23", "203.0.113.9"
	var old *store.EngineSnapshot
	var oldStream []store.Position
	run(func(d *Daemon) {
		appendWait(d, rejectsFrom(fileActor, t0, 1, 5))
		post("b", scanFrom(streamActor, t0, 1, 20)) // answered with a snapshot holding both
		var err error
		if old, err = d.Store().LoadSnapshot(context.Background(), Stream); err != nil || old == nil {
			t.Fatalf("no snapshot: %v", err)
		}
		oldStream, _ = d.Store().LoadPositions(context.Background(), "fh")
		appendWait(d, rejectsFrom(fileActor, t0, 6, 10)) // committed after the snapshot
	})
	// A crash right after the file's last commit: the snapshot is the
	// older one, the file's committed position the newer.
	func() {
		s, err := store.Open(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.CommitStream(context.Background(), store.StreamCommit{Stream: Stream, Positions: oldStream, Snapshot: old}); err != nil {
			t.Fatal(err)
		}
	}()
	run(func(d *Daemon) {
		appendWait(d, rejectsFrom(fileActor, t0, 11, 16))
	})
	s, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fs, err := s.ListFindings(context.Background(), finding.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, f := range fs {
		got[f.Type+" "+f.Actor.IP.String()] = f.Count
	}
	if got[detect.TypeRepeatedReject+" "+fileActor] != 16 || got[detect.TypePortscan+" "+streamActor] != 20 {
		t.Errorf("counts %v, want the file's 16 rejects (each record once) and the stream's scan of 20 ports", got)
	}
}
