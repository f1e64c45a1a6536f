package source

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// S3LiveConfig is the configuration of an s3 source: new objects under a
// prefix, found by listing the date-partitioned layout AWS writes flow
// logs in, or announced by S3 event notifications delivered to SQS.
type S3LiveConfig struct {
	// URL is s3://bucket/prefix (required).
	URL string `yaml:"url"`
	// SQSQueueURL, when set, takes objects from the S3 event
	// notifications delivered to this queue instead of listing.
	SQSQueueURL string `yaml:"sqs_queue_url"`
	// AWSKeys: region, profile, and endpoint_url, which reaches an
	// S3-compatible server (path-style requests) and, with SQSQueueURL,
	// its SQS.
	AWSKeys `yaml:",inline"`
	// SQSEndpointURL is where SQS requests go; by default the queue
	// URL's own host when it is not on amazonaws.com (an emulator, a VPC
	// endpoint), else the region's SQS endpoint.
	SQSEndpointURL string `yaml:"sqs_endpoint_url"`
	// PollInterval is the wait between listings (default 1m).
	PollInterval time.Duration `yaml:"poll_interval"`
	// Lookback is how long after its date partition ends objects may
	// still arrive in it (default 1h): keys in a partition that ended
	// more than Lookback ago are folded into the start-after mark.
	Lookback time.Duration `yaml:"lookback"`
	// Start is how far back the first listing of a prefix reaches, by
	// date partition (default 24h); "oldest" reads everything.
	Start string `yaml:"start"`
	// VisibilityTimeout is how long a received message stays hidden; it
	// is extended while its object is processed (default 5m).
	VisibilityTimeout time.Duration `yaml:"visibility_timeout"`
	// WaitTime is ReceiveMessage's long-poll wait (default 20s).
	WaitTime time.Duration `yaml:"wait_time"`
}

// NewS3Live builds an s3 source.
func NewS3Live(cfg LiveConfig, deps LiveDeps) (Live, error) {
	var sc S3LiveConfig
	if err := cfg.Decode(&sc); err != nil {
		return nil, err
	}
	where := "sources." + cfg.Name
	if !isS3(sc.URL) {
		return nil, fmt.Errorf("%s: an s3 source needs url: s3://bucket/prefix", where)
	}
	bucket, prefix, err := parseS3URL(sc.URL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if sc.PollInterval <= 0 {
		sc.PollInterval = time.Minute
	}
	if sc.Lookback <= 0 {
		sc.Lookback = time.Hour
	}
	var start time.Duration
	switch sc.Start {
	case "":
		start = 24 * time.Hour
	case "oldest":
	default:
		if start, err = time.ParseDuration(sc.Start); err != nil || start <= 0 {
			return nil, fmt.Errorf("%s: start is oldest or a duration such as 24h, not %q", where, sc.Start)
		}
	}
	if sc.VisibilityTimeout <= 0 {
		sc.VisibilityTimeout = 5 * time.Minute
	}
	if sc.VisibilityTimeout > 12*time.Hour {
		return nil, fmt.Errorf("%s: visibility_timeout is at most 12h (SQS's limit)", where)
	}
	if sc.WaitTime <= 0 {
		sc.WaitTime = 20 * time.Second
	}
	if sc.WaitTime > 20*time.Second {
		return nil, fmt.Errorf("%s: wait_time is at most 20s (SQS's limit)", where)
	}
	base, err := newLiveBase(cfg, "", deps) // objects carry their own header line
	if err != nil {
		return nil, err
	}
	return &s3Live{liveBase: base, cfg: sc, bucket: bucket, prefix: prefix, start: start}, nil
}

type s3Live struct {
	liveBase
	cfg            S3LiveConfig
	bucket, prefix string
	start          time.Duration // 0: everything
	s3             *s3.Client
	sqs            *sqs.Client
	q              *sqsState
}

// Run lists the prefix, or receives its notifications, until ctx is done.
func (s *s3Live) Run(ctx context.Context, from []Position, emit Emit) error {
	cfg, err := loadAWS(ctx, s.cfg.AWSKeys)
	if err != nil {
		return err
	}
	path := s.cfg.EndpointURL != ""
	s.s3 = s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = path
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	if s.cfg.SQSQueueURL != "" {
		s.sqs = sqs.NewFromConfig(cfg, func(o *sqs.Options) {
			if s.cfg.SQSEndpointURL != "" {
				o.BaseEndpoint = aws.String(s.cfg.SQSEndpointURL)
			} else if ep, region := sqsEndpoint(s.cfg.SQSQueueURL); ep != "" {
				o.BaseEndpoint = aws.String(ep)
			} else if region != "" {
				o.Region = region
			}
		})
		return s.runSQS(ctx, from, emit)
	}
	return s.runListing(ctx, from, emit)
}

// Commit deletes the SQS messages whose objects are saved; listing has
// nothing to acknowledge.
func (s *s3Live) Commit(ctx context.Context, ps []Position) error {
	if s.q == nil {
		return nil
	}
	return s.commitSQS(ctx, ps)
}

// chunk is the chunk that hands one object to the daemon, read whole.
func (s *s3Live) chunk(key string, size int64, pos Position) Chunk {
	name := "s3://" + s.bucket + "/" + key
	client, bucket := s.s3, s.bucket
	return Chunk{
		Object: pos.Object, Name: name, Size: size, Position: pos, Arrived: s.now(),
		Open: func(ctx context.Context) (io.ReadCloser, error) {
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				return nil, fmt.Errorf("cannot open %s: %w", name, err)
			}
			return out.Body, nil
		},
	}
}

