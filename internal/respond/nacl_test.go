package respond

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/store"
)

func TestNACLBlockCreatesEntryFromInterface(t *testing.T) {
	e := newEnv(t, nil)
	f := attack("198.51.100.23", 8, t0)
	rep := e.handle(ev(f))
	if rep.Count(OutcomeBlocked) != 1 {
		t.Fatalf("outcomes %+v, want one block", rep.Outcomes)
	}
	want := []awstest.ACLEntry{{RuleNumber: 1, Protocol: "-1", Action: "deny", CIDR: "198.51.100.23/32"}}
	if got := e.denies(); !slices.Equal(got, want) {
		t.Fatalf("deny entries %+v, want %+v", got, want)
	}
	rows := e.blocks(store.BlockFilter{})
	if len(rows) != 1 || rows[0].State != store.BlockActive || rows[0].RuleNumber != 1 || rows[0].Target != "nacl:"+e.acl {
		t.Fatalf("store rows %+v", rows)
	}
	if !rows[0].Expires.Equal(t0.Add(DefaultBanTime)) {
		t.Errorf("expires %v, want %v", rows[0].Expires, t0.Add(DefaultBanTime))
	}
	as := e.audit(AuditBlock)
	if len(as) != 1 || as[0].FindingID != f.ID || as[0].Subject != "198.51.100.23/32" {
		t.Fatalf("audit %+v", as)
	}
	if e.rec.count() != 1 {
		t.Errorf("%d notifications, want 1", e.rec.count())
	}
}

func TestNACLIPv6Entry(t *testing.T) {
	e := newEnv(t, nil)
	e.handle(ev(attack("2001:db8:ff::7", 8, t0)))
	want := []awstest.ACLEntry{{RuleNumber: 1, Protocol: "-1", Action: "deny", IPv6CIDR: "2001:db8:ff::7/128"}}
	if got := e.denies(); !slices.Equal(got, want) {
		t.Fatalf("deny entries %+v, want %+v", got, want)
	}
}

func TestNACLConfiguredACLsAndRange(t *testing.T) {
	e := newEnv(t, nil)
	other := e.ec2.AddNetworkACL(testVPC, "subnet-0bbbbbbbbbbbbbbb2")
	e.cfg.NACL = &NACLConfig{NetworkACLs: []string{other}, RuleRange: []int32{50, 60}}
	e.restart()
	e.handle(ev(attack("198.51.100.23", 8, t0)))
	if got := e.denies(); len(got) != 0 {
		t.Errorf("the subnet's ACL got %+v; only the configured one should", got)
	}
	var got []awstest.ACLEntry
	for _, x := range e.ec2.Entries(other) {
		if x.Action == "deny" && x.RuleNumber < 32767 {
			got = append(got, x)
		}
	}
	want := []awstest.ACLEntry{{RuleNumber: 50, Protocol: "-1", Action: "deny", CIDR: "198.51.100.23/32"}}
	if !slices.Equal(got, want) {
		t.Fatalf("entries %+v, want %+v", got, want)
	}
}

func TestNACLSecondBlockIsNoOp(t *testing.T) {
	e := newEnv(t, nil)
	f := attack("198.51.100.23", 8, t0)
	e.handle(ev(f))
	creates := e.ec2.Calls("CreateNetworkAclEntry")
	// The same finding again (a second run over the same logs).
	rep := e.handle(ev(f))
	// A different finding about the same address, with new activity.
	g := attack("198.51.100.23", 8, t0.Add(time.Minute))
	g.ID, g.Type = "other-finding", "Recon:EC2/Portscan"
	rep2 := e.handle(ev(g))
	if n := e.ec2.Calls("CreateNetworkAclEntry"); n != creates {
		t.Errorf("CreateNetworkAclEntry called %d more times", n-creates)
	}
	if len(e.denies()) != 1 {
		t.Errorf("deny entries %+v, want one", e.denies())
	}
	if rep.Count(OutcomeBlocked)+rep2.Count(OutcomeBlocked) != 0 {
		t.Errorf("blocked again: %+v %+v", rep.Outcomes, rep2.Outcomes)
	}
	if n := len(e.audit(AuditBlock)); n != 1 {
		t.Errorf("%d block audit entries, want 1", n)
	}
}

