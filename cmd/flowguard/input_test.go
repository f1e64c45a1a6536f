package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const inputTestRecord = "2 123456789010 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n"

// TestParseSkipsUnreadableDirectoryEntries: a dangling symbolic link in a
// directory does not stop the run: the other files are read, the link is
// reported by path and reason, and the exit code is 2 as for any skipped
// input; --strict stops at it.
func TestParseSkipsUnreadableDirectoryEntries(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.log"), []byte(strings.Repeat(inputTestRecord, 2)), 0o644)
	os.WriteFile(filepath.Join(dir, "z.log"), []byte(inputTestRecord), 0o644)
	if err := os.Symlink(filepath.Join(dir, "rotated-away.log"), filepath.Join(dir, "m.log")); err != nil {
		t.Skip("no symlinks:", err)
	}
	out, stderr, code := execute(t, "", "parse", dir)
	if code != 2 || strings.Count(out, "\n") != 3 {
		t.Errorf("exit %d, %d records; stderr:\n%s", code, strings.Count(out, "\n"), stderr)
	}
	for _, want := range []string{filepath.Join(dir, "m.log") + ": skipped: cannot follow symbolic link: no such file or directory", "1 malformed line(s) or input(s) skipped"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	out, stderr, code = execute(t, "", "parse", "--strict", dir)
	if code == 0 || !strings.Contains(stderr, "--strict") || out != "" {
		t.Errorf("--strict: exit %d, stdout %q, stderr:\n%s", code, out, stderr)
	}
}

// TestParseLongLine: a line of 2 MiB among records, in a plain file, a
// gzip file and on standard input, is one skipped line named by its
// number; every record after it is printed.
func TestParseLongLine(t *testing.T) {
	var text strings.Builder
	for i := 0; i < 1000; i++ {
		text.WriteString(inputTestRecord)
	}
	text.WriteString("2 123456789010 eni-" + strings.Repeat("x", 2<<20) + " 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n")
	for i := 0; i < 5; i++ {
		text.WriteString(inputTestRecord)
	}
	text.WriteString("2 123456789010 eni-1 10.0.0.1 10.0.0.2 70000 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n")
	dir := t.TempDir()
	plain := filepath.Join(dir, "long.log")
	os.WriteFile(plain, []byte(text.String()), 0o644)
	gz := filepath.Join(dir, "long.log.gz")
	writeGzip(t, gz, []byte(text.String()))
	for _, tc := range []struct{ path, stdin, name string }{{plain, "", plain}, {gz, "", gz}, {"-", text.String(), "-"}} {
		out, stderr, code := execute(t, tc.stdin, "parse", tc.path)
		if code != 2 || strings.Count(out, "\n") != 1005 {
			t.Errorf("%s: exit %d, %d records, want 2, 1005", tc.name, code, strings.Count(out, "\n"))
		}
		for _, want := range []string{
			fmt.Sprintf("%s:1001: line longer than 65536 bytes", tc.name),
			fmt.Sprintf("%s:1007:40: srcport: out of range (0 to 65535)", tc.name),
			"2 malformed line(s)",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.name, want, stderr)
			}
		}
	}
}

// TestDetectSeesMappedAddressesAsIPv4: a port scan from
// ::ffff:198.51.100.23 (an IPv4-mapped IPv6 address) is a scan by
// 198.51.100.23, so --allow 198.51.100.0/24 silences it.
func TestDetectSeesMappedAddressesAsIPv4(t *testing.T) {
	var text strings.Builder
	for port := 1000; port < 1040; port++ {
		fmt.Fprintf(&text, "2 123456789012 eni-0a1 ::ffff:198.51.100.23 10.0.1.10 40000 %d 6 1 40 1700000000 1700000060 REJECT OK\n", port)
	}
	p := filepath.Join(t.TempDir(), "scan.log")
	os.WriteFile(p, []byte(text.String()), 0o644)
	out, stderr, code := execute(t, "", "detect", "--no-db", "--home", "10.0.0.0/16", "-o", "json", p)
	if code != 0 || !strings.Contains(out, `"ip": "198.51.100.23"`) && !strings.Contains(out, `"ip":"198.51.100.23"`) || strings.Contains(out, "::ffff:") {
		t.Errorf("exit %d, findings:\n%s\nstderr: %s", code, out, stderr)
	}
	out, stderr, code = execute(t, "", "detect", "--no-db", "--home", "10.0.0.0/16", "--allow", "198.51.100.0/24", "-o", "json", p)
	if code != 0 || strings.Contains(out, "198.51.100.23") {
		t.Errorf("allow-listed scanner named (exit %d):\n%s\nstderr: %s", code, out, stderr)
	}
}
