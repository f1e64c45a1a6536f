package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// defaultRegion is used to sign requests when neither the options nor the
// SDK's configuration name a region; S3 tells the bucket's real region in
// its answer and listing is retried there.
const defaultRegion = "us-east-1"

func isS3(arg string) bool { return strings.HasPrefix(arg, "s3://") }

// parseS3URL splits s3://bucket/prefix.
func parseS3URL(arg string) (bucket, prefix string, err error) {
	rest := strings.TrimPrefix(arg, "s3://")
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q: expected s3://bucket/prefix", arg)
	}
	return bucket, prefix, nil
}

// s3Lister holds the client shared by all s3:// arguments and the region
// found for each bucket.
type s3Lister struct {
	client   *s3.Client
	region   string            // the client's region
	regions  map[string]string // bucket → region, when S3 redirected us
	pageSize int32
}

func (e *expander) s3Lister() (*s3Lister, error) {
	if e.s3c != nil {
		return e.s3c, nil
	}
	l := &s3Lister{regions: make(map[string]string), pageSize: e.opts.S3PageSize}
	if e.opts.S3Client != nil {
		l.client = e.opts.S3Client
		l.region = l.client.Options().Region
		e.s3c = l
		return l, nil
	}
	// The endpoint goes to the S3 client alone, with path-style requests.
	cfg, err := loadAWS(e.ctx, AWSKeys{Region: e.opts.Region, Profile: e.opts.Profile})
	if err != nil {
		return nil, err
	}
	endpoint := e.opts.EndpointURL
	l.client = s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		}
		// S3-compatible servers often send no checksums; reading is
		// still checked by TLS and the scanner's decoders.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	l.region = cfg.Region
	e.s3c = l
	return l, nil
}

// regionOpt makes a call go to the bucket's region, when S3 told us it is
// not the client's.
func (l *s3Lister) regionOpt(bucket string) func(*s3.Options) {
	r, ok := l.regions[bucket]
	return func(o *s3.Options) {
		if ok {
			o.Region = r
		}
	}
}

// s3 lists the objects under s3://bucket/prefix.
func (e *expander) s3(arg string) error {
	bucket, prefix, err := parseS3URL(arg)
	if err != nil {
		return err
	}
	l, err := e.s3Lister()
	if err != nil {
		return err
	}
	objs, err := l.list(e.ctx, bucket, prefix)
	if r := bucketRegion(err); r != "" && r != l.region && l.regions[bucket] == "" {
		e.log.Debug("bucket is in another region; listing again there", "bucket", bucket, "region", r)
		l.regions[bucket] = r
		objs, err = l.list(e.ctx, bucket, prefix)
	}
	if err != nil {
		return describeS3Error(arg, bucket, err)
	}
	if len(objs) == 0 {
		return fmt.Errorf("no objects under %s", arg)
	}
	client, opt := l.client, l.regionOpt(bucket)
	for _, o := range objs {
		name := "s3://" + bucket + "/" + o.key
		key := o.key
		e.add(name, flowlog.Input{
			Name: name,
			Size: o.size,
			Open: func(ctx context.Context) (io.ReadCloser, error) {
				out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}, opt)
				if err != nil {
					return nil, err // the scanner reports it with the name
				}
				return out.Body, nil
			},
		})
	}
	return nil
}

type s3Object struct {
	key  string
	size int64
}

// list returns the objects under prefix in key order, skipping "folder"
// markers (keys ending in '/'). When an object's key is the prefix itself,
// that object alone is returned: s3://bucket/key names one object.
func (l *s3Lister) list(ctx context.Context, bucket, prefix string) ([]s3Object, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	if l.pageSize > 0 {
		in.MaxKeys = aws.Int32(l.pageSize)
	}
	pages := s3.NewListObjectsV2Paginator(l.client, in)
	var objs []s3Object
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx, l.regionOpt(bucket))
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if prefix != "" && key == prefix && len(objs) == 0 {
				return []s3Object{{key, sizeOf(o.Size)}}, nil
			}
			if key == "" || strings.HasSuffix(key, "/") {
				continue
			}
			objs = append(objs, s3Object{key, sizeOf(o.Size)})
		}
	}
	return objs, nil
}

func sizeOf(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}

// bucketRegion returns the region S3 says a bucket is in, from the
// x-amz-bucket-region header of an error response (301 PermanentRedirect,
// 400 AuthorizationHeaderMalformed).
func bucketRegion(err error) string {
	var re *smithyhttp.ResponseError
	if err == nil || !errors.As(err, &re) || re.Response == nil {
		return ""
	}
	return re.Response.Header.Get("X-Amz-Bucket-Region")
}

// describeS3Error words a listing failure so that it names what is missing.
func describeS3Error(arg, bucket string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchBucket":
			return fmt.Errorf("cannot list %s: bucket %q does not exist", arg, bucket)
		case "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch":
			return fmt.Errorf("cannot list %s (s3:ListBucket on bucket %q is needed): %w", arg, bucket, err)
		}
	}
	return fmt.Errorf("cannot list %s: %w", arg, err)
}
