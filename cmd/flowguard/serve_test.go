package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
	"github.com/flowguard/flowguard/internal/synth"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the binary the process tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// flowguardBinary builds the real binary once for the tests that run it
// as a process (signals, kill -9).
func flowguardBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowguard-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "flowguard")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// serveConfig is a daemon configuration following dir, with an alarm on
// rejected records, and a short lateness so that windows close while the
// data arrives.
const serveConfig = `detectors:
  allowed_lateness: 2m
server:
  traffic_retention: 87600h # the generated traffic is from 2026-11-22
` + rejectAlarm + daemonSources

// rejectAlarm is the configuration of an alarm on rejected records (300
// in a minute) that the daemon tests compare across kills.
const rejectAlarm = `alarms:
  metric_filters:
    - name: rejects
      pattern: '[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, windowstart, windowend, action="REJECT", flowlogstatus]'
      metric_name: RejectedConnections
      namespace: FlowGuard
      value: "1"
      default_value: 0
  alarms:
    - name: reject-spike
      namespace: FlowGuard
      metric_name: RejectedConnections
      statistic: Sum
      period: 60
      evaluation_periods: 1
      threshold: 300
      comparison_operator: GreaterThanOrEqualToThreshold
      treat_missing_data: notBreaching
`

// daemonSources is the source every daemon run follows: the run's logs
// directory, polled often and read in small chunks.
const daemonSources = `sources:
  - name: local
    type: files
    paths: [logs/]
    poll_interval: 20ms
    chunk_bytes: 65536
`

// daemonRun is one directory with a configuration, followed by serve.
type daemonRun struct {
	t    *testing.T
	bin  string
	dir  string
	db   string
	env  []string
	cmd  *exec.Cmd
	errb *bytes.Buffer
	addr string // where the running daemon listens
}

func newDaemonRun(t *testing.T) *daemonRun { return newDaemonRunWith(t, serveConfig, nil) }

// newDaemonRunWith prepares a run with a configuration and extra
// environment variables.
func newDaemonRunWith(t *testing.T, config string, env []string) *daemonRun {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, config)
	return &daemonRun{t: t, bin: flowguardBinary(t), dir: dir, db: filepath.Join(dir, "db", "flowguard.db"), env: env}
}

