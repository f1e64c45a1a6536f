package awstest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FauxqsDir is where .ci/install-emulators.sh installs fauxqs, the SNS and
// SQS emulator.
func FauxqsDir() string {
	if d := os.Getenv("FLOWGUARD_EMULATORS"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "flowguard", "emulators")
}

// SkipOrFail skips a test locally and fails it in CI, where everything
// it needs must be installed.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

var listening = regexp.MustCompile(`listening at (http://127\.0\.0\.1:\d+)`)

// StartFauxqs starts the SNS+SQS emulator on 127.0.0.1 and a free port and
// returns its URL; it is stopped when the test ends.
func StartFauxqs(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		SkipOrFail(t, "node is not installed; the SNS test needs it (apt-get install nodejs npm, then .ci/install-emulators.sh)")
	}
	dir := filepath.Join(FauxqsDir(), "node_modules", "fauxqs", "dist")
	app, err := os.ReadFile(filepath.Join(dir, "app.js"))
	if err != nil {
		if ierr := installFauxqs(t); ierr != nil {
			SkipOrFail(t, "fauxqs is not installed in %s and installing it failed: %v", FauxqsDir(), ierr)
		}
		if app, err = os.ReadFile(filepath.Join(dir, "app.js")); err != nil {
			SkipOrFail(t, "fauxqs is not installed in %s: run .ci/install-emulators.sh", FauxqsDir())
		}
	}
	if strings.Contains(string(app), `host: "0.0.0.0"`) {
		SkipOrFail(t, "fauxqs in %s would listen on all interfaces: run .ci/install-emulators.sh to patch it", dir)
	}
	return startEmulator(t, "fauxqs", listening, func(ctx context.Context) *exec.Cmd {
		cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "server.js"))
		cmd.Env = append(os.Environ(), "FAUXQS_PORT=0", "FAUXQS_HOST=127.0.0.1")
		return cmd
	})
}

// startEmulator starts the emulator process newCmd makes (bound to ctx,
// which is cancelled when the test ends, then the process waited for)
// and returns the URL its output announces: the first submatch of
// listening. Its output is drained until it exits, so that it never
// blocks on its log.
func startEmulator(t testing.TB, name string, listening *regexp.Regexp, newCmd func(ctx context.Context) *exec.Cmd) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newCmd(ctx)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("cannot start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not start listening within 20s", name)
	}
	return ""
}

// installFauxqs runs the repository's .ci/install-emulators.sh (npm
// install into FauxqsDir, patched to listen on 127.0.0.1), so that
// "go test ./..." on a fresh machine needs nothing installed by hand. A
// lock file keeps test binaries running in parallel from installing twice.
func installFauxqs(t testing.TB) error {
	t.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("npm is not installed")
	}
	script, err := repoFile(".ci/install-emulators.sh")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(FauxqsDir(), 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(FauxqsDir(), ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = append(os.Environ(), "FLOWGUARD_EMULATORS="+FauxqsDir())
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		return fmt.Errorf("%s: %w", script, err)
	}
	return nil
}

// repoFile finds a file of the repository from the test's directory.
func repoFile(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err != nil {
				return "", err
			}
			return p, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("no go.mod above the test's directory")
		}
		dir = up
	}
}
