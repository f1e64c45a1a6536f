package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/flowguard/flowguard/internal/store"
)

// filesBackend is the test backend whose files source follows one file.
type filesBackend struct {
	*backend
	path string
}

func (b *filesBackend) Sources() []source.Status {
	return []source.Status{{Name: "local", Type: "files", Connected: true, Positions: []source.Position{{Object: "1", Token: "0", Name: b.path}}}}
}

// newDashboardServer serves a store and one followed file of flow logs
// written by lines, with the clock at now.
func newDashboardServer(t *testing.T, now time.Time, lines []string) (*httptest.Server, *store.Store, string) {
	t.Helper()
	ts, st, tok, _ := newDashboardServerHub(t, now, lines)
	return ts, st, tok
}

// newDashboardServerHub is newDashboardServer that also returns the hub
// of its live events.
func newDashboardServerHub(t *testing.T, now time.Time, lines []string) (*httptest.Server, *store.Store, string, *Hub) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	path := filepath.Join(dir, "flows.log")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &filesBackend{backend: &backend{st: st, token: filepath.Join(dir, "token")}, path: path}
	s, err := New(b)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return now }
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	tok, err := os.ReadFile(b.token)
	if err != nil {
		t.Fatal(err)
	}
	return ts, st, strings.TrimSpace(string(tok)), s.hub
}

// flowLine is a v2 record.
func flowLine(src, dst string, dport int, start int64, action string, bytes int) string {
	return fmt.Sprintf("2 123456789012 eni-0a1b2c3d4e5f60718 %s %s 40000 %d 6 1 %d %d %d %s OK", src, dst, dport, bytes, start, start+5, action)
}

