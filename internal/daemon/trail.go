package daemon

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"strings"

	"github.com/flowguard/flowguard/internal/cloudtrail"
	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/detect"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/flowguard/flowguard/internal/trail"
)

// trailState is the daemon's CloudTrail detection: the chunks of any
// source that hold CloudTrail or EventBridge JSON (CloudTrail records,
// GuardDuty findings from a guardduty source, SQS or files) go through
// it instead of the flow log decoder; their findings are committed and
// answered with the flow findings.
type trailState struct {
	p       *processor
	det     *cloudtrail.Detector
	evicted int64 // sign-ins evicted, as counted in the metric
	// attacks indexes the committed flow findings that name their actor
	// as attacking us, by actor (nil until first needed); pending, for
	// one chunk, those not committed yet.
	attacks map[netip.Addr][]finding.Finding
	pending map[netip.Addr][]finding.Finding
}

func newTrailState(cfg *config.Config, p *processor) *trailState {
	t := &trailState{p: p}
	o := trail.Options(cfg)
	o.Lookup = t.attackers
	o.Streaming = true // the process runs for months: forget old sign-ins
	t.det = cloudtrail.New(o)
	return t
}

// attackers joins a sign-in address with the flow findings naming it as
// an attacker: those not yet committed, then the committed ones (the
// store's, read once, and those committed since).
func (t *trailState) attackers(ip netip.Addr) []finding.Finding {
	t.load()
	pending := t.pending[ip]
	if len(pending) == 0 {
		return t.attacks[ip]
	}
	out := slices.Clone(t.attacks[ip])
	for _, f := range pending {
		if !slices.ContainsFunc(out, func(g finding.Finding) bool { return g.ID == f.ID }) {
			out = append(out, f)
		}
	}
	return out
}

// load reads the store's attack findings once: the join then costs a map
// look-up per sign-in, not a read of the findings table.
func (t *trailState) load() {
	if t.attacks != nil {
		return
	}
	t.attacks = map[netip.Addr][]finding.Finding{}
	fs, err := t.p.st.ListFindings(context.Background(), finding.Filter{Archived: finding.AnyArchived})
	if err != nil {
		t.p.log.Warn("cannot read flow findings to join sign-ins with", "err", err)
	}
	t.committed(fs)
}

// committed notes the findings just committed (the processor calls it
// after each commit).
func (t *trailState) committed(fs []finding.Finding) {
	if t.attacks == nil {
		return // load reads them from the store when first needed
	}
	for i := range fs {
		note(t.attacks, &fs[i])
	}
}

// note adds an attack finding to an index by actor, slim: the join reads
// only the id and the type.
func note(m map[netip.Addr][]finding.Finding, f *finding.Finding) {
	if !cloudtrail.IsAttack(f) {
		return
	}
	if slices.ContainsFunc(m[f.Actor.IP], func(g finding.Finding) bool { return g.ID == f.ID }) {
		return
	}
	m[f.Actor.IP] = append(m[f.Actor.IP], finding.Finding{ID: f.ID, Type: f.Type, Actor: finding.Actor{IP: f.Actor.IP, Direction: f.Actor.Direction}})
}

// isTrail reports whether a chunk holds CloudTrail or EventBridge JSON.
// Whole objects (S3) are looked into when their name says JSON or
// CloudTrail, so that flow log objects are not opened twice.
func isTrail(ctx context.Context, c source.Chunk, in flowlog.Input) bool {
	if c.Open == nil {
		return cloudtrail.Sniff(c.Data[:min(len(c.Data), 4096)])
	}
	n := strings.ToLower(c.Name)
	if !strings.Contains(n, "_cloudtrail_") && !strings.HasSuffix(n, ".json") && !strings.HasSuffix(n, ".json.gz") {
		return false
	}
	ok, err := cloudtrail.SniffInput(ctx, in)
	return err == nil && ok
}

// process reads a chunk of CloudTrail or EventBridge JSON, if it is one,
// and reports whether it was.
func (t *trailState) process(ctx context.Context, c source.Chunk, in flowlog.Input, errs flowlog.ErrorSink) (records int64, ok bool, err error) {
	if !isTrail(ctx, c, in) {
		return 0, false, nil
	}
	before := t.det.Records()
	t.pending = map[netip.Addr][]finding.Finding{}
	for _, r := range t.p.changed {
		note(t.pending, &r.Finding)
	}
	var gd []finding.Finding
	rd := trail.Reader(t.det, errs, func(f finding.Finding) { gd = append(gd, f); records++ })
	if c.Open == nil {
		err = rd.Read(c.Name, bytes.Clone(c.Data))
	} else {
		err = rd.ReadInput(ctx, in)
	}
	fs := t.det.Findings()
	if n := t.det.Evicted(); n > t.evicted {
		if t.evicted == 0 {
			t.p.log.Warn("CloudTrail sign-ins forgotten to stay within cloudtrail.max_tracked_sign_ins: their failures no longer count towards a brute force (see flowguard_cloudtrail_sign_ins_evicted_total)", "evicted", n)
		}
		t.p.m.SignInsEvicted.Add(float64(n - t.evicted))
		t.evicted = n
	}
	for _, f := range fs {
		if old, seen := t.p.changed[f.ID]; !seen || old.Count != f.Count || old.Title != f.Title {
			t.p.changed[f.ID] = &detect.Result{Finding: f, Rule: "CloudTrail: " + f.Type}
		}
	}
	for _, f := range gd {
		t.p.changed[f.ID] = &detect.Result{Finding: f, Rule: "GuardDuty finding"}
	}
	return records + t.det.Records() - before, true, err
}
