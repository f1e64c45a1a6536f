package notify

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/respond"
)

// PutEvents limits: 10 entries per call, entries under 256 KB (sizes as
// AWS counts them: Time 14 bytes, the rest by UTF-8 length).
const (
	ebMaxEntries = 10
	ebMaxSize    = 256*1024 - 1
	ebAttempts   = 3 // tries for failed entries within one Notify
)

// Detail types of the events flowguard puts.
const (
	DetailTypeGuardDutyFinding = "GuardDuty Finding"
	DetailTypeFlowguardFinding = "Flowguard Finding"
	DetailTypeAlarm            = "Flowguard Alarm State Change"
)

// EventBridge puts one event per finding (shaped like GuardDuty's
// finding event, so rules written for GuardDuty can match it) and one per
// alarm state change.
type EventBridge struct {
	name       string
	bus        string
	source     string
	detailType string
	account    string
	region     string
	client     *eventbridge.Client
	creds      *capturingProvider
	opts       Options
	backoff    time.Duration

	mu   sync.Mutex
	sent map[[32]byte]time.Time // entries accepted recently, so a retried digest skips them
}

// NewEventBridge returns an EventBridge notifier. SDK retries are off;
// failed entries are retried within Notify (only those), and the pipeline
// retries the rest when Notify says so.
func NewEventBridge(c EventBridgeConfig, awsCfg aws.Config, opts Options) (*EventBridge, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("notify: eventbridge %q: %w", c.Name, err)
	}
	creds := &capturingProvider{inner: awsCfg.Credentials}
	cfg := awsCfg.Copy()
	cfg.Credentials = creds
	client := eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) {
		if c.Region != "" {
			o.Region = c.Region
		}
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.Retryer = aws.NopRetryer{}
		if opts.HTTPClient != nil {
			o.HTTPClient = opts.HTTPClient
		}
	})
	e := &EventBridge{
		name: c.Name, bus: c.EventBus, source: c.Source, account: c.AccountID,
		region: c.Region, client: client, creds: creds, opts: opts,
		backoff: 200 * time.Millisecond, sent: map[[32]byte]time.Time{},
	}
	if e.region == "" {
		e.region = awsCfg.Region
	}
	if e.source == "" {
		e.source = "flowguard"
	}
	e.detailType = DetailTypeFlowguardFinding
	if c.DetailType == DetailTypeGuardDuty {
		e.detailType = DetailTypeGuardDutyFinding
	}
	return e, nil
}

// Name is the notifier's name from the config.
func (e *EventBridge) Name() string { return e.name }

// Notify puts the events, at most 10 per call and under 256 KB per call.
// Entries that fail with a retryable code (throttling, internal failure)
// are retried alone, a few times with backoff; entries EventBridge
// accepted are remembered for an hour, so a digest the pipeline retries
// does not put them twice.
func (e *EventBridge) Notify(ctx context.Context, msg respond.Message) (bool, error) {
	log := e.opts.logger().With("notifier", e.name, "kind", "eventbridge")
	now := e.opts.now()
	var pending []types.PutEventsRequestEntry
	var errs []string
	for _, ev := range msg.Events {
		entry, err := e.entry(ev, now)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if e.wasSent(entry, now) {
			continue
		}
		pending = append(pending, entry)
	}
	retry := false
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(e.backoff << (attempt - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return true, e.fail(log, fmt.Sprintf("%d entries not put", len(pending)), ctx.Err())
			case <-t.C:
			}
		}
		var again []types.PutEventsRequestEntry
		var lastErr error
		for _, batch := range batches(pending) {
			failed, refused, callErr := e.put(ctx, batch, now)
			errs = append(errs, refused...)
			if callErr != nil {
				if !awsRetryable(callErr) {
					return false, e.fail(log, "put events", callErr)
				}
				lastErr = callErr
			}
			again = append(again, failed...)
		}
		pending = again
		if len(pending) > 0 && attempt+1 == ebAttempts {
			retry = true
			if lastErr == nil {
				lastErr = fmt.Errorf("%d entries still failing after %d attempts", len(pending), ebAttempts)
			}
			return retry, e.fail(log, "put events", lastErr)
		}
	}
	if len(errs) > 0 {
		err := fmt.Errorf("eventbridge %s: %s", e.name, strings.Join(errs, "; "))
		log.Warn("notification incomplete", "error", err.Error())
		return false, err
	}
	log.Info("notification sent", "events", len(msg.Events))
	return false, nil
}

