package source

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// TestExpandSkipsWhatCannotBeRead: a dangling symbolic link, a link loop
// and a directory without read permission inside a walked directory (or
// matched by a glob) are each skipped and reported with their path and
// reason; the readable files are still inputs.
func TestExpandSkipsWhatCannotBeRead(t *testing.T) {
	if rerunUnprivileged(t) {
		return
	}
	files := map[string]string{"logs/a.log": "a", "logs/sub/b.log": "b", "logs/z.log": "z", "logs/locked/c.log": "c"}
	root := makeTree(t, files)
	logs := filepath.Join(root, "logs")
	if err := os.Symlink(filepath.Join(root, "gone.log"), filepath.Join(logs, "dangling.log")); err != nil {
		t.Skip("no symlinks:", err)
	}
	if err := os.Symlink(filepath.Join(logs, "loop.log"), filepath.Join(logs, "loop.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(logs, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(logs, "locked"), 0o755) })
	{
		for _, tc := range []struct {
			name string
			args []string
			want []string // inputs under root
		}{
			{"directory", []string{logs}, []string{"logs/a.log", "logs/sub/b.log", "logs/z.log"}},
			{"glob", []string{filepath.Join(logs, "*.log")}, []string{"logs/a.log", "logs/z.log"}},
		} {
			sk := &flowlog.Skipped{Keep: 10}
			got, err := Expand(context.Background(), tc.args, Options{Errors: sk})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			checkInputs(t, root, got, files, tc.want)
			want := []string{
				filepath.Join(logs, "dangling.log") + ": skipped: cannot follow symbolic link: no such file or directory",
				filepath.Join(logs, "loop.log") + ": skipped: cannot follow symbolic link: too many levels of symbolic links",
			}
			if tc.name == "directory" { // in lexical order, as walked
				want = []string{want[0], filepath.Join(logs, "locked") + ": skipped: cannot read directory: permission denied", want[1]}
			}
			var msgs []string
			for _, e := range sk.First() {
				msgs = append(msgs, e.Error())
			}
			if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s: reported\n%s\nwant\n%s", tc.name, strings.Join(msgs, "\n"), strings.Join(want, "\n"))
			}
		}
		// A directory named on the command line that cannot be read is
		// reported the same way, not an error that stops the run.
		sk := &flowlog.Skipped{}
		got, err := Expand(context.Background(), []string{filepath.Join(logs, "locked"), filepath.Join(logs, "a.log")}, Options{Errors: sk})
		if err != nil || len(got) != 1 || sk.Count() != 1 {
			t.Errorf("unreadable directory argument: %d inputs, err %v, skipped %v", len(got), err, sk.First())
		}
	}
}

// rerunUnprivileged makes file permissions hold for a test run as root
// (who reads any directory): it runs the test again in a copy of the test
// binary as user nobody, and reports true when that run has taken the
// test's place.
func rerunUnprivileged(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "flowguard-unprivileged-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "source.test")
	copyFile(t, exe, bin)
	cmd := exec.Command(bin, "-test.run", "^"+t.Name()+"$", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+dir, "HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Skipf("cannot run as nobody here: %v", err) // no CAP_SETUID, say
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("run as nobody: %v\n%s", err, out)
	}
	return true
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRemovedFileIsSkipped: a file listed by the walk and gone when it is
// read (log rotation) is one skipped input, named once, and the other
// files are read.
func TestRemovedFileIsSkipped(t *testing.T) {
	rec := "2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1 2 ACCEPT OK\n"
	root := makeTree(t, map[string]string{"a.log": rec, "b.log": rec, "c.log": rec})
	inputs, err := Expand(context.Background(), []string{root}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "b.log")); err != nil {
		t.Fatal(err)
	}
	sk := &flowlog.Skipped{}
	n := 0
	err = (&flowlog.Scanner{Errors: sk}).Scan(context.Background(), inputs, func(_ int, b *flowlog.Batch) error {
		n += b.N
		return nil
	})
	want := filepath.Join(root, "b.log") + ": cannot open: no such file or directory"
	if err != nil || n != 2 || sk.Count() != 1 || sk.First()[0].Error() != want {
		t.Errorf("%d records, err %v, skipped %v; want 2 records and %q", n, err, sk.First(), want)
	}
}
