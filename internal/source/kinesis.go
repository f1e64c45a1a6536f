package source

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// KinesisConfig is the configuration of a kinesis source: a Kinesis Data
// Stream carrying a CloudWatch Logs subscription (or flow log lines put by
// another producer).
type KinesisConfig struct {
	// Stream is the stream's name or ARN (required).
	Stream  string `yaml:"stream"`
	AWSKeys `yaml:",inline"`
	// Start is where shards without a saved position are read from:
	// oldest (TRIM_HORIZON, the default) or latest. Shards that appear by
	// resharding are always read from their start.
	Start string `yaml:"start"`
	// Format is the flow log format of the records, in AWS's ${field}
	// syntax; "" is the default format.
	Format string `yaml:"format"`
	// PollInterval is the wait between GetRecords calls on a shard that
	// is caught up (default 1s; AWS allows 5 calls a second per shard).
	PollInterval time.Duration `yaml:"poll_interval"`
	// ShardRefresh is how often the shard list is read again to find
	// shards added by resharding (default 30s).
	ShardRefresh time.Duration `yaml:"shard_refresh"`
	// MaxRecords is GetRecords' limit (default and most: 10,000).
	MaxRecords int32 `yaml:"max_records"`
}

// NewKinesis builds a kinesis source.
func NewKinesis(cfg LiveConfig, deps LiveDeps) (Live, error) {
	var kc KinesisConfig
	if err := cfg.Decode(&kc); err != nil {
		return nil, err
	}
	where := "sources." + cfg.Name
	if kc.Stream == "" {
		return nil, fmt.Errorf("%s: a kinesis source needs stream (its name or ARN)", where)
	}
	switch kc.Start {
	case "":
		kc.Start = "oldest"
	case "oldest", "latest":
	default:
		return nil, fmt.Errorf("%s: start is oldest or latest, not %q", where, kc.Start)
	}
	if kc.PollInterval <= 0 {
		kc.PollInterval = time.Second
	}
	if kc.ShardRefresh <= 0 {
		kc.ShardRefresh = 30 * time.Second
	}
	if kc.MaxRecords <= 0 || kc.MaxRecords > 10000 {
		kc.MaxRecords = 10000
	}
	base, err := newLiveBase(cfg, kc.Format, deps)
	if err != nil {
		return nil, err
	}
	return &kinesisSource{liveBase: base, cfg: kc}, nil
}

type kinesisSource struct {
	liveBase
	cfg    KinesisConfig
	client *kinesis.Client

	emitMu sync.Mutex // chunks go to the daemon one at a time

	mu     sync.Mutex
	behind map[string]time.Duration // MillisBehindLatest by shard
}

// Commit has nothing to acknowledge: Kinesis keeps no consumer state, the
// daemon's saved sequence numbers are the checkpoint.
func (k *kinesisSource) Commit(context.Context, []Position) error { return nil }

func (k *kinesisSource) streamInput() (name, arn *string) {
	if strings.HasPrefix(k.cfg.Stream, "arn:") {
		return nil, aws.String(k.cfg.Stream)
	}
	return aws.String(k.cfg.Stream), nil
}

// Run follows every shard: a shard's parents are read to their end before
// the shard, so that records keep their order across resharding.
func (k *kinesisSource) Run(ctx context.Context, from []Position, emit Emit) error {
	cfg, err := loadAWS(ctx, k.cfg.AWSKeys)
	if err != nil {
		return err
	}
	k.client = kinesis.NewFromConfig(cfg)
	k.behind = map[string]time.Duration{}
	seqs := map[string]string{}
	for _, p := range from {
		seqs[p.Object] = p.Token
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		shard string
		err   error
	}
	finished := make(chan result)
	running, done := map[string]bool{}, map[string]bool{}
	first := true
	bo := backoff{min: time.Second, max: time.Minute}
	for {
		shards, err := k.listShards(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			err = fmt.Errorf("cannot list the shards of %s: %w", k.cfg.Stream, err)
			if !k.retry(ctx, &bo, err) {
				return nil
			}
			continue
		}
		bo.reset()
		k.state.connected()
		listed := map[string]bool{}
		for _, s := range shards {
			listed[aws.ToString(s.ShardId)] = true
		}
		for _, s := range shards {
			id := aws.ToString(s.ShardId)
			if running[id] || done[id] {
				continue
			}
			waiting := false
			for _, parent := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
				if p := aws.ToString(parent); p != "" && listed[p] && !done[p] {
					waiting = true // drain the closed parent first
				}
			}
			if waiting {
				continue
			}
			start := types.ShardIteratorTypeTrimHorizon
			if first && k.cfg.Start == "latest" && s.ParentShardId == nil {
				start = types.ShardIteratorTypeLatest
			}
			running[id] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := k.follow(ctx, id, seqs[id], start, emit)
				select {
				case finished <- result{id, err}:
				case <-ctx.Done():
				}
			}()
		}
		first = false
		select {
		case <-ctx.Done():
			return nil
		case r := <-finished:
			delete(running, r.shard)
			if r.err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return r.err
			}
			done[r.shard] = true // closed and read to its end: its children may start
		case <-time.After(k.cfg.ShardRefresh):
		}
	}
}

