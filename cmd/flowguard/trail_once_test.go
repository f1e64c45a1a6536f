package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/flowguard/flowguard/internal/cloudtrail"
	"github.com/flowguard/flowguard/internal/finding"
)

// TestDetectOpensEachInputOnce: detect over an S3 prefix holding flow log
// objects, a CloudTrail delivery file and a GuardDuty event GETs each
// object once (it used to GET every object twice: once to look at its
// first bytes, once to read it), and still finds the scan, the sign-in
// joined to it and GuardDuty's finding.
func TestDetectOpensEachInputOnce(t *testing.T) {
	fake := gofakes3.New(s3mem.New()).Server()
	var mu sync.Mutex
	gets := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "" {
			mu.Lock()
			gets[r.URL.Path]++
			mu.Unlock()
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "AKIDTESTFLOWGUARD", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "", "AWS_CONFIG_FILE": filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"), "AWS_EC2_METADATA_DISABLED": "true"} {
		t.Setenv(k, v)
	}
	c := s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTESTFLOWGUARD", "secret", ""),
		BaseEndpoint: aws.String(srv.URL), UsePathStyle: true})
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("logs")}); err != nil {
		t.Fatal(err)
	}
	put := func(key string, body []byte) {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("logs"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	for part := range 4 {
		var flows strings.Builder
		flows.WriteString("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n")
		for p := 1; p <= 10; p++ {
			fmt.Fprintf(&flows, "2 111122223333 eni-0a1b2c3d4e5f60718 198.51.100.23 10.0.1.10 40000 %d 6 1 40 1795341600 1795341660 REJECT OK\n", part*10+p)
		}
		put(fmt.Sprintf("p/flows-%d.log.gz", part), gz([]byte(flows.String())))
	}
	ct := filepath.Join("..", "..", "internal", "cloudtrail", "testdata")
	rec, err := os.ReadFile(filepath.Join(ct, "signin-iamuser-nomfa.json"))
	if err != nil {
		t.Fatal(err)
	}
	rec = bytes.ReplaceAll(rec, []byte("203.0.113.12"), []byte("198.51.100.23"))
	put("p/111122223333_CloudTrail_us-east-1_20261122T1005Z_x.json.gz", gz([]byte(`{"Records":[`+string(bytes.TrimSpace(rec))+`]}`)))
	ev, err := os.ReadFile(filepath.Join("..", "..", "internal", "guardduty", "testdata", "portprobe.json"))
	if err != nil {
		t.Fatal(err)
	}
	put("p/gd-event.json", ev)

	out, stderr, code := execute(t, "", "detect", "--no-db", "--home", "10.0.0.0/16", "--output", "json", "--endpoint-url", srv.URL, "s3://logs/p/")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var fs []finding.Finding
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	types := map[string]bool{}
	for _, f := range fs {
		types[f.Type] = true
	}
	for _, want := range []string{"Recon:EC2/Portscan", cloudtrail.TypeFromAttacker, cloudtrail.TypeNoMFA, "Recon:EC2/PortProbeUnprotectedPort"} {
		if !types[want] {
			t.Errorf("no %s among %v", want, types)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(gets) != 6 {
		t.Errorf("GETs of %d objects, want the 6: %v", len(gets), gets)
	}
	for key, n := range gets {
		if n != 1 {
			t.Errorf("%s: %d GETs, want 1", key, n)
		}
	}
}