func TestNACLEvictOldest(t *testing.T) {
	// Room for 5 IPv4 entries: rule 100 (allow) and the default deny
	// take 2, leaving 3 for flowguard.
	e := newEnv(t, func(c *Config) { c.NACL.MaxEntries = 5 })
	e.ec2.SetLimit(5)
	ips := []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"}
	for i, ip := range ips {
		e.clock.Set(t0.Add(time.Duration(i) * time.Minute))
		e.handle(ev(attack(ip, 8, e.clock.Now())))
	}
	var cidrs []string
	for _, x := range e.denies() {
		cidrs = append(cidrs, x.CIDR)
	}
	want := []string{"198.51.100.4/32", "198.51.100.2/32", "198.51.100.3/32"} // rule 1 reused
	if !slices.Equal(cidrs, want) {
		t.Fatalf("deny entries %v, want %v", cidrs, want)
	}
	ev := e.audit(AuditEvict)
	if len(ev) != 1 || ev[0].Subject != "198.51.100.1/32" {
		t.Fatalf("evict audit %+v", ev)
	}
	if d := detail(t, ev[0]); d["policy"] != EvictOldest || d["to_make_room_for"] != "198.51.100.4/32" {
		t.Errorf("evict detail %v", d)
	}
	old := e.blocks(store.BlockFilter{Prefix: mustPrefix("198.51.100.1/32")})
	if len(old) != 1 || old[0].State != store.BlockRemoved || old[0].RemovedBy != "evict" {
		t.Errorf("evicted row %+v", old)
	}
}

func TestNACLEvictLowestSeverity(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.NACL.MaxEntries = 5; c.NACL.Evict = EvictLowestSeverity })
	sev := map[string]float64{"198.51.100.1": 8, "198.51.100.2": 7.5, "198.51.100.3": 8.9}
	for i, ip := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		e.clock.Set(t0.Add(time.Duration(i) * time.Minute))
		e.handle(ev(attack(ip, sev[ip], e.clock.Now())))
	}
	// Lower than every block: refused, nothing evicted.
	rep := e.handle(ev(attack("198.51.100.4", 7.1, e.clock.Now())))
	if rep.Count(OutcomeRefused) != 1 || len(e.audit(AuditEvict)) != 0 {
		t.Fatalf("a 7.1 finding evicted a stronger block: %+v", rep.Outcomes)
	}
	// Higher than the weakest (7.5): that one goes.
	rep = e.handle(ev(attack("198.51.100.5", 8.5, e.clock.Now())))
	if rep.Count(OutcomeBlocked) != 1 {
		t.Fatalf("outcomes %+v", rep.Outcomes)
	}
	ev := e.audit(AuditEvict)
	if len(ev) != 1 || ev[0].Subject != "198.51.100.2/32" {
		t.Fatalf("evicted %+v, want 198.51.100.2/32", ev)
	}
	var cidrs []string
	for _, x := range e.denies() {
		cidrs = append(cidrs, x.CIDR)
	}
	if slices.Contains(cidrs, "198.51.100.2/32") || !slices.Contains(cidrs, "198.51.100.5/32") || len(cidrs) != 3 {
		t.Errorf("entries %v", cidrs)
	}
}

func TestNACLThrottlingRetried(t *testing.T) {
	e := newEnv(t, nil)
	e.ec2.Throttle(2)
	rep := e.handle(ev(attack("198.51.100.23", 8, t0)))
	if rep.Count(OutcomeBlocked) != 1 || len(e.denies()) != 1 {
		t.Fatalf("outcomes %+v, entries %+v", rep.Outcomes, e.denies())
	}
	// Backoff: initial 200ms, doubling, jittered to [step/2, step) with
	// rand 0.5 → 3/4 of the step.
	want := []time.Duration{150 * time.Millisecond, 300 * time.Millisecond}
	if !slices.Equal(e.sleeps, want) {
		t.Errorf("sleeps %v, want %v", e.sleeps, want)
	}
}

