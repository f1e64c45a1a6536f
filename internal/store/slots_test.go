package store

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestPickSlot: the slot rule both stores apply (claims on SQLite and on
// DynamoDB run through it), case by case.
func TestPickSlot(t *testing.T) {
	p4 := netip.MustParsePrefix("198.51.100.9/32")
	row := func(id int64, target, prefix string, rule int32, state BlockState) BlockRecord {
		return BlockRecord{ID: id, Target: target, Prefix: netip.MustParsePrefix(prefix), RuleNumber: rule, State: state}
	}
	acl := Slot{Target: "nacl:acl-1", RuleMin: 1, RuleMax: 3, Room: 2}
	tests := []struct {
		name string
		rows []BlockRecord
		slot Slot
		self int64
		rule int32
		room bool
	}{
		{"empty target: the lowest number", nil, acl, 0, 1, true},
		{"numbers held by live rows and entries are skipped",
			[]BlockRecord{row(1, "nacl:acl-1", "203.0.113.1/32", 1, BlockActive)}, Slot{Target: "nacl:acl-1", RuleMin: 1, RuleMax: 3, Room: 2, Taken: []int32{2}}, 0, 3, true},
		{"dead rows and other targets hold nothing",
			[]BlockRecord{row(1, "nacl:acl-1", "203.0.113.1/32", 1, BlockRemoved), row(2, "nacl:acl-2", "203.0.113.2/32", 2, BlockActive)}, acl, 0, 1, true},
		{"no number left: full",
			[]BlockRecord{row(1, "nacl:acl-1", "203.0.113.1/32", 1, BlockActive)}, Slot{Target: "nacl:acl-1", RuleMin: 1, RuleMax: 3, Room: 2, Taken: []int32{2, 3}}, 0, 0, false},
		{"pending rows of the family fill the room",
			[]BlockRecord{row(1, "nacl:acl-1", "203.0.113.1/32", 1, BlockPending), row(2, "nacl:acl-1", "203.0.113.2/32", 2, BlockPending)}, acl, 0, 0, false},
		{"pending rows of the other family do not",
			[]BlockRecord{row(1, "nacl:acl-1", "2001:db8::1/128", 1, BlockPending), row(2, "nacl:acl-1", "2001:db8::2/128", 2, BlockPending)}, acl, 0, 3, true},
		{"a pending row whose entry is in the target takes no room",
			[]BlockRecord{row(1, "nacl:acl-1", "203.0.113.1/32", 1, BlockPending), row(2, "nacl:acl-1", "203.0.113.2/32", 2, BlockPending)},
			Slot{Target: "nacl:acl-1", RuleMin: 1, RuleMax: 3, Room: 2, Taken: []int32{1}}, 0, 3, true},
		{"self is left out",
			[]BlockRecord{row(7, "nacl:acl-1", "198.51.100.9/32", 1, BlockPending)}, Slot{Target: "nacl:acl-1", RuleMin: 1, RuleMax: 3, Room: 1}, 7, 1, true},
		{"an entry to adopt keeps its number",
			nil, Slot{Target: "nacl:acl-1", RuleMin: 1, RuleMax: 3, Room: 0, Adopt: 3}, 0, 3, true},
		{"targets without numbers: room only",
			[]BlockRecord{row(1, "waf:set", "203.0.113.1/32", 0, BlockActive)}, Slot{Target: "waf:set", Room: 1}, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, ok := PickSlot(slices.Values(tt.rows), tt.slot, p4, tt.self)
			if rule != tt.rule || ok != tt.room {
				t.Fatalf("PickSlot = %d, %v; want %d, %v", rule, ok, tt.rule, tt.room)
			}
		})
	}
}

// TestBlockUpdateApply: what an update does to a row, the rule both
// stores' UpdateBlock apply.
func TestBlockUpdateApply(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	at := now.Add(time.Minute)
	base := BlockRecord{ID: 1, State: BlockPending, RuleNumber: 5, Attempts: 1, LastError: "throttled", Expires: now.Add(time.Hour)}
	tests := []struct {
		name string
		u    BlockUpdate
		want BlockRecord
	}{
		{"activate clears the error", BlockUpdate{State: BlockActive},
			BlockRecord{ID: 1, State: BlockActive, RuleNumber: 5, Attempts: 1, Expires: now.Add(time.Hour), Updated: now}},
		{"removal stamps the time and cause at u.At", BlockUpdate{State: BlockRemoved, RemovedBy: "expiry", At: at},
			BlockRecord{ID: 1, State: BlockRemoved, RuleNumber: 5, Attempts: 1, Expires: now.Add(time.Hour), Removed: at, RemovedBy: "expiry", Updated: at}},
		{"an attempt that failed", BlockUpdate{Attempt: true, LastError: "denied"},
			BlockRecord{ID: 1, State: BlockPending, RuleNumber: 5, Attempts: 2, LastError: "denied", Expires: now.Add(time.Hour), Updated: now}},
		{"renumber and extend", BlockUpdate{RuleNumber: 7, Expires: now.Add(2 * time.Hour)},
			BlockRecord{ID: 1, State: BlockPending, RuleNumber: 7, Attempts: 1, Expires: now.Add(2 * time.Hour), Updated: now}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			tt.u.Apply(&r, now)
			if r != tt.want {
				t.Fatalf("got  %+v\nwant %+v", r, tt.want)
			}
		})
	}
}
