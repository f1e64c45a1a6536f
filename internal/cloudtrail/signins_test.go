package cloudtrail

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
)

// TestSignInFloodStaysBounded: under serve (Streaming), a flood of 100,000
// failed sign-ins from distinct addresses against distinct user names,
// all within minutes (no time passes to forget them), holds at most
// max_tracked_sign_ins keys and sign-ins; the rest are evicted, least
// recently active first, and counted. A brute force inside the flood is
// still found while its key stays among the active ones (one failure in
// every 100 sign-ins here; a slower one would be forgotten).
func TestSignInFloodStaysBounded(t *testing.T) {
	const limit = 1000
	o := testOptions
	o.SignInSources, o.Streaming, o.MaxTrackedSignIns = nil, true, limit
	d := New(o)
	base := signIn(t, "198.51.100.1", time.Time{}, true, "x")
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	peak := 0
	for i := range 100_000 {
		e := base
		e.EventTime = t0.Add(time.Duration(i) * time.Millisecond)
		e.SourceIPAddress = netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}).String()
		e.UserIdentity.UserName = fmt.Sprintf("user%d", i)
		if i%100 == 0 { // the attacker: one address, one user, 1,000 failures
			e.SourceIPAddress, e.UserIdentity.UserName = "198.51.100.23", "JohnDoe"
		}
		d.Add(e)
		if i%1000 == 0 {
			d.Findings() // as the daemon does after each chunk
		}
		peak = max(peak, d.Tracked())
	}
	fs := d.Findings()
	if peak > limit {
		t.Errorf("held %d keys and sign-ins at the peak, more than max_tracked_sign_ins %d", peak, limit)
	}
	if d.Evicted() < 100_000 {
		t.Errorf("evicted %d sign-ins, want most of the 200,000 (by address and by user)", d.Evicted())
	}
	var bf *finding.Finding
	for i := range fs {
		if fs[i].Type == TypeBruteForceSource {
			if bf != nil {
				t.Errorf("second brute-force finding %+v", fs[i])
			}
			bf = &fs[i]
		}
	}
	if bf == nil || bf.Actor.IP.String() != "198.51.100.23" || bf.Count != 1000 {
		t.Errorf("the brute force inside the flood: %+v", bf)
	}
}

// TestSignInsForgottenWithTime: under serve, sign-ins older than the
// newest by two windows and an hour are forgotten without eviction, and a
// brute force's finding keeps its count across that: a second burst from
// the same address a day later adds to it.
func TestSignInsForgottenWithTime(t *testing.T) {
	o := testOptions
	o.SignInSources, o.Streaming = nil, true
	d := New(o)
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	burst := func(at time.Time) {
		for i := range 12 {
			d.Add(signIn(t, "198.51.100.23", at.Add(time.Duration(i)*20*time.Second), true, "JohnDoe"))
		}
		d.Findings()
	}
	burst(t0)
	// A day of ordinary sign-ins, one a minute from distinct addresses.
	for i := range 24 * 60 {
		d.Add(signIn(t, netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}).String(), t0.Add(time.Hour+time.Duration(i)*time.Minute), false, fmt.Sprintf("u%d", i)))
		d.Findings()
	}
	if n := d.Tracked(); n > 400 {
		t.Errorf("holds %d keys and sign-ins after a day: old sign-ins are not forgotten", n)
	}
	if d.Evicted() != 0 {
		t.Errorf("evicted %d: forgetting with time is no eviction", d.Evicted())
	}
	burst(t0.Add(26 * time.Hour))
	var bf finding.Finding
	for _, f := range d.Findings() {
		if f.Type == TypeBruteForceSource {
			bf = f
		}
	}
	if bf.Count != 24 || !bf.FirstSeen.Equal(t0) || !bf.LastSeen.Equal(t0.Add(26*time.Hour+11*20*time.Second)) {
		t.Errorf("brute force across forgetting: count %d, %v to %v; want 24 from %v", bf.Count, bf.FirstSeen, bf.LastSeen, t0)
	}
}