func (k *kinesisSource) listShards(ctx context.Context) ([]types.Shard, error) {
	name, arn := k.streamInput()
	in := &kinesis.ListShardsInput{StreamName: name, StreamARN: arn}
	var shards []types.Shard
	for {
		out, err := k.client.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			return shards, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// follow reads one shard from after seq (or from start when seq is "")
// until the shard is closed and read to its end, or ctx is done. It
// returns an error only when emit does (the daemon stops).
func (k *kinesisSource) follow(ctx context.Context, shard, seq string, start types.ShardIteratorType, emit Emit) error {
	name, arn := k.streamInput()
	pname := "kinesis://" + k.cfg.Stream + "/" + shard
	bo := backoff{min: 500 * time.Millisecond, max: 30 * time.Second}
	fail := func(err error) bool {
		if ctx.Err() != nil {
			return false
		}
		err = fmt.Errorf("%s: %w", pname, err)
		return k.retry(ctx, &bo, err)
	}
	var iter *string
	line := 1
	for {
		if iter == nil {
			in := &kinesis.GetShardIteratorInput{StreamName: name, StreamARN: arn, ShardId: aws.String(shard), ShardIteratorType: start}
			if seq != "" {
				in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(seq)
			}
			out, err := k.client.GetShardIterator(ctx, in)
			if err != nil {
				if !fail(fmt.Errorf("GetShardIterator: %w", err)) {
					return nil
				}
				continue
			}
			iter = out.ShardIterator
		}
		out, err := k.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(k.cfg.MaxRecords), StreamARN: arn})
		if err != nil {
			if apiCode(err) == "ExpiredIteratorException" {
				iter = nil // read again from the last sequence number
				continue
			}
			if !fail(fmt.Errorf("GetRecords: %w", err)) {
				return nil
			}
			continue
		}
		bo.reset()
		if out.MillisBehindLatest != nil {
			k.setBehind(shard, time.Duration(*out.MillisBehindLatest)*time.Millisecond)
		}
		var data []byte // the daemon owns a chunk's Data once emitted
		var newest int64
		for _, r := range out.Records {
			var ts int64
			var err error
			data, ts, err = appendRecordLines(data, r.Data)
			if err != nil {
				err = fmt.Errorf("%s, record %s: %w", pname, aws.ToString(r.SequenceNumber), err)
				k.log.Warn("record skipped", "error", err)
				k.state.fail(err)
			}
			newest = max(newest, ts)
			if newest == 0 && r.ApproximateArrivalTimestamp != nil {
				newest = r.ApproximateArrivalTimestamp.UnixMilli()
			}
		}
		if n := len(out.Records); n > 0 {
			seq = aws.ToString(out.Records[n-1].SequenceNumber)
			pos := Position{Object: shard, Token: seq, Name: pname}
			if len(data) > 0 {
				c := Chunk{Object: shard, Name: pname, Data: data, Header: k.header, Line: line, Position: pos, Arrived: k.now()}
				k.emitMu.Lock()
				err := emit(ctx, c)
				k.emitMu.Unlock()
				if err != nil {
					return err
				}
				line += countLines(data)
			}
			var t time.Time
			if newest > 0 {
				t = time.UnixMilli(newest)
			}
			k.state.read(pos, int64(len(data)), t)
		}
		if out.NextShardIterator == nil {
			k.setBehind(shard, 0)
			k.log.Info("shard closed and read to its end", "shard", shard)
			return nil
		}
		iter = out.NextShardIterator
		if len(out.Records) == 0 || aws.ToInt64(out.MillisBehindLatest) == 0 {
			if !sleep(ctx, k.cfg.PollInterval) {
				return nil
			}
		} else if !sleep(ctx, 200*time.Millisecond) { // at most 5 reads a second per shard
			return nil
		}
	}
}

func (k *kinesisSource) setBehind(shard string, d time.Duration) {
	k.mu.Lock()
	k.behind[shard] = d
	var most time.Duration
	for _, b := range k.behind {
		most = max(most, b)
	}
	k.mu.Unlock()
	k.state.lag(most)
}

// countLines counts the lines in data, which ends with a newline.
func countLines(data []byte) int { return bytes.Count(data, []byte{'\n'}) }