// put sends one batch and returns the entries to try again: the whole
// batch after a retryable call error, else the entries that failed with
// a retryable code. Entries refused for good are described in refused.
func (e *EventBridge) put(ctx context.Context, batch []types.PutEventsRequestEntry, now time.Time) (again []types.PutEventsRequestEntry, refused []string, err error) {
	out, err := e.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: batch})
	if err != nil {
		return batch, nil, err
	}
	for i, r := range out.Entries {
		if i >= len(batch) {
			break
		}
		code := aws.ToString(r.ErrorCode)
		switch {
		case code == "" && r.EventId != nil:
			e.markSent(batch[i], now)
		case code == "ThrottlingException" || code == "InternalFailure" || code == "InternalException" || code == "ServiceUnavailable":
			again = append(again, batch[i])
		default:
			refused = append(refused, "event refused: "+code+": "+newScrubber(e.creds.secrets()...).clean(aws.ToString(r.ErrorMessage)))
		}
	}
	// Fewer results than entries: treat the missing ones as failed.
	if len(out.Entries) < len(batch) {
		again = append(again, batch[len(out.Entries):]...)
	}
	return again, refused, nil
}

func (e *EventBridge) fail(log interface {
	Warn(string, ...any)
}, what string, err error) error {
	ne := newScrubber(e.creds.secrets()...).fail("eventbridge "+e.name+": "+what, err)
	log.Warn("notification failed", "error", ne.Error())
	return ne
}

func entryKey(en types.PutEventsRequestEntry) [32]byte {
	return sha256.Sum256([]byte(aws.ToString(en.Source) + "\x00" + aws.ToString(en.DetailType) + "\x00" + aws.ToString(en.Detail)))
}

func (e *EventBridge) wasSent(en types.PutEventsRequestEntry, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.sent[entryKey(en)]
	return ok && now.Sub(t) < time.Hour
}

func (e *EventBridge) markSent(en types.PutEventsRequestEntry, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.sent) > 10000 {
		for k, t := range e.sent {
			if now.Sub(t) >= time.Hour {
				delete(e.sent, k)
			}
		}
	}
	e.sent[entryKey(en)] = now
}

// entrySize is an entry's size as AWS counts it.
func entrySize(en types.PutEventsRequestEntry) int {
	n := len(aws.ToString(en.Source)) + len(aws.ToString(en.DetailType)) + len(aws.ToString(en.Detail))
	if en.Time != nil {
		n += 14
	}
	for _, r := range en.Resources {
		n += len(r)
	}
	return n
}

