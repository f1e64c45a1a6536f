package awstest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
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
	listening := regexp.MustCompile(regexp.QuoteMeta(name) + ` listening at (http://127\.0\.0\.1:\d+)`)
	return startEmulator(t, name, listening, func(ctx context.Context) *exec.Cmd {
		return exec.CommandContext(ctx, node, "-e", script, mod)
	})
}
