package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

// storedCounts returns each stored finding's count by id.
func storedCounts(t *testing.T, db string) map[string]int64 {
	t.Helper()
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fs, err := st.ListFindings(context.Background(), finding.Filter{Archived: finding.AnyArchived})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, f := range fs {
		out[f.ID] = f.Count
	}
	return out
}

// TestDetectTwiceCountsOnce: detect run again over the same files into
// the same database leaves every count as the first run left it (it used
// to add them: 30 became 60); run over the same directory once a file has
// been added, the counts are those of one run over everything.
func TestDetectTwiceCountsOnce(t *testing.T) {
	path, _ := genFile(t, 30000, 11)
	dir := filepath.Dir(path)
	db := filepath.Join(t.TempDir(), "f.db")
	run := func(args ...string) {
		t.Helper()
		_, stderr, code := execute(t, "", append([]string{"detect", "--home", "10.0.0.0/16", "--output", "json", "--db", db}, args...)...)
		if code != 0 {
			t.Fatalf("detect %v: exit %d: %s", args, code, stderr)
		}
	}
	run(dir)
	first := storedCounts(t, db)
	if len(first) == 0 {
		t.Fatal("no findings recorded")
	}
	run(dir)
	again := storedCounts(t, db)
	for id, n := range first {
		if again[id] != n {
			t.Errorf("finding %s: count %d after a second run over the same files, want %d", id, again[id], n)
		}
	}

	// A second file in the directory: the run over both supersedes the
	// run over the first, so counts equal one run over both.
	other, _ := genFile(t, 30000, 12)
	data, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "later.log"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	run(dir)
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	_, stderr, code := execute(t, "", "detect", "--home", "10.0.0.0/16", "--output", "json", "--db", fresh, dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want, got := storedCounts(t, fresh), storedCounts(t, db)
	for id, n := range want {
		if got[id] != n {
			t.Errorf("finding %s: count %d after runs over the growing directory, want %d as one run over all of it", id, got[id], n)
		}
	}
}