// batches groups entries into calls of at most 10 entries and under
// 256 KB in total.
func batches(entries []types.PutEventsRequestEntry) [][]types.PutEventsRequestEntry {
	var out [][]types.PutEventsRequestEntry
	var cur []types.PutEventsRequestEntry
	size := 0
	for _, en := range entries {
		s := entrySize(en)
		if len(cur) == ebMaxEntries || (len(cur) > 0 && size+s > ebMaxSize) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, en)
		size += s
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// entry builds the event for one finding or alarm change. An event over
// the size limit loses its description, then fails.
func (e *EventBridge) entry(ev respond.Event, now time.Time) (types.PutEventsRequestEntry, error) {
	var detail any
	dt := e.detailType
	var ts time.Time
	switch {
	case ev.Finding != nil:
		gd := GuardDutyDetail(ev.Finding, e.account, e.region)
		detail, ts = gd, ev.Finding.LastSeen
		b, err := json.Marshal(gd)
		if err == nil && len(b)+len(e.source)+len(dt)+14 > ebMaxSize {
			gd.Description = ""
			gd.Service.AdditionalInfo = nil
		}
	case ev.Alarm != nil:
		a := ev.Alarm
		dt = DetailTypeAlarm
		ts = a.Time
		detail = map[string]any{
			"alarmName":     a.Alarm,
			"state":         map[string]any{"value": a.To, "reason": a.Reason, "timestamp": gdTime(a.Time)},
			"previousState": map[string]any{"value": a.From},
			"actions":       a.Actions,
			"dimensions":    a.Dimensions,
		}
	default:
		return types.PutEventsRequestEntry{}, fmt.Errorf("event has neither a finding nor an alarm change")
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return types.PutEventsRequestEntry{}, fmt.Errorf("cannot encode the event: %w", err)
	}
	if ts.IsZero() {
		ts = now
	}
	en := types.PutEventsRequestEntry{
		Source: aws.String(e.source), DetailType: aws.String(dt), Detail: aws.String(string(b)), Time: aws.Time(ts),
	}
	if e.bus != "" {
		en.EventBusName = aws.String(e.bus)
	}
	if s := entrySize(en); s > ebMaxSize {
		return types.PutEventsRequestEntry{}, fmt.Errorf("event of %d bytes is over EventBridge's 256 KB limit", s)
	}
	return en, nil
}

// GuardDutyFinding is the detail of a GuardDuty finding event, with the
// fields flowguard can fill.
type GuardDutyFinding struct {
	SchemaVersion string            `json:"schemaVersion"`
	AccountID     string            `json:"accountId,omitempty"`
	Region        string            `json:"region,omitempty"`
	Partition     string            `json:"partition"`
	ID            string            `json:"id"`
	Type          string            `json:"type"`
	Resource      GuardDutyResource `json:"resource"`
	Service       GuardDutyService  `json:"service"`
	Severity      float64           `json:"severity"`
	CreatedAt     string            `json:"createdAt"`
	UpdatedAt     string            `json:"updatedAt"`
	Title         string            `json:"title"`
	Description   string            `json:"description,omitempty"`
}

// GuardDutyResource is the finding's resource: the instance of ours.
type GuardDutyResource struct {
	ResourceType    string            `json:"resourceType"`
	InstanceDetails GuardDutyInstance `json:"instanceDetails"`
}

// GuardDutyInstance holds the instance and its network interfaces.
type GuardDutyInstance struct {
	InstanceID        string               `json:"instanceId,omitempty"`
	NetworkInterfaces []GuardDutyInterface `json:"networkInterfaces"`
}

// GuardDutyInterface is one network interface of the instance.
type GuardDutyInterface struct {
	NetworkInterfaceID string `json:"networkInterfaceId,omitempty"`
	PrivateIPAddress   string `json:"privateIpAddress,omitempty"`
	PublicIP           string `json:"publicIp,omitempty"`
}

// GuardDutyService is the finding's service part.
type GuardDutyService struct {
	ServiceName    string          `json:"serviceName"`
	DetectorID     string          `json:"detectorId"`
	Action         GuardDutyAction `json:"action"`
	ResourceRole   string          `json:"resourceRole"`
	EventFirstSeen string          `json:"eventFirstSeen"`
	EventLastSeen  string          `json:"eventLastSeen"`
	Archived       bool            `json:"archived"`
	Count          int64           `json:"count"`
	AdditionalInfo map[string]any  `json:"additionalInfo,omitempty"`
}

// GuardDutyAction is the action GuardDuty saw.
type GuardDutyAction struct {
	ActionType              string                     `json:"actionType"`
	NetworkConnectionAction GuardDutyNetworkConnection `json:"networkConnectionAction"`
}

// GuardDutyNetworkConnection describes the connection.
type GuardDutyNetworkConnection struct {
	ConnectionDirection string         `json:"connectionDirection"`
	Protocol            string         `json:"protocol"`
	Blocked             bool           `json:"blocked"`
	LocalPortDetails    *GuardDutyPort `json:"localPortDetails,omitempty"`
	RemotePortDetails   *GuardDutyPort `json:"remotePortDetails,omitempty"`
	LocalIPDetails      *GuardDutyIP   `json:"localIpDetails,omitempty"`
	RemoteIPDetails     GuardDutyIP    `json:"remoteIpDetails"`
}

// GuardDutyPort is a port and its well-known name.
type GuardDutyPort struct {
	Port     int    `json:"port"`
	PortName string `json:"portName"`
}

// GuardDutyIP is an address (ipAddressV4 or ipAddressV6).
type GuardDutyIP struct {
	IPAddressV4 string `json:"ipAddressV4,omitempty"`
	IPAddressV6 string `json:"ipAddressV6,omitempty"`
}

// gdTime formats a time as GuardDuty does: 2026-11-22T10:00:00.000Z.
func gdTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// GuardDutyDetail maps a finding to GuardDuty's finding shape. The
// instance of ours is the resource: the target for inbound findings
// (resourceRole TARGET), the actor for outbound ones (ACTOR).
func GuardDutyDetail(f *finding.Finding, account, region string) *GuardDutyFinding {
	g := &GuardDutyFinding{
		SchemaVersion: "2.0", AccountID: account, Region: region, Partition: "aws",
		ID: f.ID, Type: f.Type, Severity: f.Severity, Title: f.Title, Description: f.Description,
		CreatedAt: gdTime(f.FirstSeen), UpdatedAt: gdTime(f.LastSeen),
	}
	g.Resource.ResourceType = "Instance"
	s := &g.Service
	s.ServiceName, s.DetectorID = "flowguard", "flowguard"
	s.Count, s.Archived = f.Count, f.Archived
	s.EventFirstSeen, s.EventLastSeen = gdTime(f.FirstSeen), gdTime(f.LastSeen)
	s.Action.ActionType = "NETWORK_CONNECTION"
	nc := &s.Action.NetworkConnectionAction
	nc.Protocol = protocolOf(f)
	var port *GuardDutyPort
	if len(f.Target.Ports) > 0 {
		port = &GuardDutyPort{Port: int(f.Target.Ports[0]), PortName: portName(f.Target.Ports[0])}
	}
	addr := func(a interface{ String() string }, valid bool, v6 bool) GuardDutyIP {
		if !valid {
			return GuardDutyIP{}
		}
		if v6 {
			return GuardDutyIP{IPAddressV6: a.String()}
		}
		return GuardDutyIP{IPAddressV4: a.String()}
	}
	actor := addr(f.Actor.IP, f.Actor.IP.IsValid(), f.Actor.IP.Is6() && !f.Actor.IP.Is4In6())
	target := addr(f.Target.IP, f.Target.IP.IsValid(), f.Target.IP.Is6() && !f.Target.IP.Is4In6())
	if f.Actor.Direction == finding.Outbound {
		s.ResourceRole = "ACTOR"
		nc.ConnectionDirection = "OUTBOUND"
		g.Resource.InstanceDetails = GuardDutyInstance{InstanceID: f.Actor.InstanceID,
			NetworkInterfaces: []GuardDutyInterface{{NetworkInterfaceID: f.Actor.InterfaceID, PrivateIPAddress: f.Actor.IP.String()}}}
		nc.LocalIPDetails = &actor
		nc.RemoteIPDetails = target
		nc.RemotePortDetails = port
	} else {
		s.ResourceRole = "TARGET"
		nc.ConnectionDirection = "INBOUND"
		ni := GuardDutyInterface{NetworkInterfaceID: f.Target.InterfaceID}
		if f.Target.IP.IsValid() {
			ni.PrivateIPAddress = f.Target.IP.String()
		}
		g.Resource.InstanceDetails = GuardDutyInstance{InstanceID: f.Target.InstanceID, NetworkInterfaces: []GuardDutyInterface{ni}}
		if f.Target.IP.IsValid() {
			nc.LocalIPDetails = &target
		}
		nc.RemoteIPDetails = actor
		nc.LocalPortDetails = port
	}
	info := map[string]any{"direction": string(f.Actor.Direction)}
	if len(f.Target.Ports) > 1 {
		info["ports"] = f.Target.Ports
	}
	if len(f.Evidence) > 0 {
		info["evidence"] = f.Evidence
	}
	s.AdditionalInfo = map[string]any{"flowguard": info}
	return g
}

func protocolOf(f *finding.Finding) string {
	if p, ok := f.Evidence["protocol"].(string); ok && p != "" {
		return strings.ToUpper(p)
	}
	switch {
	case strings.HasSuffix(f.Type, "SSHBruteForce"), strings.HasSuffix(f.Type, "RDPBruteForce"), strings.HasSuffix(f.Type, ".Tcp"):
		return "TCP"
	case strings.HasSuffix(f.Type, ".Udp"), strings.HasSuffix(f.Type, ".Dns"):
		return "UDP"
	}
	return "Unknown"
}

// portName names well-known ports as GuardDuty does ("Unknown" otherwise).
func portName(p uint16) string {
	switch p {
	case 21:
		return "FTP"
	case 22:
		return "SSH"
	case 23:
		return "Telnet"
	case 25:
		return "SMTP"
	case 53:
		return "DNS"
	case 80:
		return "HTTP"
	case 443:
		return "HTTPS"
	case 445:
		return "SMB"
	case 1433:
		return "MSSQL"
	case 3306:
		return "MySQL"
	case 3389:
		return "RDP"
	case 5432:
		return "PostgreSQL"
	case 6379:
		return "Redis"
	case 9200:
		return "Elasticsearch"
	}
	return "Unknown"
}
