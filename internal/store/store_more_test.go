package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/finding"
)

func TestMain(m *testing.M) {
	// The crash test runs this binary as a child that dies mid-write.
	if path := os.Getenv("FLOWGUARD_STORE_CRASH"); path != "" {
		crashMidWrite(path)
		return
	}
	os.Exit(m.Run())
}

// crashMidWrite updates the stored finding inside a write transaction and
// exits the process before committing, as a kill -9 or power cut would.
func crashMidWrite(path string) {
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	f := scan("198.51.100.23", "10.0.1.10", 1000, []uint16{8080}, t0, t0.Add(time.Hour), nil)
	s.write(ctx, func(tx *sql.Tx) error {
		rules, _ := loadRules(ctx, tx)
		st, err := prepareUpsert(ctx, tx)
		if err != nil {
			os.Exit(2)
		}
		if _, err := st.upsertOne(ctx, rules, &f, time.Now()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints(source, position, updated_at) VALUES ('s3://b/k', '999', 1) ON CONFLICT(source) DO UPDATE SET position = excluded.position`); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(3) // no commit, no close
		return nil
	})
}

func TestCrashMidWriteKeepsPreviousState(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "crash.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	f := scan("198.51.100.23", "10.0.1.10", 10, []uint16{22}, t0, t0.Add(time.Minute), nil)
	if _, _, err := s.UpsertFindings(ctx, []finding.Finding{f}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "s3://b/k", "100"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FLOWGUARD_STORE_CRASH="+path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child: %v %s; want exit 3 from inside the transaction", err, out)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetFinding(ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 10 || len(got.Target.Ports) != 1 || got.Target.Ports[0] != 22 {
		t.Errorf("after the crash: count %d ports %v, want the committed 10 [22]", got.Count, got.Target.Ports)
	}
	if pos, _, _ := s.LoadCheckpoint(ctx, "s3://b/k"); pos != "100" {
		t.Errorf("checkpoint = %q after the crash, want 100", pos)
	}
}

func TestUpsertRollsBackOnError(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	a := scan("198.51.100.1", "10.0.0.1", 5, []uint16{22}, t0, t0, nil)
	if _, _, err := s.UpsertFindings(ctx, []finding.Finding{a}); err != nil {
		t.Fatal(err)
	}
	a2 := a
	a2.Count = 100
	b := scan("198.51.100.2", "10.0.0.1", 1, nil, t0, t0, map[string]any{"ratio": math.Inf(1)}) // JSON cannot encode +Inf
	c, u, err := s.UpsertFindings(ctx, []finding.Finding{a2, b})
	if err == nil {
		t.Fatal("want an error for an unencodable finding")
	}
	if c != 0 || u != 0 {
		t.Errorf("created %d updated %d on error, want 0 0", c, u)
	}
	got, err := s.GetFinding(ctx, a.ID)
	if err != nil || got.Count != 5 {
		t.Errorf("first finding count = %d (%v), want 5: the update must roll back with the batch", got.Count, err)
	}
	if _, err := s.GetFinding(ctx, b.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second finding stored despite the error: %v", err)
	}
	if h, _ := s.FindingHistory(ctx, a.ID); len(h) != 1 {
		t.Errorf("history has %d entries, want 1 (the rolled-back update left none)", len(h))
	}
	if _, _, err := s.UpsertFindings(ctx, []finding.Finding{{Type: "x"}}); err == nil || !strings.Contains(err.Error(), "no id") {
		t.Errorf("finding without id: %v", err)
	}
}

func TestMigrateOldDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := open(ctx, path, 1) // as a version-1 flowguard left it
	if err != nil {
		t.Fatal(err)
	}
	f := scan("198.51.100.23", "10.0.1.10", 7, []uint16{22}, t0, t0, nil)
	body, _ := marshalBody(&f)
	if _, err := old.w.Exec(`INSERT INTO findings(id, type, severity, actor_ip, target_ip, count, first_seen, last_seen, archived, feedback, created_at, updated_at, body)
		VALUES (?,?,?,?,?,?,?,?,0,'',1,1,?)`, f.ID, f.Type, f.Severity, "198.51.100.23", "10.0.1.10", 7, nanos(t0), nanos(t0), body); err != nil {
		t.Fatal(err)
	}
	var tables int
	old.w.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='suppression_rules'`).Scan(&tables)
	if tables != 0 {
		t.Fatal("a version-1 database already has version-2 tables")
	}
	old.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := versions(t, s); fmt.Sprint(v) != fmt.Sprint(allVersions()) {
		t.Errorf("schema versions = %v, want %v", v, allVersions())
	}
	// The old finding is there, and the new tables work with it.
	f2 := f
	f2.Count = 3
	if c, u, err := s.UpsertFindings(ctx, []finding.Finding{f2}); err != nil || c != 0 || u != 1 {
		t.Fatalf("upsert into the migrated db: %d %d %v", c, u, err)
	}
	if got, _ := s.GetFinding(ctx, f.ID); got.Count != 10 {
		t.Errorf("count = %d, want 7+3", got.Count)
	}
	if err := s.SaveCheckpoint(ctx, "x", "1"); err != nil {
		t.Error(err)
	}
}

func versions(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.r.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var v []int
	for rows.Next() {
		var n int
		rows.Scan(&n)
		v = append(v, n)
	}
	return v
}

func TestOpenTwiceIsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "twice.db")
	// Two stores opening a new file at the same time both migrate it; the
	// immediate transactions make one wait for the other.
	var wg sync.WaitGroup
	stores := make([]*Store, 2)
	errs := make([]error, 2)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(ctx, path)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
	}
	for _, s := range stores {
		if v := versions(t, s); fmt.Sprint(v) != fmt.Sprint(allVersions()) {
			t.Errorf("schema versions = %v, want %v", v, allVersions())
		}
		s.Close()
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := versions(t, s); len(v) != SchemaVersion() {
		t.Errorf("third open: versions %v", v)
	}
	var mode string
	s.r.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "new.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s.w.Exec(`INSERT INTO schema_migrations(version, applied_at) VALUES (?, 0)`, SchemaVersion()+1)
	s.Close()
	if _, err := Open(ctx, path); err == nil || !strings.Contains(err.Error(), "newer than this flowguard") {
		t.Errorf("open of a newer database: %v", err)
	}
}

