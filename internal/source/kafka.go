package source

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// KafkaConfig is the configuration of a kafka source: topics read in a
// consumer group, so that several flowguard processes share partitions.
type KafkaConfig struct {
	// Brokers are the seed brokers, host:port (required).
	Brokers []string `yaml:"brokers,flow"`
	// Topics are the topics to read (required).
	Topics []string `yaml:"topics,flow"`
	// Group is the consumer group (default "flowguard").
	Group string `yaml:"group"`
	// Start is where partitions the group has no offset for are read
	// from: oldest (the default) or latest.
	Start string `yaml:"start"`
	// TLS connects to the brokers over TLS.
	TLS bool `yaml:"tls"`
	// SASLMechanism authenticates: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	// ("" for none), as SASLUsername with the password in
	// SASLPasswordFile.
	SASLMechanism    string `yaml:"sasl_mechanism"`
	SASLUsername     string `yaml:"sasl_username"`
	SASLPasswordFile string `yaml:"sasl_password_file"`
	// Format is the flow log format of the records, in AWS's ${field}
	// syntax; "" is the default format.
	Format string `yaml:"format"`
}

// NewKafka builds a kafka source.
func NewKafka(cfg LiveConfig, deps LiveDeps) (Live, error) {
	var kc KafkaConfig
	if err := cfg.Decode(&kc); err != nil {
		return nil, err
	}
	where := "sources." + cfg.Name
	if len(kc.Brokers) == 0 || len(kc.Topics) == 0 {
		return nil, fmt.Errorf("%s: a kafka source needs brokers and topics", where)
	}
	if kc.Group == "" {
		kc.Group = "flowguard"
	}
	switch kc.Start {
	case "":
		kc.Start = "oldest"
	case "oldest", "latest":
	default:
		return nil, fmt.Errorf("%s: start is oldest or latest, not %q", where, kc.Start)
	}
	switch kc.SASLMechanism {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if kc.SASLUsername == "" || kc.SASLPasswordFile == "" {
			return nil, fmt.Errorf("%s: sasl_mechanism needs sasl_username and sasl_password_file", where)
		}
		if !filepath.IsAbs(kc.SASLPasswordFile) {
			kc.SASLPasswordFile = filepath.Join(deps.Dir, kc.SASLPasswordFile)
		}
	default:
		return nil, fmt.Errorf("%s: sasl_mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, not %q", where, kc.SASLMechanism)
	}
	base, err := newLiveBase(cfg, kc.Format, deps)
	if err != nil {
		return nil, err
	}
	return &kafkaSource{liveBase: base, cfg: kc}, nil
}

type kafkaSource struct {
	liveBase
	cfg KafkaConfig

	mu     sync.Mutex
	client *kgo.Client
	next   map[string]int64 // next offset to read, by topic/partition: saved or emitted
}

func kafkaObject(topic string, partition int32) string {
	return topic + "/" + strconv.Itoa(int(partition))
}

func parseKafkaObject(o string) (string, int32, bool) {
	i := strings.LastIndexByte(o, '/')
	if i < 0 {
		return "", 0, false
	}
	p, err := strconv.ParseInt(o[i+1:], 10, 32)
	return o[:i], int32(p), err == nil
}

