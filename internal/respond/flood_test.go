package respond

import (
	"cmp"
	"slices"
	"testing"

	"github.com/flowguard/flowguard/internal/awstest"
	"github.com/flowguard/flowguard/internal/finding"
)

// flood returns an inbound flood of the network prefix (its actor the
// network's address, evidence sources_prefix as the detector writes it),
// or of no actor when prefix is "".
func flood(actor, prefix string) *finding.Finding {
	f := attack(cmp.Or(actor, "198.51.100.1"), 8, t0)
	f.Type = "DoS:EC2/InboundFlood"
	f.Evidence = map[string]any{"sources_prefix": prefix}
	if prefix == "" {
		f.Evidence = nil
	}
	if actor == "" {
		f.Actor = finding.Actor{Direction: finding.Inbound}
	}
	f.ID = finding.ID(f.Type, f.Actor.IP, "10.0.1.10")
	return f
}

// TestFloodBlocksItsPrefix: a flood whose actor is one network blocks
// that network (masked), not the network's first address alone; the
// prefix guards still apply; a flood with no actor blocks nothing.
func TestFloodBlocksItsPrefix(t *testing.T) {
	cases := []struct {
		name          string
		actor, prefix string
		minV4         int
		want          []awstest.ACLEntry
		guard         string
	}{
		{name: "network", actor: "198.51.100.0", prefix: "198.51.100.0/24",
			want: []awstest.ACLEntry{{RuleNumber: 1, Protocol: "-1", Action: "deny", CIDR: "198.51.100.0/24"}}},
		{name: "unmasked evidence", actor: "198.51.100.77", prefix: "198.51.100.77/24",
			want: []awstest.ACLEntry{{RuleNumber: 1, Protocol: "-1", Action: "deny", CIDR: "198.51.100.0/24"}}},
		{name: "IPv6 network", actor: "2001:db8:ff::", prefix: "2001:db8:ff::/48", minV4: 0,
			guard: GuardPrefix}, // wider than the default /64
		{name: "wider than min_prefix_v4", actor: "198.51.100.0", prefix: "198.51.100.0/24", minV4: 28, guard: GuardPrefix},
		{name: "one source", actor: "198.51.100.23", prefix: "",
			want: []awstest.ACLEntry{{RuleNumber: 1, Protocol: "-1", Action: "deny", CIDR: "198.51.100.23/32"}}},
		{name: "prefix not the actor's", actor: "198.51.100.23", prefix: "192.0.2.0/24",
			want: []awstest.ACLEntry{{RuleNumber: 1, Protocol: "-1", Action: "deny", CIDR: "198.51.100.23/32"}}},
		{name: "no actor", actor: "", prefix: "198.51.100.0/24", guard: GuardPrefix},
		{name: "in the allow-list", actor: "203.0.113.0", prefix: "203.0.113.0/24", guard: GuardAllowlist},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *Config) { cfg.MinPrefixV4 = c.minV4 })
			rep := e.handle(ev(flood(c.actor, c.prefix)))
			if got := e.denies(); !slices.Equal(got, c.want) {
				t.Errorf("deny entries %+v, want %+v", got, c.want)
			}
			if c.guard != "" {
				if rep.Count(OutcomeBlocked) != 0 || rep.Count(OutcomeRefused) != 1 || rep.Outcomes[0].Guard != c.guard {
					t.Errorf("outcomes %+v, want one refused by %s", rep.Outcomes, c.guard)
				}
			}
		})
	}
}