func TestReadersDuringWrite(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	a := scan("198.51.100.1", "10.0.0.1", 1, nil, t0, t0, nil)
	if _, _, err := s.UpsertFindings(ctx, []finding.Finding{a}); err != nil {
		t.Fatal(err)
	}
	// Hold a write transaction open with an uncommitted second finding.
	inTx := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.write(ctx, func(tx *sql.Tx) error {
			rules, _ := loadRules(ctx, tx)
			st, err := prepareUpsert(ctx, tx)
			if err != nil {
				return err
			}
			defer st.close()
			b := scan("198.51.100.2", "10.0.0.1", 1, nil, t0, t0, nil)
			if _, err := st.upsertOne(ctx, rules, &b, time.Now()); err != nil {
				return err
			}
			close(inTx)
			<-release
			return nil
		})
	}()
	<-inTx
	// Readers neither block nor see the uncommitted finding.
	var wg sync.WaitGroup
	counts := make([]int, 8)
	errs := make([]error, 8)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fs, err := s.ListFindings(ctx, finding.Filter{})
			counts[i], errs[i] = len(fs), err
		}()
	}
	readersDone := make(chan struct{})
	go func() { wg.Wait(); close(readersDone) }()
	select {
	case <-readersDone:
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("readers blocked behind the writer")
	}
	for i := range counts {
		if errs[i] != nil || counts[i] != 1 {
			t.Errorf("reader %d: %d findings, %v; want 1 (the committed state)", i, counts[i], errs[i])
		}
	}
	// A second writer waits for the first instead of failing.
	second := make(chan error, 1)
	go func() {
		_, _, err := s.UpsertFindings(ctx, []finding.Finding{scan("198.51.100.3", "10.0.0.1", 1, nil, t0, t0, nil)})
		second <- err
	}()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	fs, _ := s.ListFindings(ctx, finding.Filter{})
	if len(fs) != 3 {
		t.Errorf("after both writes: %d findings, want 3", len(fs))
	}
}

func TestTwoProcessesWrite(t *testing.T) {
	// Two Stores on one file stand for two processes: their writes are
	// serialised by SQLite's lock and the busy timeout, none is lost.
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "two.db")
	a, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f := scan("198.51.100.1", "10.0.0.1", 1, nil, t0, t0, nil)
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if _, _, err := s.UpsertFindings(ctx, []finding.Finding{f}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, err := a.GetFinding(ctx, f.ID)
	if err != nil || got.Count != 50 {
		t.Errorf("count = %d (%v), want 50 from 2×25 upserts of count 1", got.Count, err)
	}
}

