package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/synth"
)

// TestReportCommand runs flowguard report as a user would: with the
// detectors over the files, then with the findings a detect run stored,
// and refuses standard input (read once per table).
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := synth.DefaultConfig()
	cfg.Records = 20000
	logPath, _ := writeGenerated(t, cfg, false)
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	out := filepath.Join(dir, "detect.html")
	_, stderr, code := execute(t, "", "report", "--out", out, "--home", "10.0.0.0/16", logPath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"flowguard: report: 1/9 table traffic", "flowguard: report: 9/9 findings"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, stderr)
		}
	}
	page := read(out)
	if !strings.Contains(page, "the detectors run over the inputs") || !strings.Contains(page, "198.51.100.23 scanned") {
		t.Errorf("the report's findings are not the detectors' (no 198.51.100.23 scan)")
	}

	db := filepath.Join(dir, "f.db")
	if _, stderr, code := execute(t, "", "detect", "--db", db, "--home", "10.0.0.0/16", logPath); code != 0 {
		t.Fatalf("detect: exit %d: %s", code, stderr)
	}
	out = filepath.Join(dir, "store.html")
	if _, stderr, code := execute(t, "", "report", "--out", out, "--db", db, logPath); code != 0 {
		t.Fatalf("report --db: exit %d: %s", code, stderr)
	}
	page = read(out)
	if !strings.Contains(page, "the store "+db) || !strings.Contains(page, "198.51.100.23 scanned") {
		t.Errorf("the report --db does not list the stored findings")
	}

	if _, stderr, code := execute(t, "x", "report", "-"); code == 0 || !strings.Contains(stderr, "standard input") {
		t.Errorf("report - : exit %d %s; want a refusal naming standard input", code, stderr)
	}
	if _, stderr, code := execute(t, "", "report", "--db", filepath.Join(dir, "none.db"), logPath); code == 0 || !strings.Contains(stderr, "none.db") {
		t.Errorf("report --db of a missing file: exit %d %s", code, stderr)
	}
}
