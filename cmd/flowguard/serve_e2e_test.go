package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/synth"
)

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

// TestServeAsAUser runs flowguard serve on a directory that the generator
// keeps appending to, as a user would: the generator's labelled attacks
// come back from GET /api/v1/findings, /metrics counts the records and
// findings, a state change without the token is refused and audited, a
// bad configuration sent by SIGHUP is refused while the daemon goes on,
// and SIGTERM ends it with exit code 0.
func TestServeAsAUser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := flowguardBinary(t)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := synth.DefaultConfig()
	cfg.Records, cfg.Seed = 80000, 5
	g := synth.New(cfg)
	var data bytes.Buffer
	if err := g.WriteText(&data, false); err != nil {
		t.Fatal(err)
	}
	// Traffic goes on afterwards: a later, attack-free hour moves event
	// time past the attacks' windows.
	later := synth.DefaultConfig()
	later.Records, later.Seed, later.AttackShare = 20000, 6, -1
	later.Start = cfg.Start.Add(3 * time.Hour)
	if err := synth.New(later).WriteText(&data, false); err != nil {
		t.Fatal(err)
	}
	var threats strings.Builder
	for _, a := range g.ThreatList() {
		fmt.Fprintln(&threats, a)
	}
	if err := os.WriteFile(filepath.Join(dir, "threats.txt"), []byte(threats.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	config := fmt.Sprintf(`home_networks: [10.0.0.0/16, 2600:1f18:abc::/56]
threat_lists: [threats.txt]
detectors:
  allowed_lateness: 2m
server:
  listen: %s
sources:
  - name: local
    type: files
    paths: [logs/*.log]
    poll_interval: 50ms
`, addr)
	cfgPath := writeConfig(t, dir, config)
	stderr := newSyncBuffer()
	cmd := exec.Command(bin, "serve", "--config", cfgPath, "--db", filepath.Join(dir, "db", "flowguard.db"))
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	base := "http://" + addr
	get := func(path string) (int, []byte) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("/readyz", func() bool { c, _ := get("/readyz"); return c == 200 })

	// The generator appends, a few hundred lines at a time, as AWS's
	// delivery or a log shipper would.
	path := filepath.Join(logs, "flows.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data.Bytes()))
	lines := 0
	for sc.Scan() {
		f.Write(append(sc.Bytes(), '\n'))
		if lines++; lines%20000 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	f.Close()

	records := func() int {
		_, b := get("/metrics")
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, `flowguard_records_total{source="local"} `); ok {
				n, _ := strconv.ParseFloat(v, 64)
				return int(n)
			}
		}
		return 0
	}
	waitFor("every record counted in /metrics", func() bool { return records() == lines })

	var missing []string
	waitFor("the labelled attacks in /api/v1/findings", func() bool {
		missing = missing[:0]
		for _, l := range g.Labels() {
			q := url.Values{"type": {l.Type}}
			if !strings.Contains(l.Actor, "/") {
				q.Set("actor", l.Actor)
			}
			c, b := get("/api/v1/findings?" + q.Encode())
			var fs []map[string]any
			if c != 200 || json.Unmarshal(b, &fs) != nil || len(fs) == 0 {
				missing = append(missing, l.Scenario+" "+l.Type+" "+l.Actor)
			}
		}
		return len(missing) == 0
	})
	_, metrics := get("/metrics")
	for _, l := range g.Labels() {
		if !strings.Contains(string(metrics), `flowguard_findings_total{type="`+l.Type+`"}`) {
			t.Errorf("/metrics has no flowguard_findings_total for %s", l.Type)
		}
	}
	if !strings.Contains(string(metrics), "flowguard_detection_latency_seconds_count") {
		t.Error("/metrics has no detection latency histogram")
	}

	// The list is the array detect --output json prints.
	_, body := get("/api/v1/findings")
	var list []map[string]any
	if err := json.Unmarshal(body, &list); err != nil || len(list) == 0 {
		t.Fatalf("GET /api/v1/findings: %v %s", err, body)
	}
	for _, k := range []string{"id", "type", "severity", "title", "actor", "count", "first_seen", "last_seen", "archived"} {
		if _, ok := list[0][k]; !ok {
			t.Errorf("a finding lacks %q: %v", k, list[0])
		}
	}

	// The same findings, with the same counts, as detect over the same
	// records, for the windows the daemon has judged (those before the
	// last hour, which is still open in the daemon).
	detected, derr := exec.Command(bin, "detect", "--config", cfgPath, "--no-db", "--output", "json", path).Output()
	if derr != nil {
		t.Fatalf("detect: %v", derr)
	}
	var want []map[string]any
	if err := json.Unmarshal(detected, &want); err != nil {
		t.Fatal(err)
	}
	served := map[string]map[string]any{}
	_, all := get("/api/v1/findings?archived=all")
	var allList []map[string]any
	json.Unmarshal(all, &allList)
	for _, f := range allList {
		served[f["id"].(string)] = f
	}
	compared := 0
	for _, w := range want {
		last, _ := time.Parse(time.RFC3339, w["last_seen"].(string))
		if !last.Before(later.Start) {
			continue
		}
		compared++
		g := served[w["id"].(string)]
		if g == nil {
			t.Errorf("detect found %s %s (count %v); serve did not", w["type"], w["title"], w["count"])
			continue
		}
		for _, k := range []string{"count", "first_seen", "last_seen", "severity"} {
			if fmt.Sprint(g[k]) != fmt.Sprint(w[k]) {
				t.Errorf("%s %s: serve %s %v, detect %v", w["type"], w["id"], k, g[k], w[k])
			}
		}
	}
	if compared < len(g.Labels()) {
		t.Errorf("only %d findings compared with detect", compared)
	}

	// Without the token: 401, and an audit row says so.
	id := list[0]["id"].(string)
	resp, err := http.Post(base+"/api/v1/findings/"+id+"/archive", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("archive without a token: %d, want 401", resp.StatusCode)
	}
	if _, b := get("/api/v1/audit?action=api_unauthorized"); !strings.Contains(string(b), "/archive") {
		t.Errorf("no audit row for the refused request: %s", b)
	}

	// A bad configuration is refused; the daemon goes on.
	if err := os.WriteFile(cfgPath, []byte("detectors:\n  window: -1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("the bad configuration refused", func() bool { return strings.Contains(stderr.String(), "configuration refused") })
	if c, _ := get("/healthz"); c != 200 {
		t.Errorf("/healthz after a refused reload: %d", c)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, stderr)
	}
}
