package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestParseGolden runs every fixture in testdata/parse: NAME.log with the
// arguments in NAME.args must print NAME.jsonl and skip the number of lines
// in NAME.skipped (0 if absent). Each case runs on the plain file, on a gzip
// copy and on standard input.
func TestParseGolden(t *testing.T) {
	logs, err := filepath.Glob("testdata/parse/*.log")
	if err != nil || len(logs) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, path := range logs {
		name := strings.TrimSuffix(filepath.Base(path), ".log")
		t.Run(name, func(t *testing.T) {
			base := strings.TrimSuffix(path, ".log")
			want, err := os.ReadFile(base + ".jsonl")
			if err != nil {
				t.Fatal(err)
			}
			var args []string
			if a, err := os.ReadFile(base + ".args"); err == nil {
				args = strings.Split(strings.TrimRight(string(a), "\n"), "\n")
			}
			skipped := 0
			if s, err := os.ReadFile(base + ".skipped"); err == nil {
				skipped, _ = strconv.Atoi(strings.TrimSpace(string(s)))
			}
			input, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			gz := filepath.Join(t.TempDir(), name+".log.gz")
			writeGzip(t, gz, input)

			for _, variant := range []struct {
				name  string
				path  string
				stdin string
			}{{"plain", path, ""}, {"gzip", gz, ""}, {"stdin", "-", string(input)}} {
				out, stderr, code := execute(t, variant.stdin, append(append([]string{"parse"}, args...), variant.path)...)
				if out != string(want) {
					t.Errorf("%s: stdout differs\n got: %s\nwant: %s", variant.name, out, want)
				}
				wantCode := 0
				if skipped > 0 {
					wantCode = 2
				}
				if code != wantCode {
					t.Errorf("%s: exit code %d, want %d; stderr:\n%s", variant.name, code, wantCode, stderr)
				}
				if skipped > 0 && !strings.Contains(stderr, fmt.Sprintf("%d malformed line(s)", skipped)) {
					t.Errorf("%s: stderr does not report %d skipped lines:\n%s", variant.name, skipped, stderr)
				}
			}
		})
	}
}

func writeGzip(t *testing.T, path string, data []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestParseReportsWhere checks that a skipped line is reported with its
// file, line and column and what was wrong.
func TestParseReportsWhere(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.log")
	data := "2 123456789010 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n" +
		"2 123456789010 eni-1 10.0.0.300 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n" +
		"2 123456789010 eni-1 10.0.0.1\n"
	os.WriteFile(path, []byte(data), 0o644)
	out, stderr, code := execute(t, "", "parse", path)
	if code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("want the one good record, got:\n%s", out)
	}
	for _, want := range []string{path + ":2:22: srcaddr: not an IP address", path + ":3: expected 14 fields, found 4", "2 malformed line(s)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	// --strict stops at the first.
	_, stderr, code = execute(t, "", "parse", "--strict", path)
	if code == 0 || !strings.Contains(stderr, "--strict") {
		t.Errorf("--strict: code %d, stderr:\n%s", code, stderr)
	}
}
