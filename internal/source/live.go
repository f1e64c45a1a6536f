package source

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// This file is the contract between the daemon (flowguard serve) and its
// live sources: files followed as they grow, S3 listings and notifications,
// CloudWatch Logs, Kinesis, Firehose, Kafka. A live source only moves
// bytes and positions; it does not know what the records are (flow logs
// today, CloudTrail later): the daemon decodes what it yields with the same
// decoders the batch commands use.
//
// The life of a position:
//
//  1. The daemon loads the committed positions of the source from the
//     store and calls Run with them.
//  2. The source yields Chunks in order per object, each carrying the
//     Position the source resumes from once the chunk is processed.
//  3. The daemon decodes and processes the chunks, then saves their
//     positions in the same store transaction as the state they produced
//     (findings, alarm states), so that a crash either keeps both or
//     neither.
//  4. After that transaction commits, the daemon calls Commit with the
//     positions, for sources that must acknowledge remotely (delete an SQS
//     message, commit Kafka offsets). A source must never acknowledge
//     anything before Commit.

// Position is where a source resumes in one of its objects.
type Position struct {
	// Object identifies the object within the source: a file's identity
	// (device, inode and a hash of its first bytes), an S3 key, a
	// CloudWatch log stream, a Kinesis shard, a Kafka topic/partition.
	Object string `json:"object"`
	// Token is the source's own resume token for the object: a byte
	// offset, a next token, a sequence number, a Kafka offset. The daemon
	// stores it and gives it back; only the source reads it.
	Token string `json:"token"`
	// Name is the object as people know it (a path, s3://bucket/key), for
	// GET /api/v1/sources and messages; it is not part of its identity.
	Name string `json:"name,omitempty"`
}

// Chunk is a piece of a source's data, delivered in order per object.
// Exactly one of Data and Open is set.
type Chunk struct {
	// Object, Name: as in Position.
	Object, Name string
	// Data holds complete records (whole lines for text). Once emitted it
	// belongs to the daemon: the source must not change it.
	Data []byte
	// Header is the object's first line when Data starts after it (nil
	// when Data starts the object): it may give Data its meaning, as a
	// flow log file's header line names its fields. The decoder uses it
	// when it is such a header, and never counts it as a record.
	Header []byte
	// Line is the 1-based line number of Data's first line within the
	// object, so that messages about bad lines name the right place.
	Line int
	// Open reads one whole object (a gzip file or an S3 object read whole),
	// for sources that hand over objects rather than bytes. Size is its
	// size, or -1.
	Open func(ctx context.Context) (io.ReadCloser, error)
	Size int64
	// Position is where the source resumes once this chunk is processed.
	Position Position
	// Arrived is when the chunk's bytes reached the source (read from the
	// file, received from the stream): the start of the detection latency.
	Arrived time.Time
}

// Emit hands a chunk to the daemon. It blocks while the daemon is busy
// (back pressure) and returns an error when the daemon stops; the source
// then returns from Run.
type Emit func(ctx context.Context, c Chunk) error

// Live is a source the daemon follows.
type Live interface {
	// Run follows the source, yielding chunks through emit, resuming
	// each object from its position in from (objects not in from are
	// read from their start, or from now, as the source's configuration
	// says). It returns nil when ctx is done, and an error only when the
	// source cannot go on (transient errors are retried and shown in
	// Status).
	Run(ctx context.Context, from []Position, emit Emit) error
	// Commit tells the source that ps are saved with the state their
	// chunks produced. It is called from one goroutine at a time.
	Commit(ctx context.Context, ps []Position) error
	// Status describes the source for GET /api/v1/sources and /readyz.
	Status() Status
}

// Replayer is a Live source that can read again, from their start, the
// objects it still holds (files on disk). The daemon rebuilds its
// in-memory detection state from them after a restart; see docs/daemon.md.
type Replayer interface {
	Live
	// Replayable reports whether Run may be called with from empty to
	// read everything again.
	Replayable() bool
	// Covered reports whether a chunk ending at p lies entirely before
	// the committed token of its object: reading it again changes
	// nothing stored.
	Covered(p Position, committed string) bool
}

