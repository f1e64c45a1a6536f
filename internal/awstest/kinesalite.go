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

// StartKinesalite starts the Kinesis emulator on 127.0.0.1 and a free
// port, streams becoming ACTIVE after 50ms, and returns its URL; it is
// stopped when the test ends. .ci/install-emulators.sh installs it (and
// the test runs that script when it is missing).
func StartKinesalite(t testing.TB) string {
	t.Helper()
	return startNodeServer(t, "kinesalite", "the Kinesis test",
		`{createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 100}`)
}

// StartDynalite starts the DynamoDB emulator on 127.0.0.1 and a free port,
// tables becoming ACTIVE at once, and returns its URL; it is stopped when
// the test ends. .ci/install-emulators.sh installs it (and the test runs
// that script when it is missing).
func StartDynalite(t testing.TB) string {
	t.Helper()
	return startNodeServer(t, "dynalite", "the DynamoDB test",
		`{createTableMs: 0, deleteTableMs: 0, updateTableMs: 0}`)
}

// startNodeServer starts one of the npm emulators installed in its own
// prefix under FauxqsDir (kinesalite, dynalite), created with options (a
// JavaScript object), listening on 127.0.0.1 and a free port, and returns
// its URL.
func startNodeServer(t testing.TB, name, what, options string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		SkipOrFail(t, "node is not installed; %s needs it (apt-get install nodejs npm, then .ci/install-emulators.sh)", what)
	}
	mod := filepath.Join(FauxqsDir(), name, "node_modules", name)
	if _, err := os.Stat(filepath.Join(mod, "index.js")); err != nil {
		if ierr := installFauxqs(t); ierr != nil {
			SkipOrFail(t, "%s is not installed in %s and installing it failed: %v", name, mod, ierr)
		}
		if _, err := os.Stat(filepath.Join(mod, "index.js")); err != nil {
			SkipOrFail(t, "%s is not installed in %s: run .ci/install-emulators.sh", name, mod)
		}
	}
	script := `const k = require(process.argv[1])(` + options + `);
k.listen(0, '127.0.0.1', function () { console.log('` + name + ` listening at http://127.0.0.1:' + k.address().port) });`
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
		t.Fatalf("cannot start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	listening := regexp.MustCompile(regexp.QuoteMeta(name) + ` listening at (http://127\.0\.0\.1:\d+)`)
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
		t.Fatalf("%s did not start listening within 20s", name)
	}
	return ""
}
