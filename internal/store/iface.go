package store

import (
	"context"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
)

// Detections is what the detection sink needs of a store: commit a
// stream's findings together with its source positions and alarm states
// (StreamCommit), read the positions and alarm states back after a
// restart, keep checkpoints, collect the inputs of a detection window
// that several processes (Lambda invocations) fill at once, and share the
// alarm clock of processes that take turns at the alarms.
type Detections interface {
	AlarmClocks
	CommitStream(ctx context.Context, c StreamCommit) (CommitResult, error)
	LoadPositions(ctx context.Context, source string) ([]Position, error)
	LoadAlarmStates(ctx context.Context) (map[string]AlarmState, error)
	SaveCheckpoint(ctx context.Context, source, position string) error
	LoadCheckpoint(ctx context.Context, source string) (position string, ok bool, err error)
	AddWindowInput(ctx context.Context, window string, in WindowInput) (Window, error)
}

// FindingReader is what the API reads of the findings.
type FindingReader interface {
	GetFinding(ctx context.Context, id string) (finding.Finding, error)
	ListFindings(ctx context.Context, fl finding.Filter) ([]finding.Finding, error)
}

// Interface is a flowguard store as the detection sink, the API and the
// audit trail use it. The SQLite Store and the DynamoDB store
// (internal/store/dynamo) implement it; internal/store/storetest holds the
// contract tests both pass.
type Interface interface {
	Detections
	FindingReader
	Auditor
}

var _ Interface = (*Store)(nil)

// WindowInput is one input of a detection window: Ref names it (an S3
// object "s3://bucket/key", a CloudWatch Logs payload by its first event
// id), so that the same input added twice (a retried invocation, a message
// delivered twice) counts once. Data is the input itself when it cannot be
// read again later (a subscription payload), empty when Ref says where to
// read it.
type WindowInput struct {
	Ref  string `json:"ref"`
	Data []byte `json:"data,omitempty"`
	// Expires is when the store may forget the input (a DynamoDB TTL); a
	// zero time keeps it.
	Expires time.Time `json:"expires,omitzero"`
}

// Window is a detection window's inputs as one AddWindowInput left them.
// Version grows by one with each AddWindowInput: a window read at a higher
// version holds every input one read at a lower version held, so that the
// findings computed from it, committed with StreamCommit.Version, replace
// those of any lower version and are never replaced by them.
type Window struct {
	Name    string
	Version int64
	Inputs  []WindowInput // sorted by Ref
}
