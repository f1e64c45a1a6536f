package source

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
)

// CloudWatchConfig is the configuration of a cloudwatch source: log
// groups that flow logs are published to, polled with FilterLogEvents.
type CloudWatchConfig struct {
	// LogGroups are the log groups' names or ARNs (required).
	LogGroups []string `yaml:"log_groups,flow"`
	// LogStreamPrefix keeps only the streams whose names start with it
	// (flow logs name a stream after its network interface, eni-…).
	LogStreamPrefix string `yaml:"log_stream_prefix"`
	// FilterPattern is passed to FilterLogEvents as it is.
	FilterPattern string `yaml:"filter_pattern"`
	AWSKeys       `yaml:",inline"`
	// Format is the flow log format of the log group's events, in AWS's
	// ${field} syntax; "" is the default format.
	Format string `yaml:"format"`
	// PollInterval is the wait between polls once caught up (default 1m).
	PollInterval time.Duration `yaml:"poll_interval"`
	// Latency is how late events reach CloudWatch Logs: each poll reads
	// event times up to now minus Latency, so that events ingested late
	// are still read (default 15m: a flow log record is published up to
	// its 10-minute aggregation window plus ~5 minutes after its start).
	Latency time.Duration `yaml:"latency"`
	// Start is how far back the first poll reaches, for log groups with
	// no saved position (default: Latency, i.e. from now on).
	Start time.Duration `yaml:"start"`
	// PageSize is FilterLogEvents' limit (default and most: 10,000).
	PageSize int32 `yaml:"page_size"`
}

// NewCloudWatch builds a cloudwatch source.
func NewCloudWatch(cfg LiveConfig, deps LiveDeps) (Live, error) {
	var cc CloudWatchConfig
	if err := cfg.Decode(&cc); err != nil {
		return nil, err
	}
	where := "sources." + cfg.Name
	if len(cc.LogGroups) == 0 {
		return nil, fmt.Errorf("%s: a cloudwatch source needs log_groups", where)
	}
	if cc.PollInterval <= 0 {
		cc.PollInterval = time.Minute
	}
	if cc.Latency < 0 {
		return nil, fmt.Errorf("%s: latency must not be negative", where)
	}
	if cc.Latency == 0 {
		cc.Latency = 15 * time.Minute
	}
	if cc.Start <= 0 {
		cc.Start = cc.Latency
	}
	if cc.PageSize <= 0 || cc.PageSize > 10000 {
		cc.PageSize = 10000
	}
	base, err := newLiveBase(cfg, cc.Format, deps)
	if err != nil {
		return nil, err
	}
	return &cloudWatch{liveBase: base, cfg: cc}, nil
}

type cloudWatch struct {
	liveBase
	cfg    CloudWatchConfig
	client *cloudwatchlogs.Client
	emitMu sync.Mutex
}

// cwToken is a log group's position: the window of event times being read
// ([Start, End), milliseconds) and the nextToken to go on with; Next ""
// means the window is read to its end.
type cwToken struct {
	Start int64  `json:"start"`
	End   int64  `json:"end"`
	Next  string `json:"next,omitempty"`
}

// Commit has nothing to acknowledge: the saved windows are the checkpoint.
func (c *cloudWatch) Commit(context.Context, []Position) error { return nil }

// Run polls each log group in its own goroutine.
func (c *cloudWatch) Run(ctx context.Context, from []Position, emit Emit) error {
	cfg, err := loadAWS(ctx, c.cfg.AWSKeys)
	if err != nil {
		return err
	}
	c.client = cloudwatchlogs.NewFromConfig(cfg)
	saved := map[string]cwToken{}
	for _, p := range from {
		var t cwToken
		if err := json.Unmarshal([]byte(p.Token), &t); err != nil {
			return fmt.Errorf("log group %s: bad position token %.40q: %w", p.Object, p.Token, err)
		}
		saved[p.Object] = t
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, g := range c.cfg.LogGroups {
		wg.Go(func() {
			if err := c.poll(ctx, g, saved[g], emit); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return nil
}

// poll reads group window after window, each window's pages in order.
func (c *cloudWatch) poll(ctx context.Context, group string, tok cwToken, emit Emit) error {
	name := "logs:" + group
	if tok.End == 0 {
		tok.End = c.now().Add(-c.cfg.Start).UnixMilli()
	}
	bo := backoff{min: min(c.cfg.PollInterval, time.Second), max: 5 * time.Minute}
	line := 1
	done := tok.Next == "" // the window is read to its end
	for {
		if done { // open the next window
			end := c.now().Add(-c.cfg.Latency).UnixMilli()
			if end <= tok.End {
				if !sleep(ctx, c.cfg.PollInterval) {
					return nil
				}
				continue
			}
			tok, done = cwToken{Start: tok.End, End: end}, false
		}
		in := &cloudwatchlogs.FilterLogEventsInput{
			StartTime: aws.Int64(tok.Start),
			EndTime:   aws.Int64(tok.End - 1), // endTime is inclusive
			Limit:     aws.Int32(c.cfg.PageSize),
		}
		if strings.HasPrefix(group, "arn:") {
			in.LogGroupIdentifier = aws.String(group)
		} else {
			in.LogGroupName = aws.String(group)
		}
		if c.cfg.LogStreamPrefix != "" {
			in.LogStreamNamePrefix = aws.String(c.cfg.LogStreamPrefix)
		}
		if c.cfg.FilterPattern != "" {
			in.FilterPattern = aws.String(c.cfg.FilterPattern)
		}
		if tok.Next != "" {
			in.NextToken = aws.String(tok.Next)
		}
		out, err := c.client.FilterLogEvents(ctx, in)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			code := apiCode(err)
			if code == "InvalidParameterException" && in.NextToken != nil {
				// The token expired (the process was down for long): the
				// window is read again from its start.
				c.log.Warn("nextToken refused; reading the window again from its start", "log_group", group, "error", err)
				tok.Next = ""
				continue
			}
			err = fmt.Errorf("FilterLogEvents on %s: %w", group, err)
			c.warn(err)
			if code == "ResourceNotFoundException" || code == "AccessDeniedException" {
				if !sleep(ctx, c.cfg.PollInterval) {
					return nil
				}
				continue
			}
			if !bo.wait(ctx) { // ThrottlingException and the like
				return nil
			}
			continue
		}
		bo.reset()
		c.state.connected()
		tok.Next = aws.ToString(out.NextToken)
		done = tok.Next == ""
		pos := Position{Object: group, Token: tok.json(), Name: name}
		if len(out.Events) == 0 {
			continue
		}
		var data []byte // the daemon owns a chunk's Data once emitted
		var newest int64
		for _, e := range out.Events {
			data = appendLine(data, aws.ToString(e.Message))
			newest = max(newest, aws.ToInt64(e.Timestamp))
		}
		c.emitMu.Lock()
		err = emit(ctx, Chunk{Object: group, Name: name, Data: data, Header: c.header, Line: line, Position: pos, Arrived: c.now()})
		c.emitMu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		line += len(out.Events)
		c.state.read(pos, int64(len(data)), time.UnixMilli(newest))
	}
}

func (t cwToken) json() string {
	b, _ := json.Marshal(t)
	return string(b)
}
