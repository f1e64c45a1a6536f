package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/flowguard/flowguard/internal/store"
)

// backend is the daemon's side of the API, over a real store.
type backend struct {
	st     *store.Store
	token  string
	files  []string      // followed by the files source
	recent []RecentChunk // delivered by stream sources
}

func (b *backend) Store() *store.Store    { return b.st }
func (b *backend) Config() *config.Config { c := config.DefaultConfig(); return &c }
func (b *backend) Logger() *slog.Logger   { return slog.New(slog.DiscardHandler) }
func (b *backend) Sources() []source.Status {
	st := source.Status{Name: "local", Type: "files", Connected: true}
	for _, f := range b.files {
		st.Positions = append(st.Positions, source.Position{Object: f, Token: "0", Name: f})
	}
	return []source.Status{st}
}
func (b *backend) Ready() bool                    { return true }
func (b *backend) TokenPath() string              { return b.token }
func (b *backend) Registry() *prometheus.Registry { return prometheus.NewRegistry() }
func (b *backend) Recent(since time.Time) []RecentChunk {
	var out []RecentChunk
	for _, c := range b.recent {
		if !c.Arrived.Before(since) {
			out = append(out, c)
		}
	}
	return out
}

func newTestServer(t *testing.T) (*httptest.Server, *backend, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := &backend{st: st, token: filepath.Join(dir, "secret", "token")}
	s, err := New(b)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	tok, err := os.ReadFile(b.token)
	if err != nil {
		t.Fatal(err)
	}
	return ts, b, strings.TrimSpace(string(tok))
}

func do(t *testing.T, method, url, token, body string) (int, string) {
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
	return resp.StatusCode, string(b)
}

func TestTokenGeneratedPrivate(t *testing.T) {
	_, b, tok := newTestServer(t)
	info, err := os.Stat(b.token)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 || len(tok) < 32 {
		t.Errorf("token file mode %v, token length %d: want 0600 and a long random token", info.Mode().Perm(), len(tok))
	}
}

