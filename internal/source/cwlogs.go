package source

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// Subscription is the payload a CloudWatch Logs subscription filter
// delivers to Kinesis, Firehose and Lambda: gzip-compressed JSON.
type Subscription struct {
	// MessageType is DATA_MESSAGE for log events, CONTROL_MESSAGE for the
	// checks CloudWatch Logs sends to see that the destination is
	// reachable.
	MessageType         string   `json:"messageType"`
	Owner               string   `json:"owner"`
	LogGroup            string   `json:"logGroup"`
	LogStream           string   `json:"logStream"`
	SubscriptionFilters []string `json:"subscriptionFilters"`
	LogEvents           []struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"` // milliseconds since the epoch
		Message   string `json:"message"`
	} `json:"logEvents"`
}

// isGzip reports whether p starts with gzip's magic bytes.
func isGzip(p []byte) bool { return len(p) >= 2 && p[0] == 0x1f && p[1] == 0x8b }

var gzipReaders sync.Pool

// maxSubscriptionBytes bounds a decompressed subscription payload: AWS
// caps the compressed records at 1 MB (Kinesis) and the events at 1 MB a
// batch, so anything far bigger is not one.
const maxSubscriptionBytes = 64 << 20

// ParseSubscription decodes one gzip-compressed subscription payload.
func ParseSubscription(data []byte) (*Subscription, error) {
	var buf bytes.Buffer
	if err := gunzip(&buf, data); err != nil {
		return nil, err
	}
	var s Subscription
	if err := json.NewDecoder(&buf).Decode(&s); err != nil {
		return nil, fmt.Errorf("not a CloudWatch Logs subscription payload: %w", err)
	}
	if s.MessageType != "DATA_MESSAGE" && s.MessageType != "CONTROL_MESSAGE" {
		return nil, fmt.Errorf("not a CloudWatch Logs subscription payload: messageType %q", s.MessageType)
	}
	return &s, nil
}

// appendRecordLines appends to dst, as text lines, the records in one blob
// a stream delivered (a Kinesis or Kafka record, a Firehose record): the
// messages of a subscription payload's log events (empty ones left out),
// none for a CONTROL_MESSAGE, or else the blob itself, taken as flow log
// lines. It returns the newest event time it saw (milliseconds, 0 if
// none).
func appendRecordLines(dst, data []byte) ([]byte, int64, error) {
	if !isGzip(data) {
		if len(data) == 0 {
			return dst, 0, nil
		}
		dst = append(dst, data...)
		if data[len(data)-1] != '\n' {
			dst = append(dst, '\n')
		}
		return dst, 0, nil
	}
	buf := plainBufs.Get().(*bytes.Buffer)
	defer plainBufs.Put(buf)
	buf.Reset()
	if err := gunzip(buf, data); err != nil {
		return dst, 0, err
	}
	mark := len(dst)
	dst, typ, newest, err := scanSubscription(dst, buf.Bytes())
	if err == nil && typ != "DATA_MESSAGE" && typ != "CONTROL_MESSAGE" {
		err = fmt.Errorf("not a CloudWatch Logs subscription payload: messageType %q", typ)
	}
	if err != nil {
		return dst[:mark], 0, err
	}
	return dst, newest, nil
}

var plainBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// gunzip decompresses data into buf, up to maxSubscriptionBytes.
func gunzip(buf *bytes.Buffer, data []byte) error {
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(data))
	} else {
		err = zr.Reset(bytes.NewReader(data))
	}
	if err != nil {
		return fmt.Errorf("not a CloudWatch Logs subscription payload: %w", err)
	}
	defer gzipReaders.Put(zr)
	n, err := buf.ReadFrom(io.LimitReader(zr, maxSubscriptionBytes+1))
	if err != nil {
		return fmt.Errorf("not a CloudWatch Logs subscription payload: %w", err)
	}
	if n > maxSubscriptionBytes {
		return fmt.Errorf("not a CloudWatch Logs subscription payload: more than %d bytes decompressed", maxSubscriptionBytes)
	}
	return nil
}

// appendLine appends one log event's message as one line: a message never
// spans lines, so embedded line breaks become spaces.
func appendLine(dst []byte, msg string) []byte {
	if !strings.ContainsAny(msg, "\r\n") {
		return append(append(dst, msg...), '\n')
	}
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c == '\n' || c == '\r' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '\n')
}
