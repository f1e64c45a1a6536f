package cloudtrail

import (
	"container/list"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
)

// signInLateness is how late a sign-in may arrive behind the newest one
// and still be judged with its neighbours when the detector forgets old
// sign-ins (Options.Streaming): CloudTrail delivers within minutes.
const signInLateness = time.Hour

// maxBurstSet bounds the distinct users and addresses a brute-force
// finding remembers (its counts stop there).
const maxBurstSet = 10_000

// attempt is one sign-in remembered by the brute-force rules.
type attempt struct {
	at    time.Time
	ip    netip.Addr
	user  string
	burst bool // found inside a burst (never unset)
}

// burstSum is what a key's forgotten failures inside bursts added up to.
type burstSum struct {
	n           int
	first, last time.Time
	users       map[string]bool
	ips         map[netip.Addr]bool
	succeeded   bool
}

func (s *burstSum) add(a attempt) {
	if s.n == 0 || a.at.Before(s.first) {
		s.first = a.at
	}
	if s.n == 0 || a.at.After(s.last) {
		s.last = a.at
	}
	s.n++
	if s.users == nil {
		s.users, s.ips = map[string]bool{}, map[netip.Addr]bool{}
	}
	if len(s.users) < maxBurstSet {
		s.users[a.user] = true
	}
	if len(s.ips) < maxBurstSet {
		s.ips[a.ip] = true
	}
}

// keyState is the sign-ins of one key: "ip:ADDRESS" or "user:NAME".
type keyState struct {
	key    string
	fails  []attempt // not yet forgotten, sorted when judged
	oks    []attempt
	closed burstSum // the forgotten failures that were inside bursts
	dirty  bool     // sign-ins added since the last judgement
	gone   bool     // dropped
	elem   *list.Element
}

// size is what a key counts against MaxTrackedSignIns.
func (k *keyState) size() int { return 1 + len(k.fails) + len(k.oks) }

// signIns is the brute-force rules' memory, bounded: keys in order of
// their last sign-in's arrival, least recent at the back.
type signIns struct {
	keys    map[string]*keyState
	lru     *list.List
	size    int         // keys and sign-ins held
	newest  time.Time   // the latest sign-in seen
	evicted int64       // sign-ins forgotten to stay within the bound
	dirty   []*keyState // keys with sign-ins added since they were judged
	pruned  time.Time   // the horizon of the last pruning
}

func newSignIns() *signIns { return &signIns{keys: map[string]*keyState{}, lru: list.New()} }

// remember keeps a sign-in under key.
func (d *Detector) remember(key string, a attempt, failed bool) {
	s := d.signIns
	k := s.keys[key]
	if k == nil {
		k = &keyState{key: key, closed: d.seed(key)}
		k.elem = s.lru.PushFront(k)
		s.keys[key] = k
		s.size++
	} else {
		s.lru.MoveToFront(k.elem)
	}
	if failed {
		k.fails = append(k.fails, a)
	} else {
		k.oks = append(k.oks, a)
	}
	if !k.dirty {
		k.dirty = true
		s.dirty = append(s.dirty, k)
	}
	s.size++
	if a.at.After(s.newest) {
		s.newest = a.at
	}
	// Over the bound: the least recently active keys go first (the key
	// just added stays, whatever its size).
	for s.size > d.o.MaxTrackedSignIns {
		victim := s.lru.Back().Value.(*keyState)
		if victim == k {
			break
		}
		d.judge(victim) // what it holds still counts for its finding
		s.evicted += int64(len(victim.fails) + len(victim.oks))
		d.drop(victim)
	}
}

func (d *Detector) drop(k *keyState) {
	s := d.signIns
	s.lru.Remove(k.elem)
	delete(s.keys, k.key)
	k.gone = true
	s.size -= k.size()
}

// forget judges the keys with sign-ins added, then, when streaming, folds
// the sign-ins too old to join a burst any more into their key's sums:
// those before the newest sign-in by two windows and the lateness.
func (d *Detector) forget() {
	s := d.signIns
	for _, k := range s.dirty {
		if k.dirty && !k.gone {
			d.judge(k)
		}
	}
	s.dirty = s.dirty[:0]
	horizon := s.newest.Add(-2*d.o.BurstWindow - signInLateness)
	if !d.o.Streaming || horizon.Sub(s.pruned) < d.o.BurstWindow/2 {
		return // nothing to prune yet: the walk below visits every key
	}
	s.pruned = horizon
	for e := s.lru.Back(); e != nil; {
		k := e.Value.(*keyState)
		e = e.Prev()
		before := k.size()
		k.fails = slices.DeleteFunc(k.fails, func(a attempt) bool {
			if !a.at.Before(horizon) {
				return false
			}
			if a.burst {
				k.closed.add(a)
			}
			return true
		})
		k.oks = slices.DeleteFunc(k.oks, func(a attempt) bool { return a.at.Before(horizon.Add(-d.o.BurstWindow)) })
		s.size -= before - k.size()
		if len(k.fails) == 0 && len(k.oks) == 0 {
			d.drop(k) // its finding, if any, keeps the sums (seed)
		}
	}
}

