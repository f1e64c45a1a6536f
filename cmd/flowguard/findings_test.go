package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

var cliT0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// seedStore records three findings and returns the database path and the
// findings as recorded.
func seedStore(t *testing.T) (string, []finding.Finding) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fg.db")
	mk := func(typ, actor, target string, sev float64, count int64, ports []uint16, last time.Time) finding.Finding {
		a := netip.MustParseAddr(actor)
		f := finding.Finding{
			ID: finding.ID(typ, a, target), Type: typ, Severity: sev,
			Title: actor + " did " + typ, Actor: finding.Actor{IP: a, Direction: finding.Inbound},
			Count: count, FirstSeen: last.Add(-time.Minute), LastSeen: last,
			Evidence: map[string]any{"rejected": count},
		}
		if target != "" {
			f.Target.IP = netip.MustParseAddr(target)
		}
		f.Target.Ports = ports
		return f
	}
	fs := []finding.Finding{
		mk("Recon:EC2/Portscan", "198.51.100.23", "10.0.1.10", 5, 1042, []uint16{22, 23, 80, 443, 3389, 8080}, cliT0.Add(2*time.Minute)),
		mk("UnauthorizedAccess:EC2/SSHBruteForce", "203.0.113.9", "10.0.1.11", 2, 40, []uint16{22}, cliT0.Add(time.Hour)),
		mk("Recon:EC2/RepeatedReject", "2001:db8::7", "", 2, 3, nil, cliT0),
	}
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.UpsertFindings(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	return path, fs
}

// designFinding is the finding JSON shape of DESIGN.md, decoded with
// plain types so that the test does not trust the Finding type's tags.
type designFinding struct {
	ID       string  `json:"id"`
	Type     string  `json:"type"`
	Severity float64 `json:"severity"`
	Title    string  `json:"title"`
	Actor    struct {
		IP        string `json:"ip"`
		Direction string `json:"direction"`
	} `json:"actor"`
	Target struct {
		IP    string `json:"ip"`
		Ports []int  `json:"ports"`
	} `json:"target"`
	Count     int64          `json:"count"`
	FirstSeen string         `json:"first_seen"`
	LastSeen  string         `json:"last_seen"`
	Archived  *bool          `json:"archived"`
	Evidence  map[string]any `json:"evidence"`
}

func TestFindingsListJSONShape(t *testing.T) {
	db, fs := seedStore(t)
	out, errOut, code := execute(t, "", "findings", "list", "--db", db, "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []designFinding
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not a JSON array of findings: %v\n%s", err, out)
	}
	if len(got) != 3 {
		t.Fatalf("%d findings, want 3", len(got))
	}
	// Most recently seen first: the brute force (10:00+1h), the scan, the rejects.
	if got[0].Type != fs[1].Type || got[1].Type != fs[0].Type || got[2].Type != fs[2].Type {
		t.Errorf("order = %s, %s, %s", got[0].Type, got[1].Type, got[2].Type)
	}
	s := got[1]
	if s.ID != fs[0].ID || s.Severity != 5 || s.Actor.IP != "198.51.100.23" || s.Actor.Direction != "inbound" ||
		s.Target.IP != "10.0.1.10" || len(s.Target.Ports) != 6 || s.Target.Ports[0] != 22 || s.Count != 1042 ||
		s.FirstSeen != "2026-11-22T10:01:00Z" || s.LastSeen != "2026-11-22T10:02:00Z" ||
		s.Archived == nil || *s.Archived || s.Evidence["rejected"] != float64(1042) {
		t.Errorf("scan finding = %+v", s)
	}
	if got[2].Actor.IP != "2001:db8::7" || got[2].Target.IP != "" {
		t.Errorf("sweep finding actor/target = %q/%q", got[2].Actor.IP, got[2].Target.IP)
	}
}

