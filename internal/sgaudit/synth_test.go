package sgaudit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/flowguard/flowguard/internal/synth"
)

// generatedAccount writes a generated account's flow logs (in format f)
// and its groups, interfaces and prefix lists, and returns the directory.
func generatedAccount(t testing.TB, records int, days int, f string) (string, *synth.Generator) {
	t.Helper()
	cfg := synth.DefaultConfig()
	cfg.Records, cfg.Seed, cfg.Duration = records, 7, time.Duration(days)*24*time.Hour
	if f != "" {
		fm, err := flowlog.ParseFormat(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Format = fm
	}
	g := synth.New(cfg)
	dir := t.TempDir()
	fl, err := os.Create(filepath.Join(dir, "flows.log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.WriteText(fl, true); err != nil {
		t.Fatal(err)
	}
	fl.Close()
	for name, fn := range map[string]func() ([]byte, error){"groups.json": g.SecurityGroupsJSON,
		"interfaces.json": g.InterfacesJSON, "prefix-lists.json": g.PrefixListsJSON} {
		b, err := fn()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, g
}

// TestGeneratedAccount: on a realistic generated account (eight days of
// traffic, attacks included), the planted unused and broader-than-used
// rules are found, the rules the traffic relies on are used, the group
// on an interface without flow logs gets no verdict, and every accepted
// flow is explained by a rule.
func TestGeneratedAccount(t *testing.T) {
	for _, tc := range []struct {
		name, format string
		// without tcp-flags a reply from 8080 to an ephemeral port that
		// is also a service port (50000) passes for a connection
		// attempt: a few in ten thousand may match no rule
		unmatchedPer10k int64
	}{
		{"v5 with tcp-flags and flow-direction", synth.V5FormatString, 0},
		{"v2 default format: ports and addresses decide", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, g := generatedAccount(t, 120000, 10, tc.format)
			rep := audit(t, dir, Options{}, "flows.log")
			if rep.Short {
				t.Errorf("8 days called short (%s)", rep.Period)
			}
			if rep.Unmatched > rep.Accepted*tc.unmatchedPer10k/10000 {
				t.Errorf("%d accepted flows match no rule: %v", rep.Unmatched, rep.UnmatchedExamples)
			}
			if rep.NoGroups == 0 {
				t.Error("the NAT gateway's records were not set aside")
			}
			if len(rep.Silent) != 1 || rep.Silent[0] != g.SilentInterfaceID() {
				t.Errorf("silent interfaces %v, want [%s]", rep.Silent, g.SilentInterfaceID())
			}
			if len(rep.Wanted) != 0 {
				t.Errorf("wanted rejects %+v: the generated rejects are scans and NACL-rejected replies", rep.Wanted)
			}
			for _, e := range g.SGExpectations() {
				t.Run(fmt.Sprintf("%s %s %s %d %s", e.GroupID, e.Direction, e.Protocol, e.FromPort, e.Source), func(t *testing.T) {
					v := find(t, rep, e.GroupID, e.Direction, e.Protocol, e.FromPort, e.Source)
					if v.Verdict != e.Verdict {
						t.Errorf("verdict %s (%d hits, %s), want %s", v.Verdict, v.Hits, v.Suggestion, e.Verdict)
					}
				})
			}
		})
	}
}

// BenchmarkAudit measures matching on a generated account's flow logs.
func BenchmarkAudit(b *testing.B) {
	dir, _ := generatedAccount(b, 200000, 10, synth.V5FormatString)
	inv, err := LoadFiles(filepath.Join(dir, "groups.json"), filepath.Join(dir, "interfaces.json"), filepath.Join(dir, "prefix-lists.json"))
	if err != nil {
		b.Fatal(err)
	}
	inputs, err := source.Expand(context.Background(), []string{filepath.Join(dir, "flows.log")}, source.Options{})
	if err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, "flows.log"))
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		a := New(inv, Options{})
		if err := a.Scan(context.Background(), &flowlog.Scanner{}, inputs); err != nil {
			b.Fatal(err)
		}
		a.Report()
	}
}