func TestDashboardServedWithoutForeignOrigins(t *testing.T) {
	ts, _, _ := newDashboardServer(t, time.Now(), nil)
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html", `<script src="/ui/app.js">`},
		{"/ui/app.js", "javascript", "SEED_QUERY"},
		{"/ui/app.css", "text/css", "--reject"},
	} {
		resp, err := http.Get(ts.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var body strings.Builder
		_, _ = fmt.Fprint(&body, readAll(t, resp))
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(body.String(), tc.contains) {
			t.Errorf("GET %s: %d %s, want %s with %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.ctype, tc.contains)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q lets the page reach other origins", tc.path, csp)
		}
		if strings.Contains(body.String(), "http://") && tc.path != "/ui/app.js" || strings.Contains(body.String(), "https://") {
			t.Errorf("GET %s names another origin", tc.path)
		}
	}
	if code, _ := do(t, "GET", ts.URL+"/ui/nothing.js", "", ""); code != 404 {
		t.Errorf("a missing asset: %d, want 404", code)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// TestTablesFromTheAggregates: the overview's tables come from the
// per-minute aggregates the daemon commits (any source), added across
// commits, limited to the period, the top tables marked approximate.
func TestTablesFromTheAggregates(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute).Add(30 * time.Second)
	ts, st, _ := newDashboardServer(t, now, nil)
	m0 := now.Truncate(time.Minute).Add(-10 * time.Minute)
	var ports store.PortSet
	for p := range 6 {
		ports.Add(uint16(1000 + p))
	}
	commits := []store.TrafficDelta{{
		Counts: []store.TrafficCount{
			{Minute: now.Add(-2 * time.Hour).Truncate(time.Minute), Source: "old", Action: "REJECT", Records: 99, Bytes: 1}, // before the period
			{Minute: m0, Source: "stream", Action: "REJECT", Records: 4, Bytes: 160},
			{Minute: m0, Source: "stream", Action: "ACCEPT", Records: 3, Bytes: 15000},
		},
		Top: []store.TrafficTop{
			{Minute: m0, Kind: store.TopRejectedSources, Key: "198.51.100.7", Count: 4, Bytes: 160, Ports: ports},
			{Minute: m0, Kind: store.TopTalkers, Key: "10.0.0.5 203.0.113.1", Count: 3, Bytes: 15000},
			{Minute: m0, Kind: store.TopDstPorts, Key: "443", Count: 3, Bytes: 15000},
		},
	}, {
		Counts: []store.TrafficCount{
			{Minute: m0, Source: "stream", Action: "REJECT", Records: 2, Bytes: 80},
			{Minute: m0.Add(time.Minute), Source: "files", Action: "ACCEPT", Records: 1, Bytes: 5000},
		},
		Top: []store.TrafficTop{{Minute: m0, Kind: store.TopRejectedSources, Key: "198.51.100.7", Count: 2, Bytes: 80, Ports: ports}},
	}}
	for i := range commits {
		if _, err := st.CommitStream(context.Background(), store.StreamCommit{Stream: "serve", Traffic: &commits[i]}); err != nil {
			t.Fatal(err)
		}
	}
	code, body := do(t, "GET", ts.URL+"/api/v1/tables?since=15m&bin=1m", "", "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var out struct {
		Tables      map[string][]map[string]any `json:"tables"`
		Approximate []string                    `json:"approximate"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	total := map[string]float64{}
	for _, r := range out.Tables["traffic"] {
		total[r["action"].(string)] += r["records"].(float64)
	}
	if total["REJECT"] != 6 || total["ACCEPT"] != 4 {
		t.Errorf("traffic by action %v, want 6 REJECT and 4 ACCEPT (the old minute left out)", total)
	}
	if rej := out.Tables["rejected"]; len(rej) != 1 || rej[0]["rejects"].(float64) != 6 || rej[0]["time"] != m0.Format(time.RFC3339) {
		t.Errorf("rejected %v", rej)
	}
	rs := out.Tables["rejected_sources"]
	if len(rs) != 1 || rs[0]["srcAddr"] != "198.51.100.7" || rs[0]["rejects"].(float64) != 6 || rs[0]["ports"].(float64) != 6 {
		t.Errorf("rejected sources %v", rs)
	}
	if tt := out.Tables["top_talkers"]; len(tt) != 1 || tt[0]["dstAddr"] != "203.0.113.1" || tt[0]["bytes"].(float64) != 15000 {
		t.Errorf("top talkers %v", tt)
	}
	if dp := out.Tables["dst_ports"]; len(dp) != 1 || dp[0]["dstPort"].(float64) != 443 || dp[0]["flows"].(float64) != 3 {
		t.Errorf("dst ports %v", dp)
	}
	bySrc := map[string]float64{}
	for _, r := range out.Tables["source_records"] {
		bySrc[r["source"].(string)] = r["records"].(float64)
	}
	if len(bySrc) != 2 || bySrc["stream"] != 9 || bySrc["files"] != 1 {
		t.Errorf("records by source %v, want stream 9 and files 1", bySrc)
	}
	if strings.Join(out.Approximate, ",") != "rejected_sources,top_talkers,dst_ports" {
		t.Errorf("approximate %v", out.Approximate)
	}
	// A five-minute bin puts the two minutes together.
	_, body = do(t, "GET", ts.URL+"/api/v1/tables?since=15m&bin=5m&name=traffic", "", "")
	out.Tables = nil
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	times := map[any]bool{}
	for _, r := range out.Tables["traffic"] {
		times[r["time"]] = true
	}
	if len(out.Tables) != 1 || len(times) > 2 {
		t.Errorf("5m bins: %s", body)
	}
	for _, bad := range []string{"since=30d&bin=1m", "bin=x", "name=nope", "name=protocols", "since=soon"} {
		if code, body := do(t, "GET", ts.URL+"/api/v1/tables?"+bad, "", ""); code != 400 {
			t.Errorf("%s: %d %s, want 400", bad, code, body)
		}
	}
}

func TestFindingFlowsAndSuppress(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	t0 := now.Add(-10 * time.Minute)
	var lines []string
	for i := range 30 {
		lines = append(lines, flowLine("198.51.100.7", "10.0.0.5", 1000+i, t0.Unix()+int64(i), "REJECT", 40))
	}
	lines = append(lines, flowLine("203.0.113.50", "10.0.0.5", 443, t0.Unix(), "ACCEPT", 400))
	ts, st, tok := newDashboardServer(t, now, lines)
	actor := netip.MustParseAddr("198.51.100.7")
	f := finding.Finding{ID: finding.ID("Recon:EC2/Portscan", actor, "10.0.0.5"), Type: "Recon:EC2/Portscan", Severity: 5,
		Title: "198.51.100.7 scanned 30 ports on 10.0.0.5", Actor: finding.Actor{IP: actor}, Count: 30,
		FirstSeen: t0, LastSeen: t0.Add(30 * time.Second)}
	if _, err := st.CommitStream(context.Background(), store.StreamCommit{Stream: "serve", Findings: []finding.Finding{f}}); err != nil {
		t.Fatal(err)
	}
	code, body := do(t, "GET", ts.URL+"/api/v1/findings/"+f.ID+"/flows", "", "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var fl struct {
		Timeline []map[string]any `json:"timeline"`
		Samples  []map[string]any `json:"samples"`
	}
	if err := json.Unmarshal([]byte(body), &fl); err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, r := range fl.Timeline {
		if r["action"] != "REJECT" {
			t.Errorf("the timeline has another actor's flows: %v", r)
		}
		n += r["flows"].(float64)
	}
	if n != 30 || len(fl.Samples) != 20 {
		t.Errorf("timeline counts %v flows (want 30), %d samples (want 20)", n, len(fl.Samples))
	}
	for _, s := range fl.Samples {
		if s["srcAddr"] != "198.51.100.7" || s["action"] != "REJECT" {
			t.Errorf("a sample of another address: %v", s)
			break
		}
	}

	// Suppress needs the token, archives the finding, and is audited.
	if code, _ := do(t, "POST", ts.URL+"/api/v1/findings/"+f.ID+"/suppress", "", ""); code != 401 {
		t.Errorf("suppress without the token: %d", code)
	}
	code, body = do(t, "POST", ts.URL+"/api/v1/findings/"+f.ID+"/suppress", tok, "")
	if code != 200 || !strings.Contains(body, `"archived": 1`) {
		t.Fatalf("suppress: %d %s", code, body)
	}
	got, err := st.GetFinding(context.Background(), f.ID)
	if err != nil || !got.Archived {
		t.Errorf("after suppress: archived %v (%v)", got.Archived, err)
	}
	if es, err := st.ListAudit(context.Background(), store.AuditFilter{Action: "suppress"}); err != nil || len(es) != 1 || es[0].FindingID != f.ID {
		t.Errorf("audit of suppress: %v %v", es, err)
	}
	if code, _ := do(t, "POST", ts.URL+"/api/v1/findings/"+f.ID+"/suppress", tok, ""); code != 409 {
		t.Errorf("suppress twice: %d, want 409", code)
	}
}

func TestDetectorsServesTheThresholdsInForce(t *testing.T) {
	ts, _, _ := newDashboardServer(t, time.Now(), nil)
	code, body := do(t, "GET", ts.URL+"/api/v1/detectors", "", "")
	var m map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &m) != nil {
		t.Fatalf("%d %s", code, body)
	}
	ps, _ := m["portscan"].(map[string]any)
	if ps["min_ports"] != float64(15) || m["window"] != "5m0s" && m["window"] != "5m" {
		t.Errorf("portscan %v, window %v: want the defaults (min_ports 15, window 5m)", ps, m["window"])
	}
}
