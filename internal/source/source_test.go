package source

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// makeTree creates files (path → content) under a new temporary directory
// and returns it.
func makeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readInput(t *testing.T, in flowlog.Input) string {
	t.Helper()
	rc, err := in.Open(context.Background())
	if err != nil {
		t.Fatalf("open %s: %v", in.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", in.Name, err)
	}
	return string(b)
}

// checkInputs compares inputs with the expected relative paths (under
// root, in order), their sizes and their contents.
func checkInputs(t *testing.T, root string, got []flowlog.Input, files map[string]string, want []string) {
	t.Helper()
	var names []string
	for _, in := range got {
		rel, err := filepath.Rel(root, in.Name)
		if err != nil {
			rel = in.Name
		}
		names = append(names, filepath.ToSlash(rel))
	}
	if !slices.Equal(names, want) {
		t.Fatalf("inputs\n got %q\nwant %q", names, want)
	}
	for i, in := range got {
		content := files[want[i]]
		if in.Size != int64(len(content)) {
			t.Errorf("%s: size %d, want %d", in.Name, in.Size, len(content))
		}
		if s := readInput(t, in); s != content {
			t.Errorf("%s: content %q, want %q", in.Name, s, content)
		}
	}
}

// The AWS S3 delivery layout, flat and Hive-style, with files created in
// an order unrelated to time, and the hidden files tools leave behind.
var awsTree = map[string]string{
	"AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/01/10/123456789012_vpcflowlogs_us-east-1_fl-0a_20240110T0005Z_aa.log.gz": "jan10-0005",
	"AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/01/02/123456789012_vpcflowlogs_us-east-1_fl-0a_20240102T2355Z_bb.log.gz": "jan02-2355",
	"AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/01/02/123456789012_vpcflowlogs_us-east-1_fl-0a_20240102T0000Z_cc.log.gz": "jan02-0000",
	"AWSLogs/123456789012/vpcflowlogs/us-east-1/2023/12/31/123456789012_vpcflowlogs_us-east-1_fl-0a_20231231T2355Z_dd.log.gz": "dec31",
	"AWSLogs/123456789012/vpcflowlogs/eu-west-1/2024/01/01/123456789012_vpcflowlogs_eu-west-1_fl-0b_20240101T0000Z_ee.log.gz": "eu",
	"AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/01/02/.DS_Store":                                                         "hidden",
	"AWSLogs/.cache/x.log": "hidden dir",
	"hive/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2024/month=01/day=02/hour=13/a.log.parquet": "h13",
	"hive/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2024/month=01/day=02/hour=09/a.log.parquet": "h09",
	"hive/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2023/month=12/day=31/hour=23/a.log.parquet": "h-dec31",
}

func TestExpandDirectories(t *testing.T) {
	root := makeTree(t, awsTree)
	p := "AWSLogs/123456789012/vpcflowlogs/"
	h := "hive/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/"
	// Expected order written out by hand: region, then time.
	want := []string{
		p + "eu-west-1/2024/01/01/123456789012_vpcflowlogs_eu-west-1_fl-0b_20240101T0000Z_ee.log.gz",
		p + "us-east-1/2023/12/31/123456789012_vpcflowlogs_us-east-1_fl-0a_20231231T2355Z_dd.log.gz",
		p + "us-east-1/2024/01/02/123456789012_vpcflowlogs_us-east-1_fl-0a_20240102T0000Z_cc.log.gz",
		p + "us-east-1/2024/01/02/123456789012_vpcflowlogs_us-east-1_fl-0a_20240102T2355Z_bb.log.gz",
		p + "us-east-1/2024/01/10/123456789012_vpcflowlogs_us-east-1_fl-0a_20240110T0005Z_aa.log.gz",
		h + "year=2023/month=12/day=31/hour=23/a.log.parquet",
		h + "year=2024/month=01/day=02/hour=09/a.log.parquet",
		h + "year=2024/month=01/day=02/hour=13/a.log.parquet",
	}
	got, err := Expand(context.Background(), []string{root}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkInputs(t, root, got, awsTree, want)

	// A directory given twice, or a file inside a directory also given,
	// is read once.
	got, err = Expand(context.Background(), []string{filepath.Join(root, "hive"), root, filepath.Join(root, want[0])}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	again := append(append([]string(nil), want[5:]...), want[:5]...)
	checkInputs(t, root, got, awsTree, again)
}

func TestExpandFilesAndGlobs(t *testing.T) {
	files := map[string]string{
		"a/x1.log":    "x1",
		"a/x2.log.gz": "x2",
		"a/y.log":     "y",
		"b/x3.log":    "x3",
		"b/.x4.log":   "hidden, but matched by name",
		"c/d/x5.log":  "x5",
		"lit[1].log":  "literal brackets",
	}
	root := makeTree(t, files)
	j := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"file", []string{j("a/y.log")}, []string{"a/y.log"}},
		{"files in given order", []string{j("b/x3.log"), j("a/x1.log")}, []string{"b/x3.log", "a/x1.log"}},
		{"glob", []string{j("*/x*.log*")}, []string{"a/x1.log", "a/x2.log.gz", "b/x3.log"}},
		{"glob of directories", []string{j("[bc]")}, []string{"b/x3.log", "c/d/x5.log"}},
		{"explicit hidden file", []string{j("b/.x4.log")}, []string{"b/.x4.log"}},
		{"existing name with glob characters", []string{j("lit[1].log")}, []string{"lit[1].log"}},
		{"glob and file overlap", []string{j("a/x?.log"), j("a/x1.log")}, []string{"a/x1.log"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Expand(context.Background(), tc.args, Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkInputs(t, root, got, files, tc.want)
		})
	}
}

func TestExpandErrors(t *testing.T) {
	root := makeTree(t, map[string]string{"a/x.log": "x", "empty/.hidden": "h"})
	j := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	cases := []struct {
		name string
		args []string
		want string // in the error
	}{
		{"no args", nil, "no input"},
		{"empty arg", []string{""}, "empty input path"},
		{"missing file", []string{j("a/missing.log")}, j("a/missing.log")},
		{"missing dir", []string{j("nope/")}, j("nope")},
		{"glob matching nothing", []string{j("a/*.parquet")}, j("a/*.parquet")},
		{"bad glob", []string{j("a/[x")}, j("a/[x")},
		{"directory with only hidden files", []string{j("empty")}, j("empty")},
		{"stdin twice", []string{"-", j("a/x.log"), "-"}, "more than once"},
		{"bad s3 url", []string{"s3:///prefix"}, "s3:///prefix"},
		{"missing file after good ones", []string{j("a"), j("b.log")}, j("b.log")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Expand(context.Background(), tc.args, Options{Stdin: strings.NewReader("")})
			if err == nil {
				t.Fatalf("no error; inputs %v", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestExpandStdin(t *testing.T) {
	root := makeTree(t, map[string]string{"f.log": "file"})
	stdin := "2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1 2 ACCEPT OK\n"
	got, err := Expand(context.Background(), []string{filepath.Join(root, "f.log"), "-"}, Options{Stdin: strings.NewReader(stdin)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Name != "-" || got[1].Size != -1 {
		t.Fatalf("inputs %+v", got)
	}
	if s := readInput(t, got[1]); s != stdin {
		t.Errorf("stdin read %q, want %q", s, stdin)
	}
	if _, err := got[1].Open(context.Background()); err == nil {
		t.Error("standard input opened twice without error")
	}
}

func TestExpandSymlinks(t *testing.T) {
	files := map[string]string{"real/a.log": "a", "logs/b.log": "b"}
	root := makeTree(t, files)
	if err := os.Symlink(filepath.Join(root, "real", "a.log"), filepath.Join(root, "logs", "link.log")); err != nil {
		t.Skip("no symlinks:", err)
	}
	if err := os.Symlink(filepath.Join(root, "real"), filepath.Join(root, "logs", "linkdir")); err != nil {
		t.Fatal(err)
	}
	got, err := Expand(context.Background(), []string{filepath.Join(root, "logs")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	files["logs/link.log"] = "a"
	checkInputs(t, root, got, files, []string{"logs/b.log", "logs/link.log"})
}

func TestExpandCanceled(t *testing.T) {
	root := makeTree(t, map[string]string{"a.log": "a"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Expand(ctx, []string{root}, Options{}); err == nil {
		t.Error("no error with a canceled context")
	}
}

func TestParseS3URL(t *testing.T) {
	for _, tc := range []struct {
		in, bucket, prefix string
		ok                 bool
	}{
		{"s3://b", "b", "", true},
		{"s3://b/", "b", "", true},
		{"s3://my-bucket/AWSLogs/123/", "my-bucket", "AWSLogs/123/", true},
		{"s3://b/k/x.log.gz", "b", "k/x.log.gz", true},
		{"s3://", "", "", false},
		{"s3:///k", "", "", false},
	} {
		b, p, err := parseS3URL(tc.in)
		if (err == nil) != tc.ok || b != tc.bucket || p != tc.prefix {
			t.Errorf("parseS3URL(%q) = %q, %q, %v", tc.in, b, p, err)
		}
	}
}