func TestSuppressionRules(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	scanner := scan("198.51.100.5", "10.0.0.1", 1, []uint16{22}, t0, t0, nil)
	other := scan("203.0.113.9", "10.0.0.1", 1, []uint16{22}, t0, t0, nil)
	brute := scan("198.51.100.5", "10.0.0.2", 1, []uint16{22}, t0, t0, nil)
	brute.Type = "UnauthorizedAccess:EC2/SSHBruteForce"
	brute.ID = finding.ID(brute.Type, brute.Actor.IP, "10.0.0.2")
	if _, _, err := s.UpsertFindings(ctx, []finding.Finding{scanner, other, brute}); err != nil {
		t.Fatal(err)
	}
	rule := finding.SuppressionRule{Name: "vendor", Types: []string{"Recon:*"}, Actors: []string{"198.51.100.0/28"}}
	n, err := s.AddSuppressionRule(ctx, rule)
	if err != nil || n != 1 {
		t.Fatalf("AddSuppressionRule archived %d (%v), want 1", n, err)
	}
	for id, want := range map[string]bool{scanner.ID: true, other.ID: false, brute.ID: false} {
		f, _ := s.GetFinding(ctx, id)
		if f.Archived != want {
			t.Errorf("%s %s archived = %v, want %v", f.Type, f.Actor.IP, f.Archived, want)
		}
	}
	// New activity from a suppressed actor is recorded, and archived.
	fresh := scan("198.51.100.6", "10.0.0.3", 4, nil, t0, t0, nil)
	if c, _, err := s.UpsertFindings(ctx, []finding.Finding{fresh, other}); err != nil || c != 1 {
		t.Fatal(c, err)
	}
	if f, _ := s.GetFinding(ctx, fresh.ID); !f.Archived || f.Count != 4 {
		t.Errorf("new matching finding: archived %v count %d, want archived and recorded", f.Archived, f.Count)
	}
	if f, _ := s.GetFinding(ctx, other.ID); f.Archived || f.Count != 2 {
		t.Errorf("non-matching finding: archived %v count %d", f.Archived, f.Count)
	}
	h, _ := s.FindingHistory(ctx, fresh.ID)
	if len(h) != 2 || h[0].Kind != HistoryCreated || h[1].Kind != HistorySuppressed || !strings.Contains(string(h[1].Detail), "vendor") {
		t.Errorf("history = %+v", h)
	}

	if _, err := s.AddSuppressionRule(ctx, rule); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("duplicate rule: %v", err)
	}
	if _, err := s.AddSuppressionRule(ctx, finding.SuppressionRule{Name: "bad"}); err == nil {
		t.Error("rule without criteria accepted")
	}
	rs, err := s.ListSuppressionRules(ctx)
	if err != nil || len(rs) != 1 || rs[0].Name != "vendor" || rs[0].Action != finding.ActionArchive || rs[0].Actors[0] != "198.51.100.0/28" {
		t.Fatalf("rules = %+v %v", rs, err)
	}
	if err := s.RemoveSuppressionRule(ctx, "vendor"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveSuppressionRule(ctx, "vendor"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
	// Removing a rule leaves its findings archived; new ones are current.
	if f, _ := s.GetFinding(ctx, scanner.ID); !f.Archived {
		t.Error("removing the rule unarchived a finding")
	}
	late := scan("198.51.100.7", "10.0.0.3", 1, nil, t0, t0, nil)
	s.UpsertFindings(ctx, []finding.Finding{late})
	if f, _ := s.GetFinding(ctx, late.ID); f.Archived {
		t.Error("finding archived by a removed rule")
	}
}

func TestArchiveFeedbackAndHistory(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	a := scan("198.51.100.1", "10.0.0.1", 1, nil, t0, t0, nil)
	b := scan("198.51.100.2", "10.0.0.1", 1, nil, t0, t0, nil)
	s.UpsertFindings(ctx, []finding.Finding{a, b})

	if _, err := s.Archive(ctx, a.ID, "missing-id"); err == nil || !strings.Contains(err.Error(), "missing-id") || !errors.Is(err, ErrNotFound) {
		t.Errorf("archive with an unknown id: %v", err)
	}
	if f, _ := s.GetFinding(ctx, a.ID); f.Archived {
		t.Error("archive with an unknown id changed a finding")
	}
	if n, err := s.Archive(ctx, a.ID, b.ID); err != nil || n != 2 {
		t.Fatalf("archive: %d %v", n, err)
	}
	if n, err := s.Archive(ctx, a.ID); err != nil || n != 0 {
		t.Errorf("archive again: %d %v, want 0 changed", n, err)
	}
	if n, err := s.Unarchive(ctx, b.ID); err != nil || n != 1 {
		t.Errorf("unarchive: %d %v", n, err)
	}
	cur, _ := s.ListFindings(ctx, finding.Filter{})
	arch, _ := s.ListFindings(ctx, finding.Filter{Archived: finding.ArchivedOnly})
	if len(cur) != 1 || cur[0].ID != b.ID || len(arch) != 1 || arch[0].ID != a.ID {
		t.Errorf("current %v archived %v", cur, arch)
	}
	// New activity on an archived finding keeps it archived (GuardDuty).
	s.UpsertFindings(ctx, []finding.Finding{a})
	if f, _ := s.GetFinding(ctx, a.ID); !f.Archived || f.Count != 2 {
		t.Errorf("update of archived finding: archived %v count %d", f.Archived, f.Count)
	}

	if err := s.SetFeedback(ctx, b.ID, finding.NotUseful); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFeedback(ctx, "nope", finding.Useful); !errors.Is(err, ErrNotFound) {
		t.Errorf("feedback on unknown id: %v", err)
	}
	if err := s.SetFeedback(ctx, b.ID, "meh"); err == nil {
		t.Error("feedback meh accepted")
	}
	s.UpsertFindings(ctx, []finding.Finding{b})
	if f, _ := s.GetFinding(ctx, b.ID); f.Feedback != finding.NotUseful {
		t.Errorf("feedback after an update = %q", f.Feedback)
	}
	var kinds []string
	h, _ := s.FindingHistory(ctx, b.ID)
	for _, e := range h {
		kinds = append(kinds, e.Kind)
	}
	if want := "created archived unarchived feedback updated"; strings.Join(kinds, " ") != want {
		t.Errorf("history kinds = %v, want %s", kinds, want)
	}
	var nfb int
	s.r.QueryRow(`SELECT COUNT(*) FROM feedback WHERE finding_id = ?`, b.ID).Scan(&nfb)
	if nfb != 1 {
		t.Errorf("feedback rows = %d", nfb)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	f := scan("198.51.100.1", "10.0.0.1", 1, nil, t0, t0, nil)
	batch := make([]finding.Finding, historyKeep+50)
	for i := range batch {
		batch[i] = f
	}
	c, u, err := s.UpsertFindings(ctx, batch)
	if err != nil || c != 1 || u != len(batch)-1 {
		t.Fatalf("%d %d %v", c, u, err)
	}
	h, _ := s.FindingHistory(ctx, f.ID)
	if len(h) != historyKeep {
		t.Errorf("history has %d entries, want %d", len(h), historyKeep)
	}
	if got, _ := s.GetFinding(ctx, f.ID); got.Count != int64(len(batch)) {
		t.Errorf("count = %d", got.Count)
	}
}

func TestListFindingsFilterAndOrder(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	mk := func(typ, actor string, sev float64, last time.Time) finding.Finding {
		f := scan(actor, "10.0.0.1", 1, nil, last, last, nil)
		f.Type, f.Severity = typ, sev
		f.ID = finding.ID(typ, f.Actor.IP, "10.0.0.1")
		return f
	}
	fs := []finding.Finding{
		mk("Recon:EC2/Portscan", "198.51.100.1", 5, t0.Add(1*time.Hour)),
		mk("Recon:EC2/RepeatedReject", "198.51.100.2", 2, t0.Add(3*time.Hour)),
		mk("UnauthorizedAccess:EC2/SSHBruteForce", "203.0.113.3", 5, t0.Add(2*time.Hour)),
		mk("Impact:EC2/InboundFlood", "2001:db8::1", 8, t0.Add(2*time.Hour)),
	}
	if _, _, err := s.UpsertFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	ids := func(fl finding.Filter) string {
		got, err := s.ListFindings(ctx, fl)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range got {
			out = append(out, f.Actor.IP.String())
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		fl   finding.Filter
		want string
	}{
		{finding.Filter{}, "198.51.100.2,2001:db8::1,203.0.113.3,198.51.100.1"}, // last seen desc, then severity desc
		{finding.Filter{Types: []string{"Recon:*"}}, "198.51.100.2,198.51.100.1"},
		{finding.Filter{Types: []string{"Recon:EC2/Portscan"}}, "198.51.100.1"},
		{finding.Filter{MinSeverity: 5}, "2001:db8::1,203.0.113.3,198.51.100.1"},
		{finding.Filter{Actors: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}, "198.51.100.2,198.51.100.1"},
		{finding.Filter{Actors: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}}, "2001:db8::1"},
		{finding.Filter{Since: t0.Add(2 * time.Hour)}, "198.51.100.2,2001:db8::1,203.0.113.3"},
		{finding.Filter{Limit: 2}, "198.51.100.2,2001:db8::1"},
		{finding.Filter{Archived: finding.ArchivedOnly}, ""},
	} {
		if got := ids(tc.fl); got != tc.want {
			t.Errorf("%+v: got %s, want %s", tc.fl, got, tc.want)
		}
	}
	if _, err := s.ListFindings(ctx, finding.Filter{Types: []string{"*"}}); err == nil {
		t.Error("invalid type pattern accepted")
	}
}

func TestResolveID(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	a := scan("198.51.100.1", "10.0.0.1", 1, nil, t0, t0, nil)
	s.UpsertFindings(ctx, []finding.Finding{a})
	for _, in := range []string{a.ID, a.ID[:8], strings.ToUpper(a.ID[:12])} {
		if got, err := s.ResolveID(ctx, in); err != nil || got != a.ID {
			t.Errorf("ResolveID(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{a.ID[:4], "ffffffffff", "", a.ID[:6] + "%"} {
		if _, err := s.ResolveID(ctx, in); !errors.Is(err, ErrNotFound) {
			t.Errorf("ResolveID(%q): %v, want not found", in, err)
		}
	}
	// Two ids sharing a prefix: insert a crafted one.
	b := a
	b.ID = a.ID[:10] + "0000000000000000000000"
	if b.ID == a.ID {
		b.ID = a.ID[:10] + "1111111111111111111111"
	}
	s.UpsertFindings(ctx, []finding.Finding{b})
	if _, err := s.ResolveID(ctx, a.ID[:8]); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous prefix: %v", err)
	}
}

func TestAlarmStateAndCheckpoints(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	states := []AlarmState{
		{Name: "reject-spike", State: alarm.StateAlarm, Since: t0, Reason: "Threshold Crossed"},
		{Name: "quiet", State: alarm.StateOK, Since: t0.Add(time.Minute)},
	}
	if err := s.SaveAlarmState(ctx, states...); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveAlarmState(ctx, AlarmState{Name: "quiet", State: alarm.StateInsufficientData, Since: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveAlarmState(ctx, AlarmState{Name: "x", State: "BROKEN"}); err == nil {
		t.Error("unknown state accepted")
	}
	if err := s.SaveCheckpoint(ctx, "file:/var/log/a.log", "1024"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "file:/var/log/a.log", "2048"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.LoadAlarmStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["reject-spike"].State != alarm.StateAlarm || !got["reject-spike"].Since.Equal(t0) ||
		got["reject-spike"].Reason != "Threshold Crossed" || got["quiet"].State != alarm.StateInsufficientData ||
		!got["quiet"].Since.Equal(t0.Add(time.Hour)) {
		t.Errorf("alarm states = %+v", got)
	}
	// The states restore an evaluator.
	ev, err := alarm.NewEvaluator(alarm.Alarm{Name: "reject-spike", Namespace: "N", MetricName: "M", Statistic: "Sum",
		Period: 60, EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: "GreaterThanOrEqualToThreshold"}, alarm.NewStore())
	if err != nil {
		t.Fatal(err)
	}
	ev.Restore(got["reject-spike"].State, got["reject-spike"].Since)
	if st, since := ev.State(); st != alarm.StateAlarm || !since.Equal(t0) {
		t.Errorf("restored evaluator: %s %s", st, since)
	}
	pos, ok, err := s.LoadCheckpoint(ctx, "file:/var/log/a.log")
	if err != nil || !ok || pos != "2048" {
		t.Errorf("checkpoint = %q %v %v, want 2048", pos, ok, err)
	}
	if _, ok, err := s.LoadCheckpoint(ctx, "other"); ok || err != nil {
		t.Errorf("missing checkpoint: %v %v", ok, err)
	}
}

func TestAudit(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	entries := []AuditEntry{
		{Time: t0, Action: "block", Subject: "198.51.100.23", FindingID: "f1", Detail: json.RawMessage(`{"acl":"acl-1","rule":90}`)},
		{Time: t0.Add(time.Minute), Action: "notify", Subject: "sns:alerts", FindingID: "f1"},
		{Time: t0.Add(2 * time.Minute), Action: "unblock", Subject: "198.51.100.23", FindingID: "f1"},
		{Time: t0.Add(3 * time.Minute), Action: "block", Subject: "203.0.113.9", FindingID: "f2"},
	}
	for i, e := range entries {
		seq, err := s.AppendAudit(ctx, e)
		if err != nil || seq != int64(i+1) {
			t.Fatalf("append %d: seq %d %v", i, seq, err)
		}
	}
	if _, err := s.AppendAudit(ctx, AuditEntry{Action: "x", Detail: json.RawMessage(`{`)}); err == nil {
		t.Error("invalid JSON detail accepted")
	}
	if _, err := s.AppendAudit(ctx, AuditEntry{}); err == nil {
		t.Error("entry without action accepted")
	}
	list := func(fl AuditFilter) string {
		got, err := s.ListAudit(ctx, fl)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range got {
			out = append(out, fmt.Sprint(e.Seq))
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		fl   AuditFilter
		want string
	}{
		{AuditFilter{}, "1,2,3,4"},
		{AuditFilter{FindingID: "f1"}, "1,2,3"},
		{AuditFilter{Action: "block"}, "1,4"},
		{AuditFilter{Since: t0.Add(90 * time.Second)}, "3,4"},
		{AuditFilter{Limit: 2}, "3,4"},
	} {
		if got := list(tc.fl); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.fl, got, tc.want)
		}
	}
	got, _ := s.ListAudit(ctx, AuditFilter{Limit: 1, Action: "block", FindingID: "f1"})
	if len(got) != 1 || string(got[0].Detail) != `{"acl":"acl-1","rule":90}` || !got[0].Time.Equal(t0) || got[0].Subject != "198.51.100.23" {
		t.Errorf("entry = %+v", got)
	}
}

func TestDefaultPathAndPermissions(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvDB, "")
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "xdg"))
	p, err := DefaultPath()
	if err != nil || p != filepath.Join(dir, "xdg", "flowguard", "flowguard.db") {
		t.Errorf("with XDG_DATA_HOME: %q %v", p, err)
	}
	t.Setenv("XDG_DATA_HOME", "relative/ignored") // the spec says relative paths are invalid
	t.Setenv("HOME", filepath.Join(dir, "home"))
	if p, _ := DefaultPath(); p != filepath.Join(dir, "home", ".local", "share", "flowguard", "flowguard.db") {
		t.Errorf("default = %q", p)
	}
	t.Setenv(EnvDB, filepath.Join(dir, "env.db"))
	if p, _ := DefaultPath(); p != filepath.Join(dir, "env.db") {
		t.Errorf("with %s: %q", EnvDB, p)
	}
	t.Setenv(EnvDB, "")
	s, err := Open(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	want := filepath.Join(dir, "home", ".local", "share", "flowguard")
	if st, err := os.Stat(want); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("directory %s: %v %v, want mode 0700", want, st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Join(want, "flowguard.db")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("database file: %v %v, want mode 0600", st.Mode(), err)
	}
	if s.Path() != filepath.Join(want, "flowguard.db") {
		t.Errorf("Path() = %s", s.Path())
	}
}

func TestOddPath(t *testing.T) {
	// Characters that mean something in a URI must not break the path.
	p := filepath.Join(t.TempDir(), "we?ird #name%20.db")
	s, err := Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(p); err != nil {
		t.Errorf("database not at %s: %v", p, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "we?ird #name%20.db") {
			t.Errorf("stray file %q", e.Name())
		}
	}
}

// allVersions is every schema version, 1 to SchemaVersion, in order.
func allVersions() []int {
	v := make([]int, SchemaVersion())
	for i := range v {
		v[i] = i + 1
	}
	return v
}