func TestNACLThrottlingExhaustedResumesNextRun(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Retry.MaxAttempts = 2 })
	// DescribeNetworkInterfaces, DescribeNetworkAcls succeed; then
	// throttle Prepare's describe and its retry.
	e.handle() // nothing
	e.ec2.FailBefore("CreateNetworkAclEntry", 2)
	rep := e.handle(ev(attack("198.51.100.23", 8, t0)))
	if rep.Count(OutcomeFailed) != 1 || len(e.denies()) != 0 {
		t.Fatalf("outcomes %+v", rep.Outcomes)
	}
	rows := e.blocks(store.BlockFilter{})
	if len(rows) != 1 || rows[0].State != store.BlockPending || rows[0].RuleNumber != 1 {
		t.Fatalf("rows %+v, want one pending with rule 1", rows)
	}
	// The same process leaves a failing blocker alone for a while.
	e.clock.Advance(OutageBackoff)
	rep = e.handle()
	if rep.Count(OutcomeBlocked) != 1 || len(e.denies()) != 1 {
		t.Fatalf("next run: outcomes %+v, entries %+v", rep.Outcomes, e.denies())
	}
}

func TestNACLHalfWayFailureCompletedNextRun(t *testing.T) {
	// The create reaches AWS but the answer is lost, and the process
	// gives up (one attempt): the next process completes it without a
	// second entry.
	e := newEnv(t, func(c *Config) { c.Retry.MaxAttempts = 1 })
	e.ec2.FailAfterApply("CreateNetworkAclEntry", 1)
	rep := e.handle(ev(attack("198.51.100.23", 8, t0)))
	if rep.Count(OutcomeFailed) != 1 {
		t.Fatalf("outcomes %+v", rep.Outcomes)
	}
	if len(e.denies()) != 1 {
		t.Fatalf("AWS should hold the entry: %+v", e.denies())
	}
	e.restart()
	rep = e.startRun()
	if rep.Count(OutcomeBlocked) != 1 {
		t.Fatalf("restart outcomes %+v", rep.Outcomes)
	}
	if len(e.denies()) != 1 {
		t.Fatalf("entries %+v, want exactly one", e.denies())
	}
	rows := e.blocks(store.BlockFilter{})
	if len(rows) != 1 || rows[0].State != store.BlockActive {
		t.Fatalf("rows %+v", rows)
	}
	if n := len(e.audit(AuditBlock)); n != 1 {
		t.Errorf("%d block audit entries", n)
	}
}

func TestNACLHalfWayFailureRetriedInRun(t *testing.T) {
	e := newEnv(t, nil)
	e.ec2.FailAfterApply("CreateNetworkAclEntry", 1)
	rep := e.handle(ev(attack("198.51.100.23", 8, t0)))
	if rep.Count(OutcomeBlocked) != 1 || len(e.denies()) != 1 {
		t.Fatalf("outcomes %+v entries %+v", rep.Outcomes, e.denies())
	}
	// The retry reads the ACL before writing and finds the entry the
	// lost answer was about: no second create.
	if n := e.ec2.Calls("CreateNetworkAclEntry"); n != 1 {
		t.Errorf("%d creates, want 1", n)
	}
}

func TestNACLExpiry(t *testing.T) {
	for _, restart := range []bool{false, true} {
		e := newEnv(t, nil)
		e.handle(ev(attack("198.51.100.23", 8, t0)))
		e.clock.Advance(59 * time.Minute)
		e.handle()
		if len(e.denies()) != 1 {
			t.Fatal("expired early")
		}
		// The process is down when the ban falls due; it expires on the
		// next start, hours later.
		e.clock.Advance(5 * time.Hour)
		if restart {
			e.restart()
			e.startRun()
		} else {
			e.handle()
		}
		if got := e.denies(); len(got) != 0 {
			t.Fatalf("restart=%v: entries %+v after expiry", restart, got)
		}
		rows := e.blocks(store.BlockFilter{})
		if len(rows) != 1 || rows[0].State != store.BlockRemoved || rows[0].RemovedBy != "expiry" {
			t.Fatalf("rows %+v", rows)
		}
		if as := e.audit(AuditUnblock); len(as) != 1 || detail(t, as[0])["by"] != "expiry" {
			t.Fatalf("unblock audit %+v", as)
		}
		// The same logs again: the finding has no new activity.
		e.handle(ev(attack("198.51.100.23", 8, t0)))
		if len(e.denies()) != 0 {
			t.Fatalf("restart=%v: stale finding blocked again", restart)
		}
	}
}

