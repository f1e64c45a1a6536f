package respond

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

// Outcome kinds: what the pipeline did, or did not do, about a finding.
// They are the notify package's action kinds.
const (
	OutcomeBlocked   = "blocked"   // a deny entry was added
	OutcomeWould     = "would"     // dry-run: it would have been added
	OutcomeRefused   = "refused"   // a guard refused (Reason says which)
	OutcomeFailed    = "failed"    // the blocker failed (Reason says why)
	OutcomeUnblocked = "unblocked" // a block expired or was removed
)

// Outcome is one thing the pipeline did or did not do.
type Outcome struct {
	FindingID string       `json:"finding_id,omitempty"`
	Kind      string       `json:"kind"`
	Prefix    netip.Prefix `json:"prefix"`
	Target    string       `json:"target,omitempty"`
	Expires   time.Time    `json:"expires,omitzero"`
	Guard     string       `json:"guard,omitempty"`
	Reason    string       `json:"reason,omitempty"`
}

// Renderer turns events (and what was done about them) into a message.
// The notify package's templates provide one; DefaultRender is a plain
// English fallback.
type Renderer func(events []Event, outcomes []Outcome, dryRun bool) (Message, error)

// Options are the pipeline's injectable parts.
type Options struct {
	// Clock tells the time (default: the system clock).
	Clock Clock
	// Sleep waits between retries (default: a real sleep).
	Sleep SleepFunc
	// Rand returns numbers in [0, 1) for backoff jitter.
	Rand func() float64
	// Render renders notifications (default: DefaultRender).
	Render Renderer
	// Owner names this pipeline in the leases it takes on store rows
	// (default: host name, process id and a random number).
	Owner string
}

// Leases: how long a process may work on a claimed block row or outbox
// item before another process may take it over (it is then presumed
// dead). They exceed the longest retry sequence (attempts × timeout plus
// backoff).
const (
	BlockLease  = 10 * time.Minute
	OutboxLease = 10 * time.Minute
)

// OutageBackoff is how long a responder that failed (AWS unreachable,
// still failing after its retries) is left alone before it is tried
// again by the same process.
const OutageBackoff = time.Minute

// Pipeline routes events to blockers and notifiers through the guards,
// deduplicating against the action log in the store, with retries.
type Pipeline struct {
	cfg       *Config
	st        store.Responses
	guards    *Guards
	blockers  map[string]Planner
	notifiers map[string]Notifier
	render    Renderer
	clock     Clock
	retry     *retrier
	owner     string
	reaped    atomic.Int64 // when reapLeases last looked, Unix nanoseconds

	mu     sync.Mutex
	down   map[string]downState // responders failing now
	alerts []note               // failures to notify
}

// downState is a responder found failing.
type downState struct {
	err   error
	until time.Time
}

// Failure is a responder that failed during a run (its retries spent):
// the rest of the response went on without it.
type Failure struct {
	Responder string `json:"responder"`
	Error     string `json:"error"`
}

// Report says what one run of the pipeline did.
type Report struct {
	Outcomes []Outcome
	// Notified counts messages delivered; Queued those left for a later
	// run (their notifier failed).
	Notified, Queued int
	// Notifications counts the messages by notifier and result
	// (NotifyDelivered, NotifyQueued, NotifyFailed: dropped, not to be
	// tried again).
	Notifications map[NotifyCount]int
	// Reconciled counts blocks found removed behind flowguard's back;
	// Foreign counts entries in flowguard's range it did not create.
	Reconciled, Foreign int
	// Failures are the responders that failed.
	Failures []Failure
}

func (r *Report) add(o Outcome) { r.Outcomes = append(r.Outcomes, o) }

// NotifyCount is a notifier and a result, as Report.Notifications counts
// them.
type NotifyCount struct{ Notifier, Result string }

// The results of a notification.
const (
	NotifyDelivered = "delivered"
	NotifyQueued    = "queued"
	NotifyFailed    = "failed"
)

// notified counts one message of notifier with result.
func (r *Report) notified(notifier, result string) {
	switch result {
	case NotifyDelivered:
		r.Notified++
	case NotifyQueued:
		r.Queued++
	}
	if r.Notifications == nil {
		r.Notifications = map[NotifyCount]int{}
	}
	r.Notifications[NotifyCount{notifier, result}]++
}

// Count returns how many outcomes are of kind.
func (r *Report) Count(kind string) int {
	n := 0
	for _, o := range r.Outcomes {
		if o.Kind == kind {
			n++
		}
	}
	return n
}