// listToken is a listed prefix's position: keys up to After are done,
// and so are the keys in Done (all after After, in partitions that may
// still receive objects).
type listToken struct {
	After string   `json:"after"`
	Done  []string `json:"done,omitempty"`
}

func (t listToken) json() string {
	b, _ := json.Marshal(t)
	return string(b)
}

// runListing finds the date-partitioned prefixes under the URL (one per
// account, service and region) and lists each after its mark.
func (s *s3Live) runListing(ctx context.Context, from []Position, emit Emit) error {
	saved := map[string]listToken{}
	for _, p := range from {
		var t listToken
		if err := json.Unmarshal([]byte(p.Token), &t); err != nil {
			return fmt.Errorf("s3 prefix %s: bad position token %.40q: %w", p.Object, p.Token, err)
		}
		saved[p.Object] = t
	}
	bo := backoff{min: min(s.cfg.PollInterval, time.Second), max: 5 * time.Minute}
	for {
		err := s.listOnce(ctx, saved, emit)
		if ctx.Err() != nil {
			return nil
		}
		if err, ok := err.(emitError); ok {
			return err.err
		}
		wait := s.cfg.PollInterval
		if err != nil {
			err = describeS3Error(s.cfg.URL, s.bucket, err)
			if !s.retry(ctx, &bo, err) {
				return nil
			}
			continue
		}
		bo.reset()
		s.state.connected()
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// emitError is the daemon stopping, told apart from S3's errors.
type emitError struct{ err error }

func (e emitError) Error() string { return e.err.Error() }

func (s *s3Live) listOnce(ctx context.Context, saved map[string]listToken, emit Emit) error {
	roots, err := s.roots(ctx, s.prefix, 0)
	if err != nil {
		return err
	}
	now := s.now()
	for _, r := range roots {
		tok, ok := saved[r.prefix]
		if !ok && s.start > 0 && r.dated {
			tok.After = r.startAfter(now.Add(-s.start))
		}
		folding := true // every key so far is done and its partition settled
		in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(r.prefix)}
		if tok.After != "" {
			in.StartAfter = aws.String(tok.After)
		}
		pages := s3.NewListObjectsV2Paginator(s.s3, in)
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, o := range page.Contents {
				key := aws.ToString(o.Key)
				if key == "" || strings.HasSuffix(key, "/") {
					continue
				}
				t := keyTime(key, aws.ToTime(o.LastModified), r.hive)
				i, inDone := slices.BinarySearch(tok.Done, key)
				read := inDone || !r.dated && s.start > 0 && t.Before(now.Add(-s.start)) // older than start: taken as read
				folding = folding && t.Before(now.Add(-s.cfg.Lookback))
				if folding { // move the mark past key, and past Done's keys up to it
					tok.After = key
					if inDone {
						i++
					}
					tok.Done = slices.Clone(tok.Done[i:])
				}
				if read {
					continue
				}
				if !folding {
					tok.Done = slices.Insert(slices.Clone(tok.Done), i, key)
				}
				pos := Position{Object: r.prefix, Token: tok.json(), Name: "s3://" + s.bucket + "/" + r.prefix}
				saved[r.prefix] = tok
				if err := emit(ctx, s.chunk(key, aws.ToInt64(o.Size), pos)); err != nil {
					return emitError{err}
				}
				s.state.read(pos, aws.ToInt64(o.Size), aws.ToTime(o.LastModified))
			}
		}
		saved[r.prefix] = tok
	}
	return nil
}

