package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/synth"
)

// TestSameRecordsInEveryFormat generates the same v5 records as text with
// a header line, as gzip, as Parquet and as S3's many-file layout, and
// checks that parse prints the same JSON for each and that a query gives
// the same answer.
func TestSameRecordsInEveryFormat(t *testing.T) {
	dir := t.TempDir()
	cfg := synth.DefaultConfig()
	cfg.Records, cfg.Seed = 20000, 11
	cfg.Format = flowlog.MustParseFormat(synth.V5FormatString)
	write := func(name string, fn func(g *synth.Generator, f *os.File) error) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := fn(synth.New(cfg), f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return p
	}
	text := write("v5.log", func(g *synth.Generator, f *os.File) error { return g.WriteText(f, true) })
	gz := write("v5.log.gz", func(g *synth.Generator, f *os.File) error { return g.WriteGzipText(f) })
	pq := write("v5.parquet", func(g *synth.Generator, f *os.File) error { return g.WriteParquet(f) })
	s3dir := filepath.Join(dir, "s3")
	if _, err := synth.New(cfg).WriteS3(s3dir, false); err != nil {
		t.Fatal(err)
	}

	want, stderr, code := execute(t, "", "parse", text)
	if code != 0 || len(want) == 0 {
		t.Fatalf("parse text: exit %d: %s", code, stderr)
	}
	for _, p := range []string{gz, pq} {
		got, stderr, code := execute(t, "", "parse", p)
		if code != 0 || got != want {
			t.Errorf("parse %s: exit %d, same output: %v; %s", filepath.Base(p), code, got == want, stderr)
		}
	}
	// S3's layout splits records by five-minute window, with late records
	// in later files: compare a query's answer, not the order.
	q := `stats count() as n, sum(bytes) as b, count_distinct(srcaddr) as s by action, logStatus | sort action asc, logStatus asc`
	wantQ, _, _ := execute(t, "", "query", "-o", "csv", q, text)
	for _, p := range []string{gz, pq, s3dir} {
		got, stderr, code := execute(t, "", "query", "-o", "csv", q, p)
		if code != 0 || got != wantQ {
			t.Errorf("query %s: exit %d:\n%s\nwant:\n%s\n%s", filepath.Base(p), code, got, wantQ, stderr)
		}
	}
}
