package awstest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// kinesaliteListening is the line the start script prints once kinesalite
// accepts connections.
var kinesaliteListening = regexp.MustCompile(`kinesalite listening at (http://127\.0\.0\.1:\d+)`)

// StartKinesalite starts the Kinesis emulator on 127.0.0.1 and a free
// port, streams becoming ACTIVE after 50ms, and returns its URL; it is
// stopped when the test ends. .ci/install-emulators.sh installs it (and
// the test runs that script when it is missing).
func StartKinesalite(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		SkipOrFail(t, "node is not installed; the Kinesis test needs it (apt-get install nodejs npm, then .ci/install-emulators.sh)")
	}
	mod := filepath.Join(FauxqsDir(), "kinesalite", "node_modules", "kinesalite")
	if _, err := os.Stat(filepath.Join(mod, "index.js")); err != nil {
		if ierr := installFauxqs(t); ierr != nil {
			SkipOrFail(t, "kinesalite is not installed in %s and installing it failed: %v", mod, ierr)
		}
		if _, err := os.Stat(filepath.Join(mod, "index.js")); err != nil {
			SkipOrFail(t, "kinesalite is not installed in %s: run .ci/install-emulators.sh", mod)
		}
	}
	script := `const k = require(process.argv[1])({createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 100});
k.listen(0, '127.0.0.1', function () { console.log('kinesalite listening at http://127.0.0.1:' + k.address().port) });`
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, "-e", script, mod)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("cannot start kinesalite: %v", err)
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
			if m := kinesaliteListening.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(20 * time.Second):
		t.Fatal("kinesalite did not start listening within 20s")
	}
	return ""
}