// listRoot is a prefix whose keys sort in time order: a flow log
// destination's AWSLogs/{account}/vpcflowlogs/{region}/, followed by
// yyyy/mm/dd/[HH/] (or year=/month=/day=/[hour=/] when hive is set).
type listRoot struct {
	prefix string
	dated  bool // keys go on with a date path
	hive   bool // year=/month=/day=
}

// startAfter returns the mark that starts a listing at t's day: the
// day's folder without its slash sorts just before the day's keys.
func (r listRoot) startAfter(t time.Time) string {
	t = t.UTC()
	if r.hive {
		return r.prefix + t.Format("year=2006/month=01/day=02")
	}
	return r.prefix + t.Format("2006/01/02")
}

var (
	yearDir     = regexp.MustCompile(`^(\d{4}|year=\d{4})/$`)
	datePath    = regexp.MustCompile(`(?:^|/)(\d{4})/(\d{2})/(\d{2})/(?:(\d{2})/)?`)
	hiveDatePth = regexp.MustCompile(`year=(\d{4})/month=(\d{2})/day=(\d{2})/(?:hour=(\d{2})/)?`)
)

// roots finds the time-ordered prefixes under prefix, descending through
// "folders" until their children are years; a prefix holding objects
// directly, or nothing that looks like a date, is a root itself.
func (s *s3Live) roots(ctx context.Context, prefix string, depth int) ([]listRoot, error) {
	if datePath.MatchString(prefix) || hiveDatePth.MatchString(prefix) {
		return []listRoot{{prefix: prefix, dated: true, hive: strings.Contains(prefix, "year=")}}, nil
	}
	if depth > 6 {
		return []listRoot{{prefix: prefix}}, nil
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/")}
	var dirs []string
	objects := false
	pages := s3.NewListObjectsV2Paginator(s.s3, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range page.CommonPrefixes {
			dirs = append(dirs, aws.ToString(p.Prefix))
		}
		for _, o := range page.Contents {
			if !strings.HasSuffix(aws.ToString(o.Key), "/") {
				objects = true
			}
		}
	}
	if objects || len(dirs) == 0 {
		return []listRoot{{prefix: prefix}}, nil
	}
	years := 0
	for _, d := range dirs {
		if yearDir.MatchString(strings.TrimPrefix(d, prefix)) {
			years++
		}
	}
	if years > 0 {
		return []listRoot{{prefix: prefix, dated: true, hive: strings.HasPrefix(strings.TrimPrefix(dirs[0], prefix), "year=")}}, nil
	}
	var roots []listRoot
	for _, d := range dirs {
		rs, err := s.roots(ctx, d, depth+1)
		if err != nil {
			return nil, err
		}
		roots = append(roots, rs...)
	}
	return roots, nil
}

// keyTime is when the date partition a key is in ends (its day, or its
// hour when partitioned by hour); for keys without a date, the object's
// last modification.
func keyTime(key string, modified time.Time, hive bool) time.Time {
	re := datePath
	if hive {
		re = hiveDatePth
	}
	m := re.FindStringSubmatch(key)
	if m == nil {
		return modified
	}
	y, _ := strconv.Atoi(m[1])
	mo, _ := strconv.Atoi(m[2])
	d, _ := strconv.Atoi(m[3])
	if m[4] != "" {
		h, _ := strconv.Atoi(m[4])
		return time.Date(y, time.Month(mo), d, h+1, 0, 0, 0, time.UTC)
	}
	return time.Date(y, time.Month(mo), d+1, 0, 0, 0, 0, time.UTC)
}

// sqsEndpoint reads a queue URL: a queue on AWS
// (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME) gives its region; a
// queue elsewhere (an emulator, a VPC endpoint) gives the endpoint to send
// requests to.
func sqsEndpoint(queueURL string) (endpoint, region string) {
	u, err := url.Parse(queueURL)
	if err != nil || u.Host == "" {
		return "", ""
	}
	host := u.Hostname()
	if rest, ok := strings.CutSuffix(host, ".amazonaws.com"); ok {
		if parts := strings.Split(rest, "."); len(parts) == 2 && parts[0] == "sqs" {
			return "", parts[1]
		}
		return "", ""
	}
	return u.Scheme + "://" + u.Host, ""
}