// New builds a pipeline. cfg must have passed Validate.
func New(cfg *Config, st store.Responses, guards *Guards, blockers []Planner, notifiers []Notifier, opt Options) (*Pipeline, error) {
	if cfg == nil || st == nil || guards == nil {
		return nil, errors.New("respond.New needs a config, a store and guards")
	}
	p := &Pipeline{cfg: cfg, st: st, guards: guards, blockers: map[string]Planner{}, notifiers: map[string]Notifier{},
		render: opt.Render, clock: opt.Clock, owner: opt.Owner, down: map[string]downState{}}
	if p.render == nil {
		p.render = DefaultRender
	}
	if p.clock == nil {
		p.clock = SystemClock{}
	}
	if p.owner == "" {
		p.owner = newOwner()
	}
	p.retry = newRetrier(cfg.Retry, opt.Sleep, opt.Rand)
	for _, b := range blockers {
		if _, dup := p.blockers[b.Name()]; dup {
			return nil, fmt.Errorf("two blockers named %s", b.Name())
		}
		p.blockers[b.Name()] = b
	}
	for _, n := range notifiers {
		if _, dup := p.notifiers[n.Name()]; dup {
			return nil, fmt.Errorf("two notifiers named %s", n.Name())
		}
		p.notifiers[n.Name()] = n
	}
	for i, r := range cfg.Routes {
		for _, b := range r.Block {
			if p.blockers[b] == nil {
				return nil, fmt.Errorf("response.routes[%d]: blocker %q is not configured", i, b)
			}
		}
	}
	return p, nil
}

// blockerFor returns the blocker that owns a target.
func (p *Pipeline) blockerFor(target string) Planner {
	name, _, _ := strings.Cut(target, ":")
	return p.blockers[name]
}

// isDown returns why a responder is being left alone, or nil.
func (p *Pipeline) isDown(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.down[name]
	if !ok || !p.clock.Now().Before(d.until) {
		return nil
	}
	return fmt.Errorf("%s is failing, left alone until %s: %w", name, d.until.UTC().Format(time.RFC3339), d.err)
}

// responderAlarm names the alarm-shaped event that notifies a responder's
// failure.
const responderAlarm = "flowguard-responder:"

// outage records that a responder failed after its retries: it is left
// alone for OutageBackoff (the other responders go on), the failure is
// audited, reported, and notified through the notifiers of the routes
// that use it.
func (p *Pipeline) outage(ctx context.Context, name string, err error, rep *Report) {
	now := p.clock.Now()
	p.mu.Lock()
	if d, ok := p.down[name]; ok && now.Before(d.until) {
		p.mu.Unlock()
		return
	}
	p.down[name] = downState{err: err, until: now.Add(OutageBackoff)}
	p.mu.Unlock()
	rep.Failures = append(rep.Failures, Failure{Responder: name, Error: err.Error()})
	if aerr := p.audit(ctx, AuditResponderFailed, name, "", map[string]any{"error": err.Error(), "retry_after": now.Add(OutageBackoff)}); aerr != nil {
		rep.Failures = append(rep.Failures, Failure{Responder: "audit", Error: aerr.Error()})
	}
	ev := &Event{Alarm: &alarm.StateChange{Alarm: responderAlarm + name, From: alarm.StateOK, To: alarm.StateAlarm, Time: now,
		Reason: fmt.Sprintf("the %s responder failed: %v; the rest of the response goes on without it, and the next run tries it again", name, err)}}
	var notes []note
	for j, r := range p.cfg.Routes {
		if len(r.Block) > 0 && !slices.Contains(r.Block, name) {
			continue
		}
		for _, n := range r.Notify {
			if !slices.ContainsFunc(notes, func(x note) bool { return x.notifier == n }) {
				notes = append(notes, note{route: j, notifier: n, ev: ev})
			}
		}
	}
	p.mu.Lock()
	p.alerts = append(p.alerts, notes...)
	p.mu.Unlock()
}

// takeAlerts returns the failure notifications not yet queued.
func (p *Pipeline) takeAlerts() []note {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.alerts
	p.alerts = nil
	return out
}

// audit records an action; the detail is marshalled to JSON.
func (p *Pipeline) audit(ctx context.Context, action, subject, findingID string, detail any) error {
	var raw json.RawMessage
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return fmt.Errorf("cannot record %s: %w", action, err)
		}
		raw = b
	}
	_, err := p.st.AppendAudit(ctx, store.AuditEntry{Time: p.clock.Now(), Action: action, Subject: subject, FindingID: findingID, Detail: raw})
	return err
}

// Audit actions the pipeline records.
const (
	AuditBlock           = "block"
	AuditWouldBlock      = "block-dry-run"
	AuditRefused         = "block-refused"
	AuditBlockFailed     = "block-failed"
	AuditUnblock         = "unblock"
	AuditUnblockFail     = "unblock-failed"
	AuditUnbanRequest    = "unban"
	AuditEvict           = "evict"
	AuditGone            = "reconcile-gone"
	AuditForeign         = "reconcile-foreign"
	AuditNotify          = "notify"
	AuditNotifyFailed    = "notify-failed"
	AuditResponderFailed = "responder-failed"
)

// Start is what a process does before handling events: reconcile the
// store with AWS, then complete what earlier runs left (pending blocks,
// due expiries, requested unblocks, queued notifications). A responder
// that fails is reported in the Report's Failures, not as an error: the
// others go on.
func (p *Pipeline) Start(ctx context.Context) (Report, error) {
	var rep Report
	if err := p.Reconcile(ctx, &rep); err != nil {
		return rep, err
	}
	err := p.Resume(ctx, &rep)
	return rep, err
}

