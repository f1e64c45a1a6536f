package dynamo

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/flowguard/flowguard/internal/store"
)

// TestMutexOfACrashedHolder: a claims' mutex left by a process that died
// holding it keeps others waiting until its lease runs out, then is
// taken over.
func TestMutexOfACrashedHolder(t *testing.T) {
	ctx := context.Background()
	st := NewTables(t)(t)
	now := time.Now()
	st.now = func() time.Time { return now }
	// The dead process's mutex, taken just now.
	if err := st.put(ctx, map[string]types.AttributeValue{"pk": s("N#claims"), "sk": s("#"), "holder": s("dead"),
		"holder_until": n(now.Add(MutexLease).UnixNano())}); err != nil {
		t.Fatal(err)
	}
	claim := store.BlockClaim{Prefix: netip.MustParsePrefix("198.51.100.1/32"), FindingID: "f", Severity: 8, LastSeen: now, Now: now,
		Owner: "b", Lease: time.Minute, Slots: []store.Slot{{Target: "nacl:acl-1", RuleMin: 1, RuleMax: 5, Room: 5}}}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := st.ClaimBlock(short, claim); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("claim under a live mutex: %v, want it to wait", err)
	}
	now = now.Add(MutexLease + time.Second)
	res, err := st.ClaimBlock(ctx, claim)
	if err != nil || res.Verdict != store.ClaimMade || len(res.Rows) != 1 {
		t.Fatalf("claim after the lease ran out: %v %+v", err, res)
	}
	// The mutex is given back: the next claim does not wait.
	claim.Prefix, claim.FindingID = netip.MustParsePrefix("198.51.100.2/32"), "g"
	short2, cancel2 := context.WithTimeout(ctx, 2*time.Second)
	defer cancel2()
	if res, err := st.ClaimBlock(short2, claim); err != nil || res.Verdict != store.ClaimMade {
		t.Fatalf("second claim: %v %+v", err, res)
	}
}

// BenchmarkClaimBlock measures one block claim (mutex, reads, writes) on
// dynalite, with b.N rows already in the table.
func BenchmarkClaimBlock(b *testing.B) {
	ctx := context.Background()
	st := NewTables(b)(b)
	now := time.Now()
	b.ResetTimer()
	for i := range b.N {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), 32)
		res, err := st.ClaimBlock(ctx, store.BlockClaim{Prefix: p, FindingID: p.String(), Severity: 8, LastSeen: now, Now: now,
			Owner: "bench", Lease: time.Minute, Slots: []store.Slot{{Target: "waf:set", Room: 1 << 30}}})
		if err != nil || res.Verdict != store.ClaimMade {
			b.Fatal(err, res.Verdict)
		}
	}
}