// findingID is the id of the brute-force finding of a key.
func findingID(key string) string {
	if user, ok := strings.CutPrefix(key, "user:"); ok {
		return finding.ID(TypeBruteForceUser, netip.Addr{}, user)
	}
	ip, _ := netip.ParseAddr(strings.TrimPrefix(key, "ip:"))
	return finding.ID(TypeBruteForceSource, ip, "")
}

// seed returns the sums a key starts from: those of its brute-force
// finding when it has one, so that a key forgotten (with time, or
// evicted) and seen again adds to its finding's count instead of
// starting it over.
func (d *Detector) seed(key string) burstSum {
	f := d.found[findingID(key)]
	if f == nil {
		return burstSum{}
	}
	s := burstSum{n: int(f.Count), first: f.FirstSeen, last: f.LastSeen, users: map[string]bool{}, ips: map[netip.Addr]bool{},
		succeeded: f.Evidence["succeeded_after"] == true}
	if f.Actor.User != "" {
		s.users[f.Actor.User] = true
	}
	if f.Actor.IP.IsValid() {
		s.ips[f.Actor.IP] = true
	}
	return s
}

// judge raises or updates the brute-force finding of one key: BurstFailures
// failed sign-ins within BurstWindow from one source, or against one user
// from at least BurstUserSources sources.
func (d *Detector) judge(k *keyState) {
	k.dirty = false
	as := k.fails
	slices.SortStableFunc(as, func(a, b attempt) int { return a.at.Compare(b.at) })
	lo := 0
	for hi := range as {
		for as[hi].at.Sub(as[lo].at) > d.o.BurstWindow {
			lo++
		}
		if hi-lo+1 >= d.o.BurstFailures {
			for i := lo; i <= hi; i++ {
				as[i].burst = true
			}
		}
	}
	sum := k.closed
	sum.users, sum.ips = maps(k.closed.users), maps(k.closed.ips)
	for _, a := range as {
		if a.burst {
			sum.add(a)
		}
	}
	if sum.n == 0 {
		return
	}
	byUser := strings.HasPrefix(k.key, "user:")
	if byUser && len(sum.ips) < d.o.BurstUserSources {
		return // one source: the per-source finding names it
	}
	// A success from the same key after the first failure: the brute
	// force may have worked.
	for _, ok := range k.oks {
		if !ok.at.Before(sum.first) && ok.at.Sub(sum.last) <= d.o.BurstWindow {
			sum.succeeded = true
		}
	}
	k.closed.succeeded = sum.succeeded
	sev := finding.Medium
	if sum.succeeded {
		sev = finding.High
	}
	f := finding.Finding{Severity: sev, Count: int64(sum.n), FirstSeen: sum.first, LastSeen: sum.last,
		Evidence: map[string]any{"failures": sum.n, "distinct_users": len(sum.users), "distinct_sources": len(sum.ips),
			"window": d.o.BurstWindow.String(), "threshold": d.o.BurstFailures, "succeeded_after": sum.succeeded}}
	if byUser {
		user := strings.TrimPrefix(k.key, "user:")
		f.Type = TypeBruteForceUser
		f.ID = finding.ID(f.Type, netip.Addr{}, user)
		f.Actor = finding.Actor{Direction: finding.Inbound, User: user}
		f.Target = finding.Target{Resource: user}
		f.Title = fmt.Sprintf("%d failed console sign-ins against %s from %d sources", sum.n, user, len(sum.ips))
	} else {
		var ip netip.Addr
		for a := range sum.ips {
			ip = a
		}
		f.Type = TypeBruteForceSource
		f.ID = finding.ID(f.Type, ip, "")
		f.Actor = finding.Actor{IP: ip, Direction: finding.Inbound}
		if len(sum.users) == 1 {
			for u := range sum.users {
				f.Actor.User = u
			}
		}
		f.Title = fmt.Sprintf("%s failed %d console sign-ins against %d user(s)", ip, sum.n, len(sum.users))
	}
	if in(d.o.Home, f.Actor.IP) {
		f.Actor.Direction = finding.Lateral
	}
	if sum.succeeded {
		f.Title += ", then signed in"
	}
	d.found[f.ID] = &f
}

func maps[K comparable](m map[K]bool) map[K]bool {
	out := make(map[K]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Evicted is how many sign-ins the brute-force rules forgot to stay
// within MaxTrackedSignIns.
func (d *Detector) Evicted() int64 { return d.signIns.evicted }

// Tracked is how many keys and sign-ins the brute-force rules hold.
func (d *Detector) Tracked() int { return d.signIns.size }
