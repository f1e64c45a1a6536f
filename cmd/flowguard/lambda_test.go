package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/klauspost/compress/gzip"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store/dynamo"
	"github.com/flowguard/flowguard/internal/synth"
)

// fakeRuntime is the Lambda Runtime API as a provided.al2023 function's
// bootstrap sees it (the documented /2018-06-01/runtime/invocation/next,
// /response and /error endpoints): it hands out the events queued with
// invoke and returns what the function answered.
type fakeRuntime struct {
	t      *testing.T
	srv    *httptest.Server
	events chan fakeEvent
	mu     sync.Mutex
	done   map[string]chan fakeResult
	seq    int
}

type fakeEvent struct {
	id      string
	payload []byte
}

type fakeResult struct {
	body  []byte
	error bool
}

func newFakeRuntime(t *testing.T) *fakeRuntime {
	rt := &fakeRuntime{t: t, events: make(chan fakeEvent, 8), done: map[string]chan fakeResult{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case ev := <-rt.events:
			h := w.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", ev.id)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:flowguard")
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
			w.Header().Set("Content-Type", "application/json")
			w.Write(ev.payload)
		case <-r.Context().Done():
		}
	})
	answer := func(isErr bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			rt.mu.Lock()
			ch := rt.done[r.PathValue("id")]
			rt.mu.Unlock()
			if ch == nil {
				http.Error(w, `{"errorType":"InvalidRequestID"}`, http.StatusBadRequest)
				return
			}
			ch <- fakeResult{body: body, error: isErr}
			w.WriteHeader(http.StatusAccepted)
		}
	}
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", answer(false))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", answer(true))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		t.Errorf("the function failed to start: %s", body)
		w.WriteHeader(http.StatusAccepted)
	})
	rt.srv = httptest.NewServer(mux)
	t.Cleanup(rt.srv.Close)
	return rt
}

// send queues an event and returns where its answer arrives.
func (rt *fakeRuntime) send(payload any) chan fakeResult {
	b, err := json.Marshal(payload)
	if err != nil {
		rt.t.Fatal(err)
	}
	rt.mu.Lock()
	rt.seq++
	id := fmt.Sprintf("req-%d", rt.seq)
	ch := make(chan fakeResult, 1)
	rt.done[id] = ch
	rt.mu.Unlock()
	rt.events <- fakeEvent{id: id, payload: b}
	return ch
}

// wait returns the answer to an event.
func (rt *fakeRuntime) wait(ch chan fakeResult, stderr *syncBuffer) fakeResult {
	rt.t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(60 * time.Second):
		rt.t.Fatalf("no answer from the function within 60s\n%s", stderr)
	}
	return fakeResult{}
}

// invoke sends an event and waits for a successful answer.
func (rt *fakeRuntime) invoke(payload any, stderr *syncBuffer) []byte {
	rt.t.Helper()
	r := rt.wait(rt.send(payload), stderr)
	if r.error {
		rt.t.Fatalf("the invocation failed: %s\n%s", r.body, stderr)
	}
	return r.body
}

// lambdaEnv is what the tests' functions share.
type lambdaEnv struct {
	t          *testing.T
	bootstrap  string
	env        []string
	config     string
	dir        string
	processes  int
	processLog []*syncBuffer
}

