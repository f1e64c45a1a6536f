package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const queryFixture = `2 123456789010 eni-1 198.51.100.7 10.0.0.5 50000 22 6 1 40 1700000000 1700000060 REJECT OK
2 123456789010 eni-1 198.51.100.7 10.0.0.5 50001 23 6 1 40 1700000000 1700000060 REJECT OK
2 123456789010 eni-1 203.0.113.9 10.0.0.5 40000 443 6 10 4000 1700000000 1700000060 ACCEPT OK
2 123456789010 eni-1 2001:db8::9 10.0.0.5 40001 22 6 1 40 1700000060 1700000120 REJECT OK
2 123456789010 eni-1 2001:db8::9 10.0.0.5 40002 22 6 1 40 1700000060 1700000120 REJECT OK
2 123456789010 eni-1 2001:db8::9 10.0.0.5 40003 22 6 1 40 1700000060 1700000120 REJECT OK
2 123456789010 eni-1 - - - - - - - 1700000120 1700000180 - NODATA
`

const seed = `filter action="REJECT" | stats count() by srcaddr | filter count >= 2 | sort count desc`

func writeFixture(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "flows.log")
	if err := os.WriteFile(p, []byte(queryFixture), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestQueryOutputs(t *testing.T) {
	path := writeFixture(t)

	out, stderr, code := execute(t, "", "query", "--output", "json", seed, path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	want := []map[string]any{{"srcaddr": "2001:db8::9", "count()": 3.0}, {"srcaddr": "198.51.100.7", "count()": 2.0}}
	if len(rows) != len(want) {
		t.Fatalf("rows %v, want %v", rows, want)
	}
	for i := range want {
		for k, v := range want[i] {
			if rows[i][k] != v {
				t.Errorf("row %d %s = %v, want %v", i, k, rows[i][k], v)
			}
		}
	}

	out, _, code = execute(t, "", "query", "-o", "csv", seed, path)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || code != 0 || len(recs) != 3 || recs[0][0] != "srcaddr" || recs[0][1] != "count()" || recs[1][1] != "3" {
		t.Errorf("csv: code %d err %v:\n%s", code, err, out)
	}

	out, _, code = execute(t, "", "query", seed, path)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "srcaddr") || !strings.HasSuffix(lines[2], " 3") {
		t.Errorf("table: code %d:\n%s", code, out)
	}
}

func TestQueryFromStdinAndDefaultColumns(t *testing.T) {
	out, stderr, code := execute(t, queryFixture, "query", "-o", "csv", `filter dstport = 443`, "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := "@timestamp,@message\n2023-11-14 22:13:20.000,2 123456789010 eni-1 203.0.113.9 10.0.0.5 40000 443 6 10 4000 1700000000 1700000060 ACCEPT OK\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestQueryErrors(t *testing.T) {
	path := writeFixture(t)
	for _, c := range []struct {
		query, want string
	}{
		{"filter action = \"REJECT\"\n| stats count( by srcaddr", "line 2, column"},
		{"stats nosuch(bytes)", "line 1, column 7"},
		{"fields frobnicate(srcaddr)", "unknown function frobnicate"},
		{"stats count() by srcaddr | filter bytes > 1", "no column bytes"},
		{"stats count() as hits by srcaddr | sort hit desc", "no column hit here (did you mean hits?)"},
	} {
		_, stderr, code := execute(t, "", "query", c.query, path)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want code 1 and %q", c.query, code, stderr, c.want)
		}
	}
	_, stderr, code := execute(t, "", "query", seed, filepath.Join(t.TempDir(), "missing.log"))
	if code != 1 || !strings.Contains(stderr, "missing.log") {
		t.Errorf("missing file: exit %d, %q", code, stderr)
	}
}

// TestQueryOutputEscapesLogFields: a terminal escape, a tab or a carriage
// return inside a log field reaches neither the table nor the CSV output
// raw, and JSON keeps it as a JSON escape.
func TestQueryOutputEscapesLogFields(t *testing.T) {
	line := "2 123456789010 eni-\x1b]52;c;aGk=\x07\x1b[2J\rX\u202e 198.51.100.7 10.0.0.5 50000 22 6 1 40 1700000000 1700000060 REJECT OK\n"
	p := filepath.Join(t.TempDir(), "hostile.log")
	if err := os.WriteFile(p, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"table", "csv", "json"} {
		out, stderr, code := execute(t, "", "query", "-o", format, "fields interfaceId, @message", p)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", format, code, stderr)
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x20 && c != '\n' || c == 0x7f {
				t.Errorf("%s output has control byte %#x: %q", format, c, out)
				break
			}
		}
		if strings.Contains(out, "\u202e") {
			t.Errorf("%s output has a raw bidi override: %q", format, out)
		}
		if format == "json" {
			var rows []map[string]string
			if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0]["interfaceId"] != "eni-\x1b]52;c;aGk=\x07\x1b[2J\rX\u202e" {
				t.Errorf("json does not decode to the field: %v %q", err, out)
			}
		} else if !strings.Contains(out, `eni-\x1b]52;c;aGk=\a\x1b[2J\rX\u202e`) {
			t.Errorf("%s output does not show the field escaped: %q", format, out)
		}
	}
}

// TestTablesEscapeText: the other table writers print log-derived text
// (a finding's title, a rule, a sample record) escaped.
func TestTablesEscapeText(t *testing.T) {
	args := escaped("a\x1b[31mb", []byte("c\td"), netip.MustParseAddr("10.0.0.1"), 3, 1.5)
	want := []any{`a\x1b[31mb`, `c\td`, "10.0.0.1", 3, 1.5}
	for i := range want {
		if args[i] != want[i] {
			t.Errorf("escaped arg %d = %#v, want %#v", i, args[i], want[i])
		}
	}
	type state string
	if got := escaped(state("x\ny"))[0]; got != `x\ny` {
		t.Errorf("escaped named string = %#v", got)
	}
	if got := fmt.Sprintf("%d %s", escaped(time.Duration(3), time.Duration(3))...); got != "3 3ns" {
		t.Errorf("a numeric Stringer printed as %q", got)
	}
}
