// Package respond acts on findings and alarm state changes: it routes them
// to blockers (network ACL deny entries, WAFv2 IP sets) and notifiers (SNS,
// Slack, webhooks, EventBridge, e-mail) through guards, deduplication
// against the action log, and retries, in the manner of Alertmanager's
// notification pipeline. Nothing reaches AWS unless the configuration says
// enforce; every action and every refusal is audited.
package respond

import (
	"context"
	"net/netip"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/finding"
)

// Event is what flows through the pipeline: a new or updated finding, or
// an alarm state change.
type Event struct {
	Finding *finding.Finding   // set for findings
	Alarm   *alarm.StateChange // set for alarm state changes
	// Updated is true when the finding existed before (GuardDuty publishes
	// updates on its own schedule).
	Updated bool
}

// Notifier delivers a message about one or more events (a digest). It
// reports whether a failure is worth retrying (throttling, 5xx, timeouts).
type Notifier interface {
	Name() string
	Notify(ctx context.Context, msg Message) (retry bool, err error)
}

// Message is a rendered notification: subject and bodies in the
// configured language, and the events it is about.
type Message struct {
	Subject string
	Text    string // plain text (SNS, e-mail)
	Events  []Event
	// Link to the dashboard, if the daemon serves one.
	Link string
}

// Block is one address blocked (or to be blocked) somewhere.
type Block struct {
	Prefix    netip.Prefix // a single address is a /32 or /128
	Target    string       // where: "nacl:acl-0123…" or "wafv2:REGIONAL/name/id"
	FindingID string
	Reason    string
	Created   time.Time
	Expires   time.Time
	// RuleNumber is the network ACL entry's rule number, when it is one.
	RuleNumber int32
}

// Blocker adds and removes deny entries for addresses.
type Blocker interface {
	Name() string
	// Block adds the deny; it is idempotent: blocking an address already
	// blocked by flowguard succeeds without a second entry.
	Block(ctx context.Context, b *Block) (retry bool, err error)
	// Unblock removes the deny flowguard added; removing one that is
	// already gone succeeds.
	Unblock(ctx context.Context, b Block) (retry bool, err error)
	// List returns the entries flowguard owns where the blocker writes,
	// to reconcile the store with what AWS actually has.
	List(ctx context.Context) ([]Block, error)
}
