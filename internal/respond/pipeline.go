package respond

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

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
}

// Pipeline routes events to blockers and notifiers through the guards,
// deduplicating against the action log in the store, with retries.
type Pipeline struct {
	cfg       *Config
	st        *store.Store
	guards    *Guards
	blockers  map[string]Planner
	notifiers map[string]Notifier
	render    Renderer
	clock     Clock
	retry     *retrier
}

// Report says what one run of the pipeline did.
type Report struct {
	Outcomes []Outcome
	// Notified counts messages delivered; Queued those left for a later
	// run (their notifier failed).
	Notified, Queued int
	// Reconciled counts blocks found removed behind flowguard's back;
	// Foreign counts entries in flowguard's range it did not create.
	Reconciled, Foreign int
}

func (r *Report) add(o Outcome) { r.Outcomes = append(r.Outcomes, o) }

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
func New(cfg *Config, st *store.Store, guards *Guards, blockers []Planner, notifiers []Notifier, opt Options) (*Pipeline, error) {
	if cfg == nil || st == nil || guards == nil {
		return nil, errors.New("respond.New needs a config, a store and guards")
	}
	p := &Pipeline{cfg: cfg, st: st, guards: guards, blockers: map[string]Planner{}, notifiers: map[string]Notifier{},
		render: opt.Render, clock: opt.Clock}
	if p.render == nil {
		p.render = DefaultRender
	}
	if p.clock == nil {
		p.clock = SystemClock{}
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
	AuditBlock        = "block"
	AuditWouldBlock   = "block-dry-run"
	AuditRefused      = "block-refused"
	AuditBlockFailed  = "block-failed"
	AuditUnblock      = "unblock"
	AuditUnblockFail  = "unblock-failed"
	AuditUnbanRequest = "unban"
	AuditEvict        = "evict"
	AuditGone         = "reconcile-gone"
	AuditForeign      = "reconcile-foreign"
	AuditNotify       = "notify"
	AuditNotifyFailed = "notify-failed"
)

// Start is what a process does before handling events: reconcile the
// store with AWS, then complete what earlier runs left (pending blocks,
// due expiries, requested unblocks, queued notifications).
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
	if err := p.resumeBlocks(ctx, &rep); err != nil {
		return rep, err
	}
	var errs []error
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

// block decides and carries out the blocking of a finding's actor.
func (p *Pipeline) block(ctx context.Context, f *finding.Finding, names []string, rep *Report) ([]Outcome, error) {
	now := p.clock.Now()
	prefix := ActorPrefix(f)
	var outs []Outcome
	refuse := func(r *Refusal) ([]Outcome, error) {
		o := Outcome{FindingID: f.ID, Kind: OutcomeRefused, Prefix: prefix, Guard: r.Guard, Reason: r.Reason}
		action := AuditRefused
		if r.Guard == GuardDryRun {
			o.Kind = OutcomeWould
			action = AuditWouldBlock
		}
		rep.add(o)
		return append(outs, o), p.audit(ctx, action, prefix.String(), f.ID, map[string]any{
			"guard": r.Guard, "reason": r.Reason, "type": f.Type, "severity": f.Severity, "blockers": names})
	}
	// Guards that depend only on the address come first: an address that
	// may never be blocked is refused whatever the action log says.
	if r := p.guards.CheckPrefix(prefix); r != nil {
		return refuse(r)
	}
	// Dedup against the action log.
	if u, ok, err := p.st.GetUnban(ctx, prefix); err != nil {
		return nil, err
	} else if ok && now.Before(u.Until) {
		return refuse(&Refusal{GuardUnbanned, fmt.Sprintf("%s was unblocked by hand (%s) until %s", prefix, u.By, u.Until.Format(time.RFC3339))})
	}
	last, banned, err := p.st.LastBan(ctx, prefix, f.ID)
	if err != nil {
		return nil, err
	}
	if banned && !f.LastSeen.After(last.LastSeen) {
		// Already acted on this finding; no activity since.
		return nil, nil
	}
	if !p.guards.Enforcing() {
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
	// Where: every target of every routed blocker, minus those already
	// holding a live block of the address.
	type job struct {
		b      Planner
		target string
	}
	var jobs []job
	for _, name := range names {
		b := p.blockers[name]
		var ts []string
		_, _, err := p.retry.do(ctx, func(ctx context.Context) (bool, error) {
			var err error
			ts, err = b.Targets(ctx, f, prefix)
			return false, err
		})
		if err != nil {
			o := Outcome{FindingID: f.ID, Kind: OutcomeFailed, Prefix: prefix, Reason: err.Error()}
			rep.add(o)
			outs = append(outs, o)
			if aerr := p.audit(ctx, AuditBlockFailed, prefix.String(), f.ID, map[string]any{"blocker": name, "error": err.Error()}); aerr != nil {
				return outs, aerr
			}
			continue
		}
		for _, t := range ts {
			live, err := p.st.ListBlocks(ctx, store.BlockFilter{Target: t, Prefix: prefix, LiveOnly: true})
			if err != nil {
				return outs, err
			}
			if len(live) == 0 {
				jobs = append(jobs, job{b, t})
			}
		}
	}
	if len(jobs) == 0 {
		if len(outs) > 0 {
			return outs, nil // the blockers failed; said above
		}
		live, err := p.liveAnywhere(ctx, prefix)
		if err != nil {
			return nil, err
		}
		if live {
			return nil, nil // already blocked everywhere it goes
		}
		return refuse(&Refusal{GuardNoTarget, "no blocker has a place for this address (no network ACL for the attacked subnet, no IP set for its family)"})
	}
	recent, err := p.st.BansSince(ctx, now.Add(-time.Hour))
	if err != nil {
		return nil, err
	}
	if r := p.guards.Check(f, prefix, recent); r != nil {
		if r.Guard == GuardDryRun {
			o := Outcome{FindingID: f.ID, Kind: OutcomeWould, Prefix: prefix, Guard: r.Guard, Reason: r.Reason}
			rep.add(o)
			targets := make([]string, len(jobs))
			for i, j := range jobs {
				targets[i] = j.target
			}
			return append(outs, o), p.audit(ctx, AuditWouldBlock, prefix.String(), f.ID, map[string]any{
				"targets": targets, "type": f.Type, "severity": f.Severity, "last_seen": f.LastSeen})
		}
		return refuse(r)
	}
	n, err := p.st.BanCount(ctx, prefix)
	if err != nil {
		return nil, err
	}
	dur := p.cfg.banTime(n + 1)
	expires := now.Add(dur)
	if _, err := p.st.RecordBan(ctx, store.Ban{Prefix: prefix, FindingID: f.ID, Severity: f.Severity, At: now, Expires: expires, LastSeen: f.LastSeen}); err != nil {
		return nil, err
	}
	for _, j := range jobs {
		row := store.BlockRecord{Target: j.target, Prefix: prefix, FindingID: f.ID, Severity: f.Severity, Reason: f.Type,
			State: store.BlockPending, Created: now, Expires: expires}
		id, err := p.st.InsertBlock(ctx, row)
		if errors.Is(err, store.ErrBlockExists) {
			continue // another process got there first
		}
		if err != nil {
			return outs, err
		}
		row.ID = id
		o, err := p.place(ctx, row, rep)
		outs = append(outs, o)
		if err != nil {
			return outs, err
		}
	}
	return outs, nil
}

// liveAnywhere reports whether the prefix has a live block somewhere.
func (p *Pipeline) liveAnywhere(ctx context.Context, prefix netip.Prefix) (bool, error) {
	live, err := p.st.ListBlocks(ctx, store.BlockFilter{Prefix: prefix, LiveOnly: true, Limit: 1})
	return len(live) > 0, err
}

func blockOf(r store.BlockRecord) Block {
	return Block{Prefix: r.Prefix, Target: r.Target, FindingID: r.FindingID, Reason: r.Reason, Created: r.Created, Expires: r.Expires, RuleNumber: r.RuleNumber}
}

// claimedOn returns the live blocks on a target other than the row itself.
func (p *Pipeline) claimedOn(ctx context.Context, target string, self int64) ([]Block, []store.BlockRecord, error) {
	rows, err := p.st.ListBlocks(ctx, store.BlockFilter{Target: target, LiveOnly: true})
	if err != nil {
		return nil, nil, err
	}
	var out []Block
	var recs []store.BlockRecord
	for _, r := range rows {
		if r.ID != self {
			out = append(out, blockOf(r))
			recs = append(recs, r)
		}
	}
	return out, recs, nil
}

// place carries a pending row to AWS: plan it (rule number, room; evict
// when full), record the plan, then create the entry. A retryable failure
// leaves the row pending for the next run; the store error, if any, is
// returned.
func (p *Pipeline) place(ctx context.Context, row store.BlockRecord, rep *Report) (Outcome, error) {
	bl := p.blockerFor(row.Target)
	out := Outcome{FindingID: row.FindingID, Prefix: row.Prefix, Target: row.Target, Expires: row.Expires}
	fail := func(state store.BlockState, retry bool, err error) (Outcome, error) {
		out.Kind, out.Reason = OutcomeFailed, err.Error()
		if retry {
			out.Reason += " (will retry on the next run)"
		}
		rep.add(out)
		if uerr := p.st.UpdateBlock(ctx, row.ID, store.BlockUpdate{State: state, LastError: err.Error(), Attempt: true, At: p.clock.Now()}); uerr != nil {
			return out, uerr
		}
		return out, p.audit(ctx, AuditBlockFailed, row.Prefix.String(), row.FindingID, map[string]any{
			"target": row.Target, "rule_number": row.RuleNumber, "error": err.Error(), "retry": retry})
	}
	if bl == nil {
		return fail(store.BlockPending, true, fmt.Errorf("no blocker configured for %s", row.Target))
	}
	for plan := 0; plan < 4; plan++ {
		b := blockOf(row)
		if row.RuleNumber == 0 {
			claimed, recs, err := p.claimedOn(ctx, row.Target, row.ID)
			if err != nil {
				return out, err
			}
			_, retry, err := p.retry.do(ctx, func(ctx context.Context) (bool, error) {
				b.RuleNumber = 0
				err := bl.Prepare(ctx, &b, claimed)
				return false, err
			})
			var full *FullError
			switch {
			case errors.As(err, &full):
				evicted, eerr := p.evict(ctx, row, recs, full, rep)
				if eerr != nil {
					return out, eerr
				}
				if evicted {
					continue
				}
				out.Kind, out.Guard, out.Reason = OutcomeRefused, GuardFull, full.Error()+"; nothing flowguard owns there may give way"
				rep.add(out)
				if uerr := p.st.UpdateBlock(ctx, row.ID, store.BlockUpdate{State: store.BlockFailed, LastError: full.Error(), At: p.clock.Now()}); uerr != nil {
					return out, uerr
				}
				return out, p.audit(ctx, AuditRefused, row.Prefix.String(), row.FindingID, map[string]any{"guard": GuardFull, "target": row.Target, "reason": out.Reason})
			case errors.Is(err, ErrPresent):
				out.Kind, out.Guard, out.Reason = OutcomeRefused, "present", err.Error()
				rep.add(out)
				if uerr := p.st.UpdateBlock(ctx, row.ID, store.BlockUpdate{State: store.BlockFailed, LastError: err.Error(), At: p.clock.Now()}); uerr != nil {
					return out, uerr
				}
				return out, p.audit(ctx, AuditRefused, row.Prefix.String(), row.FindingID, map[string]any{"guard": "present", "target": row.Target, "reason": err.Error()})
			case err != nil:
				return fail(store.BlockPending, retry, err)
			}
			if b.RuleNumber != 0 {
				err := p.st.UpdateBlock(ctx, row.ID, store.BlockUpdate{RuleNumber: b.RuleNumber, At: p.clock.Now()})
				if errors.Is(err, store.ErrBlockExists) {
					continue // the number went to another process's block
				}
				if err != nil {
					return out, err
				}
				row.RuleNumber = b.RuleNumber
			}
		}
		_, retry, err := p.retry.do(ctx, func(ctx context.Context) (bool, error) { return bl.Block(ctx, &b) })
		var foreign *ForeignEntryError
		var full *FullError
		switch {
		case err == nil:
			now := p.clock.Now()
			if uerr := p.st.UpdateBlock(ctx, row.ID, store.BlockUpdate{State: store.BlockActive, Attempt: true, At: now}); uerr != nil {
				return out, uerr
			}
			out.Kind = OutcomeBlocked
			rep.add(out)
			return out, p.audit(ctx, AuditBlock, row.Prefix.String(), row.FindingID, map[string]any{
				"target": row.Target, "rule_number": row.RuleNumber, "expires": row.Expires, "severity": row.Severity, "type": row.Reason})
		case errors.As(err, &foreign):
			// Someone else took the number: never touch their entry,
			// plan again with another.
			if uerr := p.st.UpdateBlock(ctx, row.ID, store.BlockUpdate{State: store.BlockFailed, LastError: err.Error(), At: p.clock.Now()}); uerr != nil {
				return out, uerr
			}
			if aerr := p.audit(ctx, AuditBlockFailed, row.Prefix.String(), row.FindingID, map[string]any{"target": row.Target, "rule_number": row.RuleNumber, "error": err.Error(), "retry": true}); aerr != nil {
				return out, aerr
			}
			row.RuleNumber = 0
			row.State = store.BlockPending
			id, ierr := p.st.InsertBlock(ctx, store.BlockRecord{Target: row.Target, Prefix: row.Prefix, FindingID: row.FindingID, Severity: row.Severity,
				Reason: row.Reason, State: store.BlockPending, Created: row.Created, Expires: row.Expires})
			if ierr != nil {
				return out, ierr
			}
			row.ID = id
		case errors.As(err, &full):
			// AWS disagrees with our count (a quota lower than
			// configured): plan again, which evicts.
			if uerr := p.st.UpdateBlock(ctx, row.ID, store.BlockUpdate{RuleNumber: 0, LastError: err.Error(), At: p.clock.Now()}); uerr != nil {
				return out, uerr
			}
			_, recs, cerr := p.claimedOn(ctx, row.Target, row.ID)
			if cerr != nil {
				return out, cerr
			}
			evicted, eerr := p.evict(ctx, row, recs, full, rep)
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
			}
			return fail(state, retry, err)
		}
	}
	return fail(store.BlockPending, true, errors.New("could not settle on a rule number"))
}

// evict removes one of flowguard's blocks on a full target, chosen by the
// configured policy, to make room for row. It reports whether one was
// removed.
func (p *Pipeline) evict(ctx context.Context, row store.BlockRecord, others []store.BlockRecord, full *FullError, rep *Report) (bool, error) {
	policy := EvictOldest
	switch {
	case strings.HasPrefix(row.Target, naclPrefix) && p.cfg.NACL != nil && p.cfg.NACL.Evict != "":
		policy = p.cfg.NACL.Evict
	case strings.HasPrefix(row.Target, wafPrefix) && p.cfg.WAFv2 != nil && p.cfg.WAFv2.Evict != "":
		policy = p.cfg.WAFv2.Evict
	}
	var cands []store.BlockRecord
	for _, o := range others {
		if o.State == store.BlockActive && o.Prefix.Addr().Is4() == row.Prefix.Addr().Is4() {
			cands = append(cands, o)
		}
	}
	if len(cands) == 0 {
		return false, nil
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
	victim := cands[0]
	if policy == EvictLowestSeverity && victim.Severity > row.Severity {
		return false, nil
	}
	o, err := p.remove(ctx, victim, "evict", rep)
	if err != nil {
		return false, err
	}
	if o.Kind != OutcomeUnblocked {
		return false, nil
	}
	return true, p.audit(ctx, AuditEvict, victim.Prefix.String(), victim.FindingID, map[string]any{
		"target": victim.Target, "rule_number": victim.RuleNumber, "policy": policy, "severity": victim.Severity,
		"created": victim.Created, "to_make_room_for": row.Prefix.String(), "for_finding": row.FindingID, "full": full.Error()})
}

// remove takes a block out of AWS: it records the intent (removing), then
// deletes, then records the result.
func (p *Pipeline) remove(ctx context.Context, row store.BlockRecord, by string, rep *Report) (Outcome, error) {
	out := Outcome{FindingID: row.FindingID, Prefix: row.Prefix, Target: row.Target, Reason: by}
	if row.State != store.BlockRemoving {
		if err := p.st.UpdateBlock(ctx, row.ID, store.BlockUpdate{State: store.BlockRemoving, RemovedBy: by, At: p.clock.Now()}); err != nil {
			return out, err
		}
	}
	bl := p.blockerFor(row.Target)
	var retry bool
	var err error
	if bl == nil {
		retry, err = true, fmt.Errorf("no blocker configured for %s", row.Target)
	} else {
		_, retry, err = p.retry.do(ctx, func(ctx context.Context) (bool, error) { return bl.Unblock(ctx, blockOf(row)) })
	}
	if err != nil {
		out.Kind, out.Reason = OutcomeFailed, err.Error()
		rep.add(out)
		if uerr := p.st.UpdateBlock(ctx, row.ID, store.BlockUpdate{LastError: err.Error(), Attempt: true, At: p.clock.Now()}); uerr != nil {
			return out, uerr
		}
		return out, p.audit(ctx, AuditUnblockFail, row.Prefix.String(), row.FindingID, map[string]any{
			"target": row.Target, "rule_number": row.RuleNumber, "by": by, "error": err.Error(), "retry": retry})
	}
	if uerr := p.st.UpdateBlock(ctx, row.ID, store.BlockUpdate{State: store.BlockRemoved, RemovedBy: by, At: p.clock.Now()}); uerr != nil {
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
		// An alarm transition is its own key: seen means sent.
		return false
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
// log, in one transaction.
func (p *Pipeline) enqueue(ctx context.Context, notes []note) error {
	if len(notes) == 0 {
		return nil
	}
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
		nr := store.NotifyRecord{Key: k, LastSent: now, Severity: severityOf(n.ev)}
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

// flush delivers the outbox. A retryable failure leaves the message for
// the next run; any other failure is recorded and dropped.
func (p *Pipeline) flush(ctx context.Context, rep *Report) error {
	items, err := p.st.PendingOutbox(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, it := range items {
		var pl payload
		if err := json.Unmarshal([]byte(it.Payload), &pl); err != nil {
			errs = append(errs, p.st.MarkOutbox(ctx, it.ID, "failed", "unreadable payload: "+err.Error()))
			continue
		}
		subject := it.Notifier
		fid := ""
		if len(pl.Events) > 0 && pl.Events[0].Finding != nil {
			fid = pl.Events[0].Finding.ID
		}
		n := p.notifiers[it.Notifier]
		if n == nil {
			rep.Queued++
			errs = append(errs, p.st.MarkOutbox(ctx, it.ID, "pending", "no notifier named "+it.Notifier+" is configured"))
			continue
		}
		msg, err := p.render(pl.Events, pl.Outcomes, pl.DryRun)
		if err != nil {
			errs = append(errs, p.st.MarkOutbox(ctx, it.ID, "failed", "cannot render: "+err.Error()),
				p.audit(ctx, AuditNotifyFailed, subject, fid, map[string]any{"error": "cannot render: " + err.Error(), "events": len(pl.Events)}))
			continue
		}
		if len(msg.Events) == 0 {
			msg.Events = pl.Events
		}
		_, retry, err := p.retry.do(ctx, func(ctx context.Context) (bool, error) { return n.Notify(ctx, msg) })
		if err != nil {
			state := "failed"
			if retry {
				state = "pending"
				rep.Queued++
			}
			errs = append(errs, p.st.MarkOutbox(ctx, it.ID, state, err.Error()),
				p.audit(ctx, AuditNotifyFailed, subject, fid, map[string]any{"error": err.Error(), "retry": retry, "events": len(pl.Events), "subject": msg.Subject}))
			continue
		}
		rep.Notified++
		errs = append(errs, p.st.MarkOutbox(ctx, it.ID, "sent", ""),
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
