package notify

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// fauxqsDir is where .ci/install-emulators.sh installs fauxqs.
func fauxqsDir() string {
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

// skipOrFail skips a test locally and fails it in CI, where everything
// it needs must be installed.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

var listening = regexp.MustCompile(`listening at (http://127\.0\.0\.1:\d+)`)

// startFauxqs starts the SNS+SQS emulator on 127.0.0.1 and a free port and
// returns its URL; it is stopped when the test ends.
func startFauxqs(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node is not installed; the SNS test needs it (apt-get install nodejs npm, then .ci/install-emulators.sh)")
	}
	dir := filepath.Join(fauxqsDir(), "node_modules", "fauxqs", "dist")
	app, err := os.ReadFile(filepath.Join(dir, "app.js"))
	if err != nil {
		skipOrFail(t, "fauxqs is not installed in %s: run .ci/install-emulators.sh", fauxqsDir())
	}
	if strings.Contains(string(app), `host: "0.0.0.0"`) {
		skipOrFail(t, "fauxqs in %s would listen on all interfaces: run .ci/install-emulators.sh to patch it", dir)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "server.js"))
	cmd.Env = append(os.Environ(), "FAUXQS_PORT=0", "FAUXQS_HOST=127.0.0.1")
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("cannot start fauxqs: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() { // keep draining so the emulator never blocks on its log
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
		t.Fatal("fauxqs did not start listening within 20s")
	}
	return ""
}

// testAWSConfig has static credentials and a region; endpoints are set
// per client.
func testAWSConfig(key, secret string) aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, ""),
	}
}
