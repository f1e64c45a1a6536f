package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/server"
)

// scanLines returns one rejected probe a port, ports from..to, from
// 198.51.100.23 to 10.0.1.10, a second apart from start.
func scanLines(start int64, from, to int) string {
	var b strings.Builder
	for p := from; p <= to; p++ {
		t := start + int64(p)
		fmt.Fprintf(&b, "2 123456789012 eni-1 198.51.100.23 10.0.1.10 40000 %d 6 1 44 %d %d REJECT OK\n", p, t, t)
	}
	return b.String()
}

// apiFindings returns the findings the HTTP API lists.
func apiFindings(t *testing.T, url string) []finding.Finding {
	t.Helper()
	resp, err := http.Get(url + "/api/v1/findings?archived=any")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/findings: %s", resp.Status)
	}
	var fs []finding.Finding
	if err := json.NewDecoder(resp.Body).Decode(&fs); err != nil {
		t.Fatal(err)
	}
	return fs
}

// TestEarlyFiring: with the default 10-minute windows, a port scan is a
// finding in the API within a second of the record that crosses the
// threshold (the window still open), is updated as more probes arrive,
// and once the windows close its count equals detect's over the same
// records.
func TestEarlyFiring(t *testing.T) {
	td := startDaemon(t, daemonConfig)
	s, err := server.New(td.d)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(s.Handler())
	defer api.Close()

	const start = 1700000000
	min := detect.DefaultSettings().Portscan.MinPorts
	below := scanLines(start, 1, min-1)
	td.appendAndWait([]byte(below))
	for _, f := range apiFindings(t, api.URL) {
		if f.Type == detect.TypePortscan {
			t.Fatalf("a port scan below the threshold: %+v", f)
		}
	}

	crossing := scanLines(start, min, min)
	written := time.Now()
	td.appendAndWait([]byte(crossing))
	var scan *finding.Finding
	for scan == nil && time.Since(written) < time.Second {
		for _, f := range apiFindings(t, api.URL) {
			if f.Type == detect.TypePortscan {
				scan = &f
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if scan == nil {
		t.Fatalf("no port scan in the API a second after the record that crosses the threshold")
	}
	if scan.Count != int64(min) {
		t.Errorf("early count %d, want %d", scan.Count, min)
	}

	more := scanLines(start, min+1, min+10)
	td.appendAndWait([]byte(more))
	var grown *finding.Finding
	for _, f := range apiFindings(t, api.URL) {
		if f.Type == detect.TypePortscan {
			grown = &f
		}
	}
	if grown == nil || grown.ID != scan.ID || grown.Count != int64(min+10) {
		t.Fatalf("after ten more probes: %+v, want the same finding counting %d", grown, min+10)
	}

	// A record an hour later closes the windows.
	late := fmt.Sprintf("2 123456789012 eni-1 203.0.113.9 10.0.1.10 40000 443 6 1 44 %d %d ACCEPT OK\n", start+3600, start+3600)
	td.appendAndWait([]byte(late))
	all := below + crossing + more + late
	e, err := detect.New(detect.Options{Settings: detect.DefaultSettings(), Home: detect.DefaultHomeNetworks()})
	if err != nil {
		t.Fatal(err)
	}
	in := flowlog.Input{Name: "all.log", Size: int64(len(all)), Open: openString(all)}
	if err := e.Run(context.Background(), &flowlog.Scanner{Workers: 1}, []flowlog.Input{in}); err != nil {
		t.Fatal(err)
	}
	e.Flush()
	want := e.Findings()
	got := apiFindings(t, api.URL)
	if len(got) != len(want) {
		t.Fatalf("%d findings after the windows closed, detect finds %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Count != want[i].Count || !got[i].FirstSeen.Equal(want[i].FirstSeen) || !got[i].LastSeen.Equal(want[i].LastSeen) {
			t.Errorf("finding %d: %s count %d %s–%s, detect: %s count %d %s–%s", i, got[i].ID, got[i].Count, got[i].FirstSeen, got[i].LastSeen,
				want[i].ID, want[i].Count, want[i].FirstSeen, want[i].LastSeen)
		}
	}
}

// openString opens s as an input's contents.
func openString(s string) func(context.Context) (io.ReadCloser, error) {
	return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

// TestEarlyFindingWithdrawnAfterRestart: an early finding stored before
// a stop (here a repeated reject, which the port scan the same probes
// become takes over when the window closes) is withdrawn by the next
// daemon, which rebuilt the window by replay: the store ends as detect.
func TestEarlyFindingWithdrawnAfterRestart(t *testing.T) {
	td := startDaemon(t, daemonConfig)
	const start = 1700000000
	min := detect.DefaultSettings().Portscan.MinPorts
	below := scanLines(start, 1, min-1)
	td.appendAndWait([]byte(below))
	fs, err := td.d.Store().ListFindings(context.Background(), finding.Filter{Archived: finding.AnyArchived})
	if err != nil || len(fs) != 1 || fs[0].Type != detect.TypeRepeatedReject {
		t.Fatalf("before the stop: %+v, %v; want an early repeated reject", fs, err)
	}
	td.stop()

	// The same configuration, store and files, a new daemon.
	ctx, cancel := context.WithCancel(context.Background())
	d, err := New(ctx, Options{ConfigPath: td.cfg, DBPath: td.d.opts.DBPath})
	if err != nil {
		t.Fatal(err)
	}
	td2 := &testDaemon{t: t, d: d, cfg: td.cfg, file: td.file, size: td.size, cancel: cancel, done: make(chan error, 1)}
	go func() { td2.done <- d.Run(ctx) }()
	t.Cleanup(func() { td2.stop(); d.Close() })
	rest := scanLines(start, min, min+10) + fmt.Sprintf("2 123456789012 eni-1 203.0.113.9 10.0.1.10 40000 443 6 1 44 %d %d ACCEPT OK\n", start+3600, start+3600)
	td2.appendAndWait([]byte(rest))

	all := below + rest
	e, err := detect.New(detect.Options{Settings: detect.DefaultSettings(), Home: detect.DefaultHomeNetworks()})
	if err != nil {
		t.Fatal(err)
	}
	in := flowlog.Input{Name: "all.log", Size: int64(len(all)), Open: openString(all)}
	if err := e.Run(context.Background(), &flowlog.Scanner{Workers: 1}, []flowlog.Input{in}); err != nil {
		t.Fatal(err)
	}
	e.Flush()
	want := e.Findings()
	got, err := d.Store().ListFindings(context.Background(), finding.Filter{Archived: finding.AnyArchived})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("after the restart: %d findings %+v, detect finds %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Count != want[i].Count {
			t.Errorf("finding %d: %s %s count %d, detect: %s %s count %d", i, got[i].Type, got[i].ID, got[i].Count, want[i].Type, want[i].ID, want[i].Count)
		}
	}
}
