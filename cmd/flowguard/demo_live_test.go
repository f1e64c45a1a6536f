package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemoTrafficSchedule checks the live demo's plan: the port scan
// starts demoScanDelay after now, the records are in delivery (end time)
// order with their text's end field equal to it, and the history before
// now is what appendDue writes first.
func TestDemoTrafficSchedule(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	recs, _, labels, err := demoTraffic(1, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != demoRecords {
		t.Fatalf("%d records, want %d", len(recs), demoRecords)
	}
	scans := 0
	for _, l := range labels {
		if l.Scenario == "vertical-portscan" {
			scans++
			if scans == 1 && !l.FirstSeen.Equal(now.Add(demoScanDelay)) {
				t.Errorf("the first scan starts at %s, want %s", l.FirstSeen, now.Add(demoScanDelay))
			}
		}
	}
	if scans == 0 {
		t.Fatal("no port scan in the demo's traffic")
	}
	for i := range recs {
		if i > 0 && recs[i].end < recs[i-1].end {
			t.Fatalf("record %d ends at %d, before record %d (%d)", i, recs[i].end, i-1, recs[i-1].end)
		}
		f := strings.Fields(string(recs[i].line))
		if end, err := strconv.ParseInt(f[11], 10, 64); err == nil && end != recs[i].end {
			t.Fatalf("record %d: text says end %d, plan says %d", i, end, recs[i].end)
		}
	}
	var b bytes.Buffer
	next, err := appendDue(&b, recs, 0, now.Unix())
	if err != nil {
		t.Fatal(err)
	}
	if next == 0 || next == len(recs) || recs[next-1].end > now.Unix() || recs[next].end <= now.Unix() {
		t.Errorf("the history is %d records, up to end %d (now %d)", next, recs[max(next-1, 0)].end, now.Unix())
	}
	if got := bytes.Count(b.Bytes(), []byte("\n")); got != next {
		t.Errorf("appendDue wrote %d lines for %d records", got, next)
	}
}

func TestDemoKeepRefusesAnEarlierDemo(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "flowguard.db"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := execute(t, "", "demo", "--keep", dir)
	if code != 1 || !strings.Contains(stderr, "holds an earlier demo") {
		t.Errorf("exit %d %s; want a refusal", code, stderr)
	}
}
