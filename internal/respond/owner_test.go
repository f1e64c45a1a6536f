package respond

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/flowguard/flowguard/internal/store"
)

// ownerOf is the lease owner name a process with this pid on this machine
// would have had.
func ownerOf(t *testing.T, pid int, start string) string {
	t.Helper()
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%08x/%s/%s", host, pid, 7, machineID(), start)
}

// exited runs a process to its end and returns its pid and start time: a
// process that is gone.
func exited(t *testing.T) (int, string) {
	t.Helper()
	cmd := exec.Command("sleep", "0.05")
	if err := cmd.Start(); err != nil {
		t.Skip("cannot start a process:", err)
	}
	start := procStart(cmd.Process.Pid)
	cmd.Wait()
	return cmd.Process.Pid, start
}

// running starts a process that lives until the test ends.
func running(t *testing.T) (int, string) {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("cannot start a process:", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid, procStart(cmd.Process.Pid)
}

func TestOwnerGone(t *testing.T) {
	if machineID() == "" || procStart(os.Getpid()) == "" {
		t.Skip("no /proc here: leases only run out")
	}
	self := newOwner()
	deadPid, deadStart := exited(t)
	livePid, liveStart := running(t)
	host, _ := os.Hostname()
	for _, c := range []struct {
		name  string
		owner string
		gone  bool
	}{
		{"this process", self, false},
		{"an exited process", ownerOf(t, deadPid, deadStart), true},
		{"a running process", ownerOf(t, livePid, liveStart), false},
		{"a reused pid (another start time)", ownerOf(t, livePid, liveStart+"1"), true},
		{"another machine", fmt.Sprintf("%s-other/%d/00000007/%s/%s", host, deadPid, machineID(), deadStart), false},
		{"another boot or pid namespace", fmt.Sprintf("%s/%d/00000007/%s/%s", host, deadPid, "0123456789ab", deadStart), false},
		{"the old three-part name", fmt.Sprintf("%s/%d/00000007", host, deadPid), false},
		{"a name of another shape", "dead-process", false},
	} {
		if got := ownerGone(c.owner, self); got != c.gone {
			t.Errorf("%s (%s): gone = %v, want %v", c.name, c.owner, got, c.gone)
		}
	}
}

// TestCrashedClaimerOnThisMachineTakenOverAtOnce: a process on this
// machine claimed a block and was killed before writing it (kill -9 of a
// daemon). The next process does not wait for the lease to run out: the
// holder is gone, so its lease is ended and the block placed at start,
// once, with the reap audited. A holder that still runs keeps its lease.
func TestCrashedClaimerOnThisMachineTakenOverAtOnce(t *testing.T) {
	if machineID() == "" {
		t.Skip("no /proc here: leases only run out")
	}
	livePid, liveStart := running(t)
	deadPid, deadStart := exited(t)
	e := newEnv(t, nil)
	claim := func(ip, owner string) {
		t.Helper()
		f := attack(ip, 8, t0)
		res, err := e.st.ClaimBlock(t.Context(), store.BlockClaim{Prefix: mustPrefix(ip + "/32"), FindingID: f.ID, Severity: 8, LastSeen: t0,
			Now: t0, Owner: owner, Lease: BlockLease, BanTime: e.cfg.banTime,
			Slots: []store.Slot{{Target: "nacl:" + e.acl, RuleMin: 1, RuleMax: 99, Taken: []int32{100, 101}, Room: 10}}})
		if err != nil || res.Verdict != store.ClaimMade {
			t.Fatal(err, res)
		}
	}
	claim("198.51.100.23", ownerOf(t, deadPid, deadStart))
	claim("198.51.100.24", ownerOf(t, livePid, liveStart))
	e.clock.Advance(BlockLease / 10)
	rep := e.startRun()
	if rep.Count(OutcomeBlocked) != 1 || len(e.denies()) != 1 || e.denies()[0].CIDR != "198.51.100.23/32" {
		t.Fatalf("at start: outcomes %+v entries %+v", rep.Outcomes, e.denies())
	}
	audit, err := e.st.ListAudit(t.Context(), store.AuditFilter{Action: "lease-reap"})
	if err != nil || len(audit) != 1 || audit[0].Subject != ownerOf(t, deadPid, deadStart) {
		t.Fatalf("reap audit %+v %v", audit, err)
	}
	if rep := e.startRun(); rep.Count(OutcomeBlocked) != 0 || len(e.denies()) != 1 {
		t.Fatalf("a second start: outcomes %+v entries %+v", rep.Outcomes, e.denies())
	}
}
