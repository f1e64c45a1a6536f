package respond

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/store"
)

// TestBlockerOutage: with EC2 failing (5xx) or unreachable, the network
// ACL blocker is retried with backoff, audited and reported as failed; the
// rest goes on: a WAFv2-only route still blocks, notifications still go
// out (the failure among them), and the next run after EC2 is back
// blocks what could not be blocked.
func TestBlockerOutage(t *testing.T) {
	for _, tc := range []struct {
		name string
		down func(e *env)
		back func(e *env)
	}{
		{"5xx", func(e *env) { e.ec2.SetUnavailable(true) }, func(e *env) { e.ec2.SetUnavailable(false) }},
		{"unreachable", func(e *env) { e.ec2.Shutdown() }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.cfg.NACL = &NACLConfig{NetworkACLs: []string{e.acl}}
			e.cfg.WAFv2 = &WAFv2Config{Scope: "REGIONAL", IPv4Set: &IPSetRef{Name: "flowguard-v4", ID: e.wafV4}}
			e.cfg.Routes = []Route{
				{Name: "ssh", Types: []string{"UnauthorizedAccess:*"}, Block: []string{NACLName}, Notify: []string{"rec"}},
				{Name: "web", Types: []string{"Recon:*"}, Block: []string{WAFv2Name}, Notify: []string{"rec"}},
			}
			if err := e.cfg.Validate([]string{"rec"}); err != nil {
				t.Fatal(err)
			}
			e.restart()
			tc.down(e)

			start, err := e.p.Start(t.Context())
			if err != nil {
				t.Fatalf("Start: %v (a failing blocker must not stop the run)", err)
			}
			if len(start.Failures) != 1 || start.Failures[0].Responder != NACLName {
				t.Fatalf("failures %+v, want nacl", start.Failures)
			}
			if len(e.sleeps) < e.cfg.Retry.MaxAttempts-1 {
				t.Errorf("sleeps %v: the blocker was not retried with backoff", e.sleeps)
			}
			ssh := attack("198.51.100.23", 8, t0)
			scan := attack("198.51.100.24", 8, t0)
			scan.Type, scan.ID = "Recon:EC2/Portscan", "scan"
			rep, err := e.p.Handle(t.Context(), []Event{ev(ssh), ev(scan)})
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			var kinds []string
			for _, o := range rep.Outcomes {
				kinds = append(kinds, o.Prefix.String()+" "+o.Kind)
			}
			if !slices.Contains(kinds, "198.51.100.23/32 failed") || !slices.Contains(kinds, "198.51.100.24/32 blocked") {
				t.Fatalf("outcomes %v, want the NACL block failed and the WAFv2 one made", kinds)
			}
			if got := e.waf.Addresses("REGIONAL", e.wafV4); !slices.Equal(got, []string{"198.51.100.24/32"}) {
				t.Errorf("IP set %v", got)
			}
			// Messages: both findings, and the failure itself.
			var told []string
			failure := false
			for _, m := range e.rec.msgs {
				for _, x := range m.Events {
					if x.Finding != nil {
						told = append(told, x.Finding.ID)
					}
					if x.Alarm != nil && strings.Contains(x.Alarm.Alarm, NACLName) && strings.Contains(x.Alarm.Reason, "failed") {
						failure = true
					}
				}
			}
			if !slices.Contains(told, ssh.ID) || !slices.Contains(told, scan.ID) {
				t.Errorf("findings told %v, want both", told)
			}
			if !failure {
				t.Errorf("the blocker's failure was not notified: %+v", e.rec.msgs)
			}
			if n := len(e.audit(AuditResponderFailed)); n != 1 {
				t.Errorf("%d responder-failed audit entries, want 1 (once per outage, not per finding)", n)
			}
			if len(e.audit(AuditBlockFailed)) == 0 || len(e.audit(AuditBlock)) != 1 || len(e.audit(AuditNotify)) == 0 {
				t.Errorf("audit: %d block-failed, %d block, %d notify", len(e.audit(AuditBlockFailed)), len(e.audit(AuditBlock)), len(e.audit(AuditNotify)))
			}
			if tc.back == nil {
				return
			}
			// EC2 is back: the next run blocks the address.
			tc.back(e)
			e.restart()
			e.clock.Advance(time.Minute)
			if rep := e.startRun(); len(rep.Failures) != 0 {
				t.Fatalf("failures after recovery: %+v", rep.Failures)
			}
			rep = e.handle(ev(ssh))
			if rep.Count(OutcomeBlocked) != 1 || len(e.denies()) != 1 {
				t.Fatalf("after recovery: outcomes %+v entries %+v", rep.Outcomes, e.denies())
			}
		})
	}
}

// TestOutageMidRunLeavesPendingForNextRun: EC2 fails after the block was
// claimed: the row stays pending (released, not leased) and the next
// process places it.
func TestOutageMidRunLeavesPendingForNextRun(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Retry.MaxAttempts = 2 })
	e.ec2.FailBefore("CreateNetworkAclEntry", 2)
	rep := e.handle(ev(attack("198.51.100.23", 8, t0)))
	if rep.Count(OutcomeFailed) != 1 || len(rep.Failures) != 1 {
		t.Fatalf("outcomes %+v failures %+v", rep.Outcomes, rep.Failures)
	}
	rows := e.blocks(store.BlockFilter{})
	if len(rows) != 1 || rows[0].State != store.BlockPending {
		t.Fatalf("rows %+v", rows)
	}
	e.restart()
	if rep := e.startRun(); rep.Count(OutcomeBlocked) != 1 || len(e.denies()) != 1 {
		t.Fatalf("next process: outcomes %+v entries %+v", rep.Outcomes, e.denies())
	}
}

// TestCrashedClaimerTakenOver: a process claimed a block and died before
// writing it. Other processes leave the row alone while its lease runs,
// then place it.
func TestCrashedClaimerTakenOver(t *testing.T) {
	e := newEnv(t, nil)
	f := attack("198.51.100.23", 8, t0)
	res, err := e.st.ClaimBlock(t.Context(), store.BlockClaim{Prefix: mustPrefix("198.51.100.23/32"), FindingID: f.ID, Severity: 8, LastSeen: t0,
		Now: t0, Owner: "dead-process", Lease: BlockLease, BanTime: e.cfg.banTime,
		Slots: []store.Slot{{Target: "nacl:" + e.acl, RuleMin: 1, RuleMax: 99, Taken: []int32{100, 101}, Room: 10}}})
	if err != nil || res.Verdict != store.ClaimMade {
		t.Fatal(err, res)
	}
	e.clock.Advance(BlockLease / 2)
	if rep := e.startRun(); len(rep.Outcomes) != 0 || len(e.denies()) != 0 {
		t.Fatalf("a live lease was not respected: %+v %+v", rep.Outcomes, e.denies())
	}
	if rep := e.handle(ev(f)); rep.Count(OutcomeBlocked) != 0 {
		t.Fatalf("the finding was blocked a second time: %+v", rep.Outcomes)
	}
	e.clock.Advance(BlockLease)
	if rep := e.startRun(); rep.Count(OutcomeBlocked) != 1 || len(e.denies()) != 1 {
		t.Fatalf("after the lease: %+v %+v", rep.Outcomes, e.denies())
	}
}