// Handle runs events through the pipeline: first it completes earlier
// work (Resume), then routes each event, blocks and notifies.
func (p *Pipeline) Handle(ctx context.Context, events []Event) (Report, error) {
	var rep Report
	var errs []error
	if err := p.resumeBlocks(ctx, &rep); err != nil {
		errs = append(errs, err)
	}
	var notes []note
	for i := range events {
		ev := &events[i]
		var routes []int
		for j := range p.cfg.Routes {
			if p.cfg.Routes[j].matches(ev) {
				routes = append(routes, j)
			}
		}
		if len(routes) == 0 {
			continue
		}
		var outs []Outcome
		if ev.Finding != nil {
			var names []string
			for _, j := range routes {
				for _, b := range p.cfg.Routes[j].Block {
					if !slices.Contains(names, b) {
						names = append(names, b)
					}
				}
			}
			if len(names) > 0 {
				o, err := p.block(ctx, ev.Finding, names, &rep)
				if err != nil {
					errs = append(errs, err)
				}
				outs = o
			}
		}
		for _, j := range routes {
			r := &p.cfg.Routes[j]
			for _, n := range r.Notify {
				notes = append(notes, note{route: j, notifier: n, ev: ev, outs: outs})
			}
		}
	}
	if err := p.enqueue(ctx, notes); err != nil {
		errs = append(errs, err)
	}
	if err := p.flush(ctx, &rep); err != nil {
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}

// block decides and carries out the blocking of a finding's actor: decide
// (guards, targets and what AWS holds there), claim (cap, liveness, unban
// grace and rule numbers checked and reserved in one store transaction),
// act (the AWS calls), then confirm or release each claimed row.
func (p *Pipeline) block(ctx context.Context, f *finding.Finding, names []string, rep *Report) ([]Outcome, error) {
	prefix := ActorPrefix(f)
	var outs []Outcome
	refuse := func(r *Refusal, extra map[string]any) ([]Outcome, error) {
		o := Outcome{FindingID: f.ID, Kind: OutcomeRefused, Prefix: prefix, Guard: r.Guard, Reason: r.Reason}
		action := AuditRefused
		if r.Guard == GuardDryRun {
			o.Kind = OutcomeWould
			action = AuditWouldBlock
		}
		rep.add(o)
		d := map[string]any{"guard": r.Guard, "reason": r.Reason, "type": f.Type, "severity": f.Severity, "blockers": names}
		maps.Copy(d, extra)
		return append(outs, o), p.audit(ctx, action, prefix.String(), f.ID, d)
	}
	// Guards that depend only on the address and the finding come first:
	// an address that may never be blocked is refused whatever the
	// action log says.
	if r := p.guards.Check(f, prefix, 0); r != nil && r.Guard != GuardDryRun {
		return refuse(r, nil)
	}
	dry := !p.guards.Enforcing()
	if dry {
		// One "would block" per finding and activity, not per run.
		prev, err := p.st.ListAudit(ctx, store.AuditFilter{FindingID: f.ID, Action: AuditWouldBlock, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(prev) > 0 {
			var d struct {
				LastSeen time.Time `json:"last_seen"`
			}
			json.Unmarshal(prev[0].Detail, &d)
			if !f.LastSeen.After(d.LastSeen) {
				return nil, nil
			}
		}
	}
	// Decide where: every target of every routed blocker that does not
	// hold a live block of the address yet, as AWS has it now.
	slots, failed, err := p.slots(ctx, f, prefix, names, rep)
	if err != nil {
		return outs, err
	}
	outs = append(outs, failed...)
	if len(slots) == 0 {
		if len(outs) > 0 {
			return outs, nil // the blockers failed or refused; said above
		}
		live, err := p.st.ListBlocks(ctx, store.BlockFilter{Prefix: prefix, LiveOnly: true, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(live) > 0 {
			return nil, nil // already blocked everywhere it goes
		}
		return refuse(&Refusal{GuardNoTarget, "no blocker has a place for this address (no network ACL for the attacked subnet, no IP set for its family)"}, nil)
	}
	for round := 0; ; round++ {
		now := p.clock.Now()
		res, err := p.st.ClaimBlock(ctx, store.BlockClaim{Prefix: prefix, FindingID: f.ID, Severity: f.Severity, Reason: f.Type, LastSeen: f.LastSeen,
			Now: now, Owner: p.owner, Lease: BlockLease, MaxPerHour: p.cfg.maxBlocksPerHour(), BanTime: p.cfg.banTime, Slots: slots, DryRun: dry})
		if err != nil {
			return outs, err
		}
		switch res.Verdict {
		case store.ClaimUnbanned:
			u := res.Unban
			return refuse(&Refusal{GuardUnbanned, fmt.Sprintf("%s was unblocked by hand (%s, as %s) until %s", prefix, u.By, u.Prefix, u.Until.Format(time.RFC3339))}, nil)
		case store.ClaimDone, store.ClaimLive:
			return outs, nil
		case store.ClaimCapped:
			r := p.guards.Check(f, prefix, res.Recent)
			if r == nil || r.Guard != GuardRate {
				r = &Refusal{GuardRate, fmt.Sprintf("%d blocks in the last hour reach the limit of %d (response.max_blocks_per_hour)", res.Recent, p.cfg.maxBlocksPerHour())}
			}
			return refuse(r, nil)
		case store.ClaimFull:
			// Make room (the eviction policy says whom to remove),
			// look again, claim again; a target with nothing to give
			// way is refused and left out.
			var keep []store.Slot
			for _, sl := range slots {
				if !slices.Contains(res.Full, sl.Target) {
					keep = append(keep, sl)
					continue
				}
				full := &FullError{Target: sl.Target, Limit: sl.Limit, Why: "no room left for another entry, or every rule number in flowguard's range is taken"}
				evicted := false
				if !dry && round < 3 {
					if evicted, err = p.evict(ctx, sl.Target, prefix, f.Severity, f.ID, 0, full, rep); err != nil {
						return outs, err
					}
				}
				if evicted {
					if again, err := p.observe(ctx, sl.Target, prefix); err == nil {
						keep = append(keep, again)
						continue
					}
				}
				o := Outcome{FindingID: f.ID, Kind: OutcomeRefused, Prefix: prefix, Target: sl.Target, Guard: GuardFull, Reason: full.Error() + "; nothing flowguard owns there may give way"}
				rep.add(o)
				outs = append(outs, o)
				if err := p.audit(ctx, AuditRefused, prefix.String(), f.ID, map[string]any{"guard": GuardFull, "target": sl.Target, "reason": o.Reason}); err != nil {
					return outs, err
				}
			}
			if len(keep) == 0 {
				return outs, nil
			}
			slots = keep
			continue
		}
		// Claimed.
		if dry {
			o := Outcome{FindingID: f.ID, Kind: OutcomeWould, Prefix: prefix, Guard: GuardDryRun, Reason: "dry-run: would block (set response.mode: enforce to block)"}
			rep.add(o)
			targets := make([]string, len(slots))
			for i, sl := range slots {
				targets[i] = sl.Target
			}
			return append(outs, o), p.audit(ctx, AuditWouldBlock, prefix.String(), f.ID, map[string]any{
				"targets": targets, "type": f.Type, "severity": f.Severity, "last_seen": f.LastSeen})
		}
		for _, row := range res.Rows {
			o, err := p.place(ctx, row, rep)
			outs = append(outs, o)
			if err != nil {
				return outs, err
			}
		}
		return outs, nil
	}
}

// slots returns, for each target of the named blockers that holds no
// live block of prefix, what AWS holds there now. A blocker that fails
// gives a failed outcome (audited) and is left out; one whose address is
// already there by someone else's hand gives a refusal.
func (p *Pipeline) slots(ctx context.Context, f *finding.Finding, prefix netip.Prefix, names []string, rep *Report) ([]store.Slot, []Outcome, error) {
	var slots []store.Slot
	var outs []Outcome
	fail := func(name, target string, err error) error {
		o := Outcome{FindingID: f.ID, Kind: OutcomeFailed, Prefix: prefix, Target: target, Reason: err.Error()}
		rep.add(o)
		outs = append(outs, o)
		return p.audit(ctx, AuditBlockFailed, prefix.String(), f.ID, map[string]any{"blocker": name, "target": target, "error": err.Error()})
	}
	live, err := p.st.ListBlocks(ctx, store.BlockFilter{Prefix: prefix, LiveOnly: true})
	if err != nil {
		return nil, nil, err
	}
	for _, name := range names {
		if derr := p.isDown(name); derr != nil {
			if err := fail(name, "", derr); err != nil {
				return nil, outs, err
			}
			continue
		}
		b := p.blockers[name]
		var ts []string
		_, _, err := p.retry.do(ctx, func(ctx context.Context) (bool, error) {
			var err error
			ts, err = b.Targets(ctx, f, prefix)
			return false, err
		})
		if err != nil {
			p.outage(ctx, name, err, rep)
			if err := fail(name, "", err); err != nil {
				return nil, outs, err
			}
			continue
		}
		for _, t := range ts {
			if slices.ContainsFunc(live, func(r store.BlockRecord) bool { return r.Target == t }) {
				continue
			}
			sl, err := p.observe(ctx, t, prefix)
			switch {
			case errors.Is(err, ErrPresent):
				o := Outcome{FindingID: f.ID, Kind: OutcomeRefused, Prefix: prefix, Target: t, Guard: "present", Reason: err.Error()}
				rep.add(o)
				outs = append(outs, o)
				if err := p.audit(ctx, AuditRefused, prefix.String(), f.ID, map[string]any{"guard": "present", "target": t, "reason": err.Error()}); err != nil {
					return nil, outs, err
				}
			case err != nil:
				p.outage(ctx, name, err, rep)
				if err := fail(name, t, err); err != nil {
					return nil, outs, err
				}
			default:
				slots = append(slots, sl)
			}
		}
	}
	return slots, outs, nil
}

// observe reads a target's state, with retries.
func (p *Pipeline) observe(ctx context.Context, target string, prefix netip.Prefix) (store.Slot, error) {
	bl := p.blockerFor(target)
	if bl == nil {
		return store.Slot{}, fmt.Errorf("no blocker configured for %s", target)
	}
	var sl store.Slot
	_, _, err := p.retry.do(ctx, func(ctx context.Context) (bool, error) {
		var err error
		sl, err = bl.Observe(ctx, target, prefix)
		return false, err
	})
	return sl, err
}

func blockOf(r store.BlockRecord) Block {
	return Block{Prefix: r.Prefix, Target: r.Target, FindingID: r.FindingID, Reason: r.Reason, Created: r.Created, Expires: r.Expires, RuleNumber: r.RuleNumber}
}

// place carries a claimed row (leased by this pipeline, its rule number
// reserved) to AWS, then confirms it (active) or releases it: pending
// when a later run should try again, failed when it is abandoned.
func (p *Pipeline) place(ctx context.Context, row store.BlockRecord, rep *Report) (Outcome, error) {
	bl := p.blockerFor(row.Target)
	name, _, _ := strings.Cut(row.Target, ":")
	out := Outcome{FindingID: row.FindingID, Prefix: row.Prefix, Target: row.Target, Expires: row.Expires}
	fail := func(state store.BlockState, retry bool, err error) (Outcome, error) {
		out.Kind, out.Reason = OutcomeFailed, err.Error()
		if retry {
			out.Reason += " (will retry on the next run)"
		}
		rep.add(out)
		if _, uerr := p.st.ReleaseBlock(ctx, row.ID, p.owner, store.BlockUpdate{State: state, LastError: err.Error(), Attempt: true, At: p.clock.Now()}); uerr != nil {
			return out, uerr
		}
		return out, p.audit(ctx, AuditBlockFailed, row.Prefix.String(), row.FindingID, map[string]any{
			"target": row.Target, "rule_number": row.RuleNumber, "error": err.Error(), "retry": retry})
	}
	if bl == nil {
		return fail(store.BlockPending, true, fmt.Errorf("no blocker configured for %s", row.Target))
	}
	if derr := p.isDown(name); derr != nil {
		return fail(store.BlockPending, true, derr)
	}
	for round := 0; round < 4; round++ {
		b := blockOf(row)
		_, retry, err := p.retry.do(ctx, func(ctx context.Context) (bool, error) { return bl.Block(ctx, &b) })
		var foreign *ForeignEntryError
		var full *FullError
		switch {
		case err == nil:
			confirm := store.BlockUpdate{State: store.BlockActive, RuleNumber: b.RuleNumber, Attempt: true, At: p.clock.Now()}
			state, uerr := p.st.ReleaseBlock(ctx, row.ID, p.owner, confirm)
			if errors.Is(uerr, store.ErrBlockExists) {
				// The entry taken over (another flowguard's, on another
				// database) sits at a number this ledger reserved for
				// another block: keep ours reserved; the entry is known
				// by its address.
				confirm.RuleNumber = 0
				state, uerr = p.st.ReleaseBlock(ctx, row.ID, p.owner, confirm)
			}
			if uerr != nil {
				return out, uerr
			}
			out.Kind = OutcomeBlocked
			rep.add(out)
			if err := p.audit(ctx, AuditBlock, row.Prefix.String(), row.FindingID, map[string]any{
				"target": row.Target, "rule_number": b.RuleNumber, "expires": row.Expires, "severity": row.Severity, "type": row.Reason}); err != nil {
				return out, err
			}
			if state == store.BlockRemoving {
				// Unblocked by hand while the entry was being written:
				// take it out again now.
				return out, p.removeRows(ctx, store.BlockLease{IDs: []int64{row.ID}}, "unblock", rep)
			}
			return out, nil
		case errors.As(err, &foreign):
			// Someone else took the number: never touch their entry,
			// take another.
			if aerr := p.audit(ctx, AuditBlockFailed, row.Prefix.String(), row.FindingID, map[string]any{"target": row.Target, "rule_number": row.RuleNumber, "error": err.Error(), "retry": true}); aerr != nil {
				return out, aerr
			}
			sl, oerr := p.observe(ctx, row.Target, row.Prefix)
			if oerr != nil {
				p.outage(ctx, name, oerr, rep)
				return fail(store.BlockPending, true, oerr)
			}
			r, rerr := p.st.RenumberBlock(ctx, row.ID, p.owner, sl)
			if rerr != nil {
				return fail(store.BlockFailed, false, rerr)
			}
			row.RuleNumber = r
		case errors.As(err, &full):
			// AWS disagrees with our count (a quota lower than
			// configured): make room, then try again.
			evicted, eerr := p.evict(ctx, row.Target, row.Prefix, row.Severity, row.FindingID, row.ID, full, rep)
			if eerr != nil {
				return out, eerr
			}
			if !evicted {
				return fail(store.BlockFailed, false, err)
			}
		default:
			state := store.BlockFailed
			if retry {
				state = store.BlockPending
				p.outage(ctx, name, err, rep)
			}
			return fail(state, retry, err)
		}
	}
	return fail(store.BlockPending, true, errors.New("could not settle on a rule number"))
}

// evict removes one of flowguard's blocks on a full target, chosen by the
// configured policy, to make room for prefix (of a finding of severity
// sev; self is its own row, if any). It reports whether one was removed.
func (p *Pipeline) evict(ctx context.Context, target string, prefix netip.Prefix, sev float64, findingID string, self int64, full *FullError, rep *Report) (bool, error) {
	policy := EvictOldest
	switch {
	case strings.HasPrefix(target, naclPrefix) && p.cfg.NACL != nil && p.cfg.NACL.Evict != "":
		policy = p.cfg.NACL.Evict
	case strings.HasPrefix(target, wafPrefix) && p.cfg.WAFv2 != nil && p.cfg.WAFv2.Evict != "":
		policy = p.cfg.WAFv2.Evict
	}
	rows, err := p.st.ListBlocks(ctx, store.BlockFilter{Target: target, States: []store.BlockState{store.BlockActive}})
	if err != nil {
		return false, err
	}
	var cands []store.BlockRecord
	for _, o := range rows {
		if o.ID != self && o.Prefix.Addr().Is4() == prefix.Addr().Is4() {
			cands = append(cands, o)
		}
	}
	slices.SortStableFunc(cands, func(a, b store.BlockRecord) int {
		if policy == EvictLowestSeverity && a.Severity != b.Severity {
			if a.Severity < b.Severity {
				return -1
			}
			return 1
		}
		return a.Created.Compare(b.Created)
	})
	for _, victim := range cands {
		if policy == EvictLowestSeverity && victim.Severity > sev {
			return false, nil
		}
		// Another process may hold the row (removing it, or evicting it
		// for its own block): then try the next.
		leased, err := p.st.LeaseBlocks(ctx, store.BlockLease{Owner: p.owner, Now: p.clock.Now(), Lease: BlockLease, IDs: []int64{victim.ID}, Remove: "evict"})
		if err != nil {
			return false, err
		}
		if len(leased) == 0 {
			continue
		}
		o, err := p.remove(ctx, leased[0], leased[0].RemovedBy, rep)
		if err != nil {
			return false, err
		}
		if o.Kind != OutcomeUnblocked {
			return false, nil
		}
		return true, p.audit(ctx, AuditEvict, victim.Prefix.String(), victim.FindingID, map[string]any{
			"target": victim.Target, "rule_number": victim.RuleNumber, "policy": policy, "severity": victim.Severity,
			"created": victim.Created, "to_make_room_for": prefix.String(), "for_finding": findingID, "full": full.Error()})
	}
	return false, nil
}

// removeRows leases the rows l selects (l's owner, time and lease are
// filled in), marks them for removal by cause, and removes them.
func (p *Pipeline) removeRows(ctx context.Context, l store.BlockLease, by string, rep *Report) error {
	l.Owner, l.Now, l.Lease, l.Remove = p.owner, p.clock.Now(), BlockLease, by
	rows, err := p.st.LeaseBlocks(ctx, l)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range rows {
		if r.RemovedBy != "" {
			by = r.RemovedBy
		}
		if _, err := p.remove(ctx, r, by, rep); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// remove takes a leased block out of AWS: it records the intent
// (removing), then deletes, then records the result and ends the lease.
func (p *Pipeline) remove(ctx context.Context, row store.BlockRecord, by string, rep *Report) (Outcome, error) {
	out := Outcome{FindingID: row.FindingID, Prefix: row.Prefix, Target: row.Target, Reason: by}
	if row.State != store.BlockRemoving {
		if err := p.st.UpdateBlock(ctx, row.ID, store.BlockUpdate{State: store.BlockRemoving, RemovedBy: by, At: p.clock.Now()}); err != nil {
			return out, err
		}
	}
	bl := p.blockerFor(row.Target)
	name, _, _ := strings.Cut(row.Target, ":")
	var retry bool
	var err error
	switch {
	case bl == nil:
		retry, err = true, fmt.Errorf("no blocker configured for %s", row.Target)
	case p.isDown(name) != nil:
		retry, err = true, p.isDown(name)
	default:
		_, retry, err = p.retry.do(ctx, func(ctx context.Context) (bool, error) { return bl.Unblock(ctx, blockOf(row)) })
		if err != nil && retry {
			p.outage(ctx, name, err, rep)
		}
	}
	if err != nil {
		out.Kind, out.Reason = OutcomeFailed, err.Error()
		rep.add(out)
		if _, uerr := p.st.ReleaseBlock(ctx, row.ID, p.owner, store.BlockUpdate{LastError: err.Error(), Attempt: true, At: p.clock.Now()}); uerr != nil {
			return out, uerr
		}
		return out, p.audit(ctx, AuditUnblockFail, row.Prefix.String(), row.FindingID, map[string]any{
			"target": row.Target, "rule_number": row.RuleNumber, "by": by, "error": err.Error(), "retry": retry})
	}
	if _, uerr := p.st.ReleaseBlock(ctx, row.ID, p.owner, store.BlockUpdate{State: store.BlockRemoved, RemovedBy: by, At: p.clock.Now()}); uerr != nil {
		return out, uerr
	}
	out.Kind = OutcomeUnblocked
	rep.add(out)
	return out, p.audit(ctx, AuditUnblock, row.Prefix.String(), row.FindingID, map[string]any{
		"target": row.Target, "rule_number": row.RuleNumber, "by": by, "created": row.Created, "expires": row.Expires})
}

// note is one event routed to one notifier.
type note struct {
	route    int
	notifier string
	ev       *Event
	outs     []Outcome
}

// payload is what the outbox keeps to render a message again.
type payload struct {
	Events   []Event   `json:"events"`
	Outcomes []Outcome `json:"outcomes,omitempty"`
	DryRun   bool      `json:"dry_run,omitempty"`
}

// eventKey identifies an event for deduplication.
func eventKey(ev *Event) string {
	if ev.Finding != nil {
		return "finding:" + ev.Finding.ID
	}
	a := ev.Alarm
	if strings.HasPrefix(a.Alarm, responderAlarm) {
		return "alarm:" + a.Alarm // one key per responder: see due
	}
	return "alarm:" + a.Alarm + ":" + string(a.To) + ":" + strconv.FormatInt(a.Time.UnixNano(), 10)
}

// groupKey returns the digest group of an event under a route.
func groupKey(r *Route, ev *Event) string {
	var parts []string
	for _, g := range r.GroupBy {
		v := ""
		switch {
		case ev.Finding != nil:
			f := ev.Finding
			switch g {
			case "type":
				v = f.Type
			case "actor":
				v = f.Actor.IP.String()
			case "target":
				v = f.Target.IP.String()
			case "severity":
				v = finding.Level(f.Severity)
			}
		case ev.Alarm != nil:
			if g == "alarm" {
				v = ev.Alarm.Alarm
			}
		}
		parts = append(parts, g+"="+v)
	}
	return strings.Join(parts, ",")
}

// due decides whether an event goes out to a notifier now, given what was
// sent before: new findings at once; changed findings once the publishing
// interval has passed since the last message (at once when the severity
// level rises); unchanged ones after the repeat interval, if any.
func (p *Pipeline) due(r *Route, ev *Event, rec store.NotifyRecord, found bool, now time.Time) bool {
	if !found {
		return true
	}
	if ev.Finding == nil {
		// A responder's failure is told again an hour later if it goes
		// on; an alarm transition is its own key: seen means sent.
		return strings.HasPrefix(ev.Alarm.Alarm, responderAlarm) && now.Sub(rec.LastSent) >= time.Hour
	}
	f := ev.Finding
	since := now.Sub(rec.LastSent)
	changed := f.Count != rec.Count || f.LastSeen.After(rec.LastSeen) || f.Severity != rec.Severity
	if changed {
		if finding.Level(f.Severity) != finding.Level(rec.Severity) && f.Severity > rec.Severity {
			return true
		}
		return since >= p.cfg.publishing(r)
	}
	return r.RepeatInterval > 0 && since >= time.Duration(r.RepeatInterval)
}

// enqueue decides which routed events go out now, groups them into
// digests, and writes them to the outbox together with the notification
// log, in one transaction. When another process decided some of the same
// notifications meanwhile (the log changed since it was read), it reads
// and decides again.
func (p *Pipeline) enqueue(ctx context.Context, notes []note) error {
	if len(notes) == 0 {
		return nil
	}
	var err error
	for range 8 {
		if err = p.enqueueOnce(ctx, notes); !errors.Is(err, store.ErrStale) {
			return err
		}
	}
	return err
}

func (p *Pipeline) enqueueOnce(ctx context.Context, notes []note) error {
	now := p.clock.Now()
	type group struct {
		notifier string
		key      string
		pl       payload
		keys     []string
	}
	var groups []*group
	byKey := map[string]*group{}
	var recs []store.NotifyRecord
	taken := map[string]bool{}
	for _, n := range notes {
		r := &p.cfg.Routes[n.route]
		k := n.notifier + "|" + eventKey(n.ev)
		if taken[k] {
			continue
		}
		rec, found, err := p.st.GetNotifyRecord(ctx, k)
		if err != nil {
			return err
		}
		if !p.due(r, n.ev, rec, found, now) {
			continue
		}
		taken[k] = true
		gk := fmt.Sprintf("%s|route%d|%s", n.notifier, n.route, groupKey(r, n.ev))
		g := byKey[gk]
		if g == nil {
			g = &group{notifier: n.notifier, key: gk, pl: payload{DryRun: !p.guards.Enforcing()}}
			byKey[gk] = g
			groups = append(groups, g)
		}
		g.pl.Events = append(g.pl.Events, *n.ev)
		g.pl.Outcomes = append(g.pl.Outcomes, n.outs...)
		g.keys = append(g.keys, k)
		nr := store.NotifyRecord{Key: k, LastSent: now, Severity: severityOf(n.ev), Prev: rec.LastSent}
		if f := n.ev.Finding; f != nil {
			nr.Count, nr.LastSeen = f.Count, f.LastSeen
		}
		recs = append(recs, nr)
	}
	if len(groups) == 0 {
		return nil
	}
	items := make([]store.OutboxItem, 0, len(groups))
	for _, g := range groups {
		b, err := json.Marshal(g.pl)
		if err != nil {
			return fmt.Errorf("cannot queue a notification for %s: %w", g.notifier, err)
		}
		items = append(items, store.OutboxItem{Notifier: g.notifier, Key: g.key, Payload: string(b)})
	}
	_, err := p.st.Enqueue(ctx, items, recs)
	return err
}

// flush queues the failures found so far, then delivers the outbox items
// it can lease (one process delivers each). A retryable failure leaves
// the message for the next run; any other failure is recorded and
// dropped.
func (p *Pipeline) flush(ctx context.Context, rep *Report) error {
	var errs []error
	if alerts := p.takeAlerts(); len(alerts) > 0 {
		errs = append(errs, p.enqueue(ctx, alerts))
	}
	items, err := p.st.ClaimOutbox(ctx, p.owner, p.clock.Now(), OutboxLease)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	mark := func(id int64, state, lastErr string) error {
		return p.st.ReleaseOutbox(ctx, id, p.owner, state, lastErr)
	}
	for _, it := range items {
		var pl payload
		if err := json.Unmarshal([]byte(it.Payload), &pl); err != nil {
			errs = append(errs, mark(it.ID, "failed", "unreadable payload: "+err.Error()))
			continue
		}
		subject := it.Notifier
		fid := ""
		if len(pl.Events) > 0 && pl.Events[0].Finding != nil {
			fid = pl.Events[0].Finding.ID
		}
		n := p.notifiers[it.Notifier]
		if n == nil {
			rep.notified(it.Notifier, NotifyQueued)
			errs = append(errs, mark(it.ID, "pending", "no notifier named "+it.Notifier+" is configured"))
			continue
		}
		msg, err := p.render(pl.Events, pl.Outcomes, pl.DryRun)
		if err != nil {
			rep.notified(it.Notifier, NotifyFailed)
			errs = append(errs, mark(it.ID, "failed", "cannot render: "+err.Error()),
				p.audit(ctx, AuditNotifyFailed, subject, fid, map[string]any{"error": "cannot render: " + err.Error(), "events": len(pl.Events)}))
			continue
		}
		if len(msg.Events) == 0 {
			msg.Events = pl.Events
		}
		_, retry, err := p.retry.do(ctx, func(ctx context.Context) (bool, error) { return n.Notify(ctx, msg) })
		if err != nil {
			state, result := "failed", NotifyFailed
			if retry {
				state, result = "pending", NotifyQueued
			}
			rep.notified(it.Notifier, result)
			errs = append(errs, mark(it.ID, state, err.Error()),
				p.audit(ctx, AuditNotifyFailed, subject, fid, map[string]any{"error": err.Error(), "retry": retry, "events": len(pl.Events), "subject": msg.Subject}))
			continue
		}
		rep.notified(it.Notifier, NotifyDelivered)
		errs = append(errs, mark(it.ID, "sent", ""),
			p.audit(ctx, AuditNotify, subject, fid, map[string]any{"events": len(pl.Events), "subject": msg.Subject}))
	}
	return errors.Join(errs...)
}

// DefaultRender renders a plain English message: a subject line under
// 100 characters and a text body listing each event and what was done.
func DefaultRender(events []Event, outcomes []Outcome, dryRun bool) (Message, error) {
	var sb strings.Builder
	subject := "flowguard: " + strconv.Itoa(len(events)) + " events"
	if len(events) == 1 {
		if f := events[0].Finding; f != nil {
			subject = fmt.Sprintf("flowguard %s: %s", finding.Level(f.Severity), f.Title)
		} else if a := events[0].Alarm; a != nil {
			subject = fmt.Sprintf("flowguard alarm %s is %s", a.Alarm, a.To)
		}
	}
	if len([]rune(subject)) > 99 {
		subject = string([]rune(subject)[:98]) + "…"
	}
	subject = strings.NewReplacer("\n", " ", "\r", " ").Replace(subject)
	for _, ev := range events {
		if f := ev.Finding; f != nil {
			fmt.Fprintf(&sb, "%s (%s %.1f): %s\n  actor %s, seen %d times, last %s\n", f.Type, finding.Level(f.Severity), f.Severity, f.Title,
				f.Actor.IP, f.Count, f.LastSeen.UTC().Format(time.RFC3339))
			for _, o := range outcomes {
				if o.FindingID == f.ID {
					fmt.Fprintf(&sb, "  %s %s %s %s\n", o.Kind, o.Prefix, o.Target, o.Reason)
				}
			}
		} else if a := ev.Alarm; a != nil {
			fmt.Fprintf(&sb, "alarm %s: %s → %s: %s\n", a.Alarm, a.From, a.To, a.Reason)
		}
	}
	if dryRun {
		sb.WriteString("(dry-run: nothing was blocked)\n")
	}
	return Message{Subject: subject, Text: sb.String(), Events: events}, nil
}