func TestStateChangesNeedTheToken(t *testing.T) {
	ts, b, tok := newTestServer(t)
	f := finding.Finding{ID: finding.ID("Recon:EC2/Portscan", netip.MustParseAddr("198.51.100.7"), "10.0.0.5"), Type: "Recon:EC2/Portscan",
		Severity: 5, Actor: finding.Actor{IP: netip.MustParseAddr("198.51.100.7")}, Count: 3,
		FirstSeen: time.Unix(1e9, 0).UTC(), LastSeen: time.Unix(1e9+60, 0).UTC()}
	if _, err := b.st.CommitStream(context.Background(), store.StreamCommit{Stream: "serve", Findings: []finding.Finding{f}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", 401},
		{"wrong token", tok[:len(tok)-1] + "x", 401},
		{"right token", tok, 200},
	} {
		code, body := do(t, "POST", ts.URL+"/api/v1/findings/"+f.ID+"/archive", tc.token, "")
		if code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	es, err := b.st.ListAudit(context.Background(), store.AuditFilter{Action: "api_unauthorized"})
	if err != nil || len(es) != 2 {
		t.Errorf("audit rows for refused requests: %d (%v), want 2", len(es), err)
	}
	got, err := b.st.GetFinding(context.Background(), f.ID)
	if err != nil || !got.Archived {
		t.Errorf("archived = %v (%v), want true", got.Archived, err)
	}
	// Reading needs no token; the archived finding is listed with archived=yes.
	code, body := do(t, "GET", ts.URL+"/api/v1/findings?archived=yes&actor=::ffff:198.51.100.7", "", "")
	var fs []finding.Finding
	if code != 200 || json.Unmarshal([]byte(body), &fs) != nil || len(fs) != 1 {
		t.Errorf("list by an IPv4-mapped actor: %d %s", code, body)
	}
}

func TestBodiesBoundedAndAddressesCanonical(t *testing.T) {
	ts, _, tok := newTestServer(t)
	big := `{"query":"stats count() | filter x = '` + strings.Repeat("x", 2<<20) + `'","since":"1h"}`
	if code, body := do(t, "POST", ts.URL+"/api/v1/query", tok, big); code != 400 || !strings.Contains(body, "too large") {
		t.Errorf("a 2 MiB body: %d %.200s, want 400 and too large", code, body)
	}
	code, body := do(t, "POST", ts.URL+"/api/v1/blocks/::ffff:198.51.100.7/unblock", tok, `{"reason":"test"}`)
	if code != 202 || !strings.Contains(body, `"prefix": "198.51.100.7/32"`) {
		t.Errorf("unblock of an IPv4-mapped address: %d %s; want the IPv4 address", code, body)
	}
}

func TestCanonicalPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"::ffff:192.0.2.1":     "192.0.2.1/32",
		"::ffff:192.0.2.0/120": "192.0.2.0/24",
		"192.0.2.7":            "192.0.2.7/32",
		"2001:db8::1":          "2001:db8::1/128",
	} {
		p, err := CanonicalPrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("CanonicalPrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
}

// TestQueryOverStreamData: POST /api/v1/query reads the stream data the
// backend keeps besides the followed files: a chunk under a header line
// of a custom format is read with its fields, a chunk without a final
// newline does not run into the next, and a chunk that arrived before
// since is not read.
func TestQueryOverStreamData(t *testing.T) {
	ts, b, tok := newTestServer(t)
	p := filepath.Join(t.TempDir(), "flows.log")
	if err := os.WriteFile(p, []byte("2 123456789012 eni-1 198.51.100.7 10.0.0.5 4444 22 6 1 40 1700000000 1700000060 REJECT OK\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.files = []string{p}
	now := time.Now()
	b.recent = []RecentChunk{
		{Source: "fh", Name: "old", Arrived: now.Add(-2 * time.Hour), Data: []byte("2 123456789012 eni-1 198.51.100.7 10.0.0.5 4444 22 6 1 40 1700000000 1700000060 REJECT OK\n")},
		{Source: "fh", Name: "a", Arrived: now, Data: []byte("2 123456789012 eni-1 198.51.100.7 10.0.0.5 4445 23 6 1 40 1700000000 1700000060 REJECT OK")},
		{Source: "fh", Name: "b", Arrived: now, Data: []byte("2 123456789012 eni-1 198.51.100.7 10.0.0.5 4446 24 6 1 40 1700000000 1700000060 REJECT OK\n")},
		{Source: "kin", Name: "shard-1", Arrived: now, Header: []byte("srcaddr dstaddr action"),
			Data: []byte("198.51.100.7 10.0.0.5 REJECT\n198.51.100.8 10.0.0.5 REJECT\n")},
	}
	// An S3 object (gzip, with its header line) kept by reference: read
	// again by the query.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n" +
		"2 123456789012 eni-1 198.51.100.8 10.0.0.5 4444 22 6 1 40 1700000000 1700000060 REJECT OK\n" +
		"2 123456789012 eni-1 198.51.100.8 10.0.0.5 4445 23 6 1 40 1700000000 1700000060 REJECT OK\n"))
	zw.Close()
	b.recent = append(b.recent, RecentChunk{Source: "bucket", Name: "s3://b/AWSLogs/x.log.gz", Arrived: now, Size: int64(gz.Len()),
		Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz.Bytes())), nil }})
	code, body := do(t, "POST", ts.URL+"/api/v1/query", tok, `{"query": "filter action = 'REJECT' | stats count() as n by srcaddr | sort n desc", "since": "1h"}`)
	var rows []map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &rows) != nil || len(rows) != 2 ||
		rows[0]["srcaddr"] != "198.51.100.7" || rows[0]["n"] != 4.0 || rows[1]["srcaddr"] != "198.51.100.8" || rows[1]["n"] != 3.0 {
		t.Errorf("query: %d %s; want 198.51.100.7 with 4 (the file, two firehose chunks, one custom-format record), 198.51.100.8 with 3 (one custom-format record, the S3 object's two)", code, body)
	}
}

// TestQueryOverFollowedFiles: POST /api/v1/query runs a Logs Insights
// query over the files the files sources follow.
func TestQueryOverFollowedFiles(t *testing.T) {
	ts, b, tok := newTestServer(t)
	p := filepath.Join(t.TempDir(), "flows.log")
	lines := "2 123456789012 eni-1 198.51.100.7 10.0.0.5 4444 22 6 1 40 1700000000 1700000060 REJECT OK\n" +
		"2 123456789012 eni-1 198.51.100.7 10.0.0.5 4445 23 6 1 40 1700000000 1700000060 REJECT OK\n" +
		"2 123456789012 eni-1 10.0.0.5 198.51.100.9 443 50000 6 1 40 1700000000 1700000060 ACCEPT OK\n"
	if err := os.WriteFile(p, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	b.files = []string{p}
	code, body := do(t, "POST", ts.URL+"/api/v1/query", tok, `{"query": "filter action = 'REJECT' | stats count() as n by srcaddr", "since": "1h"}`)
	var rows []map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &rows) != nil || len(rows) != 1 || rows[0]["srcaddr"] != "198.51.100.7" || rows[0]["n"] != 2.0 {
		t.Errorf("query: %d %s; want one row, 198.51.100.7 with 2", code, body)
	}
	if code, body := do(t, "POST", ts.URL+"/api/v1/query", tok, `{"query": "stats count(", "since": "1h"}`); code != 400 {
		t.Errorf("a bad query: %d %s, want 400", code, body)
	}
}
