package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/store/dynamo"
)

// lambdaAlarmResponse sends every alarm state change to a webhook.
const lambdaAlarmResponse = `response:
  routes:
    - name: alarms
      alarms: ["*"]
      notify: [hook]
notify:
  webhook:
    - name: hook
      url: %s/hook
      secret: not-a-real-secret
`

// TestLambdaAlarms runs the built bootstrap binary with an alarms:
// section (50 rejected SSH connections in a minute), state in dynalite.
// The minute that crosses the threshold is half in one object, half in
// another, and two processes take one each at once; after a cold start a
// third process takes an object whose record moves event time past the
// allowed lateness, and a fourth takes it again (a retry). The webhook
// hears each state change once, the changes are those "flowguard alarms
// run" makes over the same objects in one process, the alarm fires once,
// and the alarm states in DynamoDB are the last ones.
func TestLambdaAlarms(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	ctx := context.Background()
	dynURL := awstest.StartDynalite(t)
	ddb := dynamodb.NewFromConfig(awstest.ClientConfig(dynURL))
	if err := dynamo.CreateTable(ctx, ddb, "alarms"); err != nil {
		t.Fatal(err)
	}
	s3srv := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithTimeSkewLimit(0)).Server())
	t.Cleanup(s3srv.Close)
	s3c := s3.NewFromConfig(awstest.ClientConfig(s3srv.URL), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("flowlogs")}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var heard []alarm.StateChange
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Alarms []alarm.StateChange `json:"alarms"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("webhook body: %v: %s", err, b)
		}
		mu.Lock()
		heard = append(heard, body.Alarms...)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)

	testdata := filepath.Join("..", "..", "internal", "lambda", "testdata")
	alarms, err := os.ReadFile(filepath.Join(testdata, "alarm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	config := string(alarms) + fmt.Sprintf(lambdaAlarmResponse, hook.URL)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "flowguard.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, k := range []string{"alarm-a.log", "alarm-b.log", "alarm-c.log"} {
		b, err := os.ReadFile(filepath.Join(testdata, k))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("flowlogs"), Key: aws.String(k), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.Join(testdata, k))
	}
	arrived := time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC).Format("2006-01-02T15:04:05.000Z")
	s3Event := func(key string) map[string]any {
		return map[string]any{"Records": []any{map[string]any{
			"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": arrived,
			"s3": map[string]any{"bucket": map[string]any{"name": "flowlogs"}, "object": map[string]any{"key": key}}}}}
	}

	// One process: alarms run over the same objects, in the same order.
	bin := flowguardBinary(t)
	run := exec.Command(bin, append([]string{"alarms", "run", "--config", cfgPath, "--lateness", "2m", "--output", "json"}, files...)...)
	var stderr bytes.Buffer
	run.Stderr = &stderr
	out, err := run.Output()
	if err != nil {
		t.Fatalf("alarms run: %v\n%s", err, &stderr)
	}
	var want []alarm.StateChange
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("alarms run --output json: %v: %s", err, out)
	}
	bootstrap := filepath.Join(dir, "bootstrap")
	if b, err := os.ReadFile(bin); err != nil || os.WriteFile(bootstrap, b, 0o755) != nil {
		t.Fatalf("cannot copy the binary to bootstrap: %v", err)
	}
	e := &lambdaEnv{t: t, bootstrap: bootstrap, config: config, dir: dir, env: []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_ENDPOINT_URL_DYNAMODB=" + dynURL, "AWS_ENDPOINT_URL_S3=" + s3srv.URL,
		"FLOWGUARD_S3_PATH_STYLE=true", "FLOWGUARD_TABLE=alarms", "FLOWGUARD_CONFIG_YAML=" + config,
	}}
	rtA, logA, stopA := e.start()
	rtB, logB, stopB := e.start()
	a, b := rtA.send(s3Event("alarm-a.log")), rtB.send(s3Event("alarm-b.log"))
	for _, r := range []fakeResult{rtA.wait(a, logA), rtB.wait(b, logB)} {
		if r.error {
			t.Fatalf("an invocation failed: %s\n%s\n%s", r.body, logA, logB)
		}
	}
	stopA()
	stopB()
	logs := []*syncBuffer{logA, logB}
	for range 2 { // a cold start, then the same object again in a new process
		rt, log, stop := e.start()
		rt.invoke(map[string]any{"Records": []any{map[string]any{"eventSource": "aws:sqs", "messageId": "m1",
			"body": mustJSON(t, s3Event("alarm-c.log"))}}}, log)
		stop()
		logs = append(logs, log)
	}

	key := func(cs []alarm.StateChange) []string {
		var out []string
		for _, c := range cs {
			out = append(out, fmt.Sprintf("%s %s->%s at %s", c.Alarm, c.From, c.To, c.Time.UTC().Format("15:04")))
		}
		return out
	}
	mu.Lock()
	got := key(heard)
	mu.Unlock()
	if w := key(want); !slices.Equal(got, w) {
		t.Errorf("the webhook heard:\n  %v\nalarms run over the same objects:\n  %v", got, w)
	}
	fired := 0
	for _, c := range heard {
		if c.To == alarm.StateAlarm {
			fired++
		}
	}
	if fired != 1 {
		t.Errorf("the alarm fired %d times, want once", fired)
	}
	states, err := dynamo.New(ddb, "alarms").LoadAlarmStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last := want[len(want)-1]; states[last.Alarm].State != last.To || !states[last.Alarm].Since.Equal(last.Time) {
		t.Errorf("alarm state in DynamoDB %+v, want %s since %s", states[last.Alarm], last.To, last.Time)
	}
	if t.Failed() {
		for i, l := range logs {
			t.Logf("process %d:\n%s", i+1, l)
		}
	}
}
