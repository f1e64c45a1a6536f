package source

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// This file holds what the stream sources (s3, cloudwatch, kinesis,
// firehose, kafka) share: their status bookkeeping, retry back-off, the
// header that gives headerless records their format, and the bounded set of
// recent ids that makes redelivery harmless.

// liveBase is what every stream source keeps besides its configuration:
// the header its headerless records are read with, its logger, its clock
// and its status. A source embeds it, and with it the Status method.
type liveBase struct {
	kind   string // the source's type, the message of its warnings
	header []byte // nil: the default format
	log    *slog.Logger
	now    func() time.Time
	state  *liveState
}

// newLiveBase builds the base of the source cfg names, its records in
// format (AWS's ${field} syntax; "" is the default format).
func newLiveBase(cfg LiveConfig, format string, deps LiveDeps) (liveBase, error) {
	header, err := formatHeader(cfg.Name, format)
	if err != nil {
		return liveBase{}, err
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	return liveBase{kind: cfg.Type, header: header, log: deps.Logger, now: now, state: newLiveState(cfg.Name, cfg.Type, now)}, nil
}

// Status returns the source's status.
func (b *liveBase) Status() Status { return b.state.status() }

// warn records err as the source's last error and logs it.
func (b *liveBase) warn(err error) {
	b.state.fail(err)
	b.log.Warn(b.kind, "error", err)
}

// retry warns of err and waits bo's next back-off; false: ctx is done.
func (b *liveBase) retry(ctx context.Context, bo *backoff, err error) bool {
	b.warn(err)
	return bo.wait(ctx)
}

// liveState is a live source's Status, kept up to date under a lock by
// the source's goroutines and copied out by Status.
type liveState struct {
	mu  sync.Mutex
	st  Status
	pos map[string]Position
	now func() time.Time
}

func newLiveState(name, typ string, now func() time.Time) *liveState {
	if now == nil {
		now = time.Now
	}
	return &liveState{st: Status{Name: name, Type: typ}, pos: map[string]Position{}, now: now}
}

// connected records that the source has reached its data.
func (s *liveState) connected() {
	s.mu.Lock()
	s.st.Connected = true
	s.mu.Unlock()
}

// fail records err as the newest error.
func (s *liveState) fail(err error) {
	s.mu.Lock()
	s.st.LastError, s.st.LastErrorAt = err.Error(), s.now()
	s.mu.Unlock()
}

// read records that a chunk of n bytes was read up to p; newest is the
// time of the newest record read (zero when unknown), from which Lag is
// computed.
func (s *liveState) read(p Position, n int64, newest time.Time) {
	s.mu.Lock()
	s.pos[p.Object] = p
	s.st.BytesRead += n
	s.st.Objects = len(s.pos)
	if !newest.IsZero() {
		s.st.Lag = max(s.now().Sub(newest), 0)
	}
	s.mu.Unlock()
}

// lag sets Lag directly, for sources whose service reports it (Kinesis's
// MillisBehindLatest).
func (s *liveState) lag(d time.Duration) {
	s.mu.Lock()
	s.st.Lag = d
	s.mu.Unlock()
}

// status returns a copy of the status, positions sorted by object.
func (s *liveState) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Positions = make([]Position, 0, len(s.pos))
	for _, k := range slices.Sorted(maps.Keys(s.pos)) {
		st.Positions = append(st.Positions, s.pos[k])
	}
	return st
}

// backoff is an exponential retry delay, from min doubling up to max.
type backoff struct {
	min, max, cur time.Duration
}

// wait sleeps the next delay and reports false when ctx is done first.
func (b *backoff) wait(ctx context.Context) bool {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return sleep(ctx, b.cur)
}

// reset starts the delays from min again after a success.
func (b *backoff) reset() { b.cur = 0 }

// sleep waits d and reports false when ctx is done first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// formatHeader returns the header line that gives headerless records (a
// CloudWatch Logs event, a Firehose or Kafka record) the flow log format
// spec names, in AWS's ${field} syntax; "" means the default format, and
// no header.
func formatHeader(source, spec string) ([]byte, error) {
	if spec == "" {
		return nil, nil
	}
	f, err := flowlog.ParseFormat(spec)
	if err != nil {
		return nil, fmt.Errorf("sources.%s: format: %w", source, err)
	}
	return []byte(f.Header() + "\n"), nil
}

// recentIDs is a bounded set of the newest ids seen (Firehose request ids,
// S3 objects announced over SQS), oldest forgotten first. Kept in a
// source's position, it lets a restarted source recognise a redelivery of
// something already processed.
type recentIDs struct {
	max int
	ids []string
	set map[string]bool
}

func newRecentIDs(max int) *recentIDs { return &recentIDs{max: max, set: map[string]bool{}} }

func (r *recentIDs) has(id string) bool { return r.set[id] }

func (r *recentIDs) add(id string) {
	if r.set[id] {
		return
	}
	r.ids = append(r.ids, id)
	r.set[id] = true
	if len(r.ids) > r.max {
		delete(r.set, r.ids[0])
		r.ids = slices.Delete(r.ids, 0, 1)
	}
}

// ackToken is the position token of the sources that acknowledge by
// sequence (firehose, s3 over SQS): Seq counts the chunks emitted by this
// run, and Recent lists the ids already processed.
type ackToken struct {
	Seq    uint64   `json:"seq"`
	Recent []string `json:"recent"`
}

func (r *recentIDs) token(seq uint64) string {
	b, _ := json.Marshal(ackToken{Seq: seq, Recent: r.ids})
	return string(b)
}

// parseAckToken reads a token written by recentIDs.token; "" is a token of
// nothing.
func parseAckToken(s string) (ackToken, error) {
	var t ackToken
	if s == "" {
		return t, nil
	}
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return t, fmt.Errorf("bad position token %.40q: %w", s, err)
	}
	return t, nil
}