func TestBanTimeIncrement(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.BanTime = Duration(time.Hour)
		c.BanTimeIncrement = &BanIncrement{Factor: 3, Max: Duration(5 * time.Hour)}
	})
	// Bans 1..4 last 1h, 3h, 5h (9h capped), 5h.
	want := []time.Duration{time.Hour, 3 * time.Hour, 5 * time.Hour, 5 * time.Hour}
	for i, w := range want {
		now := e.clock.Now()
		e.handle(ev(attack("198.51.100.23", 8, now)))
		rows := e.blocks(store.BlockFilter{LiveOnly: true})
		if len(rows) != 1 {
			t.Fatalf("ban %d: rows %+v", i+1, rows)
		}
		if got := rows[0].Expires.Sub(now); got != w {
			t.Errorf("ban %d lasts %v, want %v", i+1, got, w)
		}
		e.clock.Advance(w + time.Minute)
		e.handle()
	}
}

func TestReconcileEntryDeletedBehindOurBack(t *testing.T) {
	e := newEnv(t, nil)
	e.handle(ev(attack("198.51.100.23", 8, t0)))
	e.ec2.RemoveEntry(e.acl, 1, false)
	e.restart()
	rep := e.startRun()
	if rep.Reconciled != 1 {
		t.Fatalf("reconciled %d", rep.Reconciled)
	}
	rows := e.blocks(store.BlockFilter{})
	if rows[0].State != store.BlockGone {
		t.Fatalf("row %+v, want gone", rows[0])
	}
	if len(e.audit(AuditGone)) != 1 {
		t.Error("no reconcile-gone audit")
	}
	// Someone else now puts their own entry at rule 1: expiry must not
	// delete it.
	e.ec2.PutEntry(e.acl, awstest.ACLEntry{RuleNumber: 1, Protocol: "-1", Action: "deny", CIDR: "198.51.100.23/32"})
	e.clock.Advance(2 * time.Hour)
	e.handle()
	if len(e.denies()) != 1 {
		t.Fatal("an entry flowguard no longer owns was deleted")
	}
}

