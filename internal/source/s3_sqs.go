package source

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// sqsObject is the position object of an s3 source fed by notifications.
const sqsObject = "sqs"

// sqsRecent is how many announced objects an s3 source remembers, to
// recognise redeliveries of messages whose objects are already saved.
const sqsRecent = 2048

// sqsState is the s3 source's notification bookkeeping: the messages
// received and not yet deleted, each waiting for the chunk sequence
// number that covers it to be committed.
type sqsState struct {
	mu        sync.Mutex
	seq       uint64 // chunks emitted by this run
	committed uint64 // highest committed
	inflight  []*sqsMessage
	recent    *recentIDs
}

type sqsMessage struct {
	receipt  string
	id       string
	seq      uint64    // delete once this chunk is committed
	extended time.Time // last time its visibility was set
}

// s3Notification is the part of a notification the source reads: S3's
// own event (possibly inside an SNS envelope), S3's test event, or an
// EventBridge "Object Created" event.
type s3Notification struct {
	Records []struct {
		EventName string     `json:"eventName"`
		S3        s3EventRef `json:"s3"`
	} `json:"Records"`
	Event string `json:"Event"` // s3:TestEvent
	// SNS envelope.
	Type    string `json:"Type"`
	Message string `json:"Message"`
	// EventBridge.
	DetailType string     `json:"detail-type"`
	Detail     s3EventRef `json:"detail"`
}

// s3EventRef is the bucket and object an S3 event names, in S3's own
// events ("s3") and in EventBridge's ("detail", where eTag is etag).
type s3EventRef struct {
	Bucket struct {
		Name string `json:"name"`
	} `json:"bucket"`
	Object struct {
		Key       string `json:"key"`
		Size      int64  `json:"size"`
		Sequencer string `json:"sequencer"`
		ETag      string `json:"eTag"`
	} `json:"object"`
}

// s3Created is an object a notification announces.
type s3Created struct {
	bucket, key, id string
	size            int64
}

// parseNotification returns the objects a message says were created;
// test events and other events announce none.
func parseNotification(body string) ([]s3Created, error) {
	var n s3Notification
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		return nil, fmt.Errorf("not an S3 event notification: %w", err)
	}
	if n.Type == "Notification" && n.Message != "" { // S3 → SNS → SQS
		return parseNotification(n.Message)
	}
	var out []s3Created
	add := func(bucket, key, seq string, size int64) error {
		// S3 URL-encodes keys in notifications, spaces as '+'.
		k, err := url.QueryUnescape(key)
		if err != nil {
			return fmt.Errorf("bad object key %q in notification: %w", key, err)
		}
		out = append(out, s3Created{bucket: bucket, key: k, size: size, id: bucket + "/" + k + "@" + seq})
		return nil
	}
	switch {
	case n.Event == "s3:TestEvent":
	case n.DetailType == "Object Created":
		if err := add(n.Detail.Bucket.Name, url.QueryEscape(n.Detail.Object.Key), n.Detail.Object.Sequencer, n.Detail.Object.Size); err != nil {
			return nil, err
		}
	case n.Records != nil:
		for _, r := range n.Records {
			if !strings.HasPrefix(r.EventName, "ObjectCreated:") {
				continue
			}
			o := r.S3.Object
			seq := o.Sequencer
			if seq == "" {
				seq = o.ETag
			}
			if err := add(r.S3.Bucket.Name, o.Key, seq, o.Size); err != nil {
				return nil, err
			}
		}
	case n.DetailType != "":
	default:
		return nil, fmt.Errorf("not an S3 event notification (no Records)")
	}
	return out, nil
}