func (r *daemonRun) start() {
	r.t.Helper()
	r.errb = &bytes.Buffer{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = l.Addr().String()
	l.Close()
	r.cmd = exec.Command(r.bin, "serve", "--config", filepath.Join(r.dir, "flowguard.yaml"), "--db", r.db, "--listen", r.addr, "--log-level", "warn")
	r.cmd.Stderr = r.errb
	if r.env != nil {
		r.cmd.Env = append(os.Environ(), r.env...)
	}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
}

// stop sends sig and waits; a SIGTERM must end in exit code 0. Before a
// SIGTERM it waits for /readyz: a process still in the Go runtime's start
// has no signal handling yet, and the store may already hold every
// position (from the run killed before), so that waiting for the commits
// does not say the daemon is up.
func (r *daemonRun) stop(sig syscall.Signal) {
	r.t.Helper()
	if sig == syscall.SIGTERM {
		r.waitReady()
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
	err := r.cmd.Wait()
	if sig == syscall.SIGTERM && err != nil {
		r.t.Fatalf("serve after SIGTERM: %v\n%s", err, r.errb)
	}
}

// waitReady waits until the daemon answers /readyz with 200.
func (r *daemonRun) waitReady() {
	r.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + r.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	r.t.Fatalf("serve not ready in 30s\n%s", r.errb)
}

// appendData appends p to the followed file.
func (r *daemonRun) appendData(p []byte) {
	r.t.Helper()
	f, err := os.OpenFile(filepath.Join(r.dir, "logs", "flows.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := f.Write(p); err != nil {
		r.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		r.t.Fatal(err)
	}
}

// waitCommitted waits until the store's position of the file is size:
// every record is processed and its state saved.
func (r *daemonRun) waitCommitted(size int) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	want := strconv.Itoa(size)
	for time.Now().Before(deadline) {
		if st, err := store.Open(context.Background(), r.db); err == nil {
			ps, err := st.LoadPositions(context.Background(), "local")
			st.Close()
			if err == nil && len(ps) == 1 && ps[0].Token == want {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("the daemon did not commit up to byte %d in 30s\n%s", size, r.errb)
}

// storeState is what a user checks after a run: each finding's id,
// count and first and last seen, and each alarm's state.
func (r *daemonRun) storeState() ([]string, []string) {
	r.t.Helper()
	st, err := store.Open(context.Background(), r.db)
	if err != nil {
		r.t.Fatal(err)
	}
	defer st.Close()
	fs, err := st.ListFindings(context.Background(), finding.Filter{Archived: finding.AnyArchived})
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s %s count=%d first=%s last=%s", f.ID, f.Type, f.Count, f.FirstSeen.Format(time.RFC3339), f.LastSeen.Format(time.RFC3339)))
	}
	slices.Sort(out)
	as, err := st.LoadAlarmStates(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	var alarms []string
	for _, a := range as {
		alarms = append(alarms, fmt.Sprintf("%s %s since=%s", a.Name, a.State, a.Since.Format(time.RFC3339)))
	}
	slices.Sort(alarms)
	return out, alarms
}

// trafficState is the dashboard's per-minute traffic: records and bytes
// by minute, source and action.
func (r *daemonRun) trafficState() []string {
	r.t.Helper()
	st, err := store.Open(context.Background(), r.db)
	if err != nil {
		r.t.Fatal(err)
	}
	defer st.Close()
	cs, err := st.TrafficSeries(context.Background(), time.Unix(0, 0), time.Now().Add(24*time.Hour), time.Minute)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s %s records=%d bytes=%d", c.Time.Format(time.RFC3339), c.Action, c.Records, c.Bytes))
	}
	return out
}

// generated returns synthetic flow logs with labelled attacks, cut into
// pieces of whole lines (the last piece may end mid-line, as a writer
// caught in the act leaves it, except for the very end).
func generated(t *testing.T, records, pieces int, seed uint64) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	if err := synth.New(synth.Config{Records: records, Seed: seed, AccountID: "123456789012", Region: "us-east-1"}).WriteText(&buf, false); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	rng := rand.New(rand.NewPCG(seed, 1))
	var out [][]byte
	for len(data) > 0 {
		n := len(data) / max(pieces-len(out), 1)
		n = min(len(data), max(1, n/2+rng.IntN(n+1)))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

func diffLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s differ from an uninterrupted run: got %d, want %d", what, len(got), len(want))
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("  only after kills: %s", g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("  only uninterrupted:  %s", w)
		}
	}
}

// TestServeExactlyOnceAcrossKill9 runs the real flowguard serve on a
// directory a generator appends to, kills it with SIGKILL at random
// moments many times, restarts it each time, and compares the store at the
// end (findings' ids, counts, first and last seen; alarm states; the
// dashboard's per-minute traffic) with a run that was never killed.
func TestServeExactlyOnceAcrossKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	pieces := generated(t, 60000, 24, 7)
	clean := newDaemonRun(t)
	clean.runAll(pieces, 10*time.Millisecond)
	wantF, wantA := clean.storeState()
	if len(wantF) < 10 {
		t.Fatalf("the uninterrupted run found only %d findings: the test data is too small", len(wantF))
	}
	wantT := clean.trafficState()
	if len(wantT) < 20 {
		t.Fatalf("the uninterrupted run's traffic has %d minute rows", len(wantT))
	}

	killed := newDaemonRun(t)
	kills := killAndRestart(killed, pieces, piecesSize(pieces))
	gotF, gotA := killed.storeState()
	t.Logf("%d kills; %d findings, %d alarms", kills, len(gotF), len(gotA))
	diffLines(t, "findings", gotF, wantF)
	diffLines(t, "alarm states", gotA, wantA)
	diffLines(t, "traffic minutes", killed.trafficState(), wantT)
}

// piecesSize returns the bytes of all pieces.
func piecesSize(pieces [][]byte) int {
	n := 0
	for _, p := range pieces {
		n += len(p)
	}
	return n
}

// runAll starts r, appends the pieces (waiting pause after each), waits
// until it has committed them all and stops it with SIGTERM: a run never
// interrupted.
func (r *daemonRun) runAll(pieces [][]byte, pause time.Duration) {
	r.t.Helper()
	r.start()
	for _, p := range pieces {
		r.appendData(p)
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	r.waitCommitted(piecesSize(pieces))
	r.stop(syscall.SIGTERM)
}

// killAndRestart appends the pieces across runs of r killed with SIGKILL
// at random moments (at least 12 kills), and between some of them, then
// lets a last run commit everything and stops it with SIGTERM. It returns
// the number of kills.
func killAndRestart(r *daemonRun, pieces [][]byte, total int) int {
	rng := rand.New(rand.NewPCG(42, 42))
	next, kills := 0, 0
	for next < len(pieces) || kills < 12 {
		r.start()
		for k := rng.IntN(3); k > 0 && next < len(pieces); k-- {
			r.appendData(pieces[next])
			next++
		}
		time.Sleep(time.Duration(rng.IntN(250)) * time.Millisecond)
		r.stop(syscall.SIGKILL)
		kills++
		if rng.IntN(2) == 0 && next < len(pieces) {
			// The writer goes on while the daemon is down: the replay
			// then cuts its chunks across the committed offset.
			r.appendData(pieces[next])
			next++
		}
	}
	r.start()
	r.waitCommitted(total)
	r.stop(syscall.SIGTERM)
	return kills
}