// Status is a live source's state, as GET /api/v1/sources shows it.
type Status struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Connected is true once the source has reached its data (listed its
	// paths, connected to its stream); /readyz waits for it.
	Connected bool `json:"connected"`
	// Positions are the positions read so far, one per object followed.
	Positions []Position `json:"positions"`
	// Lag is how far behind the source's newest data the source is (for
	// files: since the last write of bytes not yet read, and LagBytes
	// those bytes; for a stream: the age of the newest record read).
	Lag      time.Duration `json:"-"`
	LagBytes int64         `json:"lag_bytes"`
	// BytesRead and Objects count what the source has read.
	BytesRead int64 `json:"bytes_read"`
	Objects   int   `json:"objects"`
	// LastError is the newest error, "" if none; LastErrorAt is when.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// LiveConfig is one entry of the configuration's sources: list. Name and
// Type are common to all; the rest of the entry is the type's own keys,
// which its Factory reads with Decode.
type LiveConfig struct {
	Name string
	Type string
	// Line and Column are where the entry is in the configuration file.
	Line, Column int
	node         *yaml.Node
}

// UnmarshalYAML reads name and type and keeps the entry for Decode.
func (c *LiveConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a source is a mapping (name:, type:, …)", n.Line)
	}
	c.Line, c.Column, c.node = n.Line, n.Column, n
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "name":
			c.Name = v.Value
		case "type":
			c.Type = v.Value
		}
	}
	if c.Name == "" {
		return fmt.Errorf("line %d: a source needs a name", n.Line)
	}
	if c.Type == "" {
		return fmt.Errorf("line %d: source %q needs a type (%s)", n.Line, c.Name, strings.Join(Types(), ", "))
	}
	return nil
}

// MarshalYAML writes the entry as it was read.
func (c LiveConfig) MarshalYAML() (any, error) {
	if c.node != nil {
		return c.node, nil
	}
	return map[string]string{"name": c.Name, "type": c.Type}, nil
}

// Decode reads the entry's type-specific keys into v, a pointer to a
// struct with yaml tags; name and type are skipped. A key v does not know
// is an error naming its line and column.
func (c LiveConfig) Decode(v any) error {
	if c.node == nil {
		return nil
	}
	known := map[string]bool{"name": true, "type": true}
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	yamlKeys(t, known)
	for i := 0; i+1 < len(c.node.Content); i += 2 {
		k := c.node.Content[i]
		if !known[k.Value] {
			return &KeyError{Line: k.Line, Column: k.Column, Msg: fmt.Sprintf("sources.%s: unknown key %q for a %s source", c.Name, k.Value, c.Type)}
		}
	}
	if err := c.node.Decode(v); err != nil {
		return fmt.Errorf("sources.%s: %w", c.Name, err)
	}
	return nil
}

// yamlKeys adds the yaml keys of struct type t to known, with those of
// the structs it embeds inline (AWSKeys).
func yamlKeys(t reflect.Type, known map[string]bool) {
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case tag == "" && opts == "inline":
			yamlKeys(f.Type, known)
		case tag != "" && tag != "-":
			known[tag] = true
		}
	}
}

// KeyError is a bad key in a source's configuration entry, where it is.
type KeyError struct {
	Line, Column int
	Msg          string
}

// Error names the place and the problem.
func (e *KeyError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// LiveDeps is what a source gets from the daemon.
type LiveDeps struct {
	// Logger is the daemon's logger, already tagged with the source's name.
	Logger *slog.Logger
	// Dir is the configuration file's directory: relative paths in the
	// source's configuration are relative to it.
	Dir string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Factory builds a source from its configuration entry. It checks the
// entry (unknown keys, bad values) and does no I/O.
type Factory func(cfg LiveConfig, deps LiveDeps) (Live, error)

// Registry returns the source types the daemon knows, by their type:
// name in the configuration. A new source type adds its entry here.
func Registry() map[string]Factory {
	return map[string]Factory{
		"files":      NewFilesLive,
		"firehose":   NewFirehose,
		"kinesis":    NewKinesis,
		"s3":         NewS3Live,
		"kafka":      NewKafka,
		"cloudwatch": NewCloudWatch,
		"guardduty":  NewGuardDuty,
	}
}

// Types returns the known source types, sorted.
func Types() []string {
	var ts []string
	for t := range Registry() {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// NewLive builds the source cfg names, by its type.
func NewLive(cfg LiveConfig, deps LiveDeps) (Live, error) {
	f, ok := Registry()[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("line %d: source %q: unknown type %q (known: %s)", cfg.Line, cfg.Name, cfg.Type, strings.Join(Types(), ", "))
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return f(cfg, deps)
}