// runSQS receives notifications and hands each announced object under
// the URL's prefix to the daemon; messages are deleted by Commit once
// their objects are saved.
func (s *s3Live) runSQS(ctx context.Context, from []Position, emit Emit) error {
	q := &sqsState{recent: newRecentIDs(sqsRecent)}
	for _, p := range from {
		if p.Object != sqsObject {
			continue
		}
		t, err := parseAckToken(p.Token)
		if err != nil {
			return err
		}
		for _, id := range t.Recent {
			q.recent.add(id)
		}
	}
	s.q = q
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { s.extendVisibility(ctx) })
	bo := backoff{min: time.Second, max: time.Minute}
	vis := int32(s.cfg.VisibilityTimeout / time.Second)
	for {
		out, err := s.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(s.cfg.SQSQueueURL),
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     int32(s.cfg.WaitTime / time.Second),
			VisibilityTimeout:   vis,
		})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			err = fmt.Errorf("cannot receive from %s: %w", s.cfg.SQSQueueURL, err)
			if !s.retry(ctx, &bo, err) {
				return nil
			}
			continue
		}
		bo.reset()
		s.state.connected()
		// Every message received is kept hidden from now on, also while
		// the ones before it are processed.
		msgs := make([]*sqsMessage, len(out.Messages))
		q.mu.Lock()
		for i, m := range out.Messages {
			msgs[i] = &sqsMessage{receipt: aws.ToString(m.ReceiptHandle), id: aws.ToString(m.MessageId), seq: notYet, extended: s.now()}
			q.inflight = append(q.inflight, msgs[i])
		}
		q.mu.Unlock()
		for i, m := range out.Messages {
			if err := s.handleMessage(ctx, q, m, msgs[i], emit); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// handleMessage emits the new objects a message announces and keeps the
// message until their chunks are committed. A message that cannot be
// read is left in the queue (its redrive policy moves it to a dead-letter
// queue), and reported.
func (s *s3Live) handleMessage(ctx context.Context, q *sqsState, m sqstypes.Message, msg *sqsMessage, emit Emit) error {
	mid := msg.id
	objs, err := parseNotification(aws.ToString(m.Body))
	if err != nil {
		err = fmt.Errorf("SQS message %s: %w", mid, err)
		s.state.fail(err)
		s.log.Warn("s3 notification left in the queue", "error", err)
		q.mu.Lock()
		q.inflight = slices.DeleteFunc(q.inflight, func(x *sqsMessage) bool { return x == msg })
		q.mu.Unlock()
		return nil
	}
	mine := false // announces objects of this source, new or already read
	for _, o := range objs {
		if o.bucket != s.bucket || !strings.HasPrefix(o.key, s.prefix) || strings.HasSuffix(o.key, "/") {
			s.log.Debug("notification for an object outside the source's prefix", "bucket", o.bucket, "key", o.key)
			continue
		}
		q.mu.Lock()
		dup := q.recent.has(o.id)
		q.mu.Unlock()
		mine = true
		if dup {
			s.log.Info("object already processed: notification delivered again", "key", o.key, "message", mid)
			continue
		}
		q.mu.Lock()
		q.seq++
		q.recent.add(o.id)
		pos := Position{Object: sqsObject, Token: q.recent.token(q.seq), Name: s.cfg.SQSQueueURL}
		q.mu.Unlock()
		if err := emit(ctx, s.chunk(o.key, o.size, pos)); err != nil {
			return err
		}
		s.state.read(pos, o.size, time.Time{})
	}
	// The message goes once everything emitted so far is committed: its
	// own objects, or, for a redelivery, the earlier chunk that may still
	// be in flight. A message about nothing of ours goes now.
	q.mu.Lock()
	msg.seq = 0
	if mine {
		msg.seq = q.seq
	}
	ready := msg.seq <= q.committed
	if ready {
		q.inflight = slices.DeleteFunc(q.inflight, func(x *sqsMessage) bool { return x == msg })
	}
	q.mu.Unlock()
	if ready {
		s.deleteMessages(ctx, []*sqsMessage{msg})
	}
	return nil
}

// notYet is the seq of a message still being handled: not deletable.
const notYet = ^uint64(0)

// commitSQS deletes the messages whose chunks are saved.
func (s *s3Live) commitSQS(ctx context.Context, ps []Position) error {
	q := s.q
	var upto uint64
	for _, p := range ps {
		if p.Object != sqsObject {
			continue
		}
		t, err := parseAckToken(p.Token)
		if err != nil {
			return err
		}
		upto = max(upto, t.Seq)
	}
	q.mu.Lock()
	q.committed = max(q.committed, upto)
	var del []*sqsMessage
	keep := q.inflight[:0]
	for _, m := range q.inflight {
		if m.seq <= q.committed {
			del = append(del, m)
		} else {
			keep = append(keep, m)
		}
	}
	q.inflight = keep
	q.mu.Unlock()
	s.deleteMessages(ctx, del)
	return nil
}

// deleteMessages deletes messages ten at a time. A failed delete is only
// reported: the message comes back and is recognised as processed.
func (s *s3Live) deleteMessages(ctx context.Context, ms []*sqsMessage) {
	for len(ms) > 0 {
		n := min(len(ms), 10)
		var entries []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range ms[:n] {
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.receipt)})
		}
		out, err := s.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(s.cfg.SQSQueueURL), Entries: entries})
		if err == nil && len(out.Failed) > 0 {
			err = fmt.Errorf("%d of %d failed, first: %s %s", len(out.Failed), n, aws.ToString(out.Failed[0].Code), aws.ToString(out.Failed[0].Message))
		}
		if err != nil {
			err = fmt.Errorf("cannot delete SQS messages: %w", err)
			s.warn(err)
		}
		ms = ms[n:]
	}
}

// extendVisibility keeps the messages whose objects are still being
// processed hidden, renewing their visibility timeout at half its length,
// so that a large object is not handed to another reader meanwhile.
func (s *s3Live) extendVisibility(ctx context.Context) {
	vis := s.cfg.VisibilityTimeout
	tick := time.NewTicker(max(vis/4, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		q := s.q
		now := s.now()
		q.mu.Lock()
		var due []*sqsMessage
		for _, m := range q.inflight {
			if now.Sub(m.extended) >= vis/2 {
				m.extended = now
				due = append(due, m)
			}
		}
		q.mu.Unlock()
		for _, m := range due {
			_, err := s.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(s.cfg.SQSQueueURL), ReceiptHandle: aws.String(m.receipt), VisibilityTimeout: int32(vis / time.Second),
			})
			if err != nil && ctx.Err() == nil {
				err = fmt.Errorf("cannot extend the visibility of SQS message %s: %w", m.id, err)
				s.warn(err)
			}
		}
	}
}