func TestForeignEntriesNeverTouched(t *testing.T) {
	e := newEnv(t, nil)
	foreign := []awstest.ACLEntry{
		{RuleNumber: 1, Protocol: "-1", Action: "deny", CIDR: "192.0.2.66/32"},
		{RuleNumber: 2, Protocol: "6", Action: "deny", CIDR: "198.51.100.0/24"},
	}
	for _, f := range foreign {
		e.ec2.PutEntry(e.acl, f)
	}
	rep := e.startRun()
	if rep.Foreign != 0 {
		// The ACL is not known before any block (found from an interface).
		t.Logf("foreign before first block: %d", rep.Foreign)
	}
	e.handle(ev(attack("198.51.100.23", 8, t0)))
	var ours awstest.ACLEntry
	for _, x := range e.denies() {
		if x.CIDR == "198.51.100.23/32" {
			ours = x
		}
	}
	if ours.RuleNumber != 3 {
		t.Fatalf("flowguard used rule %d; 1 and 2 are someone else's", ours.RuleNumber)
	}
	// Restart: the foreign deny in flowguard's range is reported, not
	// adopted.
	e.restart()
	rep = e.startRun()
	if rep.Foreign != 2 {
		t.Errorf("foreign entries reported: %d, want 2 (the denies at rules 1 and 2)", rep.Foreign)
	}
	// Unblock everything flowguard has, and expire: foreign entries stay.
	if _, err := e.p.Unblock(t.Context(), mustPrefix("198.51.100.23/32"), "test", "cleanup"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(48 * time.Hour)
	e.handle()
	var left []awstest.ACLEntry
	for _, x := range e.ec2.Entries(e.acl) {
		if x.RuleNumber < 100 {
			left = append(left, x)
		}
	}
	if !slices.Equal(left, foreign) {
		t.Fatalf("entries below 100: %+v, want the foreign ones untouched %+v", left, foreign)
	}
}

func TestRuleTakenBetweenPlanAndCreate(t *testing.T) {
	// A process planned rule 1 and died; meanwhile someone else put an
	// entry at rule 1. The next run must plan again, not overwrite.
	e := newEnv(t, func(c *Config) { c.Retry.MaxAttempts = 1 })
	e.ec2.FailBefore("CreateNetworkAclEntry", 1)
	e.handle(ev(attack("198.51.100.23", 8, t0)))
	other := awstest.ACLEntry{RuleNumber: 1, Protocol: "-1", Action: "deny", CIDR: "192.0.2.9/32"}
	e.ec2.PutEntry(e.acl, other)
	e.restart()
	rep := e.startRun()
	if rep.Count(OutcomeBlocked) != 1 {
		t.Fatalf("outcomes %+v", rep.Outcomes)
	}
	want := []awstest.ACLEntry{other, {RuleNumber: 2, Protocol: "-1", Action: "deny", CIDR: "198.51.100.23/32"}}
	if got := e.denies(); !slices.Equal(got, want) {
		t.Fatalf("entries %+v, want %+v", got, want)
	}
}

func TestManualUnblockNotReblocked(t *testing.T) {
	e := newEnv(t, nil)
	e.handle(ev(attack("198.51.100.23", 8, t0)))
	// The CLI records the request without AWS access; the next run
	// carries it out.
	rows, err := RequestUnblock(t.Context(), e.st, mustPrefix("198.51.100.23/32"), "alice", "our partner", e.clock.Now(), 0)
	if err != nil || len(rows) != 1 {
		t.Fatalf("RequestUnblock: %v %+v", err, rows)
	}
	e.clock.Advance(time.Minute)
	rep := e.handle(ev(attack("198.51.100.23", 8, e.clock.Now())))
	if rep.Count(OutcomeUnblocked) != 1 || len(e.denies()) != 0 {
		t.Fatalf("outcomes %+v entries %+v", rep.Outcomes, e.denies())
	}
	if rep.Count(OutcomeRefused) != 1 || rep.Outcomes[len(rep.Outcomes)-1].Guard != GuardUnbanned {
		t.Fatalf("new activity after a manual unblock: %+v", rep.Outcomes)
	}
	// After the grace period, new activity blocks again.
	e.clock.Advance(DefaultUnbanGrace)
	rep = e.handle(ev(attack("198.51.100.23", 8, e.clock.Now())))
	if rep.Count(OutcomeBlocked) != 1 {
		t.Fatalf("after grace: %+v", rep.Outcomes)
	}
}

func TestUnblockedPrefixGraceCoversAddresses(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.p.Unblock(t.Context(), mustPrefix("198.51.100.0/24"), "alice", "a partner's range"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	rep := e.handle(ev(attack("198.51.100.77", 8, e.clock.Now())))
	if rep.Count(OutcomeRefused) != 1 || rep.Outcomes[0].Guard != GuardUnbanned || len(e.denies()) != 0 {
		t.Fatalf("an address inside an unblocked prefix: outcomes %+v, entries %+v", rep.Outcomes, e.denies())
	}
	// Outside the prefix, blocking goes on.
	rep = e.handle(ev(attack("198.51.101.77", 8, e.clock.Now())))
	if rep.Count(OutcomeBlocked) != 1 {
		t.Fatalf("outside the prefix: %+v", rep.Outcomes)
	}
}

func TestRuleRangeOverlapRefusedAtReconcile(t *testing.T) {
	e := newEnv(t, nil)
	e.cfg.NACL = &NACLConfig{NetworkACLs: []string{e.acl}, RuleRange: []int32{1, 200}}
	e.restart()
	rep, err := e.p.Start(t.Context())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if len(rep.Failures) != 1 || !strings.Contains(rep.Failures[0].Error, "overlaps rule 100 of "+e.acl+" (allow 0.0.0.0/0 protocol all)") {
		t.Fatalf("failures %+v, want the overlap with rule 100 named", rep.Failures)
	}
	if e.sleeps != nil {
		t.Errorf("a configuration error was retried: %v", e.sleeps)
	}
	rep = e.handle(ev(attack("198.51.100.23", 8, t0)))
	if rep.Count(OutcomeFailed) != 1 || len(e.denies()) != 0 {
		t.Fatalf("outcomes %+v entries %+v", rep.Outcomes, e.denies())
	}
	// A range clear of the ACL's own entries works.
	e.cfg.NACL.RuleRange = []int32{1, 99}
	e.restart()
	if rep := e.startRun(); len(rep.Failures) != 0 {
		t.Fatalf("failures %+v", rep.Failures)
	}
}
