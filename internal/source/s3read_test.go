package source

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/gzip"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// TestS3LongLineAndNUL reads S3 objects (plain and gzip, as S3 delivery
// writes them, with a header line) through the SDK: a 3 MiB line and a
// line with a NUL byte are each one skipped line with its number, and the
// records after them are read with theirs.
func TestS3LongLineAndNUL(t *testing.T) {
	url, c, _ := fakeS3(t)
	ctx := context.Background()
	const bucket = "flow-logs"
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	text.WriteString(flowlog.DefaultFormat().Header() + "\n")
	var want []int
	line := 1
	for i := 0; i < 3000; i++ {
		line++
		switch i {
		case 1000:
			text.WriteString("2 123456789012 eni-" + strings.Repeat("x", 3<<20) + " 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n")
		case 2000:
			text.WriteString("2 123456789012 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACC\x00EPT OK\n")
		default:
			fmt.Fprintf(&text, "2 123456789012 eni-1 10.0.%d.%d 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n", i/256, i%256)
			want = append(want, line)
		}
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(text.String()))
	zw.Close()
	put(t, c, bucket, "a/plain.log", []byte(text.String()))
	put(t, c, bucket, "a/zipped.log.gz", gz.Bytes())

	inputs, err := Expand(ctx, []string{"s3://" + bucket + "/a/"}, Options{Region: "us-east-1", EndpointURL: url})
	if err != nil || len(inputs) != 2 {
		t.Fatalf("%d inputs, %v", len(inputs), err)
	}
	for _, in := range inputs {
		sk := &flowlog.Skipped{}
		var got []int
		err := flowlog.ScanOrdered(ctx, &flowlog.Scanner{Errors: sk}, []flowlog.Input{in}, func(_ int, b *flowlog.Batch) []int {
			b.Validate()
			var lines []int
			for i := 0; i < b.N; i++ {
				if !b.Bad(i) {
					lines = append(lines, b.Line(i))
				}
			}
			return lines
		}, func(l []int) error { got = append(got, l...); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d records, want %d", in.Name, len(got), len(want))
		}
		var msgs []string
		for _, e := range sk.First() {
			msgs = append(msgs, e.Error())
		}
		slices.Sort(msgs)
		wantMsgs := []string{
			in.Name + ":1002: line longer than 65536 bytes: not a flow log record",
			in.Name + ":2002:84: NUL byte in line: not a flow log record",
		}
		if !slices.Equal(msgs, wantMsgs) {
			t.Errorf("%s: skipped\n%s\nwant\n%s", in.Name, strings.Join(msgs, "\n"), strings.Join(wantMsgs, "\n"))
		}
	}
}