// start runs a new bootstrap process (a cold start) serving its own fake
// Runtime API, and returns the API; the process is killed when the test
// ends, or by the returned stop.
func (e *lambdaEnv) start() (*fakeRuntime, *syncBuffer, func()) {
	rt := newFakeRuntime(e.t)
	cmd := exec.Command(e.bootstrap)
	cmd.Env = append(slices.Clone(e.env), "AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(rt.srv.URL, "http://"))
	stderr := newSyncBuffer()
	cmd.Stderr, cmd.Stdout = stderr, stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.processes++
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	e.t.Cleanup(stop)
	return rt, stderr, stop
}

// TestLambdaBootstrap runs the built bootstrap binary against a fake Lambda
// Runtime API with state in dynalite, and checks that S3 (direct, in SQS,
// in SNS in SQS), CloudWatch Logs and scheduled events find the findings
// detect finds over the same records, across cold starts and with two
// invocations at once.
func TestLambdaBootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	ctx := context.Background()
	dynURL := awstest.StartDynalite(t)
	ddb := dynamodb.NewFromConfig(awstest.ClientConfig(dynURL))
	if err := dynamo.CreateTable(ctx, ddb, "flowguard"); err != nil {
		t.Fatal(err)
	}
	day := func(n int) time.Time { return synth.DefaultStart.Add(time.Duration(n) * 24 * time.Hour) }
	// Every object gets the same LastModified: day 3 at noon.
	noon := gofakes3.FixedTimeSource(day(3).Add(2 * time.Hour))
	s3URL, s3c := startS3(t, gofakes3.New(s3mem.New(s3mem.WithTimeSource(noon)), gofakes3.WithTimeSource(noon), gofakes3.WithTimeSkewLimit(0)), "flowlogs", "scanned")
	logs := awstest.NewLogs(t)

	dir := t.TempDir()
	config := "home_networks: [10.0.0.0/16, 2600:1f18:abc::/56]\ndetectors:\n  allowed_lateness: 2m\n"
	cfgPath := writeConfig(t, dir, config)
	bin := flowguardBinary(t)
	e := &lambdaEnv{t: t, bootstrap: bootstrapBinary(t, dir), config: config, dir: dir, env: awstest.Env(
		"PATH="+os.Getenv("PATH"), "HOME="+dir, "AWS_REGION="+awstest.Region,
		"AWS_ENDPOINT_URL_DYNAMODB="+dynURL, "AWS_ENDPOINT_URL_S3="+s3URL, "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS="+logs.URL,
		"FLOWGUARD_S3_PATH_STYLE=true", "FLOWGUARD_TABLE=flowguard", "FLOWGUARD_CONFIG_YAML="+config,
		"FLOWGUARD_WINDOW=24h", "FLOWGUARD_SCAN=s3://scanned/AWSLogs/,logs:/vpc/flow-logs", "FLOWGUARD_SCAN_LAST=15m",
	)}

	// Four sets of labelled attack traffic, one per day (one window
	// each), each cut into pieces in delivery order.
	pieces := func(seed uint64, start time.Time, n int) ([][]byte, *synth.Generator) {
		cfg := synth.DefaultConfig()
		cfg.Records, cfg.Seed, cfg.Start = 30000, seed, start
		g := synth.New(cfg)
		var buf bytes.Buffer
		if err := g.WriteText(&buf, false); err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(strings.TrimSuffix(buf.String(), "\n"), "\n")
		var out [][]byte
		for i := range n {
			out = append(out, []byte(strings.Join(lines[i*len(lines)/n:(i+1)*len(lines)/n], "")))
		}
		return out, g
	}
	var baseline [][]string // per window, the files detect reads, in order
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	put := func(bucket, key string, data []byte) {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(data)
		zw.Close()
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(z.Bytes())}); err != nil {
			t.Fatal(err)
		}
	}

	// Day 0: S3 objects, announced directly, in SQS, in SNS in SQS.
	s3Pieces, gS3 := pieces(21, day(0), 6)
	var files []string
	for i, p := range s3Pieces {
		put("flowlogs", fmt.Sprintf("AWSLogs/123456789012/vpcflowlogs/us-east-1/part-%03d.log.gz", i), p)
		files = append(files, write(fmt.Sprintf("s3-%d.log", i), p))
	}
	baseline = append(baseline, files)
	s3Event := func(i int) map[string]any {
		return map[string]any{"Records": []any{map[string]any{
			"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": day(0).Add(30 * time.Minute).Format(time.RFC3339Nano),
			"s3": map[string]any{"bucket": map[string]any{"name": "flowlogs"},
				"object": map[string]any{"key": url.QueryEscape(fmt.Sprintf("AWSLogs/123456789012/vpcflowlogs/us-east-1/part-%03d.log.gz", i))}}}}}
	}
	sqsMsg := func(id string, body any) map[string]any {
		b, _ := json.Marshal(body)
		return map[string]any{"eventSource": "aws:sqs", "messageId": id, "body": string(b)}
	}
	sqsEvent := func(msgs ...map[string]any) map[string]any { return map[string]any{"Records": msgs} }
	batchFailures := func(body []byte) []string {
		var r struct {
			BatchItemFailures []struct {
				ItemIdentifier string `json:"itemIdentifier"`
			} `json:"batchItemFailures"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("not a batch response: %s", body)
		}
		var ids []string
		for _, f := range r.BatchItemFailures {
			ids = append(ids, f.ItemIdentifier)
		}
		return ids
	}

	rt1, log1, stop1 := e.start()
	rt1.invoke(s3Event(0), log1)
	stop1() // a cold start: the next invocations run in a new process

	rt2, log2, _ := e.start()
	snsWrapped := map[string]any{"Type": "Notification", "Message": mustJSON(t, s3Event(2))}
	missing := s3Event(1)
	missing["Records"].([]any)[0].(map[string]any)["s3"].(map[string]any)["object"] = map[string]any{"key": "AWSLogs/gone.log.gz"}
	got := batchFailures(rt2.invoke(sqsEvent(
		sqsMsg("m1", s3Event(1)), sqsMsg("m2", snsWrapped), sqsMsg("m3", missing),
		map[string]any{"eventSource": "aws:sqs", "messageId": "m4", "body": "not json"},
	), log2))
	if fmt.Sprint(got) != "[m3 m4]" {
		t.Errorf("batchItemFailures %v, want [m3 m4] (the missing object and the bad message only)", got)
	}

	// Two invocations at once, in two processes, on two objects of the
	// same window.
	rt3, log3, _ := e.start()
	a := rt2.send(sqsEvent(sqsMsg("m5", s3Event(3))))
	b := rt3.send(sqsEvent(sqsMsg("m6", s3Event(4))))
	for _, r := range []fakeResult{rt2.wait(a, log2), rt3.wait(b, log3)} {
		if r.error || len(batchFailures(r.body)) != 0 {
			t.Fatalf("a concurrent invocation failed: %s\n%s\n%s", r.body, log2, log3)
		}
	}
	// The last object, and the first one delivered again (at least once).
	if f := batchFailures(rt3.invoke(sqsEvent(sqsMsg("m7", s3Event(5)), sqsMsg("m8", s3Event(0))), log3)); len(f) != 0 {
		t.Errorf("batchItemFailures %v, want none", f)
	}

	// Day 1: CloudWatch Logs subscription events, over two processes.
	cwPieces, _ := pieces(22, day(1), 3)
	files = nil
	for i, p := range cwPieces {
		files = append(files, write(fmt.Sprintf("cw-%d.log", i), p))
	}
	baseline = append(baseline, files)
	rt4, log4, _ := e.start()
	rt3.invoke(map[string]any{"awslogs": map[string]any{"data": subscription(t, "CONTROL_MESSAGE", nil)}}, log3)
	rt3.invoke(map[string]any{"awslogs": map[string]any{"data": subscription(t, "DATA_MESSAGE", cwPieces[0])}}, log3)
	rt4.invoke(map[string]any{"awslogs": map[string]any{"data": subscription(t, "DATA_MESSAGE", cwPieces[1])}}, log4)
	rt4.invoke(map[string]any{"awslogs": map[string]any{"data": subscription(t, "DATA_MESSAGE", cwPieces[2])}}, log4)
	if r := rt4.wait(rt4.send(map[string]any{"awslogs": map[string]any{"data": base64.StdEncoding.EncodeToString([]byte("not gzip"))}}), log4); !r.error {
		t.Errorf("a bad CloudWatch Logs payload was answered %s, want an error", r.body)
	}

	// Day 3: a scheduled scan of an S3 prefix (objects modified at noon,
	// the scan 5 minutes later); day 4: of a log group.
	scanPieces, _ := pieces(23, day(3), 3)
	files = nil
	for i, p := range scanPieces {
		put("scanned", fmt.Sprintf("AWSLogs/part-%03d.log.gz", i), p)
		files = append(files, write(fmt.Sprintf("scan-%d.log", i), p))
	}
	baseline = append(baseline, files)
	groupPieces, _ := pieces(24, day(4).Add(11*time.Hour), 1)
	var ts []int64
	var msgs []string
	for _, l := range strings.Split(strings.TrimSuffix(string(groupPieces[0]), "\n"), "\n") {
		ts = append(ts, startOf(t, l).UnixMilli())
		msgs = append(msgs, l)
	}
	logs.Put("/vpc/flow-logs", "eni-1-all", ts, msgs)
	// FilterLogEvents returns the events in time order: detect reads
	// them so.
	slices.SortStableFunc(msgs, func(a, b string) int { return startOf(t, a).Compare(startOf(t, b)) })
	baseline = append(baseline, []string{write("group.log", []byte(strings.Join(msgs, "\n")+"\n"))})
	scheduled := func(at time.Time) map[string]any {
		return map[string]any{"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "time": at.Format(time.RFC3339), "detail": map[string]any{}}
	}
	e2, log5, _ := e.start()
	e2.invoke(scheduled(day(3).Add(2*time.Hour+5*time.Minute)), log5)
	e2.invoke(scheduled(day(4).Add(12*time.Hour+5*time.Minute)), log5)
	e2.invoke(scheduled(day(4).Add(12*time.Hour+5*time.Minute)), log5) // run twice: counted once

	// What one detect process finds over each window's records, merged
	// by finding id as the store merges windows.
	want := map[string]finding.Finding{}
	for _, fs := range baseline {
		out, err := exec.Command(bin, append([]string{"detect", "--config", cfgPath, "--no-db", "--output", "json"}, fs...)...).Output()
		if err != nil {
			t.Fatalf("detect: %v", err)
		}
		var found []finding.Finding
		if err := json.Unmarshal(out, &found); err != nil {
			t.Fatal(err)
		}
		for _, f := range found {
			if old, ok := want[f.ID]; ok {
				f = finding.Merge(old, f)
			}
			want[f.ID] = f
		}
	}
	have, err := dynamo.New(ddb, "flowguard").ListFindings(ctx, finding.Filter{Archived: finding.AnyArchived})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]finding.Finding{}
	for _, f := range have {
		byID[f.ID] = f
	}
	for id, w := range want {
		g, ok := byID[id]
		if !ok {
			t.Errorf("detect found %s %s (count %d); the function did not", w.Type, w.Actor.IP, w.Count)
			continue
		}
		if g.Count != w.Count || !g.FirstSeen.Equal(w.FirstSeen) || !g.LastSeen.Equal(w.LastSeen) || g.Severity != w.Severity {
			t.Errorf("%s %s: function count %d %v–%v severity %v, detect %d %v–%v %v", w.Type, w.Actor.IP,
				g.Count, g.FirstSeen, g.LastSeen, g.Severity, w.Count, w.FirstSeen, w.LastSeen, w.Severity)
		}
	}
	for id, g := range byID {
		if _, ok := want[id]; !ok {
			t.Errorf("the function found %s %s (count %d); detect did not", g.Type, g.Actor.IP, g.Count)
		}
	}
	// The labelled attacks of the S3 day are among them.
	for _, l := range gS3.Labels() {
		if strings.Contains(l.Actor, "/") || l.Actor == "" || l.Scenario == "threat-list-caller" {
			continue
		}
		found := false
		for _, f := range have {
			found = found || f.Type == l.Type && f.Actor.IP.String() == l.Actor
		}
		if !found {
			t.Errorf("labelled attack %s (%s from %s) not found", l.Scenario, l.Type, l.Actor)
		}
	}
	if len(want) < 5 {
		t.Errorf("only %d findings compared", len(want))
	}
	if t.Failed() {
		for i, l := range []*syncBuffer{log1, log2, log3, log4, log5} {
			t.Logf("process %d:\n%s", i+1, l)
		}
	}
	if e.processes != 5 {
		t.Errorf("%d processes started, want 5", e.processes)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startOf is a default-format record's start time.
func startOf(t *testing.T, line string) time.Time {
	f := strings.Fields(line)
	sec, err := strconv.ParseInt(f[10], 10, 64)
	if err != nil {
		t.Fatalf("no start time in %q", line)
	}
	return time.Unix(sec, 0)
}

// subscription is a CloudWatch Logs subscription payload of lines, base64
// as in the awslogs.data of a Lambda event.
func subscription(t *testing.T, typ string, lines []byte) string {
	type ev struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	}
	var evs []ev
	sc := bufio.NewScanner(bytes.NewReader(lines))
	for i := 0; sc.Scan(); i++ {
		evs = append(evs, ev{ID: strconv.Itoa(i), Timestamp: startOf(t, sc.Text()).UnixMilli(), Message: sc.Text()})
	}
	js := mustJSON(t, map[string]any{"messageType": typ, "owner": "123456789012", "logGroup": "/vpc/flow-logs",
		"logStream": "eni-1-all", "subscriptionFilters": []string{"flowguard"}, "logEvents": evs})
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(js))
	zw.Close()
	return base64.StdEncoding.EncodeToString(z.Bytes())
}

// TestBootstrapArgs: a binary named bootstrap run without arguments (the
// provided.al2023 runtime) is flowguard lambda; with arguments, or under
// another name, it is itself.
func TestBootstrapArgs(t *testing.T) {
	for _, tc := range []struct {
		argv0 string
		args  []string
		want  string
	}{
		{"/var/task/bootstrap", nil, "[lambda]"},
		{"bootstrap", []string{"version"}, "[version]"},
		{"/usr/local/bin/flowguard", nil, "[]"},
	} {
		if got := fmt.Sprint(bootstrapArgs(tc.argv0, tc.args)); got != tc.want {
			t.Errorf("bootstrapArgs(%q, %q) = %s, want %s", tc.argv0, tc.args, got, tc.want)
		}
	}
}

// TestLambdaOutsideLambda: flowguard lambda outside a function says so
// instead of waiting for a Runtime API that is not there.
func TestLambdaOutsideLambda(t *testing.T) {
	t.Setenv("AWS_LAMBDA_RUNTIME_API", "")
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetArgs([]string{"lambda"})
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "AWS_LAMBDA_RUNTIME_API") {
		t.Fatalf("flowguard lambda outside a function: %v", err)
	}
}

// TestVersionCommand: flowguard version names the version set at build
// time, the Go version and the platform.
func TestVersionCommand(t *testing.T) {
	old := version
	version = "v9.8.7"
	defer func() { version = old }()
	var out bytes.Buffer
	root := newRootCmd()
	root.SetArgs([]string{"version"})
	root.SetOut(&out)
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.HasPrefix(s, "flowguard v9.8.7") || !strings.Contains(s, "go1.") || !strings.Contains(s, "/") {
		t.Fatalf("version output %q", s)
	}
}