func TestFindingsListFilters(t *testing.T) {
	db, _ := seedStore(t)
	count := func(args ...string) int {
		t.Helper()
		out, errOut, code := execute(t, "", append([]string{"findings", "list", "--db", db, "-o", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		var got []designFinding
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 3},
		{[]string{"--type", "Recon:*"}, 2},
		{[]string{"--type", "Recon:EC2/Portscan", "--type", "UnauthorizedAccess:*"}, 2},
		{[]string{"--min-severity", "medium"}, 1},
		{[]string{"--min-severity", "2"}, 3},
		{[]string{"--actor", "198.51.100.0/24"}, 1},
		{[]string{"--actor", "2001:db8::/32", "--actor", "203.0.113.9"}, 2},
		{[]string{"--since", "2026-11-22T10:30:00Z"}, 1},
		{[]string{"--since", "2026-11-22"}, 3},
		{[]string{"--archived", "yes"}, 0},
		{[]string{"--limit", "1"}, 1},
	} {
		if got := count(tc.args...); got != tc.want {
			t.Errorf("%v: %d findings, want %d", tc.args, got, tc.want)
		}
	}
	for _, bad := range [][]string{
		{"--min-severity", "severe"}, {"--archived", "maybe"}, {"--actor", "nope"}, {"--since", "yesterday"},
		{"--type", "*"}, {"--output", "xml"},
	} {
		if _, errOut, code := execute(t, "", append([]string{"findings", "list", "--db", db}, bad...)...); code != 1 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want 1 and a message", bad, code, errOut)
		}
	}
}

func TestFindingsListTable(t *testing.T) {
	db, fs := seedStore(t)
	out, _, code := execute(t, "", "findings", "list", "--db", db)
	if code != 0 {
		t.Fatal(code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("table:\n%s", out)
	}
	scanLine := lines[2]
	for _, want := range []string{fs[0].ID[:12], "Medium 5.0", "Recon:EC2/Portscan", "198.51.100.23", "10.0.1.10", "22,23,80,443,3389,+1", "1042", "2026-11-22T10:02:00Z"} {
		if !strings.Contains(scanLine, want) {
			t.Errorf("scan row %q lacks %q", scanLine, want)
		}
	}
	if !strings.Contains(lines[3], "(many)") {
		t.Errorf("sweep row %q: want (many) as target", lines[3])
	}
}

func TestFindingsMissingDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "none.db")
	out, errOut, code := execute(t, "", "findings", "list", "--db", db, "-o", "json")
	if code != 0 || strings.TrimSpace(out) != "[]" || !strings.Contains(errOut, "no database") {
		t.Errorf("list on a missing db: exit %d out %q err %q", code, out, errOut)
	}
	_, errOut, code = execute(t, "", "findings", "archive", "--db", db, "abcdef")
	if code != 1 || !strings.Contains(errOut, "no database at "+db) {
		t.Errorf("archive on a missing db: exit %d err %q", code, errOut)
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reading commands created %s: %v", db, err)
	}
}

func TestFindingsShowArchiveFeedback(t *testing.T) {
	db, fs := seedStore(t)
	id := fs[0].ID
	short := id[:12]

	out, errOut, code := execute(t, "", "findings", "show", "--db", db, short)
	if code != 0 {
		t.Fatalf("show: %d %s", code, errOut)
	}
	for _, want := range []string{"ID:", id, "Severity:", "Medium (5.0)", "Ports:", "22,23,80,443,3389,8080", "Evidence:", "rejected", "1042", "History:", "created"} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
	out, _, code = execute(t, "", "findings", "show", "--db", db, "-o", "json", id)
	var one designFinding
	if code != 0 || json.Unmarshal([]byte(out), &one) != nil || one.ID != id || one.Count != 1042 {
		t.Errorf("show json: %d %s", code, out)
	}

	_, errOut, code = execute(t, "", "findings", "show", "--db", db, "0123456789abcdef")
	if code != 1 || !strings.Contains(errOut, `"0123456789abcdef"`) {
		t.Errorf("show of an unknown id: exit %d, %q; want 1 naming the id", code, errOut)
	}

	// Unknown id among known ones: nothing changes.
	_, errOut, code = execute(t, "", "findings", "archive", "--db", db, short, "feedfacefeed")
	if code != 1 || !strings.Contains(errOut, "feedfacefeed") {
		t.Errorf("archive with an unknown id: exit %d %q", code, errOut)
	}
	out, _, code = execute(t, "", "findings", "archive", "--db", db, short, fs[1].ID)
	if code != 0 || !strings.Contains(out, "archived 2 of 2") {
		t.Errorf("archive: %d %q", code, out)
	}
	out, _, _ = execute(t, "", "findings", "list", "--db", db, "-o", "json")
	var cur []designFinding
	json.Unmarshal([]byte(out), &cur)
	if len(cur) != 1 || cur[0].ID != fs[2].ID {
		t.Errorf("current after archive: %+v", cur)
	}
	out, _, _ = execute(t, "", "findings", "list", "--db", db, "--archived", "all")
	if !strings.Contains(out, "ARCHIVED") || strings.Count(out, " yes") != 2 {
		t.Errorf("--archived all table:\n%s", out)
	}
	out, _, code = execute(t, "", "findings", "unarchive", "--db", db, short)
	if code != 0 || !strings.Contains(out, "unarchived 1 of 1") {
		t.Errorf("unarchive: %d %q", code, out)
	}

	out, errOut, code = execute(t, "", "findings", "feedback", "--db", db, short, "not-useful")
	if code != 0 || !strings.Contains(out, "NOT_USEFUL") {
		t.Errorf("feedback: %d %q %q", code, out, errOut)
	}
	out, _, _ = execute(t, "", "findings", "show", "--db", db, "-o", "json", short)
	var raw map[string]any
	json.Unmarshal([]byte(out), &raw)
	if raw["feedback"] != "NOT_USEFUL" || raw["archived"] != false {
		t.Errorf("after feedback: %v", raw)
	}
	if _, errOut, code := execute(t, "", "findings", "feedback", "--db", db, short, "meh"); code != 1 || !strings.Contains(errOut, "useful or not-useful") {
		t.Errorf("bad feedback: %d %q", code, errOut)
	}
}

