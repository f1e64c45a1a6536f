package respond

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"
)

// A lease owner names the process that holds a block or outbox row while
// it works on it: host/pid/random/machine/start. machine is a digest of
// the boot and the PID namespace, start the process's start time in clock
// ticks since boot (Linux); both are empty where /proc does not say.
//
// Leases run out after BlockLease or OutboxLease, so a crashed holder's
// rows are taken over in the end. A process on the same machine does not
// have to wait: when the holder's PID names no process, or a process that
// started at another time (the PID was reused), the holder is gone, and
// its leases are ended at once (reapLeases). That is what a daemon
// restarted after kill -9 relies on to place a block it had claimed but
// not confirmed.

// newOwner returns this process's lease owner name.
func newOwner() string {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return fmt.Sprintf("%s/%d/%08x/%s/%s", host, pid, rand.Uint32(), machineID(), procStart(pid))
}

// machineID identifies the boot and the PID namespace this process runs
// in: two processes with the same one see the same PIDs.
func machineID() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(string(boot)) + "\x00" + ns))
	return hex.EncodeToString(sum[:6])
}

// procStart returns the start time of process pid in clock ticks since
// boot (field 22 of /proc/PID/stat), or "" when it cannot be read (no
// such process, or no /proc).
func procStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields after it start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// ownerGone reports whether owner is a process on this machine that no
// longer runs. It answers false whenever it cannot be sure: another
// machine, an owner name of another shape, a process it cannot see.
func ownerGone(owner, self string) bool {
	if owner == self {
		return false
	}
	o := strings.Split(owner, "/")
	me := strings.Split(self, "/")
	if len(o) != 5 || len(me) != 5 || o[3] == "" || o[4] == "" || o[0] != me[0] || o[3] != me[3] {
		return false
	}
	pid, err := strconv.Atoi(o[1])
	if err != nil || pid <= 0 {
		return false
	}
	if _, err := os.Stat("/proc/" + o[1]); err != nil {
		return os.IsNotExist(err)
	}
	start := procStart(pid)
	return start != "" && start != o[4]
}

// reapEvery bounds how often a pipeline looks for leases of processes
// that are gone.
const reapEvery = time.Minute

// reapLeases ends the leases held by processes on this machine that are
// gone, when the store can list them; see newOwner. It is cheap and runs
// at most once per reapEvery.
func (p *Pipeline) reapLeases(ctx context.Context) error {
	type leases interface {
		LeaseOwners(ctx context.Context, now time.Time) ([]string, error)
		EndLeases(ctx context.Context, owner string) (int, error)
	}
	st, ok := p.st.(leases)
	now := p.clock.Now()
	last := p.reaped.Load()
	if !ok || (last != 0 && now.Sub(time.Unix(0, last)) < reapEvery) || !p.reaped.CompareAndSwap(last, now.UnixNano()) {
		return nil
	}
	owners, err := st.LeaseOwners(ctx, now)
	if err != nil {
		return err
	}
	for _, o := range owners {
		if !ownerGone(o, p.owner) {
			continue
		}
		n, err := st.EndLeases(ctx, o)
		if err != nil {
			return err
		}
		if n > 0 {
			if err := p.audit(ctx, "lease-reap", o, "", map[string]any{"rows": n, "reason": "the holding process is gone"}); err != nil {
				return err
			}
		}
	}
	return nil
}
