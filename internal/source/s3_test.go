package source

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/flowguard/flowguard/internal/awstest"
)

// fakeS3 starts an S3-compatible server and points the SDK's default
// configuration chain at static credentials, and nothing else on the
// machine (no shared files, no instance metadata).
func fakeS3(t *testing.T) (url string, client *s3.Client, lists *atomic.Int32) {
	t.Helper()
	fake := gofakes3.New(s3mem.New()).Server()
	lists = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2" {
			lists.Add(1)
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	awstest.SetEnv(t, "AWS_REGION=", "AWS_DEFAULT_REGION=") // no region: the expander's default
	client = s3.New(s3.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(awstest.AccessKeyID, awstest.SecretAccessKey, ""),
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
	})
	return srv.URL, client, lists
}

func put(t *testing.T, c *s3.Client, bucket, key string, body []byte) {
	t.Helper()
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func TestExpandS3(t *testing.T) {
	url, c, lists := fakeS3(t)
	ctx := context.Background()
	const bucket = "flow-logs"
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	prefix := "vpc/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/01/"
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	var keys []string
	for day := 1; day <= 3; day++ {
		for i := 0; i < 9; i++ {
			key := fmt.Sprintf("%s%02d/123456789012_vpcflowlogs_us-east-1_fl-0a_202401%02dT%02d%02dZ_%x.log.gz", prefix, day, day, i, 5*i, rng.Uint32())
			body := make([]byte, 100+rng.IntN(5000))
			for j := range body {
				body[j] = byte(rng.Uint32())
			}
			want[key] = body
			keys = append(keys, key)
		}
	}
	// Put in random order; S3 lists in key order.
	for _, i := range rng.Perm(len(keys)) {
		put(t, c, bucket, keys[i], want[keys[i]])
	}
	put(t, c, bucket, prefix+"02/", nil)                                 // a console "folder"
	put(t, c, bucket, "vpc/AWSLogs/123456789012/other.txt", []byte("x")) // outside the prefix
	slices.Sort(keys)

	opts := Options{Region: "us-east-1", EndpointURL: url, S3PageSize: 4}
	got, err := Expand(ctx, []string{"s3://" + bucket + "/" + prefix}, opts)
	if err != nil {
		t.Fatal(err)
	}
	// 27 objects and a folder marker, 4 keys a page.
	if n := lists.Load(); n != 7 {
		t.Errorf("%d ListObjectsV2 calls, want 7", n)
	}
	var names []string
	for _, in := range got {
		names = append(names, in.Name)
	}
	var wantNames []string
	for _, k := range keys {
		wantNames = append(wantNames, "s3://"+bucket+"/"+k)
	}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("inputs\n got %q\nwant %q", names, wantNames)
	}
	for i, in := range got {
		body := want[keys[i]]
		if in.Size != int64(len(body)) {
			t.Errorf("%s: size %d, want %d", in.Name, in.Size, len(body))
		}
		rc, err := in.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s: %v", in.Name, err)
		}
		if !bytes.Equal(b, body) {
			t.Errorf("%s: read %d bytes that differ from the %d put", in.Name, len(b), len(body))
		}
	}

	// One object by its key, even though another key starts with it.
	put(t, c, bucket, keys[3]+".bak", []byte("backup"))
	got, err = Expand(ctx, []string{"s3://" + bucket + "/" + keys[3]}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != wantNames[3] {
		t.Errorf("s3://bucket/key expanded to %v", got)
	}

	// The whole bucket, and the same objects twice, read once.
	got, err = Expand(ctx, []string{"s3://" + bucket, "s3://" + bucket + "/vpc/"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(keys) + 2; len(got) != n { // + .bak and other.txt
		t.Errorf("whole bucket: %d inputs, want %d", len(got), n)
	}

	for _, tc := range []struct{ arg, want string }{
		{"s3://no-such-bucket/x/", "no-such-bucket"},
		{"s3://" + bucket + "/nothing/here/", "s3://" + bucket + "/nothing/here/"},
	} {
		_, err := Expand(ctx, []string{tc.arg}, opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Expand(%s): error %v, want one naming %q", tc.arg, err, tc.want)
		}
	}
}

// S3 answers a request signed for the wrong region with the bucket's region
// in a header; listing is retried there, and objects are read there.
func TestExpandS3OtherRegion(t *testing.T) {
	var wrong atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Authorization"), "/eu-west-1/s3/") {
			wrong.Add(1)
			w.Header().Set("X-Amz-Bucket-Region", "eu-west-1")
			w.WriteHeader(http.StatusMovedPermanently)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message></Error>`)
			return
		}
		if r.URL.Query().Get("list-type") == "2" {
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>eu-logs</Name><Prefix>p/</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>p/a.log.gz</Key><Size>5</Size></Contents></ListBucketResult>`)
			return
		}
		if r.URL.Path == "/eu-logs/p/a.log.gz" {
			fmt.Fprint(w, "hello")
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	fakeS3(t) // for the environment: credentials, no region
	got, err := Expand(context.Background(), []string{"s3://eu-logs/p/"}, Options{EndpointURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "s3://eu-logs/p/a.log.gz" || got[0].Size != 5 {
		t.Fatalf("inputs %+v", got)
	}
	rc, err := got[0].Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "hello" || wrong.Load() != 1 {
		t.Errorf("read %q after %d redirects; want hello after 1", b, wrong.Load())
	}
}