func TestFindingsSuppress(t *testing.T) {
	db, fs := seedStore(t)
	out, errOut, code := execute(t, "", "findings", "suppress", "add", "--db", db,
		"--name", "vendor", "--type", "Recon:*", "--actor", "198.51.100.0/24", "--description", "contracted scanner")
	if code != 0 || !strings.Contains(out, "archived 1 current finding") {
		t.Fatalf("suppress add: %d %q %q", code, out, errOut)
	}
	out, _, _ = execute(t, "", "findings", "list", "--db", db, "--archived", "yes", "-o", "json")
	var arch []designFinding
	json.Unmarshal([]byte(out), &arch)
	if len(arch) != 1 || arch[0].ID != fs[0].ID {
		t.Errorf("archived by the rule: %+v; want only the scan", arch)
	}
	out, _, _ = execute(t, "", "findings", "suppress", "list", "--db", db)
	if !strings.Contains(out, "vendor") || !strings.Contains(out, "type=Recon:* actor=198.51.100.0/24") || !strings.Contains(out, "contracted scanner") {
		t.Errorf("suppress list:\n%s", out)
	}
	out, _, _ = execute(t, "", "findings", "suppress", "list", "--db", db, "-o", "json")
	var rules []map[string]any
	if json.Unmarshal([]byte(out), &rules) != nil || len(rules) != 1 || rules[0]["name"] != "vendor" || rules[0]["action"] != "ARCHIVE" {
		t.Errorf("suppress list json: %s", out)
	}
	for _, bad := range [][]string{
		{"--name", "vendor", "--type", "Impact:*"},  // duplicate
		{"--name", "empty"},                         // no criteria
		{"--type", "Recon:*"},                       // no name
		{"--name", "p", "--port", "70000"},          // bad port
		{"--name", "s", "--severity-below", "huge"}, // bad severity
	} {
		if _, errOut, code := execute(t, "", append([]string{"findings", "suppress", "add", "--db", db}, bad...)...); code != 1 || errOut == "" {
			t.Errorf("suppress add %v: exit %d %q", bad, code, errOut)
		}
	}
	out, _, code = execute(t, "", "findings", "suppress", "add", "--db", db, "--name", "low-ssh", "--port", "22", "--severity-below", "medium")
	if code != 0 || !strings.Contains(out, "archived 1 current finding") { // the brute force: port 22, severity 2
		t.Errorf("port+severity rule: %d %q", code, out)
	}
	if _, _, code := execute(t, "", "findings", "suppress", "remove", "--db", db, "vendor"); code != 0 {
		t.Errorf("remove: %d", code)
	}
	if _, errOut, code := execute(t, "", "findings", "suppress", "remove", "--db", db, "vendor"); code != 1 || !strings.Contains(errOut, `"vendor"`) {
		t.Errorf("second remove: %d %q", code, errOut)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"90m":                  now.Add(-90 * time.Minute),
		"24h":                  now.Add(-24 * time.Hour),
		"7d":                   now.Add(-7 * 24 * time.Hour),
		"1.5d":                 now.Add(-36 * time.Hour),
		"2026-11-20":           time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		"2026-11-21T08:00:00Z": time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC),
	} {
		if got, err := parseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-5m", "d", "last week"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q): no error", bad)
		}
	}
}