// Run joins the consumer group and reads the partitions it is given until
// ctx is done.
func (k *kafkaSource) Run(ctx context.Context, from []Position, emit Emit) error {
	k.mu.Lock()
	k.next = map[string]int64{}
	for _, p := range from {
		if off, err := strconv.ParseInt(p.Token, 10, 64); err == nil {
			k.next[p.Object] = off
		}
	}
	k.mu.Unlock()
	reset := kgo.NewOffset().AtStart()
	if k.cfg.Start == "latest" {
		reset = kgo.NewOffset().AtEnd()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(k.cfg.Brokers...),
		kgo.ConsumerGroup(k.cfg.Group),
		kgo.ConsumeTopics(k.cfg.Topics...),
		kgo.DisableAutoCommit(), // offsets are committed once the daemon has saved
		kgo.ConsumeResetOffset(reset),
		kgo.AdjustFetchOffsetsFn(k.adjust),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			k.log.Info("kafka partitions assigned", "partitions", m)
			k.state.connected()
		}),
		kgo.WithLogger(kgoLogger{k}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			k.log.Info("kafka partitions revoked", "partitions", m)
		}),
	}
	if k.cfg.TLS {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	if k.cfg.SASLMechanism != "" {
		pw, err := os.ReadFile(k.cfg.SASLPasswordFile)
		if err != nil {
			return fmt.Errorf("cannot read the SASL password: %w", err)
		}
		pass := strings.TrimRight(string(pw), "\r\n")
		switch k.cfg.SASLMechanism {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: k.cfg.SASLUsername, Pass: pass}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: k.cfg.SASLUsername, Pass: pass}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: k.cfg.SASLUsername, Pass: pass}.AsSha512Mechanism()))
		}
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("cannot create the Kafka client: %w", err)
	}
	k.mu.Lock()
	k.client = cl
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.client = nil
		k.mu.Unlock()
		cl.Close() // leaves the group: its partitions go to the other members
	}()
	lines := map[string]int{}
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			err = fmt.Errorf("kafka %s: %w", kafkaObject(topic, p), err)
			k.log.Warn("kafka", "error", err)
			k.state.fail(err)
		})
		var emitErr error
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if emitErr != nil || len(p.Records) == 0 {
				return
			}
			obj := kafkaObject(p.Topic, p.Partition)
			var data []byte // the daemon owns a chunk's Data once emitted
			var newest time.Time
			for _, r := range p.Records {
				var ts int64
				var err error
				data, ts, err = appendRecordLines(data, r.Value)
				if err != nil {
					err = fmt.Errorf("kafka %s, offset %d: %w", obj, r.Offset, err)
					k.log.Warn("record skipped", "error", err)
					k.state.fail(err)
				}
				t := r.Timestamp
				if ts > 0 {
					t = time.UnixMilli(ts)
				}
				if t.After(newest) {
					newest = t
				}
			}
			last := p.Records[len(p.Records)-1].Offset
			pos := Position{Object: obj, Token: strconv.FormatInt(last+1, 10), Name: "kafka://" + obj}
			k.mu.Lock()
			k.next[obj] = last + 1
			k.mu.Unlock()
			if len(data) > 0 {
				if lines[obj] == 0 {
					lines[obj] = 1
				}
				if err := emit(ctx, Chunk{Object: obj, Name: pos.Name, Data: data, Header: k.header, Line: lines[obj], Position: pos, Arrived: k.now()}); err != nil {
					emitErr = err
					return
				}
				lines[obj] += countLines(data)
			}
			k.state.read(pos, int64(len(data)), newest)
		})
		if emitErr != nil {
			if ctx.Err() != nil {
				return nil
			}
			return emitErr
		}
	}
}

// adjust starts each assigned partition after the newer of the group's
// committed offset and the offset this process saved: the group's when
// another member went further, the saved one when this process saved its
// work and stopped before committing it to Kafka.
func (k *kafkaSource) adjust(_ context.Context, m map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for topic, parts := range m {
		for p, off := range parts {
			saved, ok := k.next[kafkaObject(topic, p)]
			if !ok {
				continue
			}
			if eo := off.EpochOffset(); eo.Offset < 0 || eo.Offset < saved {
				parts[p] = kgo.NewOffset().At(saved).WithEpoch(-1)
			}
		}
	}
	return m, nil
}

// Commit commits the saved offsets to the consumer group.
func (k *kafkaSource) Commit(ctx context.Context, ps []Position) error {
	k.mu.Lock()
	cl := k.client
	k.mu.Unlock()
	if cl == nil {
		return nil // stopped: the next start resumes from the saved positions
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, p := range ps {
		topic, part, ok := parseKafkaObject(p.Object)
		off, err := strconv.ParseInt(p.Token, 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("kafka: bad position %q %q", p.Object, p.Token)
		}
		if offsets[topic] == nil {
			offsets[topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[topic][part] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	var cerr error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
					cerr = fmt.Errorf("%s: %w", kafkaObject(t.Topic, p.Partition), e)
				}
			}
		}
	})
	if cerr != nil {
		// Not fatal: the offsets are saved; another member reading this
		// partition after a rebalance may read these records again.
		cerr = fmt.Errorf("cannot commit Kafka offsets: %w", cerr)
		k.state.fail(cerr)
		k.log.Warn("kafka", "error", cerr)
	}
	return nil
}

// kgoLogger passes franz-go's warnings and errors to the daemon's logger,
// and shows those that carry an error as the source's last error. A
// failed connection (refused login, unreachable broker) is logged by
// franz-go at debug level and retried without end: it is taken up too.
type kgoLogger struct{ k *kafkaSource }

func (kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelWarn
	switch {
	case level == kgo.LogLevelError:
		lv = slog.LevelError
	case level == kgo.LogLevelWarn:
	case msg == "connection initialization failed":
	default:
		return
	}
	l.k.log.Log(context.Background(), lv, "kafka: "+msg, keyvals...)
	for i := 0; i+1 < len(keyvals); i += 2 {
		if err, ok := keyvals[i+1].(error); ok && !errors.Is(err, context.Canceled) {
			l.k.state.fail(fmt.Errorf("kafka: %s: %w", msg, err))
			return
		}
	}
}
