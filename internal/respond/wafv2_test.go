package respond

import (
	"slices"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/store"
)

// wafEnv blocks through WAFv2 only.
func wafEnv(t *testing.T, mutate func(*Config)) *env {
	e := newEnv(t, nil)
	e.cfg.NACL = nil
	e.cfg.WAFv2 = &WAFv2Config{Scope: "REGIONAL", IPv4Set: &IPSetRef{Name: "flowguard-v4", ID: e.wafV4}, IPv6Set: &IPSetRef{Name: "flowguard-v6", ID: e.wafV6}}
	e.cfg.Routes[0].Block = []string{WAFv2Name}
	if mutate != nil {
		mutate(e.cfg)
	}
	if err := e.cfg.Validate([]string{"rec"}); err != nil {
		t.Fatal(err)
	}
	e.restart()
	return e
}

func TestWAFv2BlockBothFamilies(t *testing.T) {
	e := wafEnv(t, nil)
	e.waf.SetAddresses("REGIONAL", e.wafV4, "192.0.2.1/32") // someone else's
	rep := e.handle(ev(attack("198.51.100.23", 8, t0)), ev(attack("2001:db8::5", 8, t0)))
	if rep.Count(OutcomeBlocked) != 2 {
		t.Fatalf("outcomes %+v", rep.Outcomes)
	}
	if got, want := e.waf.Addresses("REGIONAL", e.wafV4), []string{"192.0.2.1/32", "198.51.100.23/32"}; !slices.Equal(got, want) {
		t.Errorf("IPv4 set %v, want %v", got, want)
	}
	if got, want := e.waf.Addresses("REGIONAL", e.wafV6), []string{"2001:db8::5/128"}; !slices.Equal(got, want) {
		t.Errorf("IPv6 set %v, want %v", got, want)
	}
	// Again: nothing more written.
	updates := e.waf.Calls("UpdateIPSet")
	e.handle(ev(attack("198.51.100.23", 8, t0)))
	if e.waf.Calls("UpdateIPSet") != updates {
		t.Error("a second block of the same address updated the set")
	}
	// Expiry removes flowguard's addresses only.
	e.clock.Advance(2 * time.Hour)
	e.handle()
	if got, want := e.waf.Addresses("REGIONAL", e.wafV4), []string{"192.0.2.1/32"}; !slices.Equal(got, want) {
		t.Errorf("after expiry IPv4 set %v, want %v", got, want)
	}
	if got := e.waf.Addresses("REGIONAL", e.wafV6); len(got) != 0 {
		t.Errorf("after expiry IPv6 set %v", got)
	}
}

func TestWAFv2OptimisticLockRetried(t *testing.T) {
	e := wafEnv(t, nil)
	e.waf.Conflict(2)
	rep := e.handle(ev(attack("198.51.100.23", 8, t0)))
	if rep.Count(OutcomeBlocked) != 1 {
		t.Fatalf("outcomes %+v", rep.Outcomes)
	}
	if n := e.waf.Calls("UpdateIPSet"); n != 3 {
		t.Errorf("%d UpdateIPSet calls, want 3 (two conflicts, then success)", n)
	}
	if got := e.waf.Addresses("REGIONAL", e.wafV4); !slices.Equal(got, []string{"198.51.100.23/32"}) {
		t.Errorf("set %v", got)
	}
}

func TestWAFv2ForeignAddressNotAdopted(t *testing.T) {
	e := wafEnv(t, nil)
	e.waf.SetAddresses("REGIONAL", e.wafV4, "198.51.100.23/32")
	rep := e.handle(ev(attack("198.51.100.23", 8, t0)))
	if rep.Count(OutcomeRefused) != 1 || rep.Outcomes[0].Guard != "present" {
		t.Fatalf("outcomes %+v", rep.Outcomes)
	}
	if rows := e.blocks(store.BlockFilter{LiveOnly: true}); len(rows) != 0 {
		t.Fatalf("adopted: %+v", rows)
	}
	// Unblocking by hand and expiring never remove someone else's
	// address.
	if _, err := e.p.Unblock(t.Context(), mustPrefix("198.51.100.23/32"), "test", ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(48 * time.Hour)
	e.handle()
	if got := e.waf.Addresses("REGIONAL", e.wafV4); !slices.Equal(got, []string{"198.51.100.23/32"}) {
		t.Errorf("set %v: someone else's address was removed", got)
	}
}

func TestWAFv2LimitEvicts(t *testing.T) {
	e := wafEnv(t, func(c *Config) { c.WAFv2.MaxAddresses = 2 })
	for i, ip := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		e.clock.Set(t0.Add(time.Duration(i) * time.Minute))
		e.handle(ev(attack(ip, 8, e.clock.Now())))
	}
	if got, want := e.waf.Addresses("REGIONAL", e.wafV4), []string{"198.51.100.2/32", "198.51.100.3/32"}; !slices.Equal(got, want) {
		t.Errorf("set %v, want %v", got, want)
	}
	if ev := e.audit(AuditEvict); len(ev) != 1 || ev[0].Subject != "198.51.100.1/32" {
		t.Errorf("evictions %+v", ev)
	}
}

func TestWAFv2AWSLimitExceeded(t *testing.T) {
	// The configured cap says there is room, AWS says no (its 10,000
	// limit, here lowered): the oldest flowguard address gives way.
	e := wafEnv(t, nil)
	e.waf.SetLimit(2)
	for i, ip := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		e.clock.Set(t0.Add(time.Duration(i) * time.Minute))
		e.handle(ev(attack(ip, 8, e.clock.Now())))
	}
	if got, want := e.waf.Addresses("REGIONAL", e.wafV4), []string{"198.51.100.2/32", "198.51.100.3/32"}; !slices.Equal(got, want) {
		t.Errorf("set %v, want %v", got, want)
	}
}
